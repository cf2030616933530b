"""Sweeps through submitit: the local executor runs real subprocesses; Slurm is checked by --dry-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.runs import RunFolder


def metric_values(folder):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in RunFolder(folder).read_metrics()]


@pytest.mark.slow
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


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc): a local submitit job's controller runs its task as a child."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# where the real-cluster tests run (root, Slurm installed: CI), tests/test_slurm.py preempts a task on Slurm itself
REAL_SLURM = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("slurmctld") is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the task process through /proc")
@pytest.mark.skipif(REAL_SLURM, reason="preemption is tested on a real Slurm cluster here (tests/test_slurm.py)")
def test_a_preempted_task_is_requeued_resumes_from_its_checkpoint_and_keeps_completed_trials(tiny_raw, tmp_path):
    """What Slurm does on preemption or at the time limit, done by hand: SIGUSR2 to the running task.
    submitit calls the task's checkpoint(), requeues it (the local controller reruns it), and the rerun
    skips the completed trial and continues the other from its last checkpoint, ending exactly where an
    uninterrupted run ends."""
    from dropcli import train as training
    from dropcli.executors import Submission, submit
    from dropcli.sweep import SweepSpec, open_sweep_dir

    base = validate_config({**tiny_raw, "epochs": 200, "model": {"hidden_sizes": [64, 64]}}).to_dict()
    spec = SweepSpec(base=base, axes={"regularizer.dropout": [0.0, 0.5]}, seeds=[0])
    trials = spec.trials()
    done_first, interrupted = trials
    sweep_dir = tmp_path / "sweep"
    open_sweep_dir(sweep_dir, spec, trials, "test")
    parameters = {"name": "requeue-test", "timeout_min": 60, "cpus_per_task": 1}
    job, = submit(Submission("local", [[t.name for t in trials]], parameters), sweep_dir, batch=1)

    metrics = sweep_dir / interrupted.name / "metrics.csv"
    wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) > 10, 240, "the second trial to train")
    first_summary = (sweep_dir / done_first.name / "summary.json").read_text()
    task, = children_of(int(job.job_id))  # the job id of a local job is its controller's pid
    os.kill(task, signal.SIGUSR2)  # Slurm's warning signal before preemption / the time limit
    assert job.result()["trained"] == [interrupted.name]  # the rerun: nothing else was left to train

    log = job.stdout() + (job.stderr() or "")
    assert "Requeued job" in log and "Calling checkpoint method" in log
    assert (sweep_dir / done_first.name / "summary.json").read_text() == first_summary  # never restarted
    summary = json.loads((sweep_dir / interrupted.name / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed"] == 1 and summary["epochs_run"] == 200
    reference = RunFolder.create(tmp_path / "reference", interrupted.config)
    training.run_experiment(training.prepare(interrupted.config), reference)
    assert metric_values(sweep_dir / interrupted.name) == metric_values(reference.path)


def test_slurm_dry_run_prints_the_array_and_writes_nothing(runner, tiny_raw, write_config, tmp_path):
    raw = {**tiny_raw, "executor": {"slurm_partition": "gpu", "timeout_min": 30}}
    result = runner.invoke(app, ["sweep", str(write_config(raw)), "--p", "0.5", "--seeds", "2", "--batch", "1",
                                 "--executor", "slurm", "--gpus-per-task", "1", "--slurm-setup", "module load cuda",
                                 "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    for expected in ("#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --gpus-per-task=1",
                     "#SBATCH --array=0-3", "setup: module load cuda", "task 3: alone: p-0.5_seed-1",
                     "nothing trained, submitted or written"):
        assert expected in result.output
    assert not (tmp_path / "runs").exists()


def test_a_local_dry_run_shows_the_groups_and_what_is_done_and_writes_nothing(runner, tiny_raw, write_config,
                                                                               tmp_path):
    config = str(write_config(tiny_raw))
    sweep = ["sweep", config, "--p", "0.5", "--seeds", "2", "--out", str(tmp_path / "sweep")]
    result = runner.invoke(app, [*sweep, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"sweep folder: {tmp_path / 'sweep'} (not created yet)" in result.output
    assert "executor: local; 4 trials, 0 already completed, 4 to train in 1 groups" in result.output
    assert "group 0: 4 trials stacked: p-0.0_seed-0, p-0.0_seed-1, p-0.5_seed-0, p-0.5_seed-1" in result.output
    assert not (tmp_path / "sweep").exists()
    # after the sweep ran and lost a trial: what is done is not planned again
    assert runner.invoke(app, [*sweep, "--quiet"]).exit_code == 0
    shutil.rmtree(tmp_path / "sweep" / "p-0.5_seed-0")
    before = sorted(p.name for p in (tmp_path / "sweep").rglob("*"))
    result = runner.invoke(app, [*sweep, "--dry-run", "--batch", "1"])
    assert "3 already completed, 1 to train in 1 groups" in result.output, result.output
    assert "group 0: alone: p-0.5_seed-0" in result.output
    assert sorted(p.name for p in (tmp_path / "sweep").rglob("*")) == before


def test_a_dry_run_writes_no_dataset_and_refuses_what_the_sweep_would_refuse(runner, tiny_raw, write_config, tmp_path):
    empty_root = tmp_path / "data"
    for dataset, note in (({"name": "mnist1d"}, None),  # generated in memory, no cache written
                          ({"name": "mnist"}, f"note: dataset MNIST is not under {empty_root} yet: the sweep "
                                              f"downloads it")):
        raw = {**tiny_raw, "dataset": {**tiny_raw["dataset"], **dataset, "root": str(empty_root)}}
        result = runner.invoke(app, ["sweep", str(write_config(raw)), "--p", "0.5", "--seeds", "1", "--dry-run",
                                     "--out", str(tmp_path / "sweep")])
        assert result.exit_code == 0 and "nothing trained, submitted or written" in result.output, result.output
        assert (note in result.output) if note else ("note:" not in result.output)
        assert not empty_root.exists() and not (tmp_path / "sweep").exists()
    config = str(write_config(tiny_raw))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("months of work")
    other = tmp_path / "other-sweep"
    assert runner.invoke(app, ["sweep", config, "--p", "0.1", "--seeds", "1", "--out", str(other), "--quiet"]) \
        .exit_code == 0
    for out, message in ((tmp_path / "notes", "is not a sweep folder"), (other, "holds a different sweep")):
        for dry in (["--dry-run"], []):
            result = runner.invoke(app, ["sweep", config, "--p", "0.5", "--seeds", "1", "--out", str(out), *dry])
            assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, \
                result.output


def test_executor_names_are_checked(runner, tiny_raw, write_config, tmp_path):
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


def test_batch_auto_makes_groups_that_fit_in_memory(runner, tiny_raw, write_config, tmp_path, monkeypatch):
    from dropcli import experiment, sweep

    per_trial = sweep.check_resources(sweep.SweepSpec(validate_config(tiny_raw).to_dict(), {}, [0]).trials())
    assert per_trial > 0
    monkeypatch.setattr(experiment, "free_memory", lambda device: 5 * per_trial)  # half of it: room for 2 trials
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2", "--dry-run",
                                 "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "stacked groups of up to 2" in result.output and "--batch auto: 2 trial(s) per group" in result.output
    assert "group 1: 2 trials stacked" in result.output
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2", "--dry-run",
                                 "--batch", "4", "--out", str(tmp_path / "s")])
    assert "stacked groups of up to 4" in result.output  # an explicit size is the user's


@pytest.mark.parametrize("partition", ["gpu; rm -rf /", "a b", "$(id)"])
def test_a_partition_with_shell_characters_is_refused_before_anything_is_written(runner, tiny_raw, write_config,
                                                                                  tmp_path, partition):
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--executor", "slurm", "--slurm-partition",
                                 partition, "--dry-run", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "executor.slurm_partition" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_submitit_local_tasks_import_no_code_from_the_current_folder(runner, tiny_raw, write_config, tmp_path,
                                                                    monkeypatch):
    from tests.test_sweep import plant_package

    config = write_config(tiny_raw)
    shared = tmp_path / "shared"
    shared.mkdir()
    markers = [plant_package(shared, name) for name in ("dropcli", "submitit")]
    monkeypatch.chdir(shared)
    result = runner.invoke(app, ["sweep", str(config), "--p", "0.5", "--seeds", "1", "--batch", "2", "--quiet",
                                 "--out", str(tmp_path / "sweep"), "--executor", "submitit-local"])
    assert result.exit_code == 0, result.output
    assert not any(marker.exists() for marker in markers)
    logs = tmp_path / "sweep" / ".submitit"
    assert logs.stat().st_mode & 0o777 == 0o700  # the pickles: only this user can swap them


def test_submitit_pickles_are_never_written_into_a_folder_others_can_write(tmp_path):
    from dropcli.executors import LOG_FOLDER, Submission, submit
    from dropcli.isolation import UnsafeFolder

    logs = tmp_path / LOG_FOLDER
    logs.mkdir()
    logs.chmod(0o777)
    parameters = {"name": "unsafe", "timeout_min": 1, "cpus_per_task": 1}
    with pytest.raises(UnsafeFolder, match="can be written by others"):
        submit(Submission("local", [["p-0.5_seed-0"]], parameters), tmp_path, batch=1)
    assert not list(logs.iterdir())  # nothing submitted


def test_a_result_pickle_is_not_loaded_once_its_folder_became_writable_by_others(tmp_path):
    from dropcli.executors import LOG_FOLDER, result_of
    from dropcli.isolation import UnsafeFolder, private_folder

    logs = private_folder(tmp_path / LOG_FOLDER)

    class Job:
        def result(self):
            raise AssertionError("unpickled")

    logs.chmod(0o775)
    with pytest.raises(UnsafeFolder, match="can be written by others"):
        result_of(Job(), tmp_path)
