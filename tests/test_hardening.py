"""Attacks on dropcli, written as a hostile or unlucky user would try them: shared folders, planted files,
absurd sizes, full disks, signals. Each test shows the promised behaviour (README: Reliability)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dropcli import locks
from dropcli import train as training
from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.runs import RunFolder
from dropcli.signals import Terminated

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", "NO_COLOR": "1"}


def dropcli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dropcli.cli", *args], env=SUBPROCESS_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def sweep_args(config: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", str(config), "--out", str(out), "--quiet", "--batch", "1", *extra]


def epochs_of(folder: Path) -> list[int]:
    return [int(float(line.split(",")[0])) for line in (folder / "metrics.csv").read_text().splitlines()[1:]]


def interrupted_run(raw: dict, parent: Path, at_epoch: int | None = 2) -> RunFolder:
    """A run stopped by Ctrl-C after `at_epoch` epochs (with checkpoints), released as a dead process's is;
    at_epoch None: a run that completes."""
    config = validate_config(raw)
    run = RunFolder.create(parent, config)

    def stop(row):
        if row["epoch"] == at_epoch:
            raise KeyboardInterrupt

    if at_epoch is None:
        training.run_experiment(training.prepare(config), run)
    else:
        with pytest.raises(training.TrainingInterrupted):
            training.run_experiment(training.prepare(config), run, stop)
    run.release()
    return run


# --- run-folder ownership ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_same_sweep_started_twice_never_trains_a_trial_twice(tiny_raw, write_config, tmp_path):
    raw = {**tiny_raw, "epochs": 40, "dataset": {**tiny_raw["dataset"], "train_size": 512}}
    config, out = write_config(raw), tmp_path / "sweep"
    first = dropcli(*sweep_args(config, out, "--p", "0.5", "--seeds", "2"))
    second = dropcli(*sweep_args(config, out, "--p", "0.5", "--seeds", "2"))
    outputs = [first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]]
    assert first.returncode == 0 and second.returncode == 0, outputs
    for trial in ("p-0.0_seed-0", "p-0.0_seed-1", "p-0.5_seed-0", "p-0.5_seed-1"):
        assert epochs_of(out / trial) == list(range(1, 41)), trial  # each epoch once, in order
    trained = [int(re.search(r"^(?:\d\d:\d\d:\d\d )?trained (\d+),", text, re.M).group(1)) for text in outputs]
    assert sum(trained) == 4, outputs  # every trial trained by exactly one of the two


def test_a_trial_owned_by_another_process_is_left_to_it(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")
    assert runner.invoke(app, args).exit_code == 0
    for entry in (out / "p-0.0_seed-0").iterdir():  # as if another process had just started it
        entry.unlink()
    holder = locks.acquire(out / "p-0.0_seed-0")  # another writer: flock excludes other open files too
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "left to another process 1" in result.output and f"pid {os.getpid()}" in result.output
    assert not (out / "p-0.0_seed-0" / "summary.json").exists()
    holder.release()
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1"))
    assert "trained 1, already completed 1" in result.output


def test_resume_of_a_run_another_process_writes_exits_2_naming_it(runner, tiny_raw, tmp_path):
    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path)
    with locks.acquire(run.path):
        result = runner.invoke(app, ["train", "--resume", str(run.path)])
    assert result.exit_code == 2 and "in use by pid" in result.output, result.output
    assert run.read_summary()["status"] == "interrupted"


def test_two_runs_started_in_the_same_second_get_two_folders(tiny_raw, tmp_path):
    config = validate_config(tiny_raw)
    runs = [RunFolder.create(tmp_path, config) for _ in range(3)]
    assert len({run.path for run in runs}) == 3


# --- files that others wrote -----------------------------------------------------------------------------------

class Payload:
    """What an attacker pickles into checkpoint.pt: unpickling it creates a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_checkpoint_is_refused_and_runs_no_code(runner, tiny_raw, write_config, tmp_path):
    import torch

    marker = tmp_path / "pwned"
    run = interrupted_run(tiny_raw | {"epochs": 4}, tmp_path / "runs")
    torch.save({"epoch": 1, "model": Payload(marker)}, run.checkpoint_path)
    result = runner.invoke(app, ["train", "--resume", str(run.path)])
    assert result.exit_code == 2 and "refusing to load it" in result.output, result.output
    assert not marker.exists()

    # the same file in an unfinished trial of a shared sweep folder: the trial fails, the sweep goes on
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")
    assert runner.invoke(app, args).exit_code == 0
    victim = out / "p-0.5_seed-0"
    torch.save({"epoch": 1, "model": Payload(marker)}, victim / "checkpoint.pt")
    (victim / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "refusing to load it" in result.output
    assert not marker.exists()


def test_checkpoints_are_never_group_or_world_writable(tiny_raw, tmp_path):
    old = os.umask(0)
    try:
        run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path)
    finally:
        os.umask(old)
    assert run.checkpoint_path.stat().st_mode & 0o022 == 0
    assert (run.path / "config.yaml").stat().st_mode & 0o777 == 0o666  # the rest follows the umask


