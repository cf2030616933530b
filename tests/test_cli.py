from __future__ import annotations

import json

import pytest

from dropcli.cli import app


def test_help_explains_every_option(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "train" in result.output
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--set", "--runs-dir", "--quiet", "CONFIG"):
        assert option in result.output


def test_train_writes_a_completed_run(runner, tiny_raw, write_config, tmp_path):
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(runs),
                                 "--set", "regularizer.dropout=0.25"])
    assert result.exit_code == 0, result.output
    [run] = list(runs.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert "dropout: 0.25" in (run / "config.yaml").read_text()
    assert "test acc" in result.output


@pytest.mark.parametrize("overrides, message", [
    (["--set", "regularizer.dropout=1"], "regularizer.dropout: Input should be less than 1"),
    (["--set", "model.name=transformer"], "model.name: unknown model 'transformer'; allowed: mlp, cnn"),
    (["--set", "regularizer.dropuot=0.5"], "did you mean 'dropout'"),
    (["--set", "epochs"], "expected KEY=VALUE"),
    (["--set", "device=cuda:7"], "device: "),
    (["--set", "model.name=cnn", "--set", "model.channels=[8,8,8,8,8,8,8]"], "cannot take inputs of shape"),
])
def test_bad_input_exits_2_with_a_message_and_writes_nothing(runner, tiny_raw, write_config, tmp_path,
                                                             overrides, message):
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(runs), *overrides])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not runs.exists()


def test_malformed_yaml_exits_2_and_names_the_line(runner, write_config, tmp_path):
    path = write_config("epochs: 3\nmodel: [unclosed\n")
    result = runner.invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "line 3" in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_config_file_exits_2(runner, tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_missing_dataset_files_exit_2_before_any_run_folder(runner, tiny_raw, write_config, tmp_path):
    raw = {**tiny_raw, "dataset": {"name": "mnist", "root": str(tmp_path / "empty"), "download": False}}
    result = runner.invoke(app, ["train", str(write_config(raw)), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "MNIST: not found" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_failing_run_exits_1_and_is_marked_failed(runner, tiny_raw, write_config, tmp_path, monkeypatch):
    from dropcli import train as training

    def explode(exp):
        raise RuntimeError("boom")

    monkeypatch.setattr(training, "train_one_epoch", explode)
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "run failed" in result.output
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"


def test_config_prints_the_resolved_yaml_and_validates_it(runner, tiny_raw, write_config, tmp_path):
    import yaml

    path = str(write_config(tiny_raw))
    result = runner.invoke(app, ["config", path, "--set", "regularizer.dropout=0.3", "-s", "epochs=7"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["regularizer"]["dropout"] == 0.3 and resolved["epochs"] == 7
    assert resolved["optimizer"]["name"] == "adam"  # a schema default, filled in
    result = runner.invoke(app, ["config", path, "--set", "regularizer.dropout=1.5"])
    assert result.exit_code == 2 and "regularizer.dropout" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.glob("runs*"))


def test_hydra_habits_get_the_dropcli_spelling(runner, tiny_raw, write_config, tmp_path):
    path = str(write_config(tiny_raw))
    result = runner.invoke(app, ["train", path, "regularizer.dropout=0.5", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--set regularizer.dropout=0.5" in result.output
    result = runner.invoke(app, ["train", "epochs=3"])
    assert result.exit_code == 2 and "--set epochs=3" in result.output
    result = runner.invoke(app, ["sweep", path, "--epochs", "3", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--set epochs=VALUE" in result.output
    result = runner.invoke(app, ["train", path, "--set", "regularizer.dropout=0.1,0.3",
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "dropcli sweep --p 0.1,0.3" in result.output
    assert result.output.count("\n") == 1, result.output  # the habit, said once, not also pydantic's words
    result = runner.invoke(app, ["train", path, "--set", "model.hidden_sizes=8,8",
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "--set model.hidden_sizes=[8,8]" in result.output
    result = runner.invoke(app, ["config", path, "--set", "dataset.train_size=250,500"])
    assert result.exit_code == 2 and "dropcli sweep --grid dataset.train_size=250,500" in result.output
    assert not (tmp_path / "runs").exists()
    for command in ([], ["train"], ["sweep"], ["report"], ["status"], ["config"]):
        result = runner.invoke(app, [*command, "-h"])
        assert result.exit_code == 0 and "Usage:" in result.output and "<bool>" not in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "--threads", "0", "configs/quickstart.yaml"], "error: Invalid value for '--threads'"),
    (["status"], "error: Missing argument 'SWEEP_DIR'"),
    (["report", ".", "--format", "gif"], "error: Invalid value for '--format'"),
    (["report", "--bogus"], "error: No such option: --bogus"),
    (["bogus"], "error: No such command 'bogus'"),
    (["sweep", "--bogus"], "error: --bogus: no such option"),  # read as the CONFIG argument
    (["train", "--resume"], "error: Option '--resume' requires an argument ("),  # click gives no context here
])
def test_the_option_parsers_own_errors_are_one_line_too(runner, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.output.startswith(message) and result.output.count("\n") == 1, \
        result.output
    where = "dropcli" if args == ["bogus"] else f"dropcli {args[0]}"
    assert result.output.endswith(f"({where} --help)\n")


def test_dropcli_alone_shows_the_help(runner):
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "Usage: dropcli" in result.output and "Commands" in result.output


def test_l2_sweeps_get_their_zero_baseline_like_dropout_rates():
    from dropcli.config import validate_config
    from dropcli.sweep import build_spec

    spec = build_spec(validate_config({}), None, "1e-4,1e-3", [], [0])
    assert spec.axes["regularizer.l2"] == [0.0, 1e-4, 1e-3]
