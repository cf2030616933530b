"""Comparisons a reviewer accepts: differences between settings with intervals, not means side by side.

Trials of one sweep that share a seed share their split, initial weights and batch order, so a setting is
compared with its baseline seed by seed (a paired t-interval and test, scipy.stats.ttest_rel). When the two
do not share their seeds the comparison falls back to Welch's unpaired test and says so. The p-values of
one family of comparisons are Holm-adjusted (statsmodels); the family is defined by the question, not by what
a folder holds: one regularizer family's settings (all dropout rates, say) against their baseline. A sentence
names a winner only when the 95 % interval excludes zero and the adjusted p-value is below 0.05.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


@dataclass(frozen=True)
class Difference:
    """setting − baseline on one metric, over seeds."""

    mean: float
    low: float  # the 95 % confidence interval of the mean difference (nan: fewer than 2 pairs)
    high: float
    p_value: float  # two-sided test of "no difference" (nan: no test possible)
    n: int  # pairs (paired), else the smaller group
    paired: bool
    p_adjusted: float = math.nan  # Holm across the family; set by holm()
    constant: bool = False  # every pair differed by exactly `mean`: no spread, so no interval and no test

    @property
    def decided(self) -> bool:
        """The interval excludes zero and the adjusted p-value is below 0.05: a difference one may claim."""
        adjusted = self.p_value if math.isnan(self.p_adjusted) else self.p_adjusted
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0) and adjusted < ALPHA


def compare(setting: dict[int, float], baseline: dict[int, float]) -> Difference:
    """Seed → value for each side. Paired when both sides have exactly the same seeds, else Welch."""
    seeds = sorted(setting)
    if seeds == sorted(baseline):
        x, y = np.array([setting[s] for s in seeds]), np.array([baseline[s] for s in seeds])
        if len(seeds) < 2:
            return Difference(float(np.mean(x - y)), math.nan, math.nan, math.nan, len(seeds), True)
        # identical differences (a coarse metric, few seeds; equal up to float rounding: 0.712 - 0.709 and
        # 0.813 - 0.810 differ in the last bit): no spread, the t-interval has zero width and the test is
        # undefined; it is no evidence of a difference either way
        if np.ptp(x - y) <= 1e-9 * max(1.0, float(np.abs(x - y).max())):
            return Difference(float(np.mean(x - y)), math.nan, math.nan, math.nan, len(seeds), True, constant=True)
        result = stats.ttest_rel(x, y)
        interval = result.confidence_interval(CONFIDENCE)
        return Difference(float(np.mean(x - y)), float(interval.low), float(interval.high), float(result.pvalue),
                          len(seeds), True)
    x, y = np.array(list(setting.values())), np.array(list(baseline.values()))
    if min(len(x), len(y)) < 2:
        return Difference(float(x.mean() - y.mean()), math.nan, math.nan, math.nan, min(len(x), len(y)), False)
    result = stats.ttest_ind(x, y, equal_var=False)
    interval = result.confidence_interval(CONFIDENCE)
    return Difference(float(x.mean() - y.mean()), float(interval.low), float(interval.high), float(result.pvalue),
                      min(len(x), len(y)), False)


def half_width(values) -> float:
    """Half the width of the 95 % t-interval of the mean of `values` (nan: fewer than 2 values): the error
    bar and band the figures draw."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan
    return float(stats.t.ppf(1 - ALPHA / 2, len(values) - 1) * stats.sem(values))


def holm(differences: list[Difference]) -> list[Difference]:
    """The same differences with Holm-adjusted p-values across the family (untestable ones left out)."""
    from statsmodels.stats.multitest import multipletests  # a heavy import, needed only here

    testable = [i for i, d in enumerate(differences) if not math.isnan(d.p_value)]
    if not testable:
        return list(differences)
    adjusted = multipletests([differences[i].p_value for i in testable], alpha=ALPHA, method="holm")[1]
    out = list(differences)
    for i, p in zip(testable, adjusted):
        out[i] = replace(out[i], p_adjusted=float(p))
    return out