def test_a_damaged_checkpoint_falls_back_to_the_previous_one_or_restarts(runner, tiny_raw, tmp_path):
    raw = tiny_raw | {"epochs": 4}
    reference = interrupted_run(raw, tmp_path / "reference", at_epoch=None)
    for damage_previous in (False, True):
        run = interrupted_run(raw, tmp_path / f"victim{damage_previous}", at_epoch=3)
        run.checkpoint_path.write_bytes(run.checkpoint_path.read_bytes()[:500])  # torn
        if damage_previous and run.previous_checkpoint_path.exists():
            run.previous_checkpoint_path.write_bytes(b"not a checkpoint")
        result = runner.invoke(app, ["train", "--resume", str(run.path), "--quiet"])
        assert result.exit_code == 0, result.output
        assert "damaged" in result.output and "Traceback" not in result.output
        assert (run.path / "metrics.csv").read_text().count("\n") == 5
        ref_rows = (reference.path / "metrics.csv").read_text().splitlines()
        rows = (run.path / "metrics.csv").read_text().splitlines()
        assert [r.split(",")[:-1] for r in rows] == [r.split(",")[:-1] for r in ref_rows]  # seconds aside


def test_an_alias_bomb_is_refused_quickly_without_being_expanded(runner, write_config, tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    bomb = "\n".join(levels).replace("a: &a", "junk: &a", 1) + "\nmodel:\n  hidden_sizes: *i\n"
    started = time.perf_counter()
    result = runner.invoke(app, ["train", str(write_config(bomb))])
    assert result.exit_code == 2 and "aliases" in result.output and len(result.output) < 500
    assert time.perf_counter() - started < 5

    # the same bomb as a run folder's config.yaml: the report lists the run as left out and goes on
    assert_report_leaves_out_a_planted_config(runner, tmp_path, bomb)


def assert_report_leaves_out_a_planted_config(runner, tmp_path: Path, text: str) -> None:
    folder = tmp_path / "runs" / "planted"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(text)
    (folder / "summary.json").write_text(json.dumps({"status": "completed"}))
    result = runner.invoke(app, ["report", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "config.yaml is unreadable" in result.output


def test_nesting_deep_enough_to_crash_libyaml_is_refused_in_one_line(runner, write_config, tmp_path):
    """libyaml builds nested collections by recursion in C: 30,000 levels (a 60 KB file) was a segfault of
    every command that read the file, a run folder's config.yaml planted in a shared folder included."""
    deep = "name: x\nregularizer: " + "[" * 100_000 + "]" * 100_000 + "\n"
    result = runner.invoke(app, ["train", str(write_config(deep))])
    assert result.exit_code == 2 and "nested more than 64 levels deep" in result.output
    assert_report_leaves_out_a_planted_config(runner, tmp_path, deep)


@pytest.mark.parametrize("extends, message", [('"a\\0b"', "extends: expected a file name"),
                                              ('""', "extends: expected a file name"),
                                              ("/dev/zero", "not a regular file")])
def test_an_extends_that_names_no_file_is_one_line(runner, write_config, extends, message):
    result = runner.invoke(app, ["train", str(write_config(f"extends: {extends}\n"))])
    assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1, result.output


@pytest.mark.parametrize("overrides, message", [
    (["--set", "optimizer.lr=.inf"], "optimizer.lr: Input should be a finite number"),
    (["--set", "regularizer.l2=.nan"], "regularizer.l2: Input should be a finite number"),
    (["--set", "regularizer.l1=-.inf"], "regularizer.l1"),
    (["--set", "model.hidden_sizes=[1000000000,1000000000]"], "GiB to train"),
    (["--set", "device=cuda:99999999999999999999"], "allowed values: auto, cpu, cuda, cuda:N"),
    (["--set", "name=" + "x" * 300], "at most 100 characters"),
    (["--set", "model.hidden_sizes=[yes, on]"], "model.hidden_sizes: expected numbers or text in the list, not true"),
    (["--set", "model.hidden_sizes=[1,2"], "its brackets do not close; a list is written --set"),
    (["--set", "executor.slurm_partition=\"gpu\\n#SBATCH --wrap=rm\""], "must be one line"),
    (["--set", "dataset.root=" + "r" * 50_000_000], "50,000,000 characters; a config may have at most"),
    (["--set", "dataset.root=" + "r" * 5000], "at most 4096 characters"),
])
def test_values_that_cannot_train_exit_2_with_one_short_line(runner, tiny_raw, write_config, tmp_path, overrides,
                                                            message):
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path / "runs"),
                                 *overrides])
    assert result.exit_code == 2 and message in result.output, result.output[:1000]
    assert len(result.output) < 600 and "Traceback" not in result.output  # a 50 MB value is not echoed
    assert not (tmp_path / "runs").exists()


