"""The dataset registry: every entry declares what the schema and the augmentations read; a notebook's
register_dataset and an installed plugin (entry point group dropcli.plugins) add names the config accepts."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from typing import get_args

import numpy as np
import pytest
import yaml

import dropcli
from dropcli import plugins
from dropcli.cli import app
from dropcli.config import ConfigError, load_config
from dropcli.datasets import DATASETS, DatasetSection, augmentations, register_dataset

# --- what every entry declares --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_declares_a_section_of_its_own_name(name):
    kind = DATASETS[name]
    assert issubclass(kind.section, DatasetSection)
    assert get_args(kind.section.model_fields["name"].annotation) == (name,)
    assert load_config(None, [f"dataset.name={name}", *(f"dataset.{key}=x" for key in kind.section.path_keys
                                                          if kind.section.model_fields[key].is_required()),
                              *(["dataset.target=y"] if name == "csv" else [])]).dataset.name == name
    allowed, default = augmentations(name)
    assert set(default) <= set(allowed)
    module, _, function = kind.loader.partition(":")
    assert module.startswith("dropcli.datasets.") and function


def test_the_built_in_augmentations_are_as_before():
    assert augmentations("mnist1d") == (("shift", "scale", "noise", "correlated_noise"),) * 2
    assert augmentations("mnist") == (("crop",), ("crop",))
    assert augmentations("cifar10") == augmentations("fashion_mnist") == (("crop", "flip"), ("crop", "flip"))


def test_validating_a_config_imports_no_torch():
    code = ("import sys; from dropcli.config import load_config; "
            "load_config(None, ['dataset.name=image_folder', 'dataset.path=x']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'pandas')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- register_dataset -----------------------------------------------------------------------------------------


@pytest.fixture
def registered():
    """Names registered by a test, removed after it."""
    before = set(DATASETS)
    yield
    for name in set(DATASETS) - before:
        del DATASETS[name]


def test_a_notebooks_dataset_trains(runner, tmp_path, registered):
    @dropcli.register_dataset("blobs")
    def blobs(section):
        rng = np.random.default_rng(0)
        y = np.array(["left", "right"])[np.arange(80) % 2]
        return rng.normal(0, 1, (80, 4)) + (y == "right")[:, None] * 3, y

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"epochs": 2, "device": "cpu", "dataset": {"name": "blobs", "test_fraction": 0.25},
                                      "model": {"hidden_sizes": [8]}}))
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.output
    [summary] = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/summary.json")]
    assert summary["data"]["classes"] == ["left", "right"] and summary["test_examples"] == 20
    assert summary["data"]["files"][0]["path"] == "<dataset blobs>"


def test_a_notebooks_dataset_is_checked_as_a_file_is(tmp_path, registered):
    from dropcli.data import DatasetError, load_splits

    register_dataset("flat")(lambda section: (np.ones((10, 2)), np.zeros(10)))
    with pytest.raises(DatasetError, match="one class only"):
        load_splits(load_config(None, ["dataset.name=flat"]).dataset, seed=0)


def test_a_name_registered_twice_is_refused(registered):
    with pytest.raises(KeyError, match="registered twice"):
        register_dataset("npz")(lambda section: None)


# --- plugins through the entry point group ---------------------------------------------------------------------


@pytest.fixture
def plugin(tmp_path, monkeypatch, registered):
    """A package on the path with an entry point in dropcli.plugins: plugin(source) installs it."""

    def install(source: str, value: str = "my_plugin") -> None:
        (tmp_path / "my_plugin.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        entry = importlib.metadata.EntryPoint(name="mine", value=value, group=plugins.GROUP)
        monkeypatch.setattr(importlib.metadata, "entry_points",
                            lambda group=None: [entry] if group == plugins.GROUP else [])
        plugins.load_plugins.cache_clear()

    yield install
    plugins.load_plugins.cache_clear()
    sys.modules.pop("my_plugin", None)


PLUGIN = """
import numpy as np
import dropcli

@dropcli.register_dataset("rings")
def rings(section):
    y = np.arange(60) % 2
    return np.stack([y * 2.0 + np.cos(np.arange(60)), np.sin(np.arange(60))], axis=1), y
"""


def test_a_plugins_dataset_is_found_by_name(plugin):
    plugin(PLUGIN)
    assert "rings" not in DATASETS  # built-in names never load plugins
    load_config(None, ["dataset.name=npz", "dataset.path=x"])
    assert "rings" not in DATASETS
    assert load_config(None, ["dataset.name=rings"]).dataset.name == "rings"


def test_a_plugin_function_is_called(plugin):
    plugin(PLUGIN.replace('@dropcli.register_dataset("rings")', "") + "\ndef register():\n"
           "    dropcli.register_dataset('rings')(rings)\n", value="my_plugin:register")
    assert load_config(None, ["dataset.name=rings"]).dataset.name == "rings"


def test_an_unknown_name_lists_the_plugins_names_too(plugin):
    plugin(PLUGIN)
    with pytest.raises(ConfigError, match="'image_folder' or 'rings'"):
        load_config(None, ["dataset.name=imagenet"])


def test_a_broken_plugin_is_one_line_naming_it(plugin, runner, tmp_path):
    plugin("import not_a_module_anywhere\n")
    config = tmp_path / "config.yaml"
    config.write_text("dataset:\n  name: rings\n")
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "plugin 'mine' (my_plugin, entry point group dropcli.plugins) failed to load: ModuleNotFoundError" \
        in result.output
    assert not (tmp_path / "runs").exists()
