"""report.html: the report as one interactive page, beside report.md and with the same numbers.

Drawn with plotly because its pages are self-contained: plotly.js is embedded once in the page and nothing
is fetched when it is opened, so it works offline, from a cluster's login node, or mailed as one file.
The page holds:

- the findings (the same sentences as report.md), the summary table and the head-to-head verdicts;
- grouped curves per setting: train / validation loss, validation accuracy and the loss gap per epoch, the
  mean over seeds with its 95 % CI band (only where at least two seeds still train; a loss or an accuracy
  band is clipped to the values it can take), each seed's own curve on demand (the "seeds" buttons);
- each regularizer's strength (p, l2, patience ...) against test and validation accuracy, with intervals;
- the head-to-head differences as a forest plot; parallel coordinates over the swept keys; every run's test
  accuracy as a point whose hover names its run folder.
A click on a legend entry hides or shows that setting in every panel.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy.stats import t as student_t

from dropcli import stats
from dropcli.config import short_name
from dropcli.files import write_atomically
from dropcli.labels import REGULARIZER_NAMES

Report = Any  # dropcli.report.Report (which imports this module when it writes a report)

PANELS = {"train_loss": ("train loss", (0.0, math.inf)), "val_loss": ("validation loss", (0.0, math.inf)),
          "val_acc": ("validation accuracy", (0.0, 1.0)), "gap_loss": ("gap: val − train loss", (-math.inf, math.inf))}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f"]
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 1rem 1.5rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 0.25rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { font-weight: 600; } p.caption { color: #555; font-size: 0.85rem; }
li.decided { font-weight: 600; }
"""


def write_html(report: Report, root: Path, reload_every: int | None = None) -> Path:
    path = report.out / "report.html"
    write_atomically(path, page(report, root, reload_every))
    return path


def page(report: Report, root: Path, reload_every: int | None = None) -> str:
    figures = Figures()
    body = [f"<h1>dropcli report: {esc(root)}</h1>",
            f"<p>{len(report.table)} run folders, {int((report.table['status'] == 'completed').sum())} completed. "
            f"Compared settings: {esc(', '.join(short_name(k) for k in report.keys) or 'none')}.</p>"]
    if not report.summary.empty:
        body += findings_html(report)
        body += summary_html(report.summary)
        body += verdicts_html(report, figures)
        body += ["<h2>Curves per setting</h2>", figures.add(curves_figure(report.curves, report.summary), "curves"),
                 "<p class='caption'>Mean over seeds; bands: the 95 % confidence interval of the mean (t-interval over "
                 "seeds), drawn only at epochs where at least two seeds still train, and clipped to the values a "
                 "loss or an accuracy can take. Click a legend entry to hide or show a setting; the buttons show "
                 "each seed's own curve (hover names its run folder).</p>"]
        strength = strength_figure(report.summary, report.keys)
        if strength is not None:
            body += ["<h2>Accuracy against each regularizer's strength</h2>", figures.add(strength, "strength"),
                     "<p class='caption'>Mean and 95 % CI over seeds of the settings where only that regularizer "
                     "is on; the dashed line and band: the baseline (no regularizer).</p>"]
        body += ["<h2>Every run</h2>", figures.add(runs_figure(report.completed, report.summary), "runs"),
                 "<p class='caption'>Test accuracy of each completed run; hover names its run folder.</p>"]
        parallel = parallel_figure(report.completed, report.keys)
        if parallel is not None:
            body += ["<h2>Parallel coordinates over the swept keys</h2>", figures.add(parallel, "parallel"),
                     "<p class='caption'>One line per run; drag along an axis to select a range.</p>"]
    if not report.problems.empty:
        body += ["<h2>Runs left out</h2>", table_html(["run", "status", "reason"],
                                                      [[esc(r.run), esc(r.status), esc(r.reason)]
                                                       for r in report.problems.itertuples()])]
    # `report --watch` rewrites the page as trials finish: it reloads itself to show them
    reload = f"<meta http-equiv='refresh' content='{int(reload_every)}'>" if reload_every else ""
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>" + reload +
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>dropcli report: {esc(root)}"
            f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