@functools.lru_cache(maxsize=1024)  # a report words each comparison several times (report.md, report.html)
def seeds_to_resolve(d: Difference) -> int | None:
    """About how many seeds would make an interval of this spread exclude a difference of this size (the
    paired differences' standard deviation estimated from the interval); None when there is nothing to go
    on (no interval, or no difference at all)."""
    if math.isnan(d.low) or d.n < 2 or d.mean == 0:
        return None
    spread = (d.high - d.low) / 2 / stats.t.ppf(1 - ALPHA / 2, d.n - 1) * math.sqrt(d.n)  # sd of differences
    for n in range(max(d.n + 1, 3), 1001):
        if stats.t.ppf(1 - ALPHA / 2, n - 1) * spread / math.sqrt(n) < abs(d.mean):
            return n
    return None


VERBS = {"higher": ("beats", "is worse than"), "lower": ("is worse than", "beats"),
         "neither": ("is higher than", "is lower than")}


def sentence(name: str, baseline: str, d: Difference, what: str = "test accuracy", scale: float = 100.0,
             unit: str = " points", digits: int = 1, better: str = "higher") -> str:
    """The honest sentence for one comparison: a winner only when the interval says so. `better`: "higher"
    (accuracy), "lower" (a loss, an error) or "neither" (an epoch count: higher / lower, no winner)."""
    def number(value: float) -> str:
        return f"{scale * value:+.{digits}f}"

    how = f"paired over {d.n} seed{'s' if d.n != 1 else ''}" if d.paired else \
        f"unpaired (Welch): the seeds differ, {d.n} or more runs each"
    if d.constant:
        return (f"{name} vs {baseline}: {what} {number(d.mean)}{unit} on each of the {d.n} seeds alike: with no "
                f"spread there is no interval and no test (more seeds, or a finer metric, would give one).")
    if math.isnan(d.low):
        return (f"{name} vs {baseline}: {what} {number(d.mean)}{unit} with {d.n} seed"
                f"{'s' if d.n != 1 else ''}: no interval (at least 2 seeds on each side, better 5).")
    interval = f"95 % CI {number(d.low)} to {number(d.high)}{unit}, {how}"
    adjusted = "" if math.isnan(d.p_adjusted) else f", Holm-adjusted p = {d.p_adjusted:.2g}"
    if d.decided:
        verb = VERBS[better][0 if d.mean > 0 else 1]
        return f"{name} {verb} {baseline} on {what} by {number(d.mean)}{unit} ({interval}{adjusted})."
    if d.low > 0 or d.high < 0:  # the interval alone excludes zero, the correction for many settings does not
        return (f"{name} is not distinguishable from {baseline} on {what} after the Holm correction across the "
                f"settings: its own 95 % CI excludes zero ({number(d.low)} to {number(d.high)}{unit}, {how}; "
                f"mean difference {number(d.mean)}{unit}), but the adjusted p = {d.p_adjusted:.2g} is not below "
                f"{ALPHA:g}.")
    needed = seeds_to_resolve(d)
    hint = f"; about {needed} seeds would resolve a difference this size" if needed else ""
    runs = f"{d.n} seed{'s' if d.n != 1 else ''}" if d.paired else f"{d.n} or more runs a side"
    return (f"{name} is not distinguishable from {baseline} on {what} with {runs} "
            f"({interval}{adjusted}; mean difference {number(d.mean)}{unit}){hint}.")


# ---------------------------------------------------------------------------------------------------------
# Comparisons of a report's settings (tables from results.py: one row per run, one row per setting)


def matching_baseline(summary, row, keys: list[str]):
    """The no-regularizer setting that agrees with `row` on every compared key that is not a regularizer
    (same epochs, data, model ...): the only fair baseline for it (None: there is none)."""
    from dropcli.labels import comparable_settings

    candidates = comparable_settings(summary[summary["regularizers"] == "none"], row, keys)
    return None if candidates.empty else candidates.iloc[0]


