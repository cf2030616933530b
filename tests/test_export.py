"""Export to TensorBoard and MLflow: read back from the event files and from a real sqlite MLflow store,
the numbers equal the run folders'; exporting again duplicates nothing and replaces what changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dropcli import export as exporting
from dropcli.cli import app
from dropcli.run_plots import draw_run_curves
from dropcli.run_reading import load_run
from tests.test_results import train_runs


@pytest.fixture
def runs(tiny_raw, tmp_path) -> Path:
    """Two real runs (dropout 0.3, seeds 0 and 1) and a broken folder."""
    root = tmp_path / "runs"
    train_runs(tiny_raw, root, dropout=0.3)
    draw_run_curves(trained(root))  # as the CLI does after training
    (root / "broken").mkdir()
    (root / "broken" / "summary.json").write_text("{torn")
    return root


def trained(root: Path) -> list[Path]:
    return sorted(path for path in root.iterdir() if (path / "config.yaml").is_file())


def read_tensorboard(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(folder))
    events.Reload()
    scalars = {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {key: value.number_value if value.HasField("number_value") else value.string_value
               for key, value in start.hparams.items()}
    return scalars, hparams


def test_tensorboard_export_reads_back_equal_and_reexport_duplicates_nothing(runs, tmp_path):
    out = tmp_path / "tb"
    outcome = exporting.to_tensorboard(runs, out)
    assert sorted(outcome.written) == [p.name for p in trained(runs)] and list(outcome.left_out) == ["broken"]
    for folder in trained(runs):
        run = load_run(folder)
        scalars, hparams = read_tensorboard(out / folder.name)
        for column, tag in (("val_loss", "loss/val"), ("train_acc", "accuracy/train"), ("gap_loss", "gap/loss"),
                            ("lr", "lr")):
            assert [step for step, _ in scalars[tag]] == [1, 2]
            assert [value for _, value in scalars[tag]] == pytest.approx([r[column] for r in run.metrics], rel=1e-6)
        assert scalars["summary.test_acc"] == [(2, pytest.approx(run.summary["test_acc"], rel=1e-6))]
        assert hparams["regularizer.dropout"] == pytest.approx(0.3) and hparams["model.name"] == "mlp"
        assert hparams["seed"] == run.config["seed"] and hparams["status"] == "completed"

    again = exporting.to_tensorboard(runs, out)
    assert again.written == [] and len(again.unchanged) == 2
    changed = trained(runs)[0]
    (changed / "curves.png").unlink()  # its files changed: exported anew, replacing the old events
    third = exporting.to_tensorboard(runs, out)
    assert third.written == [changed.name] and third.unchanged == [trained(runs)[1].name]
    assert len(list((out / changed.name).glob("events.out.tfevents.*"))) == 1
    assert len(read_tensorboard(out / changed.name)[0]["loss/val"]) == 2


def test_tensorboard_export_never_overwrites_a_folder_it_did_not_write(runs, tmp_path):
    out = tmp_path / "tb"
    foreign = out / trained(runs)[0].name
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    outcome = exporting.to_tensorboard(runs, out)
    assert "not written by dropcli export" in outcome.left_out[foreign.name]
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_mlflow_export_reads_back_equal_and_reexport_duplicates_nothing(runs, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outcome = exporting.to_mlflow(runs, uri, "overfitting")
    assert len(outcome.written) == 2 and list(outcome.left_out) == ["broken"]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("overfitting").experiment_id

    def exported():
        return {Path(r.data.tags[exporting.SOURCE_TAG]).name: r for r in client.search_runs([experiment])}

    first = exported()
    assert sorted(first) == [p.name for p in trained(runs)]
    for folder in trained(runs):
        run, logged = load_run(folder), first[folder.name]
        assert logged.info.status == "FINISHED" and logged.info.run_name == folder.name
        params = logged.data.params
        assert params["regularizer.dropout"] == "0.3" and params["seed"] == str(run.config["seed"])
        history = client.get_metric_history(logged.info.run_id, "val_loss")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            [(int(r["epoch"]), r["val_loss"]) for r in run.metrics]
        assert logged.data.metrics["summary.test_acc"] == run.summary["test_acc"]
        artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
        assert {"curves.png", "config.yaml", "summary.json"} <= artifacts
        assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not in the working folder

    again = exporting.to_mlflow(runs, uri, "overfitting")
    assert again.written == [] and len(again.unchanged) == 2 and exported().keys() == first.keys()
    changed = trained(runs)[0]
    summary = json.loads((changed / "summary.json").read_text())
    (changed / "summary.json").write_text(json.dumps({**summary, "test_acc": 0.123}))
    third = exporting.to_mlflow(runs, uri, "overfitting")
    assert third.written == [changed.name]
    now = exported()
    assert len(client.search_runs([experiment])) == 2  # replaced, not added
    assert now[changed.name].info.run_id != first[changed.name].info.run_id
    assert now[changed.name].data.metrics["summary.test_acc"] == 0.123


def test_export_refusals_are_one_line_and_exit_2(runs, runner, monkeypatch, tmp_path):
    result = runner.invoke(app, ["export", str(runs)])
    assert result.exit_code == 2 and "give --tensorboard OUT and/or --mlflow URI" in result.output
    result = runner.invoke(app, ["export", str(runs), "--mlflow", str(tmp_path / "mlruns")])
    assert result.exit_code == 2 and "sqlite:///PATH/mlflow.db" in result.output
    assert not (tmp_path / "mlruns").exists()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["export", str(tmp_path / "empty"), "--mlflow", f"sqlite:///{tmp_path / 'e.db'}"])
    assert result.exit_code == 2 and "no run folders found" in result.output and not (tmp_path / "e.db").exists()
    (tmp_path / "notes.db").write_text("not a database")
    for extra, message in ((["--mlflow", f"sqlite:///{tmp_path / 'notes.db'}"], "file is not a database"),
                           (["--mlflow", f"sqlite:///{tmp_path / 'm.db'}", "--mlflow-experiment", " "],
                            "--mlflow-experiment: an experiment needs a name")):
        result = runner.invoke(app, ["export", str(runs), *extra])
        assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output
    assert (tmp_path / "notes.db").read_text() == "not a database"
    real = exporting.importlib.util.find_spec
    monkeypatch.setattr(exporting.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    result = runner.invoke(app, ["export", str(runs), "--mlflow", f"sqlite:///{tmp_path / 'm.db'}"])
    assert result.exit_code == 2 and "uv sync --extra export" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "m.db").exists()


def test_export_command_says_what_it_did(runs, runner, tmp_path):
    result = runner.invoke(app, ["export", str(runs), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 0, result.output
    assert "2 runs exported, 0 unchanged since the last export, 1 left out" in result.output
    assert "left out broken" in result.output


def test_an_interrupted_export_is_redone_and_another_sources_export_is_never_replaced(runs, tmp_path):
    """MLflow: a run whose export stopped half-way (no fingerprint yet) is exported again and the stub removed.
    TensorBoard: a half-written folder of ours is redone; one holding another run folder's export is left."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    # artifacts beside the database, as to_mlflow makes its experiments (never in the folder pytest runs from)
    experiment = client.create_experiment("overfitting", artifact_location=(tmp_path / "mlartifacts").as_uri())
    stub = trained(runs)[0]
    client.create_run(experiment, tags={exporting.SOURCE_TAG: str(stub.resolve())})  # killed right after this
    outcome = exporting.to_mlflow(runs, uri, "overfitting")
    assert sorted(outcome.written) == [p.name for p in trained(runs)]
    logged = client.search_runs([experiment])
    assert len(logged) == 2 and all(r.data.tags.get(exporting.FINGERPRINT_TAG) for r in logged)
    # killed after the new run was whole but before the old one was deleted: the old one goes next time
    client.create_run(experiment, tags={exporting.SOURCE_TAG: str(stub.resolve()), exporting.FINGERPRINT_TAG: "old"})
    again = exporting.to_mlflow(runs, uri, "overfitting")
    assert again.written == [] and len(again.unchanged) == 2 and len(client.search_runs([experiment])) == 2

    out = tmp_path / "tb"
    half = out / stub.name
    half.mkdir(parents=True)
    (half / exporting.MARKER).write_text(json.dumps({"source": str(stub.resolve()), "fingerprint": None}))
    (half / "events.out.tfevents.torn").write_bytes(b"\0")
    other = out / trained(runs)[1].name
    other.mkdir(parents=True)
    elsewhere = tmp_path / "another-sweep" / "seed-1"  # a second sweep with the same trial names, still there
    elsewhere.mkdir(parents=True)
    (other / exporting.MARKER).write_text(json.dumps({"source": str(elsewhere), "fingerprint": "x"}))
    outcome = exporting.to_tensorboard(runs, out)
    assert outcome.written == [stub.name] and not (half / "events.out.tfevents.torn").exists()
    assert "holds the export of" in outcome.left_out[other.name]
    assert json.loads((other / exporting.MARKER).read_text())["source"] == str(elsewhere)
    elsewhere.rmdir()  # gone (moved, renamed): its old export is ours to replace
    assert exporting.to_tensorboard(runs, out).written == [other.name]