class Figures:
    """Each figure as a <div>; plotly.js goes into the first one only (the page embeds it once)."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, figure: go.Figure, div_id: str) -> str:
        self.count += 1
        return figure.to_html(full_html=False, include_plotlyjs=self.count == 1, div_id=div_id, config=PLOT_CONFIG)


def mean_std(mean: float, std: float, digits: int = 3) -> str:
    """"0.512 ± 0.013": "±" is the standard deviation, as everywhere in report.md."""
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def ci(mean: float, half: float, digits: int = 3) -> str:
    """"0.512 [0.499, 0.525]": the mean and its 95 % confidence interval."""
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" if pd.isna(half) else \
        f"{mean:.{digits}f} [{mean - half:.{digits}f}, {mean + half:.{digits}f}]"


def esc(value: Any) -> str:
    return html.escape(str(value))


def table_html(headers: list[str], rows: list[list[str]], classes: list[str] | None = None,
               numeric_from: int = 99) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f"<td class='num'>{c}</td>" if j >= numeric_from else f"<td>{c}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr class='{classes[i] if classes else ''}'>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def findings_html(report: Report) -> list[str]:
    best = report.summary[report.summary["best"]].iloc[0]
    lines = ["<h2>Findings</h2>",
             f"<p><b>Best setting by validation accuracy: {esc(best['setting'])}</b> ({esc(best['regularizers'])}): "
             f"val acc {mean_std(best['val_acc_mean'], best['val_acc_std'])}, test acc "
             f"{mean_std(best['test_acc_mean'], best['test_acc_std'])} (mean ± standard deviation over "
             f"{best['runs']} runs).</p>"]
    if not report.comparisons.empty:
        lines += ["<p>Each regularized setting against its baseline (no regularizer, everything else equal), on test "
                  "accuracy; p-values Holm-adjusted within each regularizer family:</p><ul>"]
        lines += [f"<li class='{'decided' if row['difference'].decided else ''}'>"
                  f"{esc(stats.sentence(row['setting'], row['baseline'], row['difference']))}</li>"
                  for row in report.comparisons.to_dict("records")]
        lines.append("</ul>")
    return lines


SUMMARY_COLUMNS = {"val_acc": "val acc", "test_acc": "test acc", "gap_loss": "final gap (loss)",
                   "max_gap_loss": "max gap (loss)"}


def summary_html(summary: pd.DataFrame) -> list[str]:
    rows = [[esc(r["setting"]), esc(r["regularizers"]), str(r["runs"]),
             *(mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in SUMMARY_COLUMNS)] for _, r in summary.iterrows()]
    return ["<h2>Settings</h2>",
            table_html(["setting", "regularizers", "runs", *SUMMARY_COLUMNS.values()], rows,
                       ["best" if b else "" for b in summary["best"]], numeric_from=2),
            "<p class='caption'>Mean ± standard deviation over seeds (as in report.md's table). Bold: the best by "
            "mean validation accuracy; test accuracy is never used to choose.</p>"]


def verdicts_html(report: Report, figures: Figures) -> list[str]:
    verdicts = report.verdicts
    if verdicts.empty:
        return []
    lines = ["<h2>Head to head: each regularizer at its best setting</h2>",
             "<p>Each family's best setting by mean validation accuracy, then every pair of those bests compared "
             "seed by seed; p-values Holm-adjusted across the pairs of bests (per metric): the family of "
             "comparisons this question makes, whatever else the folder holds.</p>"]
    for context, best in verdicts.bests.groupby("context", sort=False):
        if context:
            lines.append(f"<h3>{esc(context)}</h3>")
        rows = [[esc(r["regularizers"]), esc(r["setting"]), str(r["seeds"]), ci(r["val_acc_mean"], r["val_acc_ci95"]),
                 ci(r["test_acc_mean"], r["test_acc_ci95"]), ci(r["gap_loss_mean"], r["gap_loss_ci95"])]
                for r in best.to_dict("records")]
        lines += [table_html(["regularizer", "best setting", "seeds", "val acc", "test acc", "final gap (loss)"],
                             rows, numeric_from=2),
                  "<p class='caption'>Mean and, in brackets, its 95 % confidence interval over seeds.</p><ul>"]
        lines += [f"<li class='{'decided' if c.difference.decided else ''}'>{esc(c.sentence())}</li>"
                  for metric in metrics(report) for c in verdicts.contests
                  if c.context == context and c.metric == metric]
        lines.append("</ul>")
    lines += [figures.add(forest_figure(report), "verdicts"),
              "<p class='caption'>Each pair's difference (first − second) with its 95 % CI, paired by seed; "
              "an interval that excludes zero is drawn solid.</p>"]
    return lines


def metrics(report: Report) -> list[str]:
    """The metrics the verdicts compare on (test accuracy, the loss gap), in their order."""
    return list(dict.fromkeys(c.metric for c in report.verdicts.contests))


def forest_figure(report: Report) -> go.Figure:
    compared = metrics(report)
    words = {c.metric: c.words for c in report.verdicts.contests}
    figure = make_subplots(rows=1, cols=max(1, len(compared)), shared_yaxes=True, horizontal_spacing=0.05,
                           subplot_titles=[f"{words[metric]} (first − second)" for metric in compared])
    for column, metric in enumerate(compared, start=1):
        contests = [c for c in report.verdicts.contests if c.metric == metric]
        scale, unit = contests[0].scale_and_unit
        labels = [f"{c.first_family} − {c.second_family}" + (f" [{c.context}]" if c.context else "") for c in contests]
        means = [scale * c.difference.mean for c in contests]
        lows = [scale * (c.difference.mean - c.difference.low) if not math.isnan(c.difference.low) else 0
                for c in contests]
        highs = [scale * (c.difference.high - c.difference.mean) if not math.isnan(c.difference.high) else 0
                 for c in contests]
        hover = [esc(c.sentence()) for c in contests]
        figure.add_trace(go.Scatter(
            x=means, y=labels, mode="markers", name=metric, showlegend=False, hovertext=hover, hoverinfo="text",
            marker={"size": 10, "color": ["#222" if c.difference.decided else "#999" for c in contests]},
            error_x={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows}), row=1, col=column)
        figure.add_vline(x=0, line_dash="dot", line_color="#888", row=1, col=column)
        figure.update_xaxes(title_text=unit.strip() or "difference", row=1, col=column)
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(height=120 + 40 * max(1, len(report.verdicts.contests) // max(1, len(compared))),
                         margin={"t": 40, "b": 40}, template="plotly_white")
    return figure


def colours(settings: list[str]) -> dict[str, str]:
    return {setting: PALETTE[i % len(PALETTE)] for i, setting in enumerate(settings)}


def band(curves: pd.DataFrame, setting: str, column: str, limits: tuple[float, float]) -> pd.DataFrame:
    """Per epoch: mean, the number of seeds, and the 95 % CI (where at least two seeds train), clipped."""
    per_epoch = curves[curves["setting"] == setting].groupby("epoch")[column]
    frame = pd.DataFrame({"mean": per_epoch.mean(), "n": per_epoch.count(), "sd": per_epoch.std()})
    # stats.half_width for every epoch at once (the t-interval of the mean; none below two seeds)
    many = frame["n"] >= 2
    frame["half"] = np.nan
    frame.loc[many, "half"] = (student_t.ppf(1 - stats.ALPHA / 2, frame.loc[many, "n"] - 1)
                               * frame.loc[many, "sd"] / np.sqrt(frame.loc[many, "n"]))
    frame["low"] = (frame["mean"] - frame["half"]).clip(lower=limits[0], upper=limits[1])
    frame["high"] = (frame["mean"] + frame["half"]).clip(lower=limits[0], upper=limits[1])
    return frame.reset_index()


def curves_figure(curves: pd.DataFrame, summary: pd.DataFrame) -> go.Figure:
    settings = list(summary["setting"])
    palette = colours(settings)
    figure = make_subplots(rows=2, cols=2, subplot_titles=[words for words, _ in PANELS.values()],
                           horizontal_spacing=0.08, vertical_spacing=0.12)
    traces: list[dict[str, Any]] = []  # added at once: plotly's add_trace per trace is slow on subplots
    places: list[tuple[int, int]] = []
    seeds: list[bool] = []
    by_setting = {setting: curves[curves["setting"] == setting] for setting in settings}
    for index, (column, (words, limits)) in enumerate(PANELS.items()):
        place = (index // 2 + 1, index % 2 + 1)
        if column not in curves:
            continue
        for setting in settings:
            colour, first = palette[setting], index == 0
            frame = band(by_setting[setting], setting, column, limits)
            banded = frame.dropna(subset=["half"])
            if len(banded):  # a closed polygon: the upper edge forward, the lower edge back
                traces.append({"type": "scatter", "x": [*banded["epoch"], *banded["epoch"][::-1]],
                               "y": [*banded["high"], *banded["low"][::-1]], "fill": "toself", "fillcolor": colour,
                               "opacity": 0.18, "line": {"width": 0}, "hoverinfo": "skip", "legendgroup": setting,
                               "showlegend": False, "name": setting})
                places.append(place)
                seeds.append(False)
            traces.append({"type": "scatter", "x": list(frame["epoch"]), "y": list(frame["mean"]), "mode": "lines",
                           "line": {"color": colour, "width": 2}, "name": setting, "legendgroup": setting,
                           "showlegend": first, "customdata": frame[["n"]].to_numpy().tolist(),
                           "hovertemplate": f"{esc(setting)}<br>epoch %{{x}}<br>{words} %{{y:.4f}}<br>"
                                            "%{customdata[0]} seeds<extra></extra>"})
            places.append(place)
            seeds.append(False)
            for run, seed_curve in by_setting[setting].groupby("run", sort=False):
                traces.append({"type": "scatter", "x": list(seed_curve["epoch"]), "y": list(seed_curve[column]),
                               "mode": "lines", "visible": False, "line": {"color": colour, "width": 0.8,
                                                                           "dash": "dot"},
                               "legendgroup": setting, "showlegend": False, "name": str(run),
                               "hovertemplate": f"{esc(run)}<br>epoch %{{x}}<br>{words} %{{y:.4f}}<extra></extra>"})
                places.append(place)
                seeds.append(True)
        figure.update_xaxes(title_text="epoch", row=place[0], col=place[1])
    if traces:
        figure.add_traces(traces, rows=[r for r, _ in places], cols=[c for _, c in places])
    figure.update_layout(
        height=760, template="plotly_white", legend={"title": {"text": "setting (click to hide)"}},
        margin={"t": 70}, hovermode="closest",
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.12,
                      "yanchor": "bottom", "showactive": True, "buttons": [
                          {"label": "means and bands", "method": "restyle",
                           "args": [{"visible": [not seed for seed in seeds]}]},
                          {"label": "show seeds", "method": "restyle", "args": [{"visible": True}]}]}])
    return figure


def strength(key: str, value: Any) -> float | None:
    """A regularizer setting as one number on its axis: p, l2 ... or early stopping's patience."""
    if key == "regularizer.early_stopping":
        try:
            return float(json.loads(value)["patience"]) if isinstance(value, str) and value != "off" else None
        except (ValueError, KeyError, TypeError):
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def strength_figure(summary: pd.DataFrame, keys: list[str]) -> go.Figure | None:
    """One panel per regularizer key that was swept: accuracy against its value, where only it is on."""
    swept = [k for k in keys if k in REGULARIZER_NAMES]
    panels = []
    for key in swept:
        alone = summary[summary["regularizers"] == REGULARIZER_NAMES[key]]
        found = [(strength(key, row[key]), row) for row in alone.to_dict("records")]
        points = sorted([(x, row) for x, row in found if x is not None], key=lambda point: point[0])
        if points:
            panels.append((key, points))
    if not panels:
        return None
    baseline = summary[summary["regularizers"] == "none"]
    figure = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=[REGULARIZER_NAMES[key] for key, _ in panels])
    for column, (key, points) in enumerate(panels, start=1):
        xs = [x for x, _ in points]
        for metric, colour, dash in (("test_acc", "#1f77b4", "solid"), ("val_acc", "#ff7f0e", "dot")):
            figure.add_trace(go.Scatter(
                x=xs, y=[row[f"{metric}_mean"] for _, row in points], mode="lines+markers",
                line={"color": colour, "dash": dash}, name=metric.replace("_acc", " accuracy"), legendgroup=metric,
                showlegend=column == 1, error_y={"type": "data", "array": [zero(row[f"{metric}_ci95"])
                                                                           for _, row in points]},
                hovertext=[esc(f"{row['setting']}: {metric} {ci(row[f'{metric}_mean'], row[f'{metric}_ci95'])}")
                           for _, row in points], hoverinfo="text"), row=1, col=column)
        if not baseline.empty:
            mean, half = baseline["test_acc_mean"].iloc[0], zero(baseline["test_acc_ci95"].iloc[0])
            figure.add_hrect(y0=mean - half, y1=mean + half, fillcolor="#1f77b4", opacity=0.08, line_width=0,
                             row=1, col=column)
            figure.add_hline(y=mean, line_dash="dash", line_color="#1f77b4", row=1, col=column)
        logarithmic = key in ("regularizer.l2", "regularizer.l1") and min(xs) > 0 and max(xs) / min(xs) >= 10
        figure.update_xaxes(title_text="patience (epochs)" if key == "regularizer.early_stopping" else short_name(key),
                            row=1, col=column, **({"type": "log", "dtick": 1, "exponentformat": "e"}
                                                  if logarithmic else {}))
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_layout(height=420, template="plotly_white", margin={"t": 50})
    return figure