def test_duplicate_keys_and_exponent_numbers_in_yaml(runner, tiny_raw, write_config, tmp_path):
    text = yaml.safe_dump(tiny_raw) + "regularizer:\n  dropout: 0.5\nregularizer:\n  l2: 0.001\n"
    result = runner.invoke(app, ["train", str(write_config(text))])
    assert result.exit_code == 2 and "'regularizer' appears twice" in result.output
    from dropcli.config import load_config

    config = load_config(write_config("epochs: 1e3\noptimizer:\n  lr: 1e-3\n"))
    assert config.epochs == 1000 and config.optimizer.lr == 0.001


def test_a_sweep_too_large_is_refused_at_once_and_the_cap_can_be_raised(runner, tiny_raw, write_config, tmp_path):
    started = time.perf_counter()
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), tmp_path / "s", "--p", "0..0.7:0.0001",
                                           "--seeds", "1000"))
    assert result.exit_code == 2 and "7,001,000 trials" in result.output and "--max-trials" in result.output
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), tmp_path / "s", "--p", "0..0.7:0.000000001"))
    assert result.exit_code == 2 and "an axis may have at most" in result.output
    assert time.perf_counter() - started < 5 and not (tmp_path / "s").exists()
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), tmp_path / "s", "--p", "0.5", "--seeds", "3",
                                           "--max-trials", "5"))
    assert result.exit_code == 2 and "6 trials" in result.output


# --- faults end in a truthful state ---------------------------------------------------------------------------

def test_a_full_disk_fails_the_run_in_one_line_and_leaves_no_partial_file(runner, tiny_raw, write_config, tmp_path,
                                                                        monkeypatch):
    import torch

    real_save = torch.save

    def save_then_fill(obj, handle, *args, **kwargs):  # half a checkpoint written, then the disk is full
        handle.write(b"PK" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save_then_fill)
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path / "runs")])
    monkeypatch.setattr(torch, "save", real_save)
    assert result.exit_code == 1 and "disk full" in result.output and "Traceback" not in result.output
    [run] = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "disk full" in summary["error"] and "traceback" not in summary
    assert not [p for p in run.iterdir() if "partial" in p.name or p.name.startswith("checkpoint")]


