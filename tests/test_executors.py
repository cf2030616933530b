"""Sweeps through submitit: the local executor runs real subprocesses; Slurm is checked by --dry-run."""

from __future__ import annotations

import json

from dropcli.cli import app
from dropcli.runs import RunFolder


def metric_values(folder):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in RunFolder(folder).read_metrics()]


def test_submitit_local_leaves_the_same_run_folders_as_the_local_executor(runner, tiny_raw, write_config, tmp_path):
    config = write_config(tiny_raw)
    common = ["sweep", str(config), "--p", "0.5", "--seeds", "1", "--batch", "1", "--quiet"]
    local = runner.invoke(app, [*common, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    through = runner.invoke(app, [*common, "--out", str(tmp_path / "submitit"), "--executor", "submitit-local"])
    assert through.exit_code == 0, through.output
    assert "submitted 2 array tasks" in through.output
    for name in ("p-0.0_seed-0", "p-0.5_seed-0"):
        summary = json.loads((tmp_path / "submitit" / name / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert metric_values(tmp_path / "submitit" / name) == metric_values(tmp_path / "local" / name)
    assert (tmp_path / "submitit" / ".submitit").is_dir()  # the job logs
    again = runner.invoke(app, [*common, "--out", str(tmp_path / "submitit"), "--executor", "submitit-local"])
    assert "already completed" in again.output  # nothing is resubmitted


def test_slurm_dry_run_prints_the_array_and_writes_nothing(runner, tiny_raw, write_config, tmp_path):
    raw = {**tiny_raw, "executor": {"slurm_partition": "gpu", "timeout_min": 30}}
    result = runner.invoke(app, ["sweep", str(write_config(raw)), "--p", "0.5", "--seeds", "2", "--batch", "1",
                                 "--executor", "slurm", "--gpus-per-task", "1", "--slurm-setup", "module load cuda",
                                 "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    for expected in ("#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --gpus-per-task=1",
                     "#SBATCH --array=0-3", "setup: module load cuda", "p-0.5_seed-1", "nothing submitted"):
        assert expected in result.output
    assert not (tmp_path / "runs").exists()


def test_dry_run_needs_slurm_and_executor_names_are_checked(runner, tiny_raw, write_config, tmp_path):
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--dry-run", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "only with --executor slurm" in result.output
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--executor", "kubernetes",
                                 "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "executor.name" in result.output
    assert not (tmp_path / "r").exists()


def test_slurm_without_sbatch_is_bad_input_and_writes_nothing(runner, tiny_raw, write_config, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "1",
                                 "--executor", "slurm", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "no sbatch" in result.output
    assert not (tmp_path / "runs").exists()


def test_status_survives_a_corrupted_summary(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    assert runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "1", "--batch", "1",
                               "--out", str(out), "-q"]).exit_code == 0
    (out / "p-0.5_seed-0" / "summary.json").write_bytes(b"\xff[1, 2")
    (out / "p-0.0_seed-0" / "summary.json").write_text("[1, 2]")
    result = runner.invoke(app, ["status", str(out)])
    assert result.exit_code == 0 and "2 unknown" in result.output
