"""One-at-a-time designs and the axes with an option of their own (dropcli/designs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dropcli.cli import app
from dropcli.config import ConfigError, load_config, validate_config
from dropcli.sweep import SweepSpec, build_spec


def test_one_at_a_time_trains_the_baseline_once_and_each_axis_alone():
    base = load_config("configs/quickstart.yaml")
    spec = build_spec(base, "0.1..0.5", "1e-5,1e-4,1e-3", [], list(range(5)), named={"--early-stopping": "5,10,20"},
                      design="one_at_a_time")
    trials = spec.trials()
    assert len(trials) == (1 + 5 + 3 + 3) * 5  # not the grid's 6 × 4 × 4 × 5 = 480
    names = {t.name for t in trials}
    assert {"baseline_seed-0", "p-0.3_seed-4", "l2-0.0001_seed-2", "patience-10_seed-1"} <= names
    by_name = {t.name: t.config.regularizer for t in trials}
    assert by_name["baseline_seed-0"].dropout == 0 and by_name["baseline_seed-0"].early_stopping is None
    alone = by_name["patience-10_seed-1"]
    assert alone.early_stopping is not None and alone.early_stopping.patience == 10
    assert alone.dropout == 0 and alone.l2 == 0
    assert by_name["p-0.3_seed-4"].l2 == 0 and by_name["p-0.3_seed-4"].early_stopping is None
    assert spec.to_dict()["design"] == "one_at_a_time"
    assert SweepSpec.from_record(json.loads(json.dumps(spec.to_dict()))).fingerprint() == spec.fingerprint()


def test_a_grid_keeps_its_record_and_fingerprint():
    """A grid sweep's sweep.json (and so its folder name and resume) is what it was before designs existed."""
    base = validate_config({}).to_dict()
    spec = SweepSpec(base=base, axes={"regularizer.dropout": [0.0, 0.5]}, seeds=[0, 1])
    assert set(spec.to_dict()) == {"base", "axes", "seeds"}
    assert SweepSpec.from_record(spec.to_dict()) == spec
    assert [t.name for t in spec.trials()] == ["p-0.0_seed-0", "p-0.0_seed-1", "p-0.5_seed-0", "p-0.5_seed-1"]


def test_a_grid_sweep_of_the_previous_release_keeps_its_fingerprint():
    """tests/fixtures/sweep_v028: made before designs existed; its record and fingerprint read back the same."""
    record = json.loads((Path(__file__).parent / "fixtures" / "sweep_v028" / "sweep.json").read_text())
    spec = SweepSpec.from_record(record)
    assert spec.design == "grid" and spec.fingerprint() == record["fingerprint"]
    assert [t.name for t in spec.trials()] == [t["name"] for t in record["trials"]]


def test_the_named_axes_add_their_off_value_and_validate():
    base = load_config("configs/quickstart.yaml")
    spec = build_spec(base, None, None, [], [0], named={"--max-norm": "2,1", "--l1": "1e-4", "--augmentation": "1"})
    assert spec.axes["regularizer.max_norm"] == [None, 1.0, 2.0]
    assert spec.axes["regularizer.l1"] == [0.0, 1e-4]
    assert len(spec.trials()) == 3 * 2 * 2
    smoothing = build_spec(base, None, None, [], [0], named={"--label-smoothing": "0.1"}, design="one_at_a_time")
    assert [t.name for t in smoothing.trials()] == ["baseline_seed-0", "label_smoothing-0.1_seed-0"]
    with pytest.raises(ConfigError, match="--early-stopping '2.5'"):
        build_spec(base, None, None, [], [0], named={"--early-stopping": "5,2.5"})
    with pytest.raises(ConfigError, match="axis value rejected.*augmentation"):
        build_spec(base, None, None, [], [0], named={"--augmentation": "9"}).trials()
    with pytest.raises(ConfigError, match="--l1 is regularizer.l1"):
        build_spec(base, None, None, ["regularizer.l1=0.1"], [0], named={"--l1": "1e-4"})


def test_one_at_a_time_dry_run_shows_the_design_and_bad_input_exits_2(runner, tiny_raw, write_config, tmp_path):
    config = str(write_config(tiny_raw))
    result = runner.invoke(app, ["sweep", config, "--p", "0.2,0.4", "--early-stopping", "3", "--one-at-a-time",
                                 "--seeds", "2", "--runs-dir", str(tmp_path / "runs"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "design: one at a time: baseline + 2 p + 1 patience = 4 settings × 2 seeds = 8 trials" in result.output
    assert "patience-3" in result.output and not (tmp_path / "runs").exists()
    result = runner.invoke(app, ["sweep", config, "--one-at-a-time", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--one-at-a-time: give the axes" in result.output
    result = runner.invoke(app, ["sweep", config, "--early-stopping", "x", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--early-stopping 'x'" in result.output
