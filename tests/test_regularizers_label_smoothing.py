"""regularizers/label_smoothing.py: its loss, and the regularizer through train, sweep, tune
and report."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml

from dropcli.cli import app
from dropcli.config import ConfigError, validate_config
from dropcli.regularizers import build_regularizers
from dropcli.regularizers.label_smoothing import LabelSmoothing


def test_off_by_default_and_refused_outside_zero_to_one():
    assert not [r for r in build_regularizers(validate_config({}).regularizer) if isinstance(r, LabelSmoothing)]
    with pytest.raises(ConfigError, match="regularizer.label_smoothing"):
        validate_config({"regularizer": {"label_smoothing": 1.0}})


def test_lone_loss_is_torch_label_smoothing_and_stacked_is_each_trials_own():
    torch.manual_seed(0)
    logits, y = torch.randn(3, 5, 7), torch.randint(0, 5, (3, 7))  # [T, classes, B]
    epsilons = [0.0, 0.1, 0.3]
    lone = [F.cross_entropy(logits[t].T, y[t], label_smoothing=e) for t, e in enumerate(epsilons)]
    assert LabelSmoothing(0.1).loss(logits[1].T, y[1]) == lone[1]
    stacked = LabelSmoothing.stack([None, LabelSmoothing(0.1), LabelSmoothing(0.3)], torch.device("cpu"))
    assert stacked is not None
    torch.testing.assert_close(stacked.loss(logits, y), sum(lone))
    assert LabelSmoothing.stack([None, None], torch.device("cpu")) is None  # all off: today's loss path


def test_it_trains_stacks_in_a_sweep_and_is_named_in_the_report(runner, write_config, tiny_raw, tmp_path):
    config = write_config(tiny_raw)
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(config), "--grid", "regularizer.label_smoothing=0,0.1", "--seeds", "2",
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    summaries = [json.loads(path.read_text()) for path in out.glob("*/summary.json")]
    assert len(summaries) == 4 and all(s["status"] == "completed" for s in summaries)
    assert all(s.get("batched_with") == 4 for s in summaries)  # ε per trial: one stacked group
    report = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    assert "label smoothing" in (tmp_path / "report" / "report.md").read_text()


def test_smoothing_changes_what_train_learns(runner, write_config, tiny_raw, tmp_path):
    from dropcli.runs import RunFolder

    rows = {}
    for epsilon in (0.0, 0.2):
        runs = tmp_path / f"runs{epsilon}"
        result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--set",
                                     f"regularizer.label_smoothing={epsilon}", "--runs-dir", str(runs), "--quiet"])
        assert result.exit_code == 0, result.output
        rows[epsilon] = RunFolder(next(runs.iterdir())).read_metrics()
    assert rows[0.0][-1]["val_loss"] != rows[0.2][-1]["val_loss"]
    assert len(rows[0.2]) == 2


def test_tune_searches_it_and_compares_it_with_the_baseline(runner, write_config, tiny_raw, tmp_path):
    out = tmp_path / "tune"
    result = runner.invoke(app, ["tune", str(write_config(tiny_raw)), "--regularizers", "label_smoothing", "--trials",
                                 "2", "--seeds", "2", "--batch", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    trials = [yaml.safe_load(path.read_text()) for path in out.glob("label_smoothing/*/config.yaml")]
    assert len(trials) == 2 and all(0 <= t["regularizer"]["label_smoothing"] <= 0.3 for t in trials)
    assert any(t["regularizer"]["label_smoothing"] > 0 for t in trials)
    assert "label_smoothing" in (out / "comparison.md").read_text()


def test_validation_loss_is_plain_cross_entropy_of_the_trained_weights(tiny_raw, tmp_path):
    from dropcli.runs import RunFolder
    from dropcli.train import prepare, train

    config = validate_config({**tiny_raw, "regularizer": {"label_smoothing": 0.2}})
    exp = prepare(config)
    summary = train(exp, RunFolder.create(tmp_path / "runs", config))
    exp.model.eval()
    with torch.no_grad():
        logits = exp.model(exp.splits.x_val)
    plain = F.cross_entropy(logits, exp.splits.y_val).item()
    smoothed = F.cross_entropy(logits, exp.splits.y_val, label_smoothing=0.2).item()
    assert abs(plain - smoothed) > 1e-3  # the two differ enough here for the check below to tell them apart
    assert summary["val_loss"] == pytest.approx(plain, rel=1e-5)
