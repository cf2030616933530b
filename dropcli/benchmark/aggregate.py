"""Statistics across workloads, after rliable (Agarwal et al., "Deep RL at the edge of the statistical
precipice", NeurIPS 2021), written once with numpy and scipy: rliable itself pulls in arch, seaborn and
absl for what is here about a hundred lines.

The score. Workloads differ in how hard they are (an MLP on 500 examples misses far more test examples than
a CNN on 2000), so a raw accuracy gain weighs the hard ones most. Each run is scored by the share of the
baseline's test error it removes, paired by seed:

    score(x, seed) = (test_acc(x, seed) − test_acc(none, seed)) / mean over seeds of (1 − test_acc(none))

0: no better than no regularizer; 0.1: a tenth of the baseline's errors gone; negative: worse. The seed of
both runs is the same (the same split, initial weights and batch order), so the difference carries little of
the seed's own luck; the denominator is one number per workload (the baseline's mean test error), so a seed
on which the baseline happened to do well does not blow a score up. The baseline scores 0 on every run.

The statistics, as rliable defines them, over the runs of every workload × seed:
- mean and IQM (the interquartile mean: the mean of the middle 50 % of the scores, scipy.stats.trim_mean(x,
  0.25)), with 95 % percentile intervals from a **stratified bootstrap**: each replicate resamples the seeds
  with replacement within each workload, never across (a workload keeps its weight);
- the **probability of improvement** P(X > Y): per workload, the share of pairs of runs (x, y) with x > y,
  ties counting half (the Mann-Whitney U statistic over n·m), averaged over the workloads both ran; its
  interval from resampling X's and Y's runs independently within each workload;
- **performance profiles**: the share of runs whose score exceeds τ, for each τ, with bootstrap bands.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

from dropcli import stats

REPS = 10_000  # bootstrap replicates of the aggregates; rliable uses 50,000 (its intervals move in the 3rd digit)
PROFILE_REPS = 2_000  # per threshold, as rliable's performance profiles
SEED = 0  # the bootstrap's own seed: the same folder gives the same intervals
CONFIDENCE = 0.95

Tasks = dict[str, np.ndarray]  # workload → one score per seed


def iqm(scores: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """The interquartile mean: the mean of the middle 50 % (rliable's aggregate_iqm)."""
    return trim_mean(scores, 0.25, axis=axis)


def mean(scores: np.ndarray, axis: int | None = -1) -> np.ndarray:
    return np.mean(scores, axis=axis)


def stratified_resamples(tasks: list[np.ndarray], reps: int, rng: np.random.Generator) -> np.ndarray:
    """[reps, runs]: each replicate draws every task's runs with replacement from that task alone."""
    return np.concatenate([task[rng.integers(0, len(task), size=(reps, len(task)))] for task in tasks], axis=1)


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return low, high


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return self.low > value or self.high < value


def bootstrap(tasks: list[np.ndarray], statistic: Callable[..., np.ndarray], reps: int = REPS,
              rng: np.random.Generator | None = None) -> Estimate:
    """statistic(all runs) with its 95 % stratified-bootstrap interval; statistic(x, axis=-1) must reduce
    the last axis."""
    rng = rng if rng is not None else np.random.default_rng(SEED)
    point = float(statistic(np.concatenate(tasks), axis=-1))
    low, high = percentile_interval(statistic(stratified_resamples(tasks, reps, rng), axis=-1))
    return Estimate(point, float(low), float(high))


def improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(x > y) of one task over the last two axes' pairs, ties half: x [..., n], y [..., m] → [...]."""
    a, b = x[..., :, None], y[..., None, :]
    return np.mean((a > b) + 0.5 * (a == b), axis=(-2, -1))


def probability_of_improvement(x: Tasks, y: Tasks, reps: int = REPS,
                               rng: np.random.Generator | None = None) -> Estimate | None:
    """P(X > Y) averaged over the workloads both ran (None: there are none), with its interval."""
    rng = rng if rng is not None else np.random.default_rng(SEED)
    common = [w for w in x if w in y]
    if not common:
        return None
    point = float(np.mean([improvement(x[w], y[w]) for w in common]))
    replicates = np.mean([improvement(x[w][rng.integers(0, len(x[w]), size=(reps, len(x[w])))],
                                      y[w][rng.integers(0, len(y[w]), size=(reps, len(y[w])))])
                          for w in common], axis=0)
    low, high = percentile_interval(replicates)
    return Estimate(point, float(low), float(high))


def profile(tasks: list[np.ndarray], thresholds: np.ndarray, reps: int = PROFILE_REPS,
            rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The share of runs scoring above each threshold, and its band (rliable's score distribution)."""
    rng = rng if rng is not None else np.random.default_rng(SEED)
    above = np.mean(np.concatenate(tasks)[:, None] > thresholds, axis=0)
    replicates = np.mean(stratified_resamples(tasks, reps, rng)[:, :, None] > thresholds, axis=1)
    low, high = percentile_interval(replicates)
    return above, low, high


# ---------------------------------------------------------------------------------------------------------
# From the retrained runs to every number of the leaderboard


def normalized_scores(runs):
    """runs: one row per completed retrained run (workload, regularizer, seed, test_acc) → the same with
    baseline_acc, baseline_error (the workload's mean) and score; runs without a baseline on their seed are
    left out."""
    base = runs[runs["regularizer"] == "none"][["workload", "seed", "test_acc"]]
    merged = runs.merge(base.rename(columns={"test_acc": "baseline_acc"}), on=["workload", "seed"])
    error = 1 - merged.groupby("workload")["baseline_acc"].transform("mean")
    merged["baseline_error"] = error
    merged["score"] = (merged["test_acc"] - merged["baseline_acc"]) / error.where(error > 0)
    return merged.sort_values(["workload", "regularizer", "seed"]).reset_index(drop=True)


@dataclass
class Statistics:
    order: list[str]  # regularizers, the baseline first, then by IQM (best first)
    scores: Any  # pandas DataFrame: normalized_scores
    aggregates: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # regularizer → mean / iqm
    improvement: dict[tuple[str, str], Estimate] = field(default_factory=dict)  # (x, y) → P(X > Y)
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    comparisons: Any = None  # pandas DataFrame: per workload, each regularizer against the baseline

    def tasks(self, regularizer: str) -> Tasks:
        rows = self.scores[(self.scores["regularizer"] == regularizer) & self.scores["score"].notna()]
        return {w: group.sort_values("seed")["score"].to_numpy() for w, group in rows.groupby("workload")}


def compute(runs, reps: int = REPS, profile_reps: int = PROFILE_REPS) -> Statistics:
    """Every statistic of the leaderboard from the completed retrained runs (see normalized_scores)."""
    scores = normalized_scores(runs)
    out = Statistics(order=[], scores=scores)
    names = [n for n in dict.fromkeys(scores["regularizer"]) if n != "none"]
    for name in ["none", *names]:
        tasks = list(out.tasks(name).values())
        if tasks:
            out.aggregates[name] = {"mean": bootstrap(tasks, mean, reps), "iqm": bootstrap(tasks, iqm, reps)}
    ranked = sorted((n for n in names if n in out.aggregates), key=lambda n: -out.aggregates[n]["iqm"].value)
    out.order = ["none", *ranked] if "none" in out.aggregates else ranked
    for x, y in itertools.permutations(out.order, 2):
        estimate = probability_of_improvement(out.tasks(x), out.tasks(y), reps)
        if estimate is not None:
            out.improvement[(x, y)] = estimate
    finite = scores["score"].dropna()
    if len(finite):
        low, high = float(finite.min()), float(finite.max())
        pad = 0.05 * (high - low) or 0.05
        out.thresholds = np.linspace(low - pad, high + pad, 101)
        for name in out.order:
            out.profiles[name] = profile(list(out.tasks(name).values()), out.thresholds, profile_reps)
    out.comparisons = workload_comparisons(runs)
    return out


def workload_comparisons(runs):
    """Per workload, each regularizer against the baseline on test accuracy, paired by seed (stats.compare),
    Holm-adjusted across that workload's regularizers."""
    rows = []
    for workload, group in runs.groupby("workload", sort=False):
        by_seed = {name: dict(zip(g["seed"].astype(int), g["test_acc"].astype(float)))
                   for name, g in group.groupby("regularizer", sort=False)}
        base = by_seed.get("none")
        names = [n for n in by_seed if n != "none"]
        if base is None or not names:
            continue
        # paired on the seeds both have: a failed run on one side must not turn the comparison into Welch's
        pairs = [(n, {s: v for s, v in by_seed[n].items() if s in base}) for n in names]
        pairs = [(n, values) for n, values in pairs if values]
        differences = stats.holm([stats.compare(values, {s: base[s] for s in values}) for _, values in pairs])
        rows += [{"workload": workload, "regularizer": n, "test_acc_diff": d.mean, "test_acc_diff_low": d.low,
                  "test_acc_diff_high": d.high, "p_value": d.p_value, "p_holm": d.p_adjusted, "n_pairs": d.n,
                  "decided": d.decided, "difference": d} for (n, _), d in zip(pairs, differences)]
    return pd.DataFrame(rows)
