"""The results API: run folders as pandas tables, tolerant of broken folders, as report reads them."""

from __future__ import annotations

import json
import subprocess
import sys

import dropcli
from dropcli import train as training
from dropcli.config import validate_config
from dropcli.runs import RunFolder


def train_runs(tiny_raw, root, seeds=(0, 1), **regularizer):
    for seed in seeds:
        config = validate_config({**tiny_raw, "seed": seed, "regularizer": regularizer})
        training.run_experiment(training.prepare(config), RunFolder.create(root, config))


def test_load_runs_gives_one_row_per_run_with_settings_and_results(tiny_raw, tmp_path):
    train_runs(tiny_raw, tmp_path / "runs", dropout=0.3)
    runs = dropcli.load_runs(tmp_path / "runs")
    assert len(runs) == 2 and set(runs["status"]) == {"completed"}
    assert sorted(runs["seed"]) == [0, 1] and set(runs["regularizer.dropout"]) == {0.3}
    assert runs["test_acc"].between(0, 1).all() and runs["best_epoch"].notna().all()
    curves = dropcli.load_metrics(tmp_path / "runs")
    assert len(curves) == 2 * tiny_raw["epochs"] and list(curves.columns[:4]) == ["run", "seed", "status", "epoch"]
    assert set(curves["run"]) == set(runs["run"]) and curves["epoch"].tolist() == [1, 2, 1, 2]


def test_broken_and_foreign_folders_are_rows_with_a_reason_not_errors(tiny_raw, tmp_path):
    root = tmp_path / "runs"
    train_runs(tiny_raw, root, seeds=(0,))
    good = next(root.iterdir())
    broken = root / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    (broken / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n2,")  # torn and foreign
    (root / "torn").mkdir()
    (root / "torn" / "config.yaml").write_text("epochs: [unclosed")
    runs = dropcli.load_runs(root).set_index("run")
    assert runs.loc[good.name, "status"] == "completed"
    assert runs.loc["broken", "status"] != "completed" and runs.loc["broken", "reason"]
    assert runs.loc["torn", "status"] != "completed"
    curves = dropcli.load_metrics(root)
    assert set(curves["run"]) == {good.name}  # the broken folders add no rows


def test_a_run_whose_results_cannot_be_is_broken_with_the_reason(tiny_raw, tmp_path):
    """What a report averages is checked where runs are read: real results pass, impossible ones do not."""
    root = tmp_path / "runs"
    train_runs(tiny_raw, root, seeds=(0, 1, 2))
    real, beyond, overflowing = sorted(root.iterdir())
    for folder, change in ((beyond, {"best_epoch": 3}), (overflowing, {"gap_loss": 1e308})):
        summary = RunFolder(folder).read_summary()
        (folder / "summary.json").write_text(json.dumps({**summary, **change}))
    runs = dropcli.load_runs(root).set_index("run")
    assert runs.loc[real.name, "status"] == "completed" and runs.loc[real.name, "reason"] == ""
    assert runs.loc[beyond.name, "status"] == "broken"
    assert "best_epoch = 3, outside [1, 2]" in runs.loc[beyond.name, "reason"]  # tiny_raw trains 2 epochs
    assert "gap_loss = 1e+308, outside" in runs.loc[overflowing.name, "reason"]


def test_importing_dropcli_imports_neither_torch_nor_pandas():
    code = "import sys, dropcli; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_a_missing_path_is_an_error_and_an_empty_folder_a_table_with_the_columns(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError):
        dropcli.load_runs(tmp_path / "typo")
    empty = dropcli.load_runs(tmp_path)
    assert empty.empty and list(empty.columns) == ["run", "status", "reason"]
    assert empty[empty.status == "completed"].empty  # filtering by status works on it; there are no settings


def test_metrics_rows_with_an_impossible_epoch_lr_or_seconds_are_not_rows(tmp_path):
    from dropcli.run_files import METRIC_COLUMNS, read_metrics_tolerantly

    good = "1,2.3,0.1,2.3,0.1,0.0,0.0,0.001,0.5"
    diverged = "2,nan,0.1,inf,0.1,nan,0.0,0.001,0.5"  # a diverged epoch's losses: kept, as written
    planted = ["nan,2.3,0.1,2.3,0.1,0,0,0.001,0.5", "1.5,2.3,0.1,2.3,0.1,0,0,0.001,0.5",
               "3,2.3,0.1,2.3,0.1,0,0,0.001,inf", "4,2.3,0.1,2.3,0.1,0,0,nan,0.5", "1e300,2,0,2,0,0,0,0.1,0.5"]
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join([",".join(METRIC_COLUMNS), good, diverged, *planted]) + "\n")
    assert [row["epoch"] for row in read_metrics_tolerantly(path)] == [1, 2]
    folder = tmp_path / "run"
    folder.mkdir()
    path.rename(folder / "metrics.csv")
    (folder / "summary.json").write_text(json.dumps({"status": "running"}))
    assert list(dropcli.load_metrics(folder)["epoch"]) == [1, 2]


def test_a_link_to_a_run_folder_is_not_a_second_run(tmp_path):
    from dropcli.run_reading import discover_run_folders

    (tmp_path / "sweep" / "seed-0").mkdir(parents=True)
    (tmp_path / "sweep" / "seed-0" / "config.yaml").write_text("name: x\n")
    (tmp_path / "shortcut").symlink_to(tmp_path / "sweep" / "seed-0")
    (tmp_path / "all-of-it").symlink_to(tmp_path / "sweep")
    assert discover_run_folders(tmp_path) == [tmp_path / "sweep" / "seed-0"]


def test_run_times_carry_their_utc_offset():
    from datetime import datetime

    from dropcli.train import now

    assert datetime.fromisoformat(now()).utcoffset() is not None
