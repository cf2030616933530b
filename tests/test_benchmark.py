"""dropcli benchmark on a tiny suite (2 workloads, 2 regularizers, 2 tune trials, 2 seeds, 2 epochs), trained
for real: the folder, the resume (a rerun trains nothing), the leaderboard's numbers against a hand
computation, status, the dry run, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import trim_mean

from dropcli import sweep as sweeps
from dropcli.cli import app


@pytest.fixture
def suite(tiny_raw, tmp_path) -> dict:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**tiny_raw, "model": {"hidden_sizes": [16]}}))
    config = str(tmp_path / "tiny.yaml")
    return {"name": "tiny",
            "workloads": [{"name": "mlp-128", "config": config, "set": {"dataset.train_size": 128}},
                          {"name": "mlp-256", "config": config}],
            "regularizers": ["dropout", "l2"],
            "protocol": {"trials": 2, "seeds": 2}}


def write_suite(tmp_path: Path, suite: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def run_benchmark(runner, *args: str):
    return runner.invoke(app, ["benchmark", *args, "--quiet", "--batch", "2"])


def test_a_benchmark_tunes_retrains_and_writes_a_leaderboard_a_rerun_trains_nothing(suite, tmp_path, runner,
                                                                                   monkeypatch):
    out = tmp_path / "bench"
    path = write_suite(tmp_path, suite)
    result = run_benchmark(runner, str(path), "--out", str(out))
    assert result.exit_code == 0, result.output
    for name in ("benchmark.json", "leaderboard.md", "leaderboard.tex", "scores.csv", "statistics.csv",
                 "figures/aggregate.png", "figures/improvement.png", "figures/profiles.png", "figures/forest.png"):
        assert (out / name).is_file(), name
    for workload in ("mlp-128", "mlp-256"):  # each workload a tune folder: 2 studies of 2 trials, 3 × 2 retrained
        assert len(list((out / workload / "dropout").glob("trial-*"))) == 2
        assert sorted(p.name for p in (out / workload / "best").iterdir()) == [
            f"{n}_seed-{s}" for n in ("dropout", "l2", "none") for s in (1, 2)]

    # the numbers, by hand from the run folders: score = (acc − the baseline's on the seed) / its mean error
    acc = {(w, n, s): json.loads((out / w / "best" / f"{n}_seed-{s}" / "summary.json").read_text())["test_acc"]
           for w in ("mlp-128", "mlp-256") for n in ("none", "dropout", "l2") for s in (1, 2)}
    statistics = pd.read_csv(out / "statistics.csv")
    text = (out / "leaderboard.md").read_text()
    for name in ("dropout", "l2"):
        scores = [(acc[w, name, s] - acc[w, "none", s]) / (1 - np.mean([acc[w, "none", 1], acc[w, "none", 2]]))
                  for w in ("mlp-128", "mlp-256") for s in (1, 2)]
        row = statistics[(statistics["statistic"] == "iqm") & (statistics["regularizer"] == name)].iloc[0]
        assert row["value"] == pytest.approx(trim_mean(scores, 0.25)) and row["n"] == 4
        assert row["low"] <= row["value"] <= row["high"]
        mean = statistics[(statistics["statistic"] == "mean") & (statistics["regularizer"] == name)].iloc[0]
        assert mean["value"] == pytest.approx(np.mean(scores))
        assert f"| {name} | 2 | 4 | {row['value']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] |" in text
        # P(X > none) per workload: the baseline scores 0, so it is the share of positive scores, ties half
        by_hand = np.mean([np.mean([(x > 0) + 0.5 * (x == 0) for x in scores[i:i + 2]]) for i in (0, 2)])
        p = statistics[(statistics["statistic"] == "p_improvement") & (statistics["regularizer"] == name)
                       & (statistics["against"] == "none")].iloc[0]
        assert p["value"] == pytest.approx(by_hand)
    assert "Only 2 seeds per workload" in text

    status = runner.invoke(app, ["status", str(out)])
    assert status.exit_code == 0 and "2 workloads — 2 completed" in status.output
    assert "4 / 4" in status.output and "6 / 6" in status.output

    def trains(*args, **kwargs):
        raise AssertionError("a rerun of a finished benchmark trained something")

    monkeypatch.setattr(sweeps, "run_one", trains)
    monkeypatch.setattr(sweeps, "run_group", trains)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")}
    again = run_benchmark(runner, str(path), "--out", str(out))
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")} == before
    assert (out / "leaderboard.md").read_text() == text  # the same numbers: the bootstrap is seeded


def test_the_dry_run_writes_nothing_and_a_changed_suite_is_refused(suite, tmp_path, runner):
    out = tmp_path / "bench"
    path = write_suite(tmp_path, suite)
    dry = runner.invoke(app, ["benchmark", str(path), "--out", str(out), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "mlp-128" in dry.output and "10 runs, 0 already done" in dry.output and not out.exists()
    suite["protocol"]["seeds"] = 3
    (out / "mlp-128").mkdir(parents=True)
    (out / "benchmark.json").write_text(json.dumps({"workloads": {"mlp-128": {"fingerprint": "other"}}}))
    refused = run_benchmark(runner, str(write_suite(tmp_path, suite)), "--out", str(out))
    assert refused.exit_code == 2 and "workload mlp-128:" in refused.output and "another" in refused.output


@pytest.mark.parametrize(("change", "message"), [
    ({"regularizers": ["dropout", "dropuot"]}, "'dropuot' is not a regularizer tune knows"),
    ({"regularizers": ["none"]}, "is the baseline"),
    ({"protocol": {"trials": 2, "seeds": 1}}, "protocol.seeds"),
    ({"protocol": {"trials": 2, "seeds": 2, "metric": "test_acc"}}, "protocol.metric"),
    ({"workload": []}, "workload: unknown key"),
    ({"regularizers": [{"name": "concrete", "set": {"regularizer.concrete_dropout": {}}, "workloads": ["x"]}]},
     "workload 'x' is not in the suite"),
])
def test_a_bad_suite_is_one_line_per_problem_and_exit_2(suite, tmp_path, runner, change, message):
    result = runner.invoke(app, ["benchmark", str(write_suite(tmp_path, {**suite, **change})), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_workload_whose_config_switches_a_regularizer_on_is_named(suite, tmp_path, runner):
    suite["workloads"][0]["set"]["regularizer.dropout"] = 0.5
    result = runner.invoke(app, ["benchmark", str(write_suite(tmp_path, suite)), "--dry-run"])
    assert result.exit_code == 2 and "workload mlp-128: the base config switches on" in result.output


def test_an_entry_trained_as_set_may_be_added_to_a_benchmark_but_not_changed(suite, tmp_path):
    from dropcli.benchmark import run as running
    from dropcli.benchmark.suite import BenchmarkError, Suite

    def open_with(entries: list) -> None:
        plan = running.make_plan(Suite.model_validate({**suite, "regularizers": entries}), "tiny", tmp_path / "b", [])
        running.open_benchmark_dir(plan, "test")

    open_with(["dropout", "l2"])
    smoothing = {"name": "smooth", "set": {"regularizer.l1": 1e-4}}
    open_with(["dropout", "l2", smoothing])  # only the new entry's runs are missing
    assert json.loads((tmp_path / "b" / "benchmark.json").read_text())["workloads"]["mlp-128"]["fixed"] == {
        "smooth": {"regularizer.l1": 1e-4}}
    with pytest.raises(BenchmarkError, match="smooth was trained with other settings"):
        open_with(["dropout", "l2", {**smoothing, "set": {"regularizer.l1": 1e-3}}])
    with pytest.raises(BenchmarkError, match="another config, settings, tuned regularizers or protocol"):
        open_with(["dropout"])
