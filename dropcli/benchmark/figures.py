"""The benchmark's figures: the aggregate scores with their intervals, the probability-of-improvement
matrix, the performance profiles with bands, and a forest plot of every workload's paired differences.
Markers differ by shape as well as colour, so they read in grayscale."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: no display is needed, none is assumed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dropcli.benchmark.aggregate import Statistics  # noqa: E402
from dropcli.plotting import write_figure  # noqa: E402

COLORS = ["0.45", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]


def style(index: int) -> dict:
    return {"color": COLORS[index % len(COLORS)], "marker": MARKERS[index % len(MARKERS)]}


def save(figure, path: Path) -> Path:
    write_figure(figure, path, dpi=130, bbox_inches="tight")  # in memory, then the one safe write
    plt.close(figure)
    return path


def plot_aggregates(result: Statistics, out: Path) -> Path:
    """IQM and mean score per regularizer, each with its 95 % stratified-bootstrap interval."""
    names = [n for n in result.order if n != "none"][::-1]  # the best on top
    figure, axes = plt.subplots(1, 2, figsize=(9, 0.5 * len(names) + 1.6), sharey=True)
    for axis, kind, label in zip(axes, ("iqm", "mean"), ("IQM", "mean")):
        for row, name in enumerate(names):
            e = result.aggregates[name][kind]
            index = result.order.index(name)
            axis.errorbar(e.value, row, xerr=[[e.value - e.low], [e.high - e.value]],
                          capsize=4, linewidth=2, markersize=7, **style(index))
        axis.axvline(0, color="0.3", linewidth=1, linestyle="--")
        axis.set_title(f"{label} score")
        axis.set_xlabel("share of the baseline's test error removed")
        axis.grid(axis="x", alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(nbins=5))
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set_ylim(-0.6, len(names) - 0.4)
    figure.suptitle("Across workloads × seeds, with 95 % stratified-bootstrap intervals (0: the baseline)", y=1.02)
    return save(figure, out / "aggregate.png")


def plot_improvement(result: Statistics, out: Path) -> Path:
    """P(row > column) as a matrix, with each cell's interval."""
    names = result.order
    size = len(names)
    values = np.full((size, size), np.nan)
    for (x, y), e in result.improvement.items():
        values[names.index(x), names.index(y)] = e.value
    figure, axis = plt.subplots(figsize=(1.5 * size + 2.2, 1.1 * size + 1.4))
    image = axis.imshow(values, cmap="RdBu", vmin=0, vmax=1)
    for (x, y), e in result.improvement.items():
        i, j = names.index(x), names.index(y)
        dark = abs(e.value - 0.5) > 0.3
        axis.text(j, i, f"{e.value:.2f}\n[{e.low:.2f}, {e.high:.2f}]", ha="center", va="center", fontsize=8,
                  color="white" if dark else "black")
        if e.low > 0.5 or e.high < 0.5:
            axis.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="#f2b705", linewidth=2.5))
    axis.set_xticks(range(size), names, rotation=30, ha="right")
    axis.set_yticks(range(size), names)
    axis.set_xlabel("Y")
    axis.set_ylabel("X")
    figure.colorbar(image, ax=axis, label="P(X > Y)", fraction=0.046, pad=0.04)
    axis.set_title("Probability of improvement P(X > Y), 95 % CI\n(framed: the interval excludes 0.5)", fontsize=10)
    return save(figure, out / "improvement.png")


def plot_profiles(result: Statistics, out: Path) -> Path:
    """The share of runs scoring above τ, for each τ, with 95 % bands."""
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    for index, name in enumerate(result.order):
        above, low, high = result.profiles[name]
        color, linestyle = COLORS[index % len(COLORS)], LINESTYLES[index % len(LINESTYLES)]
        axis.plot(result.thresholds, above, color=color, linestyle=linestyle, linewidth=2, label=name)
        axis.fill_between(result.thresholds, low, high, color=color, alpha=0.15, linewidth=0)
    axis.axvline(0, color="0.3", linewidth=1, linestyle=":")
    axis.set_xlabel("score τ (share of the baseline's test error removed)")
    axis.set_ylabel("share of runs with score > τ")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(frameon=False, fontsize=9)
    axis.set_title("Performance profiles over workloads × seeds (bands: 95 % stratified bootstrap)", fontsize=10)
    return save(figure, out / "profiles.png")


def plot_forest(result: Statistics, out: Path) -> Path:
    """Per workload, each regularizer's paired difference in test accuracy to the baseline, with its 95 % CI."""
    comparisons = result.comparisons
    names = [n for n in result.order if n != "none"]
    workloads = list(dict.fromkeys(comparisons["workload"]))
    figure, axis = plt.subplots(figsize=(8, 0.22 * len(comparisons) + 0.5 * len(workloads) + 1.2))
    row, ticks = 0.0, []
    for workload in workloads:
        group = comparisons[comparisons["workload"] == workload]
        start = row
        for name in names:
            match = group[group["regularizer"] == name]
            if match.empty:
                continue
            c = match.iloc[0]
            index = result.order.index(name)
            low, high = c["test_acc_diff_low"], c["test_acc_diff_high"]
            if not (math.isnan(low) or math.isnan(high)):
                axis.plot([100 * low, 100 * high], [row, row], color=COLORS[index % len(COLORS)], linewidth=2)
            axis.plot(100 * c["test_acc_diff"], row, linestyle="none", markersize=6,
                      markerfacecolor=COLORS[index % len(COLORS)] if c["decided"] else "white", **style(index))
            row += 1
        ticks.append(((start + row - 1) / 2, workload))
        axis.axhspan(start - 0.5, row - 0.5, color="0.93" if len(ticks) % 2 else "white", zorder=-1)
        row += 0.6
    axis.axvline(0, color="0.3", linewidth=1, linestyle="--")
    axis.set_yticks([t for t, _ in ticks], [w for _, w in ticks])
    axis.set_ylim(row - 0.6 - 0.5, -0.5)
    axis.set_xlabel("test accuracy − the baseline's, points (paired by seed, 95 % CI)")
    handles = [plt.Line2D([], [], linestyle="-", **style(result.order.index(n))) for n in names]
    axis.legend(handles, names, frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    axis.set_title("Per workload (filled: the interval excludes 0 after Holm)", fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    return save(figure, out / "forest.png")


def draw(result: Statistics, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    if any(n != "none" for n in result.order):
        drawn.append(plot_aggregates(result, out))
    if result.improvement:
        drawn.append(plot_improvement(result, out))
    if result.profiles:
        drawn.append(plot_profiles(result, out))
    if result.comparisons is not None and not result.comparisons.empty:
        drawn.append(plot_forest(result, out))
    return drawn