def test_a_full_disk_stops_a_sweep_cleanly_and_a_rerun_finishes_it(runner, tiny_raw, write_config, tmp_path,
                                                                   monkeypatch, fail_at_epoch):
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "2")
    fail_at_epoch(2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "metrics.csv"))
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "stopped" in result.output and "3 trials not started" in result.output
    assert json.loads((out / "p-0.0_seed-0" / "summary.json").read_text())["status"] == "failed"
    monkeypatch.undo()
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "trained 4" in result.output, result.output


def test_a_diverging_run_ends_failed_with_its_epoch_and_strict_json(runner, tiny_raw, write_config, tmp_path):
    raw = tiny_raw | {"optimizer": {**tiny_raw["optimizer"], "lr": 1e30}}
    result = runner.invoke(app, ["train", str(write_config(raw)), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "epoch 1:" in result.output and "diverged" in result.output, result.output
    [run] = (tmp_path / "runs").iterdir()

    def no_constants(name):
        raise AssertionError(f"{name} in summary.json")

    summary = json.loads((run / "summary.json").read_text(), parse_constant=no_constants)
    assert summary["status"] == "failed" and summary["error"].startswith("epoch 1:")


def test_a_diverging_trial_of_a_batched_group_fails_alone(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--out", str(out), "--quiet", "--seeds", "1",
                                 "--grid", "optimizer.lr=0.003,1e30"])
    assert result.exit_code == 1, result.output
    statuses = {p.name: json.loads((p / "summary.json").read_text())["status"] for p in out.iterdir() if p.is_dir()}
    assert statuses == {"lr-0.003_seed-0": "completed", "lr-1e+30_seed-0": "failed"}


@pytest.mark.slow
def test_sigterm_ends_a_run_interrupted_and_it_resumes(tiny_raw, write_config, tmp_path):
    raw = {**tiny_raw, "epochs": 500}
    process = dropcli("train", str(write_config(raw)), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list((tmp_path / "runs").glob("*/metrics.csv")) if (tmp_path / "runs").exists() else []
        if runs and runs[0].read_text().count("\n") >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143 and "interrupted" in output and "Traceback" not in output, output
    [run] = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"] == "stopped by SIGTERM"


@pytest.mark.parametrize("stop, code", [(KeyboardInterrupt, 130), (Terminated, 143)])
def test_a_signal_while_the_picture_is_drawn_keeps_the_run_completed_and_says_so(runner, tiny_raw, write_config,
                                                                                 tmp_path, monkeypatch, stop, code):
    def interrupted(folders):
        raise stop

    monkeypatch.setattr("dropcli.run_plots.draw_run_curves", interrupted)
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path), "--quiet"])
    [run] = tmp_path.glob("*/summary.json")
    assert result.exit_code == code and "interrupted after the run completed" in result.output, result.output
    assert f"dropcli report {run.parent}" in result.output
    assert json.loads(run.read_text())["status"] == "completed" and not (run.parent / "curves.png").exists()


# --- damaged folders ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["summary not an object", "metrics emptied", "config removed",
                                    "epochs repeated"])
def test_a_damaged_completed_trial_is_retrained_on_rerun(runner, tiny_raw, write_config, tmp_path, damage):
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")
    assert runner.invoke(app, args).exit_code == 0
    victim = out / "p-0.5_seed-0"
    if damage == "summary not an object":
        (victim / "summary.json").write_text("[]")
    elif damage == "metrics emptied":
        (victim / "metrics.csv").write_text("")
    elif damage == "config removed":
        (victim / "config.yaml").unlink()
    else:
        text = (victim / "metrics.csv").read_text()
        (victim / "metrics.csv").write_text(text + text.split("\n", 1)[1])
    assert runner.invoke(app, ["status", str(out)]).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "trained 1, already completed 1" in result.output, result.output
    assert epochs_of(victim) == [1, 2]


