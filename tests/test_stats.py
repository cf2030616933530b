"""Paired comparisons: intervals and tests checked against scipy, Holm against its definition, and the
sentences the report may write for each case (a win, a tie, a loss, unpaired seeds, one seed)."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from scipy import stats as scipy_stats

from dropcli import stats
from dropcli.report import build_report

WINNER = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.83, 4: 0.84}
BASE = {0: 0.78, 1: 0.79, 2: 0.80, 3: 0.80, 4: 0.81}


def test_the_paired_interval_and_p_value_are_scipys():
    d = stats.compare(WINNER, BASE)
    differences = [WINNER[s] - BASE[s] for s in range(5)]
    mean, sem = sum(differences) / 5, scipy_stats.sem(differences)
    half = scipy_stats.t.ppf(0.975, 4) * sem
    assert d.paired and d.n == 5 and d.mean == pytest.approx(0.024)
    assert (d.low, d.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert d.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(mean / sem), 4))


def test_holm_adjusts_as_defined():
    family = [stats.Difference(0.1, 0.05, 0.15, p, 5, True) for p in (0.01, 0.04, 0.03)]
    assert [d.p_adjusted for d in stats.holm(family)] == pytest.approx([0.03, 0.06, 0.06])


def test_unpaired_seeds_fall_back_to_welch_and_say_so():
    other = {seed + 10: value for seed, value in BASE.items()}
    d = stats.compare(WINNER, other)
    welch = scipy_stats.ttest_ind(list(WINNER.values()), list(other.values()), equal_var=False)
    assert not d.paired and d.p_value == pytest.approx(welch.pvalue)
    assert "unpaired (Welch)" in stats.sentence("p=0.3", "no dropout", d)
    tie = stats.compare({0: 0.80, 1: 0.82, 2: 0.79}, {5: 0.79, 6: 0.81})  # 3 runs against 2, other seeds
    assert "not distinguishable from no dropout on test accuracy with 2 or more runs a side" in \
        stats.sentence("p=0.3", "no dropout", tie)


@pytest.mark.parametrize("setting, baseline, words", [
    (WINNER, BASE,
     "p=0.3 beats no dropout on test accuracy by +2.4 points (95 % CI +1.3 to +3.5 points, paired over 5 seeds"),
    (BASE, WINNER, "p=0.3 is worse than no dropout on test accuracy by -2.4 points"),
    ({0: 0.80, 1: 0.79, 2: 0.81}, {0: 0.80, 1: 0.80, 2: 0.795},
     "p=0.3 is not distinguishable from no dropout on test accuracy with 3 seeds (95 % CI"),
    ({0: 0.8}, {0: 0.7}, "p=0.3 vs no dropout: test accuracy +10.0 points with 1 seed: no interval"),
    # 3 examples of 1,000 on both seeds: a zero-width "interval" is no evidence, and names no winner
    ({0: 0.470, 1: 0.455}, {0: 0.473, 1: 0.458},
     "p=0.3 vs no dropout: test accuracy -0.3 points on each of the 2 seeds alike: with no spread there is no "
     "interval and no test"),
    ({0: 0.712, 1: 0.813}, {0: 0.709, 1: 0.810},  # the same 3 examples, different in the last bit of a float
     "p=0.3 vs no dropout: test accuracy +0.3 points on each of the 2 seeds alike"),
])
def test_the_sentence_follows_the_interval(setting, baseline, words):
    assert words in stats.sentence("p=0.3", "no dropout", stats.holm([stats.compare(setting, baseline)])[0])


def test_a_tie_says_how_many_seeds_would_resolve_it():
    d = stats.compare({0: 0.80, 1: 0.82, 2: 0.79}, {0: 0.79, 1: 0.80, 2: 0.79})
    assert not d.decided and stats.seeds_to_resolve(d) is not None and stats.seeds_to_resolve(d) > 3
    assert f"about {stats.seeds_to_resolve(d)} seeds would resolve" in stats.sentence("a", "b", d)


# --- the cases that made the old report untrustworthy --------------------------------------------------------

def write_run(path, p, seed, val_acc, test_acc, epochs=60, stop="max_epochs", best_epoch=1):
    from test_report import write_completed_run

    write_completed_run(path, p, seed, val_acc=val_acc, test_acc=test_acc, epochs=epochs)
    summary = json.loads((path / "summary.json").read_text())
    (path / "summary.json").write_text(json.dumps({**summary, "stop_reason": stop, "best_epoch": best_epoch}))


def test_a_tie_within_seed_noise_names_no_winner(tmp_path):
    for seed in range(5):  # the L2 sweep of the issue: 0.292 ± 0.017 against 0.291 ± 0.018
        noise = [0.01, -0.02, 0.015, -0.01, 0.005][seed]
        write_run(tmp_path / f"base{seed}", 0.0, seed, val_acc=0.29 + noise, test_acc=0.29 + noise)
        write_run(tmp_path / f"p{seed}", 0.3, seed, val_acc=0.291 + noise + (0.004 if seed % 2 else -0.003),
                  test_acc=0.29 + noise + (0.004 if seed % 2 else -0.003))
    build_report(tmp_path, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "is not distinguishable from no regularizer" in markdown and " beats " not in markdown


def test_the_best_by_validation_whose_test_accuracy_fell_is_said_to_be_worse(tmp_path):
    for seed in range(5):
        write_run(tmp_path / f"base{seed}", 0.0, seed, val_acc=0.60, test_acc=0.62 + 0.002 * seed)
        write_run(tmp_path / f"p{seed}", 0.3, seed, val_acc=0.65, test_acc=0.605 + 0.002 * seed + 0.001 * (seed % 2))
    report = build_report(tmp_path, tmp_path / "report")
    assert report.summary.loc[report.summary["best"], "setting"].item() == "p=0.3"
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "p=0.3 is worse than no regularizer on test accuracy by -1.5 points" in markdown
    summary_csv = (tmp_path / "report" / "summary.csv").read_text()
    assert "p_holm" in summary_csv and "test_acc_diff_low" in summary_csv


def test_under_trained_runs_duplicate_seeds_and_few_seeds_are_warned_about(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path / f"base{seed}", 0.0, seed, val_acc=0.6, test_acc=0.6, best_epoch=1)
        write_run(tmp_path / f"p{seed}", 0.3, seed, val_acc=0.65, test_acc=0.65, best_epoch=1)
    write_run(tmp_path / "p0-again", 0.3, 0, val_acc=0.64, test_acc=0.64, best_epoch=1)
    build_report(tmp_path, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "5 of 5 runs had their lowest validation loss at their last epoch" in markdown
    assert "several runs of one seed" in markdown and "fewer than 3 seeds" in markdown


def test_runs_of_different_lengths_are_compared_only_within_their_length(tmp_path):
    for epochs in (20, 60):
        for seed in range(3):
            write_run(tmp_path / f"b{epochs}-{seed}", 0.0, seed, val_acc=0.5, test_acc=0.5 + 0.01 * seed, epochs=epochs)
            write_run(tmp_path / f"p{epochs}-{seed}", 0.3, seed, val_acc=0.55, test_acc=0.52 + 0.011 * seed,
                      epochs=epochs)
    report = build_report(tmp_path, tmp_path / "report")
    assert sorted(report.comparisons["baseline"]) == ["epochs=20, no regularizer", "epochs=60, no regularizer"]
    assert all(not math.isnan(v) for v in report.comparisons["p_holm"])
    assert "The runs differ in epochs" in (tmp_path / "report" / "report.md").read_text()


def test_an_interval_that_excludes_zero_but_not_after_holm_says_so():
    d = stats.Difference(-0.028, -0.052, -0.003, 0.03, 5, True, p_adjusted=0.14)
    words = stats.sentence("p=0.7", "no regularizer", d)
    assert not d.decided and " is worse than" not in words
    assert "after the Holm correction" in words and "excludes zero (-5.2 to -0.3 points" in words
    assert "adjusted p = 0.14" in words


def test_the_band_half_width_is_scipys_t_interval():
    values = [0.48, 0.50, 0.47, 0.52, 0.49]
    low, high = scipy_stats.t.interval(0.95, 4, loc=sum(values) / 5, scale=scipy_stats.sem(values))
    assert stats.half_width(values) == pytest.approx((high - low) / 2)
    assert math.isnan(stats.half_width([0.5]))


def styled_runs(root, style: str, seeds=range(3), epochs=60, offset=0.0):
    from test_report import write_completed_run

    for seed in seeds:
        for p in (0.0, 0.5):
            path = root / f"{style}-{epochs}-p{p}-{seed}"
            write_completed_run(path, p, seed, val_acc=0.5 + p / 10 + offset + 0.01 * seed,
                                test_acc=0.5 + p / 10 + offset + 0.012 * seed, epochs=epochs)
            config = yaml.safe_load((path / "config.yaml").read_text())
            config["regularizer"]["dropout_style"] = style
            (path / "config.yaml").write_text(yaml.safe_dump(config))


def test_latex_table_escapes_run_text_marks_the_best_and_carries_the_interval(tmp_path, runner):
    from dropcli.cli import app

    styled_runs(tmp_path, "inverted")
    styled_runs(tmp_path, "scale_at_test", offset=-0.05)
    result = runner.invoke(app, ["report", str(tmp_path), "--latex"])
    assert result.exit_code == 0, result.output
    tex = (tmp_path / "report" / "summary.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\caption{" in tex
    assert "dropout\\_style=scale\\_at\\_test" in tex and "scale_at_test" not in tex  # escaped, never raw
    best = [line for line in tex.splitlines() if "\\bfseries" in line]
    assert len(best) == 1 and "p=0.5, dropout\\_style=inverted" in best[0]
    # test acc +5 points over the same style's baseline on every seed alike: no spread, so no interval
    assert "+5.0 (no spread) & \\bfseries --" in best[0]


def test_figures_say_their_bands_are_confidence_intervals_and_the_report_states_the_shared_config(tmp_path):
    styled_runs(tmp_path, "inverted")
    build_report(tmp_path, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    captions = [line for line in markdown.splitlines() if line.startswith("*") and "95 % confidence interval" in line]
    assert len(captions) == len(list((tmp_path / "report").glob("*.png")))
    assert "## What every run shares" in markdown and "| epochs | 60 |" in markdown
    assert "| regularizer.dropout_style | inverted |" in markdown  # an underscore inside a word: no escape


def test_a_mixed_folder_draws_the_regularizer_comparison_only_for_the_best_settings_length(tmp_path):
    from dropcli.report_plots import comparable_with_best

    styled_runs(tmp_path, "inverted", epochs=20)
    styled_runs(tmp_path, "inverted", epochs=60, offset=0.1)
    report = build_report(tmp_path, tmp_path / "report")
    group, shared = comparable_with_best(report.summary, report.keys)
    assert shared == "epochs=60" and set(group["epochs"]) == {60} and len(group) == 2


def test_lower_is_better_metrics_and_plain_counts_get_the_right_verbs():
    lower = stats.compare({0: 1.2, 1: 1.3, 2: 1.25, 3: 1.21}, {0: 1.5, 1: 1.62, 2: 1.55, 3: 1.5})
    assert "MC beats weight scaling on test NLL by -0.303" in stats.sentence(
        "MC", "weight scaling", lower, what="test NLL", scale=1.0, unit="", digits=3, better="lower")
    epochs = stats.compare({0: 30, 1: 33, 2: 29, 3: 35}, {0: 13, 1: 12, 2: 15, 3: 14})
    words = stats.sentence("p=0.5", "p=0", epochs, what="the best epoch", scale=1.0, unit=" epochs", better="neither")
    assert words.startswith("p=0.5 is higher than p=0 on the best epoch by +18.2 epochs") and "beats" not in words


def test_runs_that_blew_up_without_nan_are_pointed_out():
    import pandas as pd

    completed = pd.DataFrame({"setting": ["lr=1e+06", "lr=0.001"], "train_loss": [3.5e22, 2.1], "best_epoch": [1, 1],
                              "epochs_run": [2, 2], "stop_reason": ["max_epochs", "max_epochs"]})
    summary = pd.DataFrame({"setting": ["lr=1e+06", "lr=0.001"], "runs": [1, 1], "seeds": [5, 5]})
    notes = stats.reading_warnings(completed, summary, ["optimizer.lr"])
    assert any("1 run(s) ended with a train loss above 10" in note and "lr=1e+06" in note for note in notes), notes
    healthy = stats.reading_warnings(completed.iloc[1:], summary.iloc[1:], ["optimizer.lr"])
    assert not any("blew up" in note for note in healthy)
