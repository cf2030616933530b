"""Reading run folders back: statuses (their one home), tolerant loading, and never blocking or writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dropcli.cli import app
from dropcli.run_reading import (
    LoadedRun,
    load_run,
    recorded_status,
    reported_status,
    run_status,
)

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", "NO_COLOR": "1"}


def sweep_args(config, out, *extra: str) -> list[str]:
    return ["sweep", str(config), "--out", str(out), "--quiet", "--batch", "1", *extra]


@pytest.mark.parametrize("summary, status", [
    ({"status": "completed"}, "completed"), ({"status": "running"}, "running"), ({"status": "failed"}, "failed"),
    ({"status": "interrupted"}, "interrupted"), ({"status": "pruned"}, None), ({"status": ["completed"]}, None),
    ({}, None), (["completed"], None), ("completed", None)])
def test_only_the_statuses_dropcli_writes_are_recorded_ones(summary, status):
    assert recorded_status(summary) == status


def test_a_completed_run_that_the_pruner_ended_is_reported_pruned(tmp_path):
    def run(status, stop):
        return LoadedRun(tmp_path, status, "", {}, {"stop_reason": stop}, [])

    assert reported_status(run("completed", "pruned at epoch 3 (median rule)")) == "pruned"
    assert reported_status(run("completed", "max epochs")) == "completed"
    assert reported_status(run("failed", "pruned at epoch 3")) == "failed"  # only a completed run is pruned
    assert reported_status(run("completed", ["pruned"])) == "completed"  # not a reason dropcli writes


def test_a_sweep_and_a_report_agree_on_every_status(runner, tiny_raw, write_config, tmp_path):
    """run_status (what a sweep retrains) and load_run (what a report averages) read one folder alike."""
    out = tmp_path / "sweep"
    assert runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--seeds", "2")).exit_code == 0
    completed, damaged = out / "seed-0", out / "seed-1"
    (damaged / "metrics.csv").write_text("")  # says completed, has nothing to show for it
    assert (run_status(completed), load_run(completed).status) == ("completed", "completed")
    assert (run_status(damaged), load_run(damaged).status) == ("broken", "broken")
    summary = json.loads((completed / "summary.json").read_text())
    (completed / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert (run_status(completed), load_run(completed).status) == ("interrupted", "interrupted")
    (completed / "summary.json").write_text(json.dumps({**summary, "status": "done"}))
    assert (run_status(completed), load_run(completed).status) == ("unknown", "broken")


def test_fifos_planted_in_run_folders_never_block(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    assert runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")).exit_code == 0
    victim = out / "p-0.5_seed-0"
    (victim / "config.yaml").unlink()
    os.mkfifo(victim / "config.yaml")
    (victim / "summary.json").write_text(json.dumps({"status": "running"}))
    (victim / ".lock").unlink()
    os.mkfifo(victim / ".lock")
    code = (f"from typer.testing import CliRunner; from dropcli.cli import app; r = CliRunner(); "
            f"print(r.invoke(app, ['report', {str(out)!r}]).exit_code, "
            f"r.invoke(app, ['status', {str(out)!r}]).exit_code)")
    done = subprocess.run([sys.executable, "-c", code], env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["0", "0"], done.stdout + done.stderr


def test_a_summary_that_is_no_file_is_unknown_not_pending(tmp_path):
    for name, plant in (("fifo", os.mkfifo), ("dangling", lambda path: path.symlink_to(tmp_path / "gone"))):
        (tmp_path / name).mkdir()
        plant(tmp_path / name / "summary.json")
        assert run_status(tmp_path / name) == "unknown"
    (tmp_path / "fresh").mkdir()
    assert run_status(tmp_path / "fresh") == "pending"


def test_a_run_said_running_that_no_process_holds_is_stale(tmp_path):
    from dropcli import locks
    from dropcli.run_reading import watched_status

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"status": "running"}))
    assert watched_status(folder) == "running (stale)"  # killed: nobody owns it
    with locks.acquire(folder):
        assert watched_status(folder) == "running"
