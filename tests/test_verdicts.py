"""Head-to-head verdicts (dropcli/verdicts.py) and the Holm families they and the baseline comparisons use."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dropcli import stats, verdicts
from dropcli.results import RESULT_COLUMNS, completed_runs, settings_summary, varying_settings


def runs(effects: dict[tuple[float, float], float], seeds: int = 6, train_size: int = 1000,
         prefix: str = "") -> list[dict]:
    """Synthetic completed runs: (p, l2) → its effect on accuracy; seed effects shared, as a sweep's are."""
    rng = np.random.default_rng(train_size)
    seed_effect = rng.normal(0, 0.02, seeds)
    rows = []
    for (p, l2), effect in effects.items():
        for seed in range(seeds):
            noise = rng.normal(0, 0.003)
            row = {column: None for column in RESULT_COLUMNS}
            row.update({"run": f"{prefix}p{p}-l2{l2}-s{seed}", "status": "completed", "reason": None, "seed": seed,
                        "epochs": 5, "regularizer.dropout": p, "regularizer.l2": l2,
                        "dataset.train_size": train_size, "test_acc": 0.7 + effect + seed_effect[seed] + noise,
                        "val_acc": 0.7 + effect + seed_effect[seed] + noise / 2,
                        "gap_loss": 0.5 - effect + noise, "max_gap_loss": 0.6, "gap_acc": 0.1})
            rows.append(row)
    return rows


QUESTION = {(0.0, 0.0): 0.0, (0.3, 0.0): 0.05, (0.5, 0.0): 0.03, (0.0, 1e-4): 0.01, (0.0, 1e-3): 0.012}


def head_to_head(rows: list[dict]):
    table = pd.DataFrame(rows)
    keys = varying_settings(table)
    summary = settings_summary(table, keys)
    completed = completed_runs(table, keys)
    return verdicts.head_to_head(completed, summary, keys), stats.baseline_comparisons(completed, summary, keys)


def test_the_verdict_names_dropout_against_l2_with_its_interval():
    result, _ = head_to_head(runs(QUESTION))
    best = dict(zip(result.bests["regularizers"], result.bests["setting"]))
    assert best == {"dropout": "p=0.3", "L2": "l2=0.001", "none": "no regularizer"}
    contest = next(c for c in result.contests if c.metric == "test_acc" and {c.first_family, c.second_family} ==
                   {"dropout", "L2"})
    assert contest.difference.decided and contest.difference.paired and contest.difference.n == 6
    assert contest.difference.low > 0 if contest.first_family == "dropout" else contest.difference.high < 0
    text = contest.sentence()
    assert "dropout (p=0.3) beats L2 (l2=0.001) on test accuracy" in text and "95 % CI" in text
    assert len([c for c in result.contests if c.metric == "test_acc"]) == 3  # 3 bests, 3 pairs
    lines = verdicts.markdown(result)
    assert lines[0] == "## Head to head: each regularizer at its best setting"
    assert any("beats" in line for line in lines)


def test_a_sentence_without_an_interval_that_excludes_zero_names_no_winner():
    result, _ = head_to_head(runs({(0.0, 0.0): 0.0, (0.3, 0.0): 0.0005, (0.0, 1e-3): 0.0}))
    for contest in (c for c in result.contests if c.metric == "test_acc"):
        assert not contest.difference.decided
        assert "beats" not in contest.sentence() and "is worse than" not in contest.sentence()


def test_an_unrelated_sweep_in_the_folder_changes_no_verdict():
    alone, comparisons = head_to_head(runs(QUESTION))
    other = runs({(0.0, 0.0): 0.0, (0.1, 0.0): 0.2, (0.2, 0.0): -0.1, (0.0, 1e-2): 0.1}, train_size=250,
                 prefix="other-")
    together, comparisons_together = head_to_head(runs(QUESTION) + other)

    def numbers(result, context):
        return [(c.first_family, c.second_family, c.metric, c.difference.mean, c.difference.low,
                 c.difference.high, c.difference.p_adjusted) for c in result.contests if c.context.endswith(context)]

    assert numbers(together, "train_size=1000") == numbers(alone, "")
    assert numbers(together, "train_size=250")  # the other sweep has its own verdicts, apart
    # each family's settings against the baseline: Holm within the family, unchanged by the other sweep
    after = comparisons_together[comparisons_together["setting"].str.contains("train_size=1000")]
    assert len(after) == len(comparisons) == 4
    assert np.allclose(sorted(after["p_holm"]), sorted(comparisons["p_holm"]))


def test_holm_families_are_each_regularizers_settings():
    _, comparisons = head_to_head(runs(QUESTION))
    # two dropout settings and two L2 settings: each adjusted within its own pair of p-values
    for family in ("p=", "l2="):
        rows = comparisons[comparisons["setting"].str.startswith(family)]
        expected = stats.holm(list(rows["difference"]))
        assert np.allclose(rows["p_holm"], [d.p_adjusted for d in expected], equal_nan=True)
