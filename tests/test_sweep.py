from __future__ import annotations

import json

import pytest
import yaml

from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.sweep import SweepError, SweepSpec, parse_non_negative_list, parse_rates, parse_seeds

# --- the range parser ---------------------------------------------------------------------------------------

def test_a_range_gives_exact_decimal_rates_and_the_baseline():
    assert parse_rates("0.1..0.7") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert parse_rates("0.1..0.7:0.2") == [0.0, 0.1, 0.3, 0.5, 0.7]
    assert parse_rates("0.05..0.15:0.05") == [0.0, 0.05, 0.1, 0.15]
    assert 0.30000000000000004 not in parse_rates("0..0.9")


def test_a_comma_list_is_sorted_deduplicated_and_gets_the_baseline():
    assert parse_rates("0.5,0.2,0.5") == [0.0, 0.2, 0.5]
    assert parse_rates("0,0.2") == [0.0, 0.2]


@pytest.mark.parametrize("text, why", [
    ("1.2..1.5", "outside [0, 1)"),
    ("abc", "not a number"),
    ("0.5..0.1", "runs backwards"),
    ("0.1..0.5:0", "step must be > 0"),
    ("0.1..0.5:-0.1", "step must be > 0"),
    ("0.2,1", "outside [0, 1)"),
    ("nan", "not a finite number"),
])
def test_bad_rates_name_the_option_and_the_allowed_form(text, why):
    with pytest.raises(SweepError) as caught:
        parse_rates(text)
    [problem] = caught.value.problems
    assert problem.startswith("--p ") and why in problem and "A..B[:STEP]" in problem


def test_l2_list_and_seeds():
    assert parse_non_negative_list("1e-3,0,1e-4", "--l2") == [0.0, 1e-4, 1e-3]
    with pytest.raises(SweepError, match="--l2"):
        parse_non_negative_list("-1", "--l2")
    assert parse_seeds(3, None) == [0, 1, 2] and parse_seeds(None, "7,2") == [2, 7]
    with pytest.raises(SweepError, match="--seeds 0"):
        parse_seeds(0, None)


# --- trial expansion ---------------------------------------------------------------------------------------

def test_trials_are_the_product_of_axes_and_seeds():
    spec = SweepSpec(base=validate_config({}).to_dict(),
                     axes={"regularizer.dropout": [0.0, 0.5], "regularizer.l2": [0.0, 1e-4]}, seeds=[0, 1])
    trials = spec.trials()
    assert len(trials) == 8 and len({t.name for t in trials}) == 8
    trial = next(t for t in trials if t.name == "p-0.5_l2-0.0001_seed-1")
    assert trial.config.regularizer.dropout == 0.5 and trial.config.regularizer.l2 == 1e-4 and trial.config.seed == 1


def test_grid_values_may_be_lists_and_duplicates_collapse():
    from dropcli.sweep import parse_grid

    assert parse_grid("model.hidden_sizes=[8,8],[16]") == ("model.hidden_sizes", [[8, 8], [16]])
    assert parse_grid("epochs=1,1,2") == ("epochs", [1, 2])
    spec = SweepSpec(base=validate_config({}).to_dict(), axes={"model.hidden_sizes": [[8, 8], [16]]}, seeds=[0])
    assert [t.name for t in spec.trials()] == ["hidden_sizes-8x8_seed-0", "hidden_sizes-16_seed-0"]


def test_values_that_would_share_a_folder_are_refused():
    spec = SweepSpec(base=validate_config({}).to_dict(), axes={"optimizer.lr": [0.001, "0.001"]}, seeds=[0])
    with pytest.raises(SweepError):
        spec.trials()


def test_an_invalid_axis_value_is_rejected_before_anything_runs():
    spec = SweepSpec(base=validate_config({}).to_dict(), axes={"model.name": ["mlp", "resnet"]}, seeds=[0])
    with pytest.raises(SweepError, match="model.name"):
        spec.trials()


# --- the command, end to end ---------------------------------------------------------------------------------

def sweep_args(config_path, out, *extra):
    return ["sweep", str(config_path), "--out", str(out), "--quiet", *extra]


def statuses(sweep_dir) -> dict[str, str]:
    return {p.name: json.loads((p / "summary.json").read_text())["status"]
            for p in sweep_dir.iterdir() if p.is_dir()}


