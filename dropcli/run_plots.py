"""curves.png, one run's picture: loss and accuracy per epoch, train vs validation, the gap shaded. Drawn from
what the run folder holds, after training (never during it), into the run folder by its writer (train, a
sweep's group, the picture worker); `report` draws the pictures a run folder lacks into its own folder."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from dropcli.files import write_atomically
from dropcli.plotting import TRAIN_STYLE, VAL_STYLE, plt, whole_epochs
from dropcli.run_reading import LoadedRun, load_run

MARKER_STYLE: dict = {"color": "0.35", "linestyle": ":", "linewidth": 1.2}
GAP_COLOR = "0.85"


@dataclass
class RunCurves:
    """What one run's curves.png shows."""

    rows: Sequence[dict[str, float]]
    path: Path
    title: str
    marked_epoch: int | None = None
    marked_label: str = "best epoch"


class RunCurvesFigure:
    """curves.png: loss and accuracy per epoch, train vs validation, the gap shaded, one epoch marked.

    A sweep draws one per run, so the figure is built once per process and only its data change from run
    to run. The axes, ticks, labels, panel titles and the legend (above the panels, where it hides no
    curve) are rendered once per `draw` call and kept as a background; each run then adds only its curves
    and its title. Runs drawn in one call (the trials of a batched group) share their axes' ranges, so
    their pictures compare by eye, and the background is rendered once for all of them: ~20 ms a picture
    in a group of 16 on a laptop core (12 ms its curves and title, 7 ms the PNG) instead of ~85."""

    DPI = 110

    def __init__(self) -> None:
        self.figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=self.DPI)
        # fixed margins: the constrained-layout solver was half of the drawing time
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.78, wspace=0.22)
        self.panels = []
        for axis, metric, label in zip(axes, ("loss", "acc"), ("cross-entropy loss", "accuracy")):
            train_line, = axis.plot([], [], animated=True, **TRAIN_STYLE)
            val_line, = axis.plot([], [], animated=True, **VAL_STYLE)
            marker = axis.axvline(1, animated=True, **MARKER_STYLE)
            axis.set_xlabel("epoch")
            whole_epochs(axis)
            axis.set_ylabel(label)
            axis.set_title("loss" if metric == "loss" else "accuracy")
            axis.grid(alpha=0.3)
            self.panels.append({"axis": axis, "metric": metric, "train": train_line, "val": val_line,
                                "marker": marker, "fill": None})
        # parse_math off: a title from summary.json is text, never mathtext
        self.title = self.figure.suptitle("", y=0.975, animated=True, parse_math=False)
        self.legend = None

    def draw(self, runs: Sequence[RunCurves]) -> None:
        """Write each run's picture, all on the same axes ranges (those that fit every run)."""
        self.fit_axes(runs)
        self.draw_legend({run.marked_label for run in runs if run.marked_epoch is not None})
        canvas = self.figure.canvas
        canvas.draw()  # everything not animated: frame, grid, ticks, labels, panel titles, legend
        background = canvas.copy_from_bbox(self.figure.bbox)
        for run in runs:
            canvas.restore_region(background)
            self.draw_curves(run)
            width, height = canvas.get_width_height()
            image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
            # a 256-colour palette: a third of the file and of the encoding time, and by eye the same picture
            # (a line plot's 1,600-odd colours are anti-aliasing shades; the largest change is 14 of 255)
            encoded = io.BytesIO()
            image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
                encoded, format="png", compress_level=1)
            # whole or not at all: a kill while a picture is written must not leave an empty curves.png,
            # which neither a rerun nor `report` would draw again
            write_atomically(run.path, encoded.getvalue())

    def fit_axes(self, runs: Sequence[RunCurves]) -> None:
        for panel in self.panels:
            axis, metric = panel["axis"], panel["metric"]
            if panel["fill"] is not None:  # the previous call's last gap: relim would count it
                panel["fill"].remove()
                panel["fill"] = None
            epochs = [row["epoch"] for run in runs for row in run.rows]
            for line, split in ((panel["train"], "train"), (panel["val"], "val")):
                line.set_data(epochs, [row[f"{split}_{metric}"] for run in runs for row in run.rows])
            panel["marker"].set_xdata([epochs[0]] * 2)
            axis.relim()
            axis.autoscale_view()

    def draw_legend(self, marked_labels: set[str]) -> None:
        if self.legend is not None:
            self.legend.remove()
        handles = [Line2D([], [], **TRAIN_STYLE), Line2D([], [], **VAL_STYLE), Patch(color=GAP_COLOR)]
        labels = ["train (eval mode)", "validation", "generalization gap"]
        if marked_labels:
            handles.append(Line2D([], [], **MARKER_STYLE))
            labels.append(marked_labels.pop() if len(marked_labels) == 1 else "marked epoch (see title)")
        self.legend = self.figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.925),
                                         ncol=len(handles), frameon=False, fontsize=9)

    def draw_curves(self, run: RunCurves) -> None:
        epochs = [row["epoch"] for row in run.rows]
        for panel in self.panels:
            axis, metric = panel["axis"], panel["metric"]
            train = [row[f"train_{metric}"] for row in run.rows]
            val = [row[f"val_{metric}"] for row in run.rows]
            panel["train"].set_data(epochs, train)
            panel["val"].set_data(epochs, val)
            if panel["fill"] is not None:
                panel["fill"].remove()
            panel["fill"] = axis.fill_between(epochs, train, val, color=GAP_COLOR, zorder=0, animated=True)
            panel["marker"].set_visible(run.marked_epoch is not None)
            panel["marker"].set_xdata([run.marked_epoch or 1] * 2)
            for artist in (panel["fill"], panel["train"], panel["val"], panel["marker"]):
                axis.draw_artist(artist)
        marked = f"  ·  {run.marked_label}: epoch {run.marked_epoch}" if run.marked_epoch is not None else ""
        self.title.set_text(run.title + marked)
        self.figure.draw_artist(self.title)


_run_curves: RunCurvesFigure | None = None


def draw_run_curves(folders: Sequence[Path]) -> list[Path]:
    """curves.png in each completed run folder among `folders`, from what the folder holds (metrics.csv,
    summary.json): drawn after training, never during it, by the run's writer. Folders given together (a
    batched group) share their axes' ranges. Returns the pictures written."""
    curves = [c for c in (run_curves(load_run(folder), folder / "curves.png") for folder in folders) if c is not None]
    try:
        if curves:
            plot_run_curves(curves)
    except Exception as error:  # a picture that cannot be drawn (a full disk ...) never fails a run
        logging.getLogger("dropcli").warning(f"curves.png not drawn for {len(curves)} run(s): "
                                             f"{type(error).__name__}: {error}")
        return []
    return [c.path for c in curves]


def run_curves(run: LoadedRun, path: Path) -> RunCurves | None:
    """What `run`'s picture shows, to be written to `path`; None unless the run completed."""
    if run.status != "completed":
        return None
    summary = run.summary
    restored = isinstance(summary.get("restored_epoch"), int)
    marked = summary.get("restored_epoch") if restored else summary.get("best_epoch")
    title = str(summary.get("title") or run.path.name)[:200]
    return RunCurves(run.metrics, path, title, marked if isinstance(marked, int) else None,
                     "restored weights" if restored else "lowest val loss")


def plot_run_curves(runs: Sequence[RunCurves]) -> None:
    """Write curves.png for each run; runs given together share their axes' ranges."""
    global _run_curves
    if _run_curves is None:
        _run_curves = RunCurvesFigure()
    _run_curves.draw(runs)

