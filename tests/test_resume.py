"""Nothing lost: determinism, checkpoints, exact resume after a kill or Ctrl-C, sweeps resuming trials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dropcli import train as training
from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.runs import RunFolder
from dropcli.sweep import SweepSpec, open_sweep_dir, run_sweep


def metric_values(run_dir) -> list[dict[str, float]]:
    """metrics.csv without the wall-clock column, the one value that may differ between identical runs."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in RunFolder(run_dir).read_metrics()]


def regularized(tiny_raw: dict, epochs: int = 6) -> dict:
    # dropout (mask RNG), early stopping (state) and a cosine schedule: all of it must survive a resume
    return {**tiny_raw, "epochs": epochs, "optimizer": {**tiny_raw["optimizer"], "schedule": "cosine"},
            "regularizer": {"dropout": 0.3, "early_stopping": {"patience": 20}}}


def train_uninterrupted(raw: dict, parent) -> RunFolder:
    config = validate_config(raw)
    run = RunFolder.create(parent, config)
    training.run_experiment(training.prepare(config), run)
    return run


def test_different_seeds_give_different_runs(tiny_raw, tmp_path):
    a = train_uninterrupted({**tiny_raw, "seed": 0}, tmp_path)
    b = train_uninterrupted({**tiny_raw, "seed": 1}, tmp_path)
    assert metric_values(a.path) != metric_values(b.path)


def test_interrupted_after_logging_but_before_the_checkpoint_resumes_exactly(tiny_raw, tmp_path):
    raw = regularized(tiny_raw)
    reference = train_uninterrupted(raw, tmp_path / "reference")

    def interrupt_at_epoch_4(row):
        if row["epoch"] == 4:  # metrics row 4 is written, checkpoint 4 is not: row 4 must be redone
            raise KeyboardInterrupt

    config = validate_config(raw)
    run = RunFolder.create(tmp_path / "victim", config)
    with pytest.raises(training.TrainingInterrupted):
        training.run_experiment(training.prepare(config), run, interrupt_at_epoch_4)
    assert run.read_summary()["status"] == "interrupted"
    assert run.checkpoint_path.is_file()

    summary = training.run_experiment(training.prepare(config), run, resume=True)
    assert summary["status"] == "completed" and summary["resumed"] == 1
    assert metric_values(run.path) == metric_values(reference.path)
    assert summary["test_acc"] == reference.read_summary()["test_acc"]
    assert not run.checkpoint_path.exists()  # spent once the run completed


@pytest.mark.parametrize("regularizer", [{"augmentation": 1.5, "dropout": 0.2},  # its generator's state
                                         {"concrete_dropout": {}}])  # the learned rates and their param group