def test_sweep_trains_every_trial_then_resumes_with_nothing_to_do(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.2,0.5", "--seeds", "2")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert statuses(out) == {f"p-{p}_seed-{s}": "completed" for p in ("0.0", "0.2", "0.5") for s in (0, 1)}
    rates = sorted(yaml.safe_load((run / "config.yaml").read_text())["regularizer"]["dropout"]
                   for run in out.iterdir() if run.is_dir())
    assert rates == [0.0, 0.0, 0.2, 0.2, 0.5, 0.5]
    record = json.loads((out / "sweep.json").read_text())
    assert record["axes"] == {"regularizer.dropout": [0.0, 0.2, 0.5]} and len(record["trials"]) == 6
    assert "± " in result.output  # the mean ± std table

    # a trial that died half-way is trained again; completed ones are not
    (out / "p-0.2_seed-1" / "summary.json").write_text(json.dumps({"status": "running"}))
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "trained 1, already completed 5" in again.output
    again = runner.invoke(app, args)
    assert "trained 0, already completed 6" in again.output


def test_a_different_command_into_the_same_folder_is_refused(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    config = write_config(tiny_raw)
    assert runner.invoke(app, sweep_args(config, out, "--p", "0.5", "--seeds", "1")).exit_code == 0
    result = runner.invoke(app, sweep_args(config, out, "--p", "0.3", "--seeds", "1"))
    assert result.exit_code == 2 and "different sweep" in result.output


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(runner, tiny_raw, write_config, tmp_path, monkeypatch):
    from dropcli import train as training

    real_prepare = training.prepare

    def prepare_failing_for_half(config):
        experiment = real_prepare(config)
        if config.regularizer.dropout == 0.5:
            def explode(*args, **kwargs):
                raise RuntimeError("simulated crash")
            monkeypatch.setattr(experiment.optimizer, "step", explode)
        return experiment

    monkeypatch.setattr(training, "prepare", prepare_failing_for_half)
    out = tmp_path / "sweep"
    args = sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1", "--batch", "1")
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "simulated crash" in result.output
    assert statuses(out) == {"p-0.0_seed-0": "completed", "p-0.5_seed-0": "failed"}

    monkeypatch.setattr(training, "prepare", real_prepare)
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "trained 1, already completed 1" in result.output


@pytest.mark.parametrize("extra, message", [
    (["--p", "1.2..1.5"], "--p '1.2..1.5'"),
    (["--p", "abc"], "--p 'abc': not a number"),
    (["--p", "0.5..0.1"], "runs backwards"),
    (["--p", "0.1..0.5:0"], "step must be > 0"),
    (["--seeds", "0"], "--seeds 0"),
    (["--grid", "model.name=mlp,resnet"], "model.name"),
    (["--grid", "train_size"], "expected KEY=V1,V2"),
    (["--grid", "model.hidden_sizes=[8,"], "not valid YAML"),
    (["--seed-list", "-1"], "seed"),
    (["--seeds", "2", "--seed-list", "0,1"], "give one of them"),
    (["--grid", "seed=1,2"], "use --seeds N or --seed-list"),
    (["--p", "0.1", "--grid", "regularizer.dropout=0.2,0.3"], "already an axis (--p is regularizer.dropout"),
    (["--grid", "epochs=2,3", "--grid", "epochs=4"], "epochs is given twice"),
    (["--p", "0.3", "--grid", "regularizer={dropout: 0.1},{l2: 0.1}"], "regularizer and regularizer.dropout are both"),
    (["--grid", "model.hidden_sizes=[8],[16]", "--grid", "model={name: cnn},{name: mlp}"], "one holds the other"),
    (["--grid", "executor.name=local,slurm"], "not something trials can differ in"),
    (["--set", "regularizer.dropout=0.999993"], "regularizer.dropout: must be at most 0.9999923"),
    (["--set", "model.name=cnn", "--set", "model.channels=[8,8,8,8,8,8,8]"], "cannot take inputs of shape"),
])
def test_bad_sweep_input_exits_2_and_writes_nothing(runner, tiny_raw, write_config, tmp_path, extra, message):
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path / "runs"), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_status_counts_trials_from_the_run_folders(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    assert runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "2")).exit_code == 0
    (out / "p-0.5_seed-1" / "summary.json").write_text(json.dumps({"status": "running"}))
    import shutil

    shutil.rmtree(out / "p-0.0_seed-1")
    result = runner.invoke(app, ["status", str(out)])
    assert result.exit_code == 0
    # no process holds the "running" trial: it was killed, and status says so
    assert "4 trials — 2 completed, 1 running (stale), 1 pending" in result.output
    assert "p-0.5_seed-1" in result.output and "p-0.0_seed-0" not in result.output
    result = runner.invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "not a sweep folder" in result.output


def test_dict_valued_axes_give_readable_trial_names():
    from dropcli.sweep import trial_name

    assert trial_name({"regularizer.early_stopping": {"patience": 5, "metric": "val_acc"}}) == \
        "early_stopping-patience5+metric.val-acc"
    assert trial_name({"regularizer.dropblock": {"p": 0.1, "block_size": 3}}) == "dropblock-p0.1+block-size3"


