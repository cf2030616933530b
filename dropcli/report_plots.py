"""The report's figures, across runs: each takes the report's tables (pandas) and returns the path it wrote.
Every figure goes through plotting.write_figure (rendered in memory, then an atomic write)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D

from dropcli.labels import REGULARIZER_NAMES, comparable_settings, setting_label
from dropcli.plotting import TRAIN_STYLE, VAL_STYLE, close, plt, whole_epochs, write_figure
from dropcli.stats import half_width

LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
HATCHES = ["", "//", "..", "xx", "\\\\", "--", "++", "oo"]


def setting_styles(settings: Sequence[str]) -> dict[str, dict]:
    """A colour from viridis (its lightness changes monotonically, so order survives grayscale), plus a
    line style and a marker, for each setting."""
    colormap = plt.get_cmap("viridis")
    count = max(len(settings) - 1, 1)
    return {setting: {"color": colormap(0.9 * i / count), "linestyle": LINESTYLES[i % len(LINESTYLES)],
                      "marker": MARKERS[i % len(MARKERS)]} for i, setting in enumerate(settings)}


CI_WORDS = "mean and 95 % CI of the mean over seeds"


def mean_and_ci_by_epoch(curves, setting: str, column: str):
    """Epochs, the mean over seeds and the half-width of its 95 % t-interval (0 with one seed: no band)."""
    per_epoch = curves[curves["setting"] == setting].groupby("epoch")[column]
    mean, ci = per_epoch.mean(), per_epoch.agg(half_width).fillna(0.0)
    return mean.index.to_numpy(), mean.to_numpy(), ci.to_numpy()


def ci(table, metric: str):
    """Error bars: the 95 % CI half-widths of a summary column (none where a setting has one seed)."""
    return table[f"{metric}_ci95"].fillna(0)


def save(figure, out: Path, stem: str, figure_format: str) -> Path:
    """Write the figure; a PDF also gets a PNG preview beside it (report.md shows the PNG, links the PDF:
    most Markdown viewers cannot show a PDF)."""
    path = out / f"{stem}.{figure_format}"
    try:
        write_figure(figure, path, dpi=130)
        if figure_format == "pdf":
            write_figure(figure, path.with_suffix(".png"), dpi=130)
    finally:
        close(figure)
    return path



def title(figure, text: str) -> None:
    """A figure title wrapped to the figure's width, never clipped."""
    figure.suptitle(textwrap.fill(text, width=max(40, int(figure.get_figwidth() * 11))))


OVERFITTING_PANELS = 16  # small multiples beyond this are too small to read: the best by validation are shown


def shown_settings(summary, limit: int) -> list[str]:
    """All settings, or with more than `limit` the no-regularizer baselines (two at most) and the best by
    validation accuracy up to `limit`, in the summary's order."""
    settings = list(summary["setting"])
    if len(settings) <= limit:
        return settings
    baselines = list(summary.loc[summary["regularizers"] == "none", "setting"])[:2]
    best = [s for s in summary.sort_values("val_acc_mean", ascending=False)["setting"] if s not in baselines]
    chosen = set(baselines + best[:limit - len(baselines)])
    return [s for s in settings if s in chosen]


def plot_overfitting_curves(curves, summary, out: Path, figure_format: str) -> Path:
    """Small multiples, one panel per setting (at most OVERFITTING_PANELS: the best by validation and the
    baseline): train vs val loss, mean line and 95 % CI band over seeds."""
    settings = shown_settings(summary, OVERFITTING_PANELS)
    hidden = len(summary) - len(settings)
    columns = min(4, len(settings))
    rows = -(-len(settings) // columns)
    lengths = {setting: curves.loc[curves["setting"] == setting, "epoch"].max() for setting in settings}
    # the highest loss each panel shows: one shared y axis unless some panel's is 10x another's (a run that blew
    # up would flatten every healthy panel into a line at zero)
    highs = [curves.loc[curves["setting"] == setting, ["train_loss", "val_loss"]].max().max() for setting in settings]
    finite = [high for high in highs if pd.notna(high) and high < float("inf")]
    shared = not finite or max(finite) <= 10 * max(min(finite), 1e-12)
    # runs of different lengths each get their own x axis: a 5-epoch run is not squashed beside a 60-epoch one
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns + 0.6, 2.8 * rows + 0.8),
                                sharex=len(set(lengths.values())) == 1, sharey=shared, squeeze=False,
                                constrained_layout=True)
    for axis, setting in zip(axes.flat, settings):
        for column, style, label in (("train_loss", TRAIN_STYLE, "train"), ("val_loss", VAL_STYLE, "validation")):
            epochs, mean, half = mean_and_ci_by_epoch(curves, setting, column)
            axis.plot(epochs, mean, label=label, **style)
            axis.fill_between(epochs, mean - half, mean + half, color=style["color"], alpha=0.2, linewidth=0)
        axis.set_title(setting, fontsize=9)
        axis.grid(alpha=0.3)
        whole_epochs(axis)
    for axis in axes.flat[len(settings):]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("epoch")
    for axis in axes[:, 0] if shared else axes.flat[:len(settings)]:
        axis.set_ylabel("cross-entropy loss" + ("" if shared else " (own scale)"))
    axes.flat[0].legend(fontsize=8)
    title(figure, f"Overfitting curves: train vs validation loss ({CI_WORDS})" + (
        f"; {len(settings)} of {len(summary)} settings: the best by validation accuracy and the baseline"
        if hidden else ""))
    return save(figure, out, "overfitting_curves", figure_format)