def test_pruned_trials_are_exported_as_pruned(runs, tmp_path):
    from mlflow.tracking import MlflowClient

    pruned = trained(runs)[0]
    summary = json.loads((pruned / "summary.json").read_text())
    (pruned / "summary.json").write_text(json.dumps({**summary, "stop_reason": "pruned: val_loss 2.3 at epoch 1"}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exporting.to_mlflow(runs, uri, "overfitting")
    client = MlflowClient(tracking_uri=uri)
    logged = {Path(r.data.tags[exporting.SOURCE_TAG]).name: r
              for r in client.search_runs([client.get_experiment_by_name("overfitting").experiment_id])}
    assert logged[pruned.name].data.tags[exporting.STATUS_TAG] == "pruned"
    assert logged[pruned.name].info.status == "KILLED"
    assert logged[trained(runs)[1].name].info.status == "FINISHED"
    exporting.to_tensorboard(runs, tmp_path / "tb")
    assert read_tensorboard(tmp_path / "tb" / pruned.name)[1]["status"] == "pruned"


def test_a_second_tensorboard_export_into_one_target_waits_for_the_first(runs, tmp_path):
    import threading

    from dropcli import locks

    out = tmp_path / "tb"
    out.mkdir()
    held = locks.acquire(out)  # another export, half-way
    outcomes = []
    second = threading.Thread(target=lambda: outcomes.append(exporting.to_tensorboard(runs, out)))
    second.start()
    second.join(timeout=2)
    assert second.is_alive() and not outcomes  # waiting, not writing beside the first
    held.release()
    second.join(timeout=120)
    assert len(outcomes[0].written) == 2
    for folder in trained(runs):
        assert len(list((out / folder.name).glob("events.out.tfevents.*"))) == 1


def test_an_export_killed_while_replacing_a_changed_run_is_redone_not_refused(runs, tmp_path, monkeypatch):
    import shutil

    out = tmp_path / "tb"
    exporting.to_tensorboard(runs, out)
    changed = trained(runs)[0]
    (changed / "curves.png").unlink()

    real = shutil.rmtree

    def killed_half_way(folder, *args, **kwargs):  # the marker went first, then the kill
        if out not in Path(folder).parents:
            return real(folder, *args, **kwargs)
        for marker in Path(folder).rglob(exporting.MARKER):
            marker.unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(exporting.shutil, "rmtree", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        exporting.to_tensorboard(runs, out)
    monkeypatch.setattr(exporting.shutil, "rmtree", real)
    again = exporting.to_tensorboard(runs, out)
    assert not again.left_out.get(changed.name), again.left_out
    assert len(list((out / changed.name).glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock") == []


def test_a_bad_number_or_too_many_rows_leave_that_run_out_and_the_others_are_exported(runs, tmp_path, monkeypatch):
    bad, good = trained(runs)
    lines = (bad / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("seconds")] = "1e308"
    (bad / "metrics.csv").write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    outcome = exporting.to_mlflow(runs, f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "seconds = 1e+308" in outcome.left_out[bad.name] and outcome.written == [good.name]
    from dropcli import export_runs

    monkeypatch.setattr(export_runs, "MAX_EXPORT_ROWS", 1)
    outcome = exporting.to_tensorboard(runs, tmp_path / "tb")
    assert "at most 1 a run" in outcome.left_out[good.name]


def test_a_moved_run_folder_keeps_its_one_mlflow_run(runs, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exporting.to_mlflow(runs, uri)
    moved = runs.rename(tmp_path / "moved")
    outcome = exporting.to_mlflow(moved, uri)
    assert outcome.written == [] and len(outcome.unchanged) == 2
    client = MlflowClient(tracking_uri=uri)
    logged = client.search_runs([client.get_experiment_by_name("dropcli").experiment_id])
    assert len(logged) == 2
    assert {Path(r.data.tags[exporting.SOURCE_TAG]).parent for r in logged} == {moved.resolve()}


def test_hostile_targets_and_names_leave_one_run_out_or_are_escaped(runs, runner, tmp_path):
    first, second = trained(runs)
    out = tmp_path / "tb"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / first.name).symlink_to(elsewhere)  # a link planted in the target
    (second / exporting.MARKER).write_text("[" * 100_000)  # not an export marker at all: ignored in a run folder
    odd = runs / os.fsdecode(b"run-\xff")
    second.rename(odd)
    result = runner.invoke(app, ["export", str(runs), "--tensorboard", str(out), "--mlflow",
                                 f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 0, result.output
    assert "is a link" in result.output and not list(elsewhere.iterdir())
    assert "2 runs exported" in result.output.split("MLflow")[1]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    names = {r.info.run_name for r in client.search_runs([client.get_experiment_by_name("dropcli").experiment_id])}
    assert "run-\\xff" in names
    assert (out / odd.name / exporting.MARKER).is_file()
    planted = out / odd.name / exporting.MARKER
    planted.write_text('{"source": ' + "[" * 50_000 + "]" * 50_000 + ', "fingerprint": "x"}')
    again = exporting.to_tensorboard(runs, out)
    assert "not written by dropcli export" in again.left_out["run-\\xff"]


def test_a_full_disk_under_an_export_is_one_line_naming_the_file(runs, runner, tmp_path, monkeypatch):
    import errno

    from dropcli import files

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    result = runner.invoke(app, ["export", str(runs), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "No space left on device" in result.output
    assert "events.out.tfevents" in result.output or exporting.MARKER in result.output
    assert not [p for p in (tmp_path / "tb").rglob("*") if p.is_file() and p.name != ".lock"]