def test_a_broken_trial_whose_group_fails_before_emptying_it_is_not_reported_trained(tiny_raw, tmp_path,
                                                                                    monkeypatch):
    """A trial whose summary says completed over a missing metrics.csv trains again; when its group fails
    before emptying its folder (a folder it cannot write), the old summary must not count as trained."""
    import shutil

    from dropcli import sweep as sweeps
    from dropcli.runs import RunFolder

    spec = SweepSpec(base=validate_config(tiny_raw).to_dict(), axes={"regularizer.dropout": [0.0]}, seeds=[0, 1])
    trials, folder = spec.trials(), tmp_path / "sweep"
    sweeps.open_sweep_dir(folder, spec, trials, "test")
    assert len(sweeps.run_sweep(trials, folder, batch=2).trained) == 2
    first, second = trials
    shutil.rmtree(folder / first.name)  # pending
    (folder / second.name / "metrics.csv").unlink()  # says completed, but broken
    real = RunFolder.start_fresh

    def start_fresh(self, config):
        if self.path.name == first.name:
            raise PermissionError(13, "Permission denied", str(self.path))
        real(self, config)

    monkeypatch.setattr(RunFolder, "start_fresh", start_fresh)
    outcome = sweeps.run_sweep(trials, folder, batch=2)
    assert outcome.trained == [] and set(outcome.failed) == {first.name, second.name}
    assert sweeps.run_status(folder / second.name) == "broken"


def plant_package(folder, name: str):
    """A package `name` in `folder` whose import leaves a file behind: what a shared folder could hold."""
    marker = folder / f"{name}-was-imported"
    (folder / name).mkdir()
    (folder / name / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return marker


def test_the_picture_worker_never_imports_code_from_the_folder_it_starts_in(tiny_raw, tmp_path, monkeypatch):
    from dropcli import train as training
    from dropcli.runs import RunFolder
    from dropcli.sweep import PictureWorker

    config = validate_config(tiny_raw)
    run = RunFolder.create(tmp_path / "runs", config)
    training.run_experiment(training.prepare(config), run)
    run.release()
    shared = tmp_path / "shared"
    shared.mkdir()
    marker = plant_package(shared, "dropcli")
    monkeypatch.chdir(shared)
    worker = PictureWorker(parallel=True)
    worker.draw([run.path])
    assert worker.process is not None
    worker.process.stdin.close()
    worker.process.wait(timeout=120)
    assert not marker.exists()
    assert (run.path / "curves.png").is_file()  # drawn by the worker itself, not by the fallback


@pytest.mark.slow
def test_sighup_a_closed_terminal_ends_a_sweeps_trials_interrupted_not_running(tiny_raw, write_config, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    config = write_config({**tiny_raw, "epochs": 500})
    out = tmp_path / "sweep"
    process = subprocess.Popen([sys.executable, "-m", "dropcli.cli", "sweep", str(config), "--out", str(out),
                                "--quiet", "--p", "0.5", "--seeds", "1", "--batch", "1"],
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.read_text().count("\n") >= 3 for p in out.glob("*/metrics.csv")):
        time.sleep(0.2)
    process.send_signal(signal.SIGHUP)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143 and "Traceback" not in output, output
    statuses = {json.loads(p.read_text())["status"] for p in out.glob("*/summary.json")}
    assert statuses and "running" not in statuses
    errors = {json.loads(p.read_text()).get("error") for p in out.glob("*/summary.json")}
    assert "stopped by SIGHUP" in errors


def test_rerunning_a_completed_sweep_on_a_read_only_folder_says_it_is_completed(runner, tiny_raw, write_config,
                                                                               tmp_path, monkeypatch):
    import errno

    from dropcli import files, locks

    args = ["sweep", str(write_config(tiny_raw)), "--out", str(tmp_path / "sweep"), "--quiet", "--p", "0.5",
            "--seeds", "1"]
    assert runner.invoke(app, args).exit_code == 0

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "sweep" / ".lock"))

    monkeypatch.setattr(locks, "acquire", read_only)
    monkeypatch.setattr(files, "open_new", read_only)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "already completed" in result.output and "Read-only" not in result.output


def test_a_sweep_folder_whose_name_is_not_utf8_trains(runner, tiny_raw, write_config, tmp_path):
    import os

    out = tmp_path / os.fsdecode(b"sweep-\xff")
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--out", str(out), "--quiet", "--seeds", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "seed-0" / "summary.json").read_text())["status"] == "completed"