def values_by_seed(completed, setting: str, metric: str) -> dict[int, float]:
    """Seed → the metric of a setting's runs (two runs of one seed: their mean; the report warns)."""
    runs = completed[completed["setting"] == setting]
    return {int(seed): float(group[metric].mean()) for seed, group in runs.groupby("seed")}


def baseline_comparisons(completed, summary, keys: list[str], metric: str = "test_acc"):
    """Every regularized setting against its baseline, seed by seed: one row each (setting, baseline, mean,
    interval, p, Holm-adjusted p, n, paired). Empty when there is no baseline. The Holm family: the settings of
    one regularizer family against one baseline (adding an unrelated sweep to the folder changes nothing)."""
    import pandas as pd

    pairs, families = [], []
    for _, row in summary.iterrows():
        base = None if row["regularizers"] == "none" else matching_baseline(summary, row, keys)
        if base is not None:
            pairs.append((row["setting"], base["setting"], compare(values_by_seed(completed, row["setting"], metric),
                                                                 values_by_seed(completed, base["setting"], metric))))
            families.append((row["regularizers"], base["setting"]))
    differences = [d for *_, d in pairs]
    for family in dict.fromkeys(families):
        members = [i for i, f in enumerate(families) if f == family]
        for i, adjusted in zip(members, holm([differences[i] for i in members])):
            differences[i] = adjusted
    return pd.DataFrame([{"setting": s, "baseline": b, f"{metric}_diff": d.mean, f"{metric}_diff_low": d.low,
                          f"{metric}_diff_high": d.high, "p_value": d.p_value, "p_holm": d.p_adjusted,
                          "n_pairs": d.n, "paired": d.paired, "no_spread": d.constant, "difference": d}
                         for (s, b, _), d in zip(pairs, differences)])


BLOWN_UP = 10.0  # train loss (cross-entropy, nats) beyond which a run learned nothing: see reading_warnings


def reading_warnings(completed, summary, keys: list[str]) -> list[str]:
    """What a careful reader needs before trusting the comparison."""
    notes = []
    last = completed[(completed["best_epoch"] == completed["epochs_run"]) & (completed["stop_reason"] == "max_epochs")]
    if len(completed) and len(last) > len(completed) / 2:
        notes.append(f"{len(last)} of {len(completed)} runs had their lowest validation loss at their last epoch: "
                     f"they may be under-trained, and longer training could change the comparison.")
    # cross-entropy of a uniform guess over 10 classes is ln 10 ≈ 2.3; a train loss past BLOWN_UP is no model
    blown = completed[completed["train_loss"] > BLOWN_UP] if "train_loss" in completed else completed.iloc[:0]
    if not blown.empty:
        settings = blown["setting"].unique() if "setting" in blown else []
        notes.append(f"{len(blown)} run(s) ended with a train loss above {BLOWN_UP:g}, far worse than guessing "
                     f"(ln 10 ≈ 2.3): training blew up (too high a learning rate?) without turning into NaN"
                     + (f", e.g. in {settings[0]}" if len(settings) else "") + "; their numbers dominate any mean "
                     "they enter, and the figures' scales.")
    duplicated = summary[summary["runs"] > summary["seeds"]]
    if not duplicated.empty:
        notes.append(f"{len(duplicated)} setting(s) have several runs of one seed "
                     f"(e.g. {duplicated.iloc[0]['setting']}): "
                     f"those runs are averaged per seed, not counted as independent.")
    if summary["seeds"].min() < 3:
        notes.append(f"Some settings have fewer than 3 seeds (the fewest: {int(summary['seeds'].min())}): intervals "
                     f"are wide or missing; 5 or more seeds make a comparison worth reading.")
    structural = [k for k in keys if k == "epochs" or k.startswith(("dataset.", "model.", "optimizer."))]
    if structural:
        notes.append(f"The runs differ in {', '.join(structural)}: each setting is compared only with the baseline "
                     f"that shares those values, never across them.")
    return notes