GAP_CURVES_NAMED = 8  # more lines than this and a legend cannot be read: the rest are drawn in grey
GAP_CURVES_BANDS = 4  # more CI bands than this merge into one coloured block


def plot_gap_curves(curves, summary, out: Path, figure_format: str) -> Path:
    """One line per setting. With many settings, the best GAP_CURVES_NAMED - 1 by validation accuracy and the
    no-regularizer baselines are named and coloured; the others are thin grey lines without a legend entry."""
    settings = list(summary["setting"])
    named = shown_settings(summary, GAP_CURVES_NAMED)
    bands = len(named) <= GAP_CURVES_BANDS
    figure, axis = plt.subplots(figsize=(8, 4.8), constrained_layout=True)
    styles = setting_styles(named)
    for setting in settings:
        epochs, mean, half = mean_and_ci_by_epoch(curves, setting, "gap_loss")
        if setting not in styles:
            axis.plot(epochs, mean, color="0.75", linewidth=0.8, zorder=1)
            continue
        axis.plot(epochs, mean, label=setting, linewidth=1.6, markevery=max(len(epochs) // 8, 1), markersize=4,
                  zorder=2, **styles[setting])
        if bands:
            axis.fill_between(epochs, mean - half, mean + half, color=styles[setting]["color"], alpha=0.15,
                              linewidth=0)
    axis.axhline(0, color="0.5", linewidth=0.8)
    axis.set_xlabel("epoch")
    whole_epochs(axis)
    axis.set_ylabel("generalization gap: val loss − train loss")
    hidden = len(settings) - len(named)
    what = CI_WORDS if bands else "mean over seeds; with this many lines the CI bands are left out"
    axis.set_title(textwrap.fill(f"Generalization gap per epoch ({what})" + (
        f"; {len(named)} settings named (the best by validation accuracy and the baseline), {hidden} more in grey"
        if hidden else ""), width=90), fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, ncol=2 if len(named) > 6 else 1)
    return save(figure, out, "gap_curves", figure_format)


def has_a_rate_curve(summary, keys: Sequence[str]) -> bool:
    """True when some group of otherwise equal settings was run at two or more dropout rates."""
    others = [k for k in keys if k != "regularizer.dropout"]
    groups = [g for _, g in summary.groupby(others, sort=False)] if others else [summary]
    return any(g["regularizer.dropout"].nunique() > 1 for g in groups)


def plot_dropout_rate(summary, keys: Sequence[str], out: Path, figure_format: str) -> Path:
    """The "best p" curve: final gap and accuracy against dropout rate, one line per other setting that was
    run at two or more rates (lone runs at one rate are in the other figures)."""

    others = [k for k in keys if k != "regularizer.dropout"]
    groups = [group for _, group in summary.groupby(others, sort=False)] if others else [summary]
    curves = [g.sort_values("regularizer.dropout") for g in groups if g["regularizer.dropout"].nunique() > 1]
    # several curves are told apart by their other settings; "no regularizer" there means "dropout only"
    labels = [setting_label(g.iloc[0], others).replace("no regularizer", "dropout only") if len(curves) > 1 else ""
              for g in curves]
    styles = setting_styles(labels)
    many = len(curves) > 3  # the legends would cover the data: one legend below both panels instead
    figure, (gap_axis, acc_axis) = plt.subplots(1, 2, figsize=(11, 4.6 + (0.22 * (len(curves) + 2) if many else 0)),
                                                constrained_layout=True)
    rates = sorted(pd.concat(curves)["regularizer.dropout"].astype(float).unique())
    spacing = min((b - a for a, b in zip(rates, rates[1:])), default=0.1)
    for index, (group, label) in enumerate(zip(curves, labels)):
        # curves side by side around each rate, so that their error bars do not hide one another
        shift = (index - (len(curves) - 1) / 2) * 0.5 * spacing / max(len(curves), 1)
        p, style = group["regularizer.dropout"].astype(float) + shift, styles[label]
        suffix = "" if many or not label else f" ({label})"
        gap_axis.errorbar(p, group["gap_loss_mean"], yerr=ci(group, "gap_loss"), capsize=3,
                          label=label or "final gap", **style)
        acc_axis.errorbar(p, group["val_acc_mean"], yerr=ci(group, "val_acc"), capsize=3,
                          label=None if many else f"validation{suffix}", **style)
        acc_axis.errorbar(p, group["test_acc_mean"], yerr=ci(group, "test_acc"), capsize=3, alpha=0.7,
                          label=None if many else f"test{suffix}", **{**style, "linestyle": ":", "marker": "x"})
    plotted = pd.concat(curves)
    best = plotted.loc[plotted["val_acc_mean"].idxmax()]
    acc_axis.axvline(float(best["regularizer.dropout"]), color="0.4", linestyle=":", linewidth=1,
                     label=f"best p by validation ({float(best['regularizer.dropout']):g})")
    gap_axis.set_ylabel("final gap: val loss − train loss")
    acc_axis.set_ylabel("accuracy")
    gap_axis.set_title("Gap against dropout rate")
    acc_axis.set_title("Accuracy against dropout rate")
    low, high = acc_axis.get_ylim()
    acc_axis.set_ylim(max(low, 0.0), min(high, 1.0))  # an accuracy interval past 0 or 1 says nothing more
    for axis in (gap_axis, acc_axis):
        axis.set_xlabel("dropout rate p" + (" (curves side by side around each rate)" if len(curves) > 1 else ""))
        axis.grid(alpha=0.3)
    if many:  # the series once, below the panels; the accuracy panel's line styles in its own small legend
        figure.legend(*gap_axis.get_legend_handles_labels(), loc="outside lower center", fontsize=8,
                      ncol=min(3, len(curves)), frameon=False)
        kinds = [Line2D([], [], color="0.3", linestyle="-", marker="o"),
                 Line2D([], [], color="0.3", linestyle=":", marker="x")]
        handles, names = acc_axis.get_legend_handles_labels()  # the best-p line
        acc_axis.legend([*kinds, *handles], ["validation (each series' colour)", "test", *names], fontsize=8)
    else:
        for axis in (gap_axis, acc_axis):
            axis.legend(fontsize=8)
    title(figure, f"Which p? {CI_WORDS}")
    return save(figure, out, "dropout_rate", figure_format)


def comparable_with_best(summary, keys: Sequence[str]):
    """The settings that share the best one's epochs, data, model ... (every compared key that is not a
    regularizer), and words for what they share ("" when nothing but regularizers varies): runs of other
    lengths or data are never drawn side by side with them."""
    others = [k for k in keys if k not in REGULARIZER_NAMES]
    best = summary[summary["best"]].iloc[0]
    return comparable_settings(summary, best, list(keys)), setting_label(best, others) if others else ""


def plot_regularizer_comparison(summary, keys: Sequence[str], out: Path, figure_format: str) -> Path:
    """One bar per kind of regularizer (its best setting by validation accuracy), with error bars; only the
    settings comparable with the best one."""
    summary, shared = comparable_with_best(summary, keys)
    where = f", runs with {shared}" if shared else ""
    best_of_kind = summary.loc[summary.groupby("regularizers", sort=False)["val_acc_mean"].idxmax()]
    order = sorted(best_of_kind["regularizers"], key=lambda kind: (kind != "none", kind.count("+"), kind))
    best_of_kind = best_of_kind.set_index("regularizers").loc[order]
    labels = [bar_label(kind, row["setting"]) for kind, row in best_of_kind.iterrows()]
    positions = range(len(labels))
    figure, (acc_axis, gap_axis) = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(labels) + 2), 4.6),
                                                constrained_layout=True)
    for axis, metric, heading in ((acc_axis, "test_acc", "test accuracy"),
                                  (gap_axis, "gap_loss", "final gap: val − train loss")):
        bars = axis.bar(positions, best_of_kind[f"{metric}_mean"], yerr=ci(best_of_kind, metric),
                        capsize=4, color="0.75", edgecolor="black")
        for bar, hatch in zip(bars, HATCHES):
            bar.set_hatch(hatch)
        axis.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
        axis.set_xticks(list(positions), labels, fontsize=8)
        axis.set_title(heading)
        axis.grid(axis="y", alpha=0.3)
    low = (best_of_kind["test_acc_mean"] - ci(best_of_kind, "test_acc")).min()
    acc_axis.set_ylim(max(0.0, low - 0.1), None)
    acc_axis.set_ylabel("accuracy (axis does not start at 0)" if low > 0.1 else "accuracy")
    title(figure, f"Regularizers compared{where} (each at its best setting by validation accuracy; {CI_WORDS})")
    return save(figure, out, "regularizer_comparison", figure_format)