def test_a_sweep_folder_another_process_is_opening_is_not_called_foreign(tiny_raw, tmp_path):
    """Two processes start the same sweep: one may look (unlocked, before torch loads) while the other holds
    the lock and is writing sweep.json; what it sees is no foreign folder."""
    from dropcli.sweep import SweepSpec, check_sweep_dir

    spec = SweepSpec(base=validate_config(tiny_raw).to_dict(), axes={"regularizer.dropout": [0.0]}, seeds=[0])
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / locks.LOCK_NAME).write_text("pid 1 on elsewhere")
    (tmp_path / "sweep" / ".sweep.json.partial").write_text('{"fingerp')
    assert check_sweep_dir(tmp_path / "sweep", spec) is False
    # and while it renames its sweep.json into place and makes a trial folder (213 of 3,000 such races were
    # refused when the record was looked for before the folder was listed)
    import threading

    record = json.dumps({"fingerprint": spec.fingerprint()})
    refused = 0
    for attempt in range(500):
        folder = tmp_path / f"race-{attempt}"
        folder.mkdir()
        (folder / locks.LOCK_NAME).write_text("pid 1 on elsewhere")

        def open_it(folder=folder):
            (folder / ".sweep.json.partial").write_text(record)
            (folder / ".sweep.json.partial").replace(folder / "sweep.json")
            (folder / "seed-0").mkdir()

        writer = threading.Thread(target=open_it)
        writer.start()
        try:
            check_sweep_dir(folder, spec)
        except Exception:
            refused += 1
        writer.join()
    assert refused == 0


@pytest.mark.parametrize("record", [b"[]", b'"abc"', b"\xff\xfe{}", b'{"trials": ['])
def test_a_damaged_sweep_record_is_refused_on_rerun_in_one_line(runner, tiny_raw, write_config, tmp_path, record):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_bytes(record)
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1"))
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "sweep.json is corrupted" in result.output and "choose another --out" in result.output
    assert {p.name for p in out.iterdir()} - {locks.LOCK_NAME} == {"sweep.json"}
    assert (out / "sweep.json").read_bytes() == record


@pytest.mark.parametrize("edit, shown", [
    (("model", "hidden_sizes", [8]), "model.hidden_sizes: [32] → [8]"),
    (("optimizer", "name", "sgd"), 'optimizer.name: "adam" → "sgd"'),
    ((None, "epochs", 2), "epochs: 3 → 2"),
    (("dataset", "train_size", 150), "dataset.train_size"),
])
def test_resume_refuses_a_config_edited_after_the_checkpoint_and_leaves_the_run_as_it_was(runner, tiny_raw, tmp_path,
                                                                                          edit, shown):
    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path, at_epoch=2)
    config = yaml.safe_load(run.config_path.read_text())
    section, key, value = edit
    (config[section] if section else config)[key] = value
    run.config_path.write_text(yaml.safe_dump(config))
    files = lambda: {p.name: p.read_bytes() for p in run.path.iterdir() if p.name != locks.LOCK_NAME}  # noqa: E731
    before = files()
    result = runner.invoke(app, ["train", "--resume", str(run.path), "--quiet"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "config.yaml was changed after its checkpoint" in result.output and shown in result.output
    assert files() == before and locks.holder_of(run.path) is None


def test_a_planted_settings_record_in_a_checkpoint_is_never_a_traceback(runner, tiny_raw, tmp_path):
    import torch

    for settings, code in (("[" * 100_000 + "]" * 100_000, 0), (json.dumps({"model.hidden_sizes": [7] * 2000}), 2)):
        run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path / str(code), at_epoch=2)
        for path in (run.checkpoint_path, run.previous_checkpoint_path):
            if path.is_file():
                state = torch.load(path, weights_only=True)
                torch.save({**state, "settings": settings}, path)
        result = runner.invoke(app, ["train", "--resume", str(run.path), "--quiet"])
        assert result.exit_code == code and "Traceback" not in result.output, result.output
        assert len(result.output) < 600 if code else epochs_of(run.path) == [1, 2, 3]


def test_resume_accepts_a_config_that_changed_only_where_the_run_goes(runner, tiny_raw, tmp_path):
    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path, at_epoch=2)
    config = yaml.safe_load(run.config_path.read_text())
    config.update(name="renamed", threads=2)
    run.config_path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", "--resume", str(run.path), "--quiet"])
    assert result.exit_code == 0 and epochs_of(run.path) == [1, 2, 3], result.output