def zero(value: Any) -> float:
    return 0.0 if pd.isna(value) else float(value)


def runs_figure(completed: pd.DataFrame, summary: pd.DataFrame) -> go.Figure:
    settings = list(summary["setting"])  # the order and colours of the curves
    palette = colours(settings)
    figure = go.Figure()
    for setting in settings:
        runs = completed[completed["setting"] == setting]
        figure.add_trace(go.Scatter(
            x=[setting] * len(runs), y=runs["test_acc"], mode="markers", name=setting, showlegend=False,
            marker={"color": palette[setting], "size": 9, "opacity": 0.8},
            hovertext=[esc(f"{run} (seed {seed}): test acc {acc:.4f}")
                       for run, seed, acc in zip(runs["run"], runs["seed"], runs["test_acc"])], hoverinfo="text"))
    figure.update_layout(height=380, template="plotly_white", yaxis_title="test accuracy", margin={"t": 20})
    return figure


def parallel_figure(completed: pd.DataFrame, keys: list[str]) -> go.Figure | None:
    if not keys or completed.empty:
        return None
    dimensions = []
    for key in keys:
        values = [strength(key, v) if key in REGULARIZER_NAMES else v for v in completed[key]]
        if key in REGULARIZER_NAMES:
            values = [0.0 if v is None else v for v in values]  # off
        numeric = pd.to_numeric(pd.Series(values), errors="coerce")
        label = "patience" if key == "regularizer.early_stopping" else short_name(key)
        if numeric.notna().all():
            dimensions.append({"label": label, "values": list(numeric)})
        else:  # text values: one tick per value
            names = sorted({str(v) for v in values})
            dimensions.append({"label": label, "values": [names.index(str(v)) for v in values],
                               "tickvals": list(range(len(names))), "ticktext": names})
    for metric in ("val_acc", "test_acc", "gap_loss"):
        dimensions.append({"label": metric, "values": list(completed[metric].astype(float))})
    figure = go.Figure(go.Parcoords(line={"color": list(completed["test_acc"].astype(float)),
                                          "colorscale": "Viridis", "showscale": True,
                                          "colorbar": {"title": {"text": "test acc"}}},
                                    dimensions=dimensions))
    figure.update_layout(height=420, margin={"l": 60, "r": 140, "t": 40})
    return figure