def plot_mc_dropout(mc_table, out: Path, figure_format: str) -> Path:
    """Accuracy, NLL and ECE of the MC average against the number of passes K, one line per setting, with
    weight scaling (the deterministic pass) as a dashed level of the same colour."""
    settings = list(dict.fromkeys(mc_table["setting"]))
    styles = setting_styles(settings)
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    for axis, metric, label in zip(axes, ("acc", "nll", "ece"), ("test accuracy", "test NLL", "test ECE (15 bins)")):
        for setting in settings:
            rows = mc_table[mc_table["setting"] == setting]
            mc = rows[rows["K"] > 0].groupby("K")[metric].agg(["mean", half_width])
            scaling = rows[rows["K"] == 0][metric].mean()
            style = styles[setting]
            axis.errorbar(mc.index, mc["mean"], yerr=mc["half_width"].fillna(0), capsize=3, label=f"MC, {setting}",
                          **style)
            axis.axhline(scaling, color=style["color"], linestyle="--", linewidth=1, label=f"weight scaling, {setting}")
        axis.set_xscale("log")
        # the K measured, as plain numbers (report figures draw with mathtext off, which breaks "10^1" labels)
        passes = sorted(int(k) for k in mc_table.loc[mc_table["K"] > 0, "K"].unique())
        axis.set_xticks(passes, [str(k) for k in passes])
        axis.minorticks_off()
        axis.set_xlabel("Monte-Carlo passes K")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    title(figure, f"MC dropout vs weight scaling as K grows ({CI_WORDS})")
    return save(figure, out, "mc_dropout", figure_format)