def test_resume_names_what_is_wrong_with_its_own_config(runner, tiny_raw, tmp_path):
    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path, at_epoch=2)
    run.config_path.write_text(run.config_path.read_text() + "colour: blue\n")
    result = runner.invoke(app, ["train", "--resume", str(run.path), "--quiet"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "colour" in result.output, result.output


def test_resume_past_a_checkpoint_that_is_a_pipe_or_missing_restarts_and_says_so(runner, tiny_raw, tmp_path):
    """A FIFO where checkpoint.pt goes blocked the resume for ever; runs without any checkpoint replaced their
    recorded epochs without a word."""
    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path, at_epoch=2)
    run.checkpoint_path.unlink()
    run.previous_checkpoint_path.unlink(missing_ok=True)
    os.mkfifo(run.checkpoint_path)
    process = dropcli("train", "--resume", str(run.path), "--quiet")  # a process: a hang ends at the timeout
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "no checkpoint to continue from" in output and "2 recorded epochs" in output
    assert epochs_of(run.path) == [1, 2, 3]


def test_resume_refuses_a_folder_that_is_not_a_dropcli_run(runner, tmp_path):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "config.yaml").write_text("")
    (foreign / "notes.txt").write_text("months of work")
    result = runner.invoke(app, ["train", "--resume", str(foreign)])
    assert result.exit_code == 2 and "not a dropcli run folder" in result.output
    assert sorted(p.name for p in foreign.iterdir()) == ["config.yaml", "notes.txt"]


# --- environment errors: exit 2, one line, nothing half-written ---------------------------------------------------

@pytest.mark.parametrize("arguments", [["train", "CONFIG", "--runs-dir", ""], ["train", "CONFIG", "--runs-dir="],
                                       ["sweep", "CONFIG", "--out", ""], ["report", "RUNS", "--out", ""],
                                       ["report", ""], ["status", ""], ["train", "--resume", ""],
                                       ["report", "--", ""]])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(runner, tiny_raw, write_config, tmp_path,
                                                                  monkeypatch, arguments):
    """Path('') is '.': `--out "$UNSET"` wrote a report into whatever folder the shell was in."""
    config = write_config(tiny_raw)
    (tmp_path / "runs").mkdir()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    words = [str(config) if a == "CONFIG" else str(tmp_path / "runs") if a == "RUNS" else a for a in arguments]
    result = runner.invoke(app, words)
    assert result.exit_code == 2 and "an empty path" in result.output and result.output.count("\n") == 1, result.output
    assert not list(here.iterdir())


@pytest.mark.parametrize("command", ["report", "status", "export"])
def test_a_device_where_a_folder_goes_is_named(runner, command):
    result = runner.invoke(app, [command, "/dev/null"])  # click's file_okay=False lets a device through
    assert result.exit_code == 2 and result.output == "error: /dev/null: not a folder\n", result.output


def test_impossible_paths_exit_2_with_one_line(runner, tiny_raw, write_config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = str(write_config(tiny_raw))
    for args in (["train", config, "--runs-dir", str(blocker / "runs")],
                 ["train", config, "--runs-dir", "/sys/dropcli-runs"],  # not even root may write there
                 ["sweep", config, "--quiet", "--seeds", "1", "--out", str(blocker / "sweep")],
                 ["sweep", config, "--quiet", "--seeds", "1", "--out", "/sys/dropcli-sweep"],
                 ["report", str(tmp_path), "--out", "/sys/dropcli-report"]):
        if args[0] == "report":
            assert runner.invoke(app, ["train", config, "--runs-dir", str(tmp_path / "runs")]).exit_code == 0
        result = runner.invoke(app, args)
        # a log may show that preparation began ("preparing ..."); the error itself is one line
        lines = [line for line in result.output.splitlines() if not line.startswith("preparing ")]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, result.output)
        assert "Traceback" not in result.output


