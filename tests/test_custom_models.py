"""Models from code: class_path + init_args, register_model, their refusals, stacked training through torch.func,
and code that runs only from the user's own configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dropcli.cli import app
from dropcli.runs import RunFolder

MYNET = '''
from torch import nn


class MyNet(nn.Module):
    def __init__(self, in_features, num_classes, hidden=16, p=0.0):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(p),
                                    nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)


class Plain(nn.Module):  # no dropout argument: dropcli sets its nn.Dropout's p
    def __init__(self, input_shape, num_classes, hidden=16):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], hidden), nn.ReLU(), nn.Dropout(0.9),
                                    nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)


class NoDropout(nn.Module):
    def __init__(self, in_features, num_classes):
        super().__init__()
        self.layer = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.layer(x)


class WrongOutput(NoDropout):
    def forward(self, x):
        return self.layer(x)[:, :3]


class Normed(nn.Module):
    def __init__(self, in_features, num_classes):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_features, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                    nn.Linear(16, num_classes))

    def forward(self, x):
        return self.layers(x)


def not_a_class():
    return None
'''


@pytest.fixture
def custom_config(tiny_raw, tmp_path):
    """write(model keys..., regularizer=..., module=source): a config beside a module file `nets_<test>.py`."""

    def write(class_name: str = "MyNet", source: str = MYNET, regularizer: dict | None = None, **model) -> Path:
        folder = tmp_path / "code"
        folder.mkdir(exist_ok=True)
        module = f"nets_{abs(hash(str(tmp_path))) % 10**8}"  # a module name of its own per test: no stale import
        (folder / f"{module}.py").write_text(source)
        raw = {**tiny_raw, "model": {"name": "custom", "class_path": f"{module}.{class_name}", **model}}
        if regularizer:
            raw["regularizer"] = regularizer
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


def completed_runs(runs_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs_dir.rglob("summary.json"))]


def test_a_custom_model_with_dropout_arg_trains(runner, custom_config, tmp_path):
    config = custom_config(init_args={"hidden": 8}, dropout_arg="p", regularizer={"dropout": 0.3, "l2": 1e-4})
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    (summary,) = completed_runs(tmp_path / "runs")
    assert summary["status"] == "completed" and summary["num_parameters"] == 40 * 8 + 8 + 8 * 10 + 10
    run = next((tmp_path / "runs").iterdir())
    recorded = yaml.safe_load((run / "config.yaml").read_text())["model"]
    assert "hidden_sizes" not in recorded and recorded["init_args"] == {"hidden": 8}  # its own keys only
    code = json.loads((run / "code.json").read_text())
    assert code["file"].endswith(".py") and len(code["sha256"]) == 64


def test_without_dropout_arg_the_rate_is_set_on_every_nn_dropout(runner, custom_config, tmp_path):
    import torch

    config = custom_config("Plain", regularizer={"dropout": 0.25}, **{"init_args": {"hidden": 8}})
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet",
                                 "--set", "evaluation.mc_samples=2"])
    assert result.exit_code == 0, result.output
    (summary,) = completed_runs(tmp_path / "runs")
    assert summary["mc_samples"] == 2  # MC-dropout evaluation through torch's nn.Dropout
    from dropcli.config import load_config
    from dropcli.models.build import build_model

    model = build_model(load_config(config).model, (40,), 10, 0.25)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.25]


@pytest.mark.parametrize("class_name, model, regularizer, message", [
    ("Missing", {}, None, "has no Missing"),
    ("not_a_class", {}, None, "is a function; it must name an nn.Module class"),
    ("MyNet", {"init_args": {"width": 3}}, None, "model.init_args: ['width'] do not fit MyNet"),
    ("MyNet", {"dropout_arg": "rate"}, None, "model.dropout_arg: MyNet"),
    ("WrongOutput", {}, None, "returned [32, 3] for a batch of shape [32, 40]"),
    ("NoDropout", {}, {"dropout": 0.5}, "regularizer.dropout: NoDropout has no nn.Dropout"),
    ("MyNet", {}, {"dropconnect": 0.5}, "regularizer.dropconnect: not for a model from code"),
    ("MyNet", {"hidden_sizes": [8]}, None, "model.hidden_sizes: a model from code takes its settings in"),
])
def test_each_mistake_in_a_model_from_code_is_one_line_and_exit_2(runner, custom_config, tmp_path, class_name,
                                                                  model, regularizer, message):
    config = custom_config(class_name, regularizer=regularizer, **model)
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing written


def test_a_module_that_does_not_import_is_named_with_its_error(runner, custom_config, tmp_path):
    config = custom_config(source="import not_a_module_anywhere\n")
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2
    assert "does not import: ModuleNotFoundError: No module named 'not_a_module_anywhere'" in result.output


def test_a_p_by_seeds_sweep_of_a_custom_mlp_trains_stacked(runner, custom_config, tmp_path):
    config = custom_config(init_args={"hidden": 8}, dropout_arg="p")
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(config), "--p", "0,0.3", "--seeds", "2", "--batch", "4", "--out",
                                 str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    summaries = completed_runs(out)
    assert len(summaries) == 4 and all(s["status"] == "completed" and s["batched_with"] == 4 for s in summaries)


def test_stacked_trials_equal_lone_ones_where_nothing_is_random(runner, custom_config, tmp_path):
    """p = 0 (no random numbers): a stacked group's metrics are its trials' lone runs', bit for bit (nn.Linear
    layers vmap as each lone layer computes: custom.StackedLinear)."""
    config = custom_config(init_args={"hidden": 8}, dropout_arg="p", regularizer={"l2": 1e-3})
    for batch in ("1", "3"):
        result = runner.invoke(app, ["sweep", str(config), "--p", "0", "--seeds", "3", "--batch", batch, "--out",
                                     str(tmp_path / f"batch{batch}"), "--quiet"])
        assert result.exit_code == 0, result.output
    for name in ("p-0.0_seed-0", "p-0.0_seed-1", "p-0.0_seed-2"):
        lone = RunFolder(tmp_path / "batch1" / name).read_metrics()
        stacked = RunFolder(tmp_path / "batch3" / name).read_metrics()
        assert len(lone) == len(stacked) == 2
        for a, b in zip(lone, stacked):
            assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
        lone_summary, stacked_summary = (json.loads((tmp_path / f"batch{batch}" / name / "summary.json").read_text())
                                         for batch in ("1", "3"))
        assert stacked_summary["batched_with"] == 3 and stacked_summary["test_acc"] == lone_summary["test_acc"]


def test_a_model_vmap_cannot_stack_trains_one_by_one_and_the_dry_run_says_why(runner, custom_config, tmp_path):
    config = custom_config("Normed")
    result = runner.invoke(app, ["sweep", str(config), "--seeds", "2", "--batch", "4", "--dry-run",
                                 "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    assert "BatchNorm1d's running statistics are updated in place" in result.output


def test_register_model_names_a_class_for_configs(runner, tiny_raw, write_config, tmp_path):
    from torch import nn

    import dropcli

    @dropcli.register_model("test_registered_net")
    class Registered(nn.Module):
        def __init__(self, in_features: int, num_classes: int, p: float = 0.0):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(in_features, 8), nn.ReLU(), nn.Dropout(p), nn.Linear(8, num_classes))

        def forward(self, x):
            return self.layers(x)

    from dropcli.models import MODELS

    raw = {**tiny_raw, "model": {"name": "test_registered_net", "dropout_arg": "p"},
           "regularizer": {"dropout": 0.2}}
    try:
        result = runner.invoke(app, ["train", str(write_config(raw)), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
        assert result.exit_code == 0, result.output
    finally:
        MODELS.pop("test_registered_net")


MARKER_MODULE = '''
import pathlib
pathlib.Path(__file__).with_name("MARKER").write_text("imported")
from torch import nn


class Net(nn.Module):
    def __init__(self, in_features, num_classes):
        super().__init__()
        self.layer = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.layer(x)
'''


def test_reading_a_run_folder_never_imports_its_model_code(runner, tiny_raw, tmp_path):
    """A planted run folder whose config names a module that writes a marker: report, status, export and
    load_runs read it without importing that module."""
    import dropcli

    code = tmp_path / "planted_code"
    code.mkdir()
    (code / "planted_marker_net.py").write_text(MARKER_MODULE)
    run = tmp_path / "runs" / "planted-20260101-000000"
    run.mkdir(parents=True)
    raw = {**tiny_raw, "model": {"name": "custom", "class_path": "planted_marker_net.Net", "code_dir": str(code)}}
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    (run / "metrics.csv").write_text("epoch,train_loss,train_acc,val_loss,val_acc,gap_loss,gap_acc,lr,seconds\n"
                                     "1,1.0,0.5,1.1,0.4,0.1,0.1,0.001,0.1\n")
    (run / "summary.json").write_text(json.dumps({"status": "completed", "run": run.name, "test_acc": 0.4,
                                                  "test_loss": 1.2, "epochs_run": 1}))
    for command in (["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report")],
                    ["export", str(tmp_path / "runs"), "--tensorboard", str(tmp_path / "tb")]):
        runner.invoke(app, command)
    runner.invoke(app, ["status", str(tmp_path / "runs")])
    dropcli.load_runs(tmp_path / "runs")
    assert not (code / "MARKER").exists()


def test_resume_refuses_a_module_file_changed_since_the_run_began(runner, custom_config, tmp_path, fail_at_epoch):
    config = custom_config(init_args={"hidden": 8}, dropout_arg="p")
    fail_at_epoch(2, KeyboardInterrupt())
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code != 0
    run = next((tmp_path / "runs").iterdir())
    module = next(config.parent.glob("nets_*.py"))
    module.write_text(module.read_text() + "\n# edited\n")
    result = runner.invoke(app, ["train", "--resume", str(run), "--quiet"])
    assert result.exit_code == 2 and "changed since the run was created" in result.output


def test_the_example_model_trains(runner, tmp_path):
    example = Path(__file__).parents[1] / "examples" / "own_data"
    folder = tmp_path / "own_data"
    shutil.copytree(example, folder)
    result = runner.invoke(app, ["train", str(folder / "custom_model.yaml"), "--runs-dir", str(tmp_path / "runs"),
                                 "--quiet", "--set", "epochs=2", "--set", "dataset.train_size=200"])
    assert result.exit_code == 0, result.output


def test_a_sweep_resumes_only_with_the_module_file_it_began_with(runner, custom_config, tmp_path, fail_at_epoch,
                                                                 monkeypatch):
    from dropcli import train as training

    monkeypatch.setattr(training, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint at every epoch
    config = custom_config(init_args={"hidden": 8}, dropout_arg="p")
    command = ["sweep", str(config), "--p", "0,0.3", "--seeds", "1", "--batch", "2", "--out", str(tmp_path / "sweep"),
               "--quiet"]
    restore = fail_at_epoch(2, KeyboardInterrupt())
    assert runner.invoke(app, command).exit_code != 0
    restore()
    module = next(config.parent.glob("nets_*.py"))
    module.write_text(module.read_text() + "\n# edited\n")
    result = runner.invoke(app, command)
    assert result.exit_code == 2 and "changed since the run was created" in result.output, result.output


def test_a_custom_config_prints_and_round_trips(runner, custom_config, tmp_path):
    from dropcli.config import dump_yaml, load_config

    config = custom_config(init_args={"hidden": 8}, dropout_arg="p")
    result = runner.invoke(app, ["config", str(config)])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)["model"]
    assert set(printed) == {"name", "class_path", "init_args", "dropout_arg", "code_dir"}
    assert printed["code_dir"] == str(config.parent)  # the config's folder, absolute
    again = tmp_path / "again.yaml"
    again.write_text(dump_yaml(load_config(config)))
    assert load_config(again) == load_config(config)


def test_regularizers_that_act_on_any_model_train_a_custom_one_alone_and_stacked(runner, custom_config, tmp_path):
    config = custom_config(init_args={"hidden": 8}, dropout_arg="p",
                           regularizer={"l1": 1e-4, "max_norm": 2.0, "augmentation": 1.0,
                                        "early_stopping": {"patience": 1}})
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["sweep", str(config), "--p", "0,0.2", "--seeds", "1", "--batch", "2", "--out",
                                 str(tmp_path / "sweep"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert all(s["status"] == "completed" and s["batched_with"] == 2 for s in completed_runs(tmp_path / "sweep"))


def test_a_plugin_entry_point_adds_a_model_by_name(monkeypatch, tiny_raw):
    import importlib.metadata

    from dropcli import plugins
    from dropcli.config import validate_config
    from dropcli.models import MODELS

    def register() -> None:
        from torch import nn

        import dropcli

        dropcli.register_model("test_plugin_net")(nn.Linear)

    entry = importlib.metadata.EntryPoint("nets", "tests_plugin:register", plugins.GROUP)
    monkeypatch.setattr(importlib.metadata.EntryPoint, "load", lambda self: register)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [entry] if group == plugins.GROUP else [])
    plugins.load_plugins.cache_clear()
    try:
        config = validate_config({**tiny_raw, "model": {"name": "test_plugin_net"}})
        assert config.model.name == "test_plugin_net" and MODELS["test_plugin_net"].from_code
    finally:
        plugins.load_plugins.cache_clear()
        MODELS.pop("test_plugin_net", None)