def plot_learned_rates(curves, out: Path, figure_format: str) -> Path:
    """Concrete dropout's learned rate of each layer per epoch, per setting that learned them (mean, 95 % CI)."""
    layers = sorted((c for c in curves.columns if re.fullmatch(r"learned_p\d+", str(c))), key=lambda c: int(c[9:]))
    learned = curves.dropna(subset=layers[:1])
    settings = list(dict.fromkeys(learned["setting"]))
    figure, axis = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    colormap = plt.get_cmap("viridis")
    for i, layer in enumerate(layers):
        for j, setting in enumerate(settings):
            epochs, mean, half = mean_and_ci_by_epoch(learned, setting, layer)
            label = f"layer {layer[9:]}" + (f", {setting}" if len(settings) > 1 else "")
            color = colormap(0.85 * i / max(len(layers) - 1, 1))
            axis.plot(epochs, mean, label=label, color=color, linestyle=LINESTYLES[j % len(LINESTYLES)])
            axis.fill_between(epochs, mean - half, mean + half, color=color, alpha=0.2, linewidth=0)
    axis.set_xlabel("epoch")
    axis.set_ylabel("learned dropout rate p")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    whole_epochs(axis)
    axis.legend(fontsize=8)
    title(figure, f"Dropout rates learned by Concrete dropout, per hidden layer ({CI_WORDS})")
    return save(figure, out, "learned_rates", figure_format)


def bar_label(kind: str, setting: str) -> str:
    text = setting if kind == "none" or setting.startswith(kind) else f"{kind}: {setting}"
    return textwrap.fill(text, width=18)


def report_figures(curves, summary, keys: Sequence[str], out: Path, figure_format: str = "png",
                   mc_table=None) -> list[Path]:
    # labels come from run folders that anyone may have written: "$...$" is text here, never mathtext
    with plt.rc_context({"text.parse_math": False}):
        return draw_report_figures(curves, summary, keys, out, figure_format, mc_table)


def draw_report_figures(curves, summary, keys: Sequence[str], out: Path, figure_format: str, mc_table) -> list[Path]:
    figures = [plot_overfitting_curves(curves, summary, out, figure_format),
               plot_gap_curves(curves, summary, out, figure_format)]
    if "regularizer.dropout" in keys and has_a_rate_curve(summary, keys):
        figures.append(plot_dropout_rate(summary, keys, out, figure_format))
    if comparable_with_best(summary, keys)[0]["regularizers"].nunique() > 1:
        figures.append(plot_regularizer_comparison(summary, keys, out, figure_format))
    if mc_table is not None and not mc_table.empty:
        figures.append(plot_mc_dropout(mc_table, out, figure_format))
    if "learned_p1" in curves and curves["learned_p1"].notna().any():
        figures.append(plot_learned_rates(curves, out, figure_format))
    return figures