def test_over_long_trial_names_are_refused_before_anything_is_written(runner, tiny_raw, write_config, tmp_path):
    sizes = "[" + ",".join(["1"] * 130) + "]"
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), tmp_path / "sweep", "--seeds", "1",
                                           "--grid", f"model.hidden_sizes=[8],{sizes}"))
    assert result.exit_code == 2 and "bytes; this file system allows 255" in result.output, result.output
    assert not (tmp_path / "sweep").exists()


def test_a_damaged_dataset_cache_is_generated_again(runner, tiny_raw, write_config, tmp_path):
    root = tmp_path / "data"
    (root / "mnist1d").mkdir(parents=True)
    (root / "mnist1d" / "mnist1d_default_seed42.npz").write_bytes(b"PK\x03\x04 torn")
    raw = {**tiny_raw, "dataset": {**tiny_raw["dataset"], "root": str(root)}}
    result = runner.invoke(app, ["train", str(write_config(raw)), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "generating MNIST-1D again" in result.output, result.output


def test_the_thread_count_is_recorded(runner, tiny_raw, write_config, tmp_path):
    import torch

    assert runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path)]).exit_code == 0
    [summary] = tmp_path.glob("*/summary.json")
    assert json.loads(summary.read_text())["torch_threads"] == torch.get_num_threads()


def test_a_sweep_trial_with_a_damaged_checkpoint_continues_on_rerun(runner, tiny_raw, write_config, tmp_path,
                                                                   fail_at_epoch):
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw | {"epochs": 3}), out, "--seeds", "1")
    disarm = fail_at_epoch(3, KeyboardInterrupt())
    assert runner.invoke(app, args).exit_code == 130
    disarm()
    trial = out / "seed-0"
    for checkpoint in trial.glob("checkpoint*.pt"):
        checkpoint.write_bytes(b"\x80\x02 torn")
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "damaged" in result.output and "trained 1" in result.output, result.output
    assert epochs_of(trial) == [1, 2, 3]


# --- found by a second attack (a review of the first round) -------------------------------------------------------

def test_links_planted_in_a_shared_sweep_folder_are_never_followed(runner, tiny_raw, write_config, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("months of work")
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")
    assert runner.invoke(app, args).exit_code == 0
    import shutil

    shutil.rmtree(out / "p-0.5_seed-0")
    (out / "p-0.5_seed-0").symlink_to(victim)  # a trial folder that is a link: emptying it would empty the target
    (out / "p-0.0_seed-0" / "summary.json").write_text("{}")  # and a trial to retrain, whose temp files are links
    target = tmp_path / "other.txt"
    target.write_text("keep me")
    for name in (".config.yaml.partial", ".checkpoint.pt.partial", ".summary.json.partial"):
        (out / "p-0.0_seed-0" / name).symlink_to(target)
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "symbolic link" in result.output and "Traceback" not in result.output
    assert (victim / "thesis.tex").read_text() == "months of work" and target.read_text() == "keep me"
    assert json.loads((out / "p-0.0_seed-0" / "summary.json").read_text())["status"] == "completed"


def test_a_file_where_a_trial_folder_goes_fails_that_trial_in_one_line(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")
    assert runner.invoke(app, args).exit_code == 0
    import shutil

    shutil.rmtree(out / "p-0.5_seed-0")
    (out / "p-0.5_seed-0").write_text("x")
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "not a folder" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("text", ["epochs: 2\x01\n", "name: a\x07b\n"])
def test_control_characters_in_yaml_are_one_line_errors(runner, write_config, text):
    result = runner.invoke(app, ["train", str(write_config(text))])
    assert result.exit_code == 2 and "Traceback" not in result.output and "\x07" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--set", "dataset.root=a\x00b"], "no newlines or other control characters"),
    (["--set", "name=a\x01"], "name"),
])
def test_nul_and_control_characters_in_values_exit_2(runner, tiny_raw, write_config, args, message):
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_step_too_small_for_decimal_arithmetic_is_one_line(runner, tiny_raw, write_config, tmp_path):
    for step in ("1e-999999999", "1e-400"):
        result = runner.invoke(app, sweep_args(write_config(tiny_raw), tmp_path / "s", "--p", f"0..0.9:{step}"))
        assert result.exit_code == 2 and "an axis may have at most" in result.output and len(result.output) < 160, \
            result.output


