"""What the terminal shows: rich progress bars for epochs and sweeps, and the sweep's results table."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dropcli.sweep import SweepObserver, Trial


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """Text from a file someone else may have written, safe on a terminal: no rich markup, and no control
    characters (escape sequences could retitle, clear or rewrite the terminal)."""
    return escape(CONTROL_CHARACTERS.sub("?", str(text)))


def format_epoch(row: dict[str, float]) -> str:
    return (f"train loss {row['train_loss']:.3f}  val loss {row['val_loss']:.3f}  "
            f"val acc {row['val_acc']:.3f}  [bold]gap {row['gap_loss']:+.3f}[/bold]")


def progress_columns() -> tuple:
    return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))


@contextmanager
def epoch_progress(console: Console, description: str, epochs: int,
                   enabled: bool = True) -> Iterator[Callable[[dict[str, float]], None]]:
    """Yield a callback to call with each epoch's metrics row; it advances the bar and shows the gap."""
    if not enabled:
        yield lambda row: None
        return
    with Progress(*progress_columns(), console=console) as progress:
        task = progress.add_task(description, total=epochs, unit="epochs", stats="")
        yield lambda row: progress.update(task, advance=1, stats=format_epoch(row))


class SweepProgress(SweepObserver):
    """Two bars: trials done of the total (with the sweep's ETA) and the current trial's epochs."""

    def __init__(self, console: Console, enabled: bool = True):
        self.console, self.enabled = console, enabled
        self.progress = Progress(*progress_columns(), console=console, disable=not enabled)
        self.trials_task = self.epochs_task = None

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start(self, total: int, already_done: int) -> None:
        self.trials_task = self.progress.add_task("sweep", total=total, completed=already_done, unit="trials",
                                                  stats=f"{already_done} already completed" if already_done else "")

    def trial_started(self, trial: Trial) -> None:
        if self.epochs_task is not None:
            self.progress.remove_task(self.epochs_task)
        self.epochs_task = self.progress.add_task(trial.name, total=trial.config.epochs, unit="epochs", stats="")

    def group_started(self, trials: list[Trial]) -> None:
        if self.epochs_task is not None:
            self.progress.remove_task(self.epochs_task)
        self.epochs_task = self.progress.add_task(f"{len(trials)} trials batched", total=trials[0].config.epochs,
                                                  unit="epochs", stats="")

    def epoch(self, row: dict[str, float]) -> None:
        self.progress.update(self.epochs_task, advance=1, stats=format_epoch(row))

    def trial_ended(self, trial: Trial, status: str, error: str | None = None) -> None:
        self.progress.update(self.trials_task, advance=1, stats=f"last: {trial.name} {status}")
        if error:
            label = "held" if status == "held" else "failed"
            self.progress.console.print(f"[red]trial {plain(trial.name)} {label}[/red]: {plain(error)}",
                                        highlight=False, soft_wrap=True)


def summary_table(summary, title: str) -> Table:
    """One row per setting: mean ± std over seeds; the best setting (by validation accuracy) in bold green."""
    from dropcli.report import mean_std, runs_and_seeds

    table = Table(title=escape(title), title_justify="left")
    for header in ("setting", "runs", "val acc", "test acc", "final gap (loss)", "final gap (acc)"):
        table.add_column(header, justify="left" if header == "setting" else "right")
    for _, row in summary.iterrows():
        cells = [plain(row["setting"]), runs_and_seeds(row)]  # settings come from run folders: no markup
        cells += [mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in ("val_acc", "test_acc", "gap_loss", "gap_acc")]
        table.add_row(*cells, style="bold green" if row["best"] else None)
    table.caption = "best (bold green): highest mean validation accuracy; test accuracy is shown, never used to choose"
    return table
