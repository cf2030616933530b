"""The benchmark's statistics against numbers known by hand, and against scipy's own bootstrap and
Mann-Whitney U where they coincide with rliable's definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dropcli.benchmark import aggregate


def test_the_iqm_is_the_mean_of_the_middle_half():
    assert aggregate.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert aggregate.iqm(np.array([0.0, 1, 2, 100])) == pytest.approx(1.5)  # the outlier is trimmed


def test_probability_of_improvement_counts_pairs_and_half_ties():
    x, y = np.array([1.0, 2, 3]), np.array([2.0, 2, 0])
    # pairs x > y: 1>0; 2>0 and two ties (2 × 0.5); 3 beats all three → (1 + 2 + 3) / 9
    assert aggregate.improvement(x, y) == pytest.approx(6 / 9)
    assert aggregate.improvement(x, x) == pytest.approx(0.5)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 5).astype(float)  # many ties
    u = stats.mannwhitneyu(a, b, alternative="greater").statistic  # rliable's definition: U / (n m)
    assert aggregate.improvement(a, b) == pytest.approx(u / (len(a) * len(b)))


def test_probability_of_improvement_is_averaged_over_the_tasks_both_ran():
    x = {"a": np.array([1.0, 2, 3]), "b": np.array([5.0, 6]), "only-x": np.array([0.0])}
    y = {"a": np.array([2.0, 2, 0]), "b": np.array([1.0, 1])}
    estimate = aggregate.probability_of_improvement(x, y, reps=2000)
    assert estimate.value == pytest.approx((6 / 9 + 1) / 2)
    assert estimate.low <= estimate.value <= estimate.high
    sure = aggregate.probability_of_improvement({"a": np.array([5.0, 6])}, {"a": np.array([1.0, 2])}, reps=500)
    assert (sure.value, sure.low, sure.high) == (1.0, 1.0, 1.0)  # every resample keeps x above y
    assert aggregate.probability_of_improvement({"a": x["a"]}, {"b": y["b"]}) is None


def test_a_one_task_bootstrap_of_two_runs_spans_them():
    # resamples of [0, 1]: means 0, 0.5, 1 with chances 1/4, 1/2, 1/4, so the 2.5 and 97.5 percentiles are 0 and 1
    estimate = aggregate.bootstrap([np.array([0.0, 1.0])], aggregate.mean)
    assert (estimate.value, estimate.low, estimate.high) == (0.5, 0.0, 1.0)


def test_the_bootstrap_is_stratified_seeds_never_move_between_workloads():
    # two workloads, each constant: resampling within each changes nothing, so the interval has no width (a
    # bootstrap over all four runs at once would span 0 to 1)
    estimate = aggregate.bootstrap([np.array([0.0, 0.0]), np.array([1.0, 1.0])], aggregate.mean)
    assert (estimate.value, estimate.low, estimate.high) == (0.5, 0.5, 0.5)
    # [0, 1] beside [0, 0]: the mean of four is (0, 1, 2 ones) / 4 with chances 1/4, 1/2, 1/4 → 0.25 in [0, 0.5]
    estimate = aggregate.bootstrap([np.array([0.0, 1.0]), np.array([0.0, 0.0])], aggregate.mean)
    assert (estimate.value, estimate.low, estimate.high) == (0.25, 0.0, 0.5)


def test_one_task_matches_scipys_percentile_bootstrap():
    sample = np.random.default_rng(1).normal(0.1, 0.05, 12)
    ours = aggregate.bootstrap([sample], aggregate.mean, reps=20_000)
    theirs = stats.bootstrap((sample,), np.mean, n_resamples=20_000, method="percentile",
                             random_state=np.random.default_rng(2)).confidence_interval
    assert ours.value == pytest.approx(sample.mean())
    assert ours.low == pytest.approx(theirs.low, abs=0.003) and ours.high == pytest.approx(theirs.high, abs=0.003)


def test_the_profile_is_the_share_of_runs_above_each_threshold():
    above, low, high = aggregate.profile([np.array([0.1, 0.3])], np.array([0.0, 0.2, 0.4]), reps=500)
    assert above.tolist() == [1.0, 0.5, 0.0]
    assert low.tolist() == [1.0, 0.0, 0.0] and high.tolist() == [1.0, 1.0, 0.0]


def test_the_score_is_the_share_of_the_baselines_error_removed_on_the_same_seed():
    runs = pd.DataFrame([("w", "none", 1, 0.80), ("w", "none", 2, 0.90), ("w", "l2", 1, 0.83), ("w", "l2", 2, 0.90),
                         ("w", "l2", 3, 0.99)],  # seed 3 has no baseline: left out
                        columns=["workload", "regularizer", "seed", "test_acc"])
    scores = aggregate.normalized_scores(runs)
    l2 = scores[scores["regularizer"] == "l2"]
    assert l2["seed"].tolist() == [1, 2]
    assert l2["score"].tolist() == pytest.approx([0.03 / 0.15, 0.0])  # the baseline's mean error: 0.15
    assert scores[scores["regularizer"] == "none"]["score"].tolist() == [0.0, 0.0]