def test_regularizers_with_state_of_their_own_resume_exactly(tiny_raw, tmp_path, regularizer):
    raw = {**tiny_raw, "epochs": 4, "regularizer": regularizer}
    reference = train_uninterrupted(raw, tmp_path / "reference")

    def stop_at_3(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    config = validate_config(raw)
    run = RunFolder.create(tmp_path / "cut", config)
    with pytest.raises(training.TrainingInterrupted):
        training.run_experiment(training.prepare(config), run, stop_at_3)
    summary = training.run_experiment(training.prepare(config), run, resume=True)
    assert summary["resumed"] == 1 and metric_values(run.path) == metric_values(reference.path)
    assert list(run.read_metrics()[-1]) == list(reference.read_metrics()[-1])  # learned_p1 too, where logged


def test_resume_after_early_stopping_decided_goes_straight_to_the_finish(tiny_raw, tmp_path):
    raw = {**tiny_raw, "epochs": 30, "optimizer": {"lr": 0.01, "batch_size": 32},
           "regularizer": {"early_stopping": {"patience": 2}}}
    reference = train_uninterrupted(raw, tmp_path / "reference")
    config = validate_config(raw)
    run = RunFolder.create(tmp_path / "victim", config)
    real_finish = training.evaluated_metrics

    def die_while_finishing(exp, last_row=None):
        raise KeyboardInterrupt

    training.evaluated_metrics = die_while_finishing
    try:
        with pytest.raises(training.TrainingInterrupted):
            training.run_experiment(training.prepare(config), run)
    finally:
        training.evaluated_metrics = real_finish
    summary = training.run_experiment(training.prepare(config), run, resume=True)
    assert summary["stop_reason"].startswith("early_stopping")
    assert metric_values(run.path) == metric_values(reference.path)
    assert summary["restored_epoch"] == reference.read_summary()["restored_epoch"]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_metrics(data_root, tmp_path, write_config, runner):
    """A real process, killed with SIGKILL mid-training, resumed with `dropcli train --resume`."""
    raw = {"name": "victim", "epochs": 12, "device": "cpu",
           "dataset": {"root": str(data_root), "train_size": 2000, "val_fraction": 0.1},
           "model": {"hidden_sizes": [256, 256]}, "optimizer": {"batch_size": 32},
           "regularizer": {"dropout": 0.3}}
    config_path = write_config(raw)
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "dropcli.cli", "train", str(config_path),
                                "--runs-dir", str(runs), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        metrics = list(runs.glob("*/metrics.csv"))
        if metrics and len(metrics[0].read_text().splitlines()) >= 4:  # header + 3 epochs
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    [victim] = list(runs.iterdir())
    assert json.loads((victim / "summary.json").read_text())["status"] == "running"  # died without a word
    assert len(RunFolder(victim).read_metrics()) < 12

    result = runner.invoke(app, ["train", "--resume", str(victim), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((victim / "summary.json").read_text())["status"] == "completed"

    reference = runs / "reference"
    result = runner.invoke(app, ["train", str(config_path), "--runs-dir", str(reference), "--quiet"])
    assert result.exit_code == 0
    [reference_run] = list(reference.iterdir())
    assert metric_values(victim) == metric_values(reference_run)


@pytest.mark.slow
def test_sigint_stops_cleanly_with_exit_130_and_the_resume_command(data_root, tmp_path, write_config):
    raw = {"name": "ctrl-c", "epochs": 20_000, "device": "cpu",  # cannot end before the signal, however slow
           "dataset": {"root": str(data_root), "train_size": 1000}, "model": {"hidden_sizes": [64]}}
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "dropcli.cli", "train", str(write_config(raw)),
                                "--runs-dir", str(runs), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "300"},
                               # as from a terminal: a shell's background job (`ci &`) would ignore SIGINT
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (list(runs.glob("*/metrics.csv")) and
                                          len(next(runs.glob("*/metrics.csv")).read_text().splitlines()) >= 3):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    [run] = list(runs.iterdir())
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert f"dropcli train --resume {run}" in " ".join(stderr.split())


def test_resume_refuses_overrides_and_non_run_folders(runner, tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a dropcli run folder" in result.output
    result = runner.invoke(app, ["train", "--resume", str(tmp_path), "--set", "epochs=3"])
    assert result.exit_code == 2 and "--set and --threads cannot change" in result.output
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2 and "--resume RUN_DIR" in result.output


def test_a_sweep_continues_an_interrupted_trial_from_its_checkpoint(tiny_raw, tmp_path):
    raw = regularized(tiny_raw)
    spec = SweepSpec(base=validate_config(raw).to_dict(), axes={"regularizer.dropout": [0.3]}, seeds=[0])
    trials = spec.trials()
    sweep_dir = tmp_path / "sweep"
    open_sweep_dir(sweep_dir, spec, trials, "test")
    trial = next(t for t in trials if t.settings["regularizer.dropout"] == 0.3)

    class InterruptAtEpoch3:
        def start(self, total, done): ...
        def trial_started(self, t): self.current = t
        def trial_ended(self, t, status, error=None): ...
        def epoch(self, row):
            if self.current.name == trial.name and row["epoch"] == 3:
                raise KeyboardInterrupt

    with pytest.raises(training.TrainingInterrupted):
        run_sweep(trials, sweep_dir, InterruptAtEpoch3())
    outcome = run_sweep(trials, sweep_dir)
    assert trial.name in outcome.trained
    reference = train_uninterrupted(trial.config.to_dict(), tmp_path / "reference")
    assert metric_values(sweep_dir / trial.name) == metric_values(reference.path)
    assert json.loads((sweep_dir / trial.name / "summary.json").read_text())["resumed"] == 1


def test_resume_refuses_a_checkpoint_from_another_device(tiny_raw, tmp_path, runner):
    import torch

    config = validate_config(tiny_raw)
    run = RunFolder.create(tmp_path / "runs", config)
    with pytest.raises(training.TrainingInterrupted):
        def stop(row):
            if row["epoch"] == 2:  # epoch 1 has its checkpoint by then
                raise KeyboardInterrupt
        training.run_experiment(training.prepare(config), run, stop)
    run.release()  # this process stops writing it, as the interrupted `dropcli train` would have
    state = torch.load(run.checkpoint_path, weights_only=True)
    state["device"] = "cuda:0"
    torch.save(state, run.checkpoint_path)
    result = runner.invoke(app, ["train", "--resume", str(run.path)])
    assert result.exit_code == 2 and "written on cuda:0" in result.output


def test_a_completed_run_is_never_marked_failed_afterwards(tiny_raw, tmp_path):
    run = train_uninterrupted(tiny_raw, tmp_path)
    training.mark_ended(run, "failed", "RuntimeError: too late")
    assert run.read_summary()["status"] == "completed"


def test_a_resume_with_no_epoch_left_tests_at_the_scheduled_dropout_rate(tiny_raw, tmp_path, monkeypatch):
    """Scheduled, scale-at-test dropout: the test evaluation scales by the last epoch's p. A run killed after
    its last epoch resumes straight to the finish, with layers built at the configured p: the checkpoint's
    schedule factor must be put back, or its test numbers differ from the uninterrupted run's."""
    monkeypatch.setattr(training, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint after every epoch
    raw = {**tiny_raw, "epochs": 3, "regularizer": {"dropout": 0.5, "dropout_style": "scale_at_test",
                                                      "dropout_schedule": "linear_decay",
                                                      "dropout_schedule_epochs": 1}}
    config = validate_config(raw)
    reference = training.run_experiment(training.prepare(config), RunFolder.create(tmp_path / "reference", config))
    run = RunFolder.create(tmp_path / "victim", config)

    def die_while_finishing(exp, last_row=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(training, "evaluated_metrics", die_while_finishing)
        with pytest.raises(training.TrainingInterrupted):
            training.run_experiment(training.prepare(config), run)
    resumed = training.run_experiment(training.prepare(config), run, resume=True)
    keys = ("train_loss", "val_loss", "test_loss", "test_acc", "test_ece")
    assert {key: resumed[key] for key in keys} == {key: reference[key] for key in keys}


def test_resuming_a_completed_run_whose_config_was_edited_refuses_naming_the_key(runner, tiny_raw, write_config,
                                                                                tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    before = {name: (run / name).read_bytes() for name in ("metrics.csv", "summary.json", "model.pt")}
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 1"))
    result = runner.invoke(app, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 2, result.output
    assert "epochs: 2 → 1" in result.output and "never trained again" in result.output
    assert {name: (run / name).read_bytes() for name in before} == before  # never restarted