def test_paths_with_markup_are_printed_literally(runner, tiny_raw, write_config, tmp_path):
    runs = tmp_path / "m[/x]"
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(runs)])
    assert result.exit_code == 0 and "m[/x]" in result.output, result.output
    result = runner.invoke(app, ["report", str(runs)])
    assert result.exit_code == 0 and "m[/x]" in result.output, result.output


def test_a_checkpoint_from_before_plain_generator_states_still_resumes(runner, tiny_raw, tmp_path):
    import numpy as np
    import torch

    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path)
    state = torch.load(run.checkpoint_path, weights_only=True)
    state["rng"]["numpy"] = np.random.get_state()  # as dropcli wrote it before: an ndarray inside
    torch.save(state, run.checkpoint_path)
    result = runner.invoke(app, ["train", "--resume", str(run.path), "--quiet"])
    assert result.exit_code == 0, result.output


def test_resume_of_a_run_that_completed_meanwhile_does_not_train_it_again(runner, tiny_raw, tmp_path, monkeypatch):
    from dropcli import runs as run_folders

    run = interrupted_run(tiny_raw | {"epochs": 3}, tmp_path)
    before = (run.path / "metrics.csv").read_text()
    real_claim = run_folders.RunFolder.claim.__func__

    def claim_after_the_owner_finished(cls, path):
        claimed = real_claim(cls, path)
        training.run_experiment(training.prepare(validate_config(tiny_raw | {"epochs": 3})), claimed, resume=True)
        return claimed

    monkeypatch.setattr(run_folders.RunFolder, "claim", classmethod(claim_after_the_owner_finished))
    result = runner.invoke(app, ["train", "--resume", str(run.path)])
    assert result.exit_code == 0 and "already completed" in result.output, result.output
    rows = (run.path / "metrics.csv").read_text()
    assert rows.splitlines()[:2] == before.splitlines()[:2]  # epoch 1 untouched since: not trained again
    assert rows.count("\n") == 4 and run.read_summary()["resumed"] == 1


def test_a_real_short_write_on_a_full_disk_is_reported_as_one(runner, tiny_raw, write_config, tmp_path,
                                                                disk_fills_up):
    disk_fills_up()
    out = tmp_path / "sweep"
    result = runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "2"))
    assert result.exit_code == 1 and "disk full while writing" in result.output, result.output
    assert "stopped" in result.output and "Traceback" not in result.output
    assert not list(out.glob("*/.*.partial"))


def test_threads_come_from_the_config_the_option_or_the_environment(runner, tiny_raw, write_config, tmp_path,
                                                                   monkeypatch):
    import torch

    from dropcli.experiment import default_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what the suite pins
    assert default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")  # a Slurm task's share of a node
    assert default_threads() == 1
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert 1 <= default_threads() <= len(os.sched_getaffinity(0))
    try:
        result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path),
                                     "--threads", "2"])
        assert result.exit_code == 0, result.output
        [summary] = tmp_path.glob("*/summary.json")
        assert json.loads(summary.read_text())["torch_threads"] == 2
        assert "threads: 2" in (summary.parent / "config.yaml").read_text()
    finally:
        torch.set_num_threads(1)
