from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml

from dropcli import train as training
from dropcli.config import load_config, validate_config
from dropcli.run_files import METRIC_COLUMNS
from dropcli.runs import RunFolder


def run_tiny(raw: dict, tmp_path) -> tuple[RunFolder, dict]:
    config = validate_config(raw)
    run = RunFolder.create(tmp_path / "runs", config)
    return run, training.run_experiment(training.prepare(config), run)


def test_run_folder_explains_itself(tiny_raw, tmp_path):
    run, summary = run_tiny(tiny_raw, tmp_path)
    # training leaves no picture: it is drawn afterwards from the folder (by the CLI, a sweep, or report)
    assert not run.curves_path.exists()
    from dropcli.run_plots import draw_run_curves

    assert draw_run_curves([run.path]) == [run.curves_path]
    # and the hidden .lock through which a process owns the folder while it writes
    assert {p.name for p in run.path.iterdir()} == {".lock", "config.yaml", "metrics.csv", "summary.json", "model.pt",
                                                     "curves.png"}
    assert run.path.name.startswith("tiny-")
    # config.yaml is the resolved config: it reloads to the same Config
    assert validate_config(yaml.safe_load(run.config_path.read_text())) == validate_config(tiny_raw)
    with open(run.metrics_path) as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == METRIC_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        values = {k: float(v) for k, v in row.items()}
        assert values["gap_loss"] == pytest.approx(values["val_loss"] - values["train_loss"])
        assert values["gap_acc"] == pytest.approx(values["train_acc"] - values["val_acc"])
        assert 0 <= values["train_acc"] <= 1 and values["seconds"] > 0
    saved = json.loads(run.summary_path.read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["status"] == "completed" and saved["stop_reason"] == "max_epochs" and saved["epochs_run"] == 2
    assert saved["device"] == "cpu" and saved["versions"]["torch"] == torch.__version__
    for key in ("test_loss", "test_acc", "final_gap_loss", "final_gap_acc", "best_epoch", "wall_time_s"):
        assert key in saved
    assert run.curves_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = torch.load(run.model_path)["state_dict"]
    assert any(key.endswith("weight") for key in state)


def test_final_numbers_are_those_of_the_weights_the_run_ends_with(tiny_raw, tmp_path):
    """summary.json's train/val numbers come from the last metrics row, evaluated on the final weights, unless
    a regularizer may have changed them after that row (it overrides end_of_epoch or finish and does not say it
    keeps the weights): then they are evaluated again. A user's regularizer that zeroes the output layer in
    finish() must not leave the last row's numbers behind."""
    from dropcli.regularizers import REGULARIZERS, Regularizer

    run, summary = run_tiny(tiny_raw, tmp_path / "plain")
    last = run.read_metrics()[-1]
    assert {key: summary[key] for key in ("train_loss", "val_loss", "val_acc")} == \
        {key: last[key] for key in ("train_loss", "val_loss", "val_acc")}

    class ZeroTheHead(Regularizer):
        @classmethod
        def from_config(cls, config):
            return cls() if config.l1 == 0.0123 else None  # switched on by a marker value, for this test

        def describe(self):
            return "zero the head"

        def finish(self, model):
            [*_, head] = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
            head.weight.data.zero_()  # through .data: no version counter sees it
            head.bias.data.zero_()
            return {}

    REGULARIZERS.register("zero_the_head")(ZeroTheHead)
    try:
        run, summary = run_tiny({**tiny_raw, "regularizer": {"l1": 0.0123}}, tmp_path / "zeroed")
    finally:
        del REGULARIZERS["zero_the_head"]
    # all-zero logits: every class equally likely, so each loss is exactly log(10)
    for key in ("train_loss", "val_loss", "test_loss"):
        assert summary[key] == pytest.approx(math.log(10), abs=1e-5), key
    assert run.read_metrics()[-1]["train_loss"] != pytest.approx(math.log(10), abs=1e-3)


def test_quickstart_overfits_and_learns_far_above_chance(data_root, tmp_path):
    """The quickstart preset as shipped (fewer epochs): the no-dropout gap grows, test accuracy beats chance."""
    config = load_config("configs/quickstart.yaml", ["epochs=25", f"dataset.root={data_root}", "device=cpu"])
    run = RunFolder.create(tmp_path / "runs", config)
    summary = training.run_experiment(training.prepare(config), run)
    rows = run.read_metrics()
    assert rows[-1]["gap_loss"] > rows[2]["gap_loss"] + 0.3
    assert rows[-1]["gap_acc"] > 0.2
    assert summary["test_acc"] > 0.3  # ten classes: chance is 0.1


def test_every_model_trains_end_to_end(tiny_raw, tmp_path):
    for name in ("cnn", "gru"):
        raw = {**tiny_raw, "model": {**tiny_raw["model"], "name": name}, "regularizer": {"dropout": 0.2}}
        _, summary = run_tiny(raw, tmp_path)
        assert summary["status"] == "completed" and summary["test_acc"] > 0


def test_a_crash_during_training_marks_the_run_failed(tiny_raw, tmp_path, monkeypatch):
    def explode(exp):
        raise RuntimeError("simulated out-of-memory")

    monkeypatch.setattr(training, "train_one_epoch", explode)
    config = validate_config(tiny_raw)
    run = RunFolder.create(tmp_path / "runs", config)
    with pytest.raises(training.TrainingFailed, match="simulated out-of-memory"):
        training.run_experiment(training.prepare(config), run)
    summary = run.read_summary()
    assert summary["status"] == "failed" and "simulated out-of-memory" in summary["error"]


def test_ctrl_c_marks_the_run_interrupted(tiny_raw, tmp_path, monkeypatch):
    def interrupt(exp):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_one_epoch", interrupt)
    config = validate_config(tiny_raw)
    run = RunFolder.create(tmp_path / "runs", config)
    with pytest.raises(training.TrainingInterrupted):
        training.run_experiment(training.prepare(config), run)
    assert run.read_summary()["status"] == "interrupted"


def test_same_seed_gives_identical_metrics_on_cpu(tiny_raw, tmp_path):
    raw = {**tiny_raw, "regularizer": {"dropout": 0.3}}
    first, _ = run_tiny(raw, tmp_path)
    second, _ = run_tiny(raw, tmp_path)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(first.read_metrics()) == strip(second.read_metrics())


def test_training_imports_nothing_of_presentation():
    import subprocess
    import sys

    code = ("import sys, dropcli.train, dropcli.batched, dropcli.sweep; "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
