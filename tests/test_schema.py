"""schema.py: the sections' base, and fingerprints that keys added later leave unchanged at their defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

from dropcli.cli import app
from dropcli.config import Config, validate_config
from dropcli.schema import without_new_defaults
from dropcli.sweep import SweepSpec

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "sweep_v028"  # made by dropcli 0.28, before label smoothing existed


def test_a_key_added_later_is_left_out_at_its_default_and_kept_when_set():
    plain = validate_config({}).to_dict()
    assert "label_smoothing" in plain["regularizer"]
    assert "label_smoothing" not in without_new_defaults(Config, plain)["regularizer"]
    smoothed = validate_config({"regularizer": {"label_smoothing": 0.1}}).to_dict()
    assert without_new_defaults(Config, smoothed)["regularizer"]["label_smoothing"] == 0.1
    assert SweepSpec(base=plain).fingerprint() != SweepSpec(base=smoothed).fingerprint()


def test_a_sweep_folder_made_before_a_new_key_resumes_with_nothing_to_train(runner, tmp_path, monkeypatch):
    folder = tmp_path / "sweep-v028"
    shutil.copytree(FIXTURE, folder)
    monkeypatch.chdir(tmp_path)  # its dataset.root is "data", relative
    # the command that made the fixture (its sweep.json says it), --out pointing at the copy
    result = runner.invoke(app, ["sweep", str(ROOT / "configs" / "quickstart.yaml"), "--set", "epochs=2",
                                 "--set", "dataset.train_size=100", "--set", "model.hidden_sizes=[8]", "--p", "0.2",
                                 "--seeds", "1", "--out", str(folder), "--threads", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "trained 0, already completed 2" in result.output


def test_a_tune_fingerprint_is_that_of_a_base_without_the_new_key(tiny_raw):
    from dropcli.tune import build_spec

    spec = build_spec(validate_config(tiny_raw), "dropout,l2", 4, 2, "val_loss")
    assert spec.base["regularizer"]["label_smoothing"] == 0.0
    before = {**spec.base, "regularizer": {k: v for k, v in spec.base["regularizer"].items() if k != "label_smoothing"}}
    assert type(spec)(before, spec.regularizers, spec.trials, spec.seeds).fingerprint() == spec.fingerprint()
