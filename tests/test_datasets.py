"""Datasets from files (npz, csv, image_folder): each trains, sweeps and reports end to end on small files
written here; the example folder trains; paths, fingerprints and the test split behave as documented."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from dropcli.cli import app
from dropcli.config import load_config

# --- small data files, the same problem in every format ----------------------------------------------------


def separable(n: int = 120, features: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of points around different centres: learnable in two epochs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(0, 2, (3, features))
    return (centres[y] + rng.normal(0, 1, (n, features))).astype(np.float32), y


def write_npz(path: Path, **extra: np.ndarray) -> Path:
    x, y = separable()
    np.savez(path, x=x, y=y, **extra)
    return path


def write_csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    x, y = separable(n, seed=seed)
    names = np.array(["cat", "dog", "eel"])[y]
    lines = ["a,b,c,d,e,f,kind"] + [",".join([*(f"{v:.4f}" for v in row), name]) for row, name in zip(x, names)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(root: Path, per_class: int = 10, mode: str = "RGB", classes: tuple[str, ...] = ("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (10, 12, 3)).astype(np.uint8) + np.uint8(150 * k)  # class b brighter
            Image.fromarray(pixels).convert(mode).save(root / name / f"{i}.png")
    return root


def tiny(dataset: dict, name: str = "own") -> dict:
    return {"name": name, "epochs": 2, "device": "cpu", "dataset": dataset,
            "model": {"hidden_sizes": [16]}, "optimizer": {"batch_size": 16, "lr": 0.01}}


def train(runner, config: Path, runs: Path) -> Path:
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(runs), "--quiet", "--threads", "1"])
    assert result.exit_code == 0, result.output
    [run] = [p for p in runs.iterdir() if (p / "summary.json").is_file()]
    return run


def end_to_end(runner, tmp_path: Path, dataset: dict) -> dict:
    """train, sweep (--p 0,0.5) and report on one config: the summary of the lone run."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny(dataset)))
    run = train(runner, config, tmp_path / "runs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2

    sweep = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(config), "--p", "0.5", "--seeds", "1", "--out", str(sweep),
                                 "--quiet", "--threads", "1"])
    assert result.exit_code == 0, result.output
    trials = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
    assert len(trials) == 2 and {t["status"] for t in trials} == {"completed"}
    assert {t["data"]["fingerprint"] for t in trials} == {summary["data"]["fingerprint"]}

    result = runner.invoke(app, ["report", str(sweep), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "report.md").is_file()
    return summary


# --- each format end to end ---------------------------------------------------------------------------------


def test_npz_trains_sweeps_and_reports(runner, tmp_path):
    path = write_npz(tmp_path / "data.npz", classes=np.array(["red", "green", "blue"]))
    summary = end_to_end(runner, tmp_path, {"name": "npz", "path": "data.npz", "test_fraction": 0.25})
    data = summary["data"]
    assert data["classes"] == ["red", "green", "blue"]  # the file's names, for reports
    assert data["test_split"] == {"held_out": 0.25, "seed": 0}
    assert summary["test_examples"] == 30 and summary["train_examples"] + summary["val_examples"] == 90
    [record] = data["files"]
    assert record["path"] == str(path) and record["bytes"] == path.stat().st_size and len(record["sha256"]) == 64


def test_npz_with_its_own_test_arrays(runner, tmp_path):
    x_test, y_test = separable(30, seed=1)
    write_npz(tmp_path / "data.npz", x_test=x_test, y_test=y_test)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny({"name": "npz", "path": "data.npz"})))
    summary = json.loads((train(runner, config, tmp_path / "runs") / "summary.json").read_text())
    assert summary["test_examples"] == 30 and summary["train_examples"] + summary["val_examples"] == 120
    assert summary["data"]["classes"] == ["0", "1", "2"] and "from" in summary["data"]["test_split"]


def test_csv_trains_sweeps_and_reports_with_class_names(runner, tmp_path, caplog):
    write_csv(tmp_path / "table.csv")
    summary = end_to_end(runner, tmp_path, {"name": "csv", "path": "table.csv", "target": "kind"})
    assert summary["data"]["classes"] == ["cat", "dog", "eel"]


def test_csv_class_names_are_numbered_in_sorted_order_and_said(tmp_path, caplog):
    from dropcli.data import load_splits

    write_csv(tmp_path / "table.csv")
    config = load_config(None, ["dataset.name=csv", f"dataset.path={tmp_path / 'table.csv'}",
                                "dataset.target=kind"])
    with caplog.at_level("WARNING", logger="dropcli"):
        splits = load_splits(config.dataset, seed=0)
    assert "cat → 0, dog → 1, eel → 2" in caplog.text
    assert splits.num_classes == 3 and splits.input_shape == (6,)
    pool = np.concatenate([splits.x_train.numpy(), splits.x_val.numpy()])
    assert np.allclose(pool.mean(axis=0), 0, atol=1e-5)  # standardised with the training pool's statistics


def test_csv_with_a_test_file(runner, tmp_path):
    write_csv(tmp_path / "train.csv")
    write_csv(tmp_path / "test.csv", n=30, seed=0)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny({"name": "csv", "path": "train.csv", "test_path": "test.csv",
                                           "target": "kind"})))
    summary = json.loads((train(runner, config, tmp_path / "runs") / "summary.json").read_text())
    assert summary["test_examples"] == 30 and len(summary["data"]["files"]) == 2


@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("L", 1)])
def test_image_folder_trains_sweeps_and_reports(runner, tmp_path, mode, channels):
    write_images(tmp_path / "images", mode=mode)
    summary = end_to_end(runner, tmp_path, {"name": "image_folder", "path": "images", "image_size": [8, 8],
                                            "test_fraction": 0.2})
    assert summary["data"]["classes"] == ["a", "b"] and len(summary["data"]["files"]) == 20
    assert summary["test_examples"] == 4


def test_image_folder_gives_images_of_the_asked_size_and_crops_them(tmp_path):
    from dropcli.data import load_splits

    write_images(tmp_path / "images", mode="L")
    config = load_config(None, ["dataset.name=image_folder", f"dataset.path={tmp_path / 'images'}",
                                "dataset.image_size=[6,7]", "regularizer.augmentation=1"])
    splits = load_splits(config.dataset, seed=0)
    assert splits.input_shape == (1, 6, 7)
    from dropcli.datasets import augmentations

    assert augmentations("image_folder") == (("crop", "flip"), ("crop", "flip"))


def test_augmentation_and_label_noise_work_on_tables(runner, tmp_path):
    write_npz(tmp_path / "data.npz")
    raw = tiny({"name": "npz", "path": "data.npz", "label_noise": 0.2, "train_size": 40})
    raw["regularizer"] = {"augmentation": 1.0}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    summary = json.loads((train(runner, config, tmp_path / "runs") / "summary.json").read_text())
    assert summary["train_examples"] == 40 and summary["status"] == "completed"


# --- paths, fingerprints, the report ------------------------------------------------------------------------


def test_relative_paths_are_read_from_the_config_files_folder(tmp_path, monkeypatch):
    (tmp_path / "project" / "data").mkdir(parents=True)
    write_npz(tmp_path / "project" / "data" / "d.npz")
    base = tmp_path / "project" / "base.yaml"
    base.write_text(yaml.safe_dump({"dataset": {"name": "npz", "path": "data/d.npz"}}))
    (tmp_path / "elsewhere").mkdir()
    child = tmp_path / "elsewhere" / "child.yaml"
    child.write_text("extends: ../project/base.yaml\nepochs: 3\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(child)  # the base's path is read from the base's folder
    assert config.dataset.path == str(tmp_path / "project" / "data" / "d.npz")  # type: ignore[attr-defined]
    # --set values are read from the working directory; the resolved config records them absolute
    config = load_config(child, ["dataset.test_path=other.npz"])
    assert config.dataset.test_path == str(tmp_path / "other.npz")  # type: ignore[attr-defined]


def test_a_sweep_over_data_files_records_them_absolute(tmp_path, monkeypatch):
    from dropcli.sweep import SweepSpec

    monkeypatch.chdir(tmp_path)
    base = load_config(None, ["dataset.name=npz", "dataset.path=a.npz"]).to_dict()
    spec = SweepSpec(base=base, axes={"dataset.path": ["a.npz", "b.npz"]}, seeds=[0])
    trials = spec.trials()
    assert [t.config.dataset.path for t in trials] == [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]  # type: ignore[attr-defined]
    assert [t.name for t in trials] == ["path-a.npz_seed-0", "path-b.npz_seed-0"]


def test_the_config_prints_and_round_trips(runner, tmp_path):
    write_csv(tmp_path / "table.csv")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny({"name": "csv", "path": "table.csv", "target": "kind"})))
    result = runner.invoke(app, ["config", str(config)])
    assert result.exit_code == 0, result.output
    printed = tmp_path / "printed.yaml"
    printed.write_text(result.output)
    assert load_config(printed) == load_config(config)
    assert "target: kind" in result.output and f"path: {tmp_path / 'table.csv'}" in result.output


def test_a_built_in_dataset_keeps_its_keys_and_its_sweep_fingerprint():
    from dropcli.sweep import SweepSpec

    config = load_config(None, [])
    assert list(config.to_dict()["dataset"]) == ["name", "train_size", "val_fraction", "label_noise", "root",
                                                 "download"]
    # the fingerprint hashes sorted keys: a folder made before the datasets package keeps its name
    spec = SweepSpec(base=config.to_dict(), axes={"regularizer.dropout": [0.0, 0.5]}, seeds=[0])
    assert spec.fingerprint() == SweepSpec(base=json.loads(json.dumps(config.to_dict(), sort_keys=True)),
                                           axes={"regularizer.dropout": [0.0, 0.5]}, seeds=[0]).fingerprint()


def test_report_refuses_to_pool_runs_on_different_data(runner, tmp_path):
    path = write_npz(tmp_path / "data.npz")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny({"name": "npz", "path": "data.npz"})))
    runs = tmp_path / "runs"
    train(runner, config, runs / "a")
    x, y = separable(seed=5)  # the file changes between two runs of the same settings
    np.savez(path, x=x, y=y)
    train(runner, config, runs / "b")
    result = runner.invoke(app, ["report", str(runs), "--out", str(tmp_path / "report")])
    assert result.exit_code == 2, result.output
    assert "trained on different data" in result.output and not (tmp_path / "report").exists()


def test_the_example_trains(runner, tmp_path):
    example = Path(__file__).parent.parent / "examples" / "own_data"
    assert sum(p.stat().st_size for p in example.iterdir() if p.suffix in (".csv", ".npz")) < 200_000
    copy = tmp_path / "own_data"
    shutil.copytree(example, copy)  # relative paths: read beside the config, wherever it is
    for name in ("config.yaml", "npz.yaml"):
        result = runner.invoke(app, ["train", str(copy / name), "--runs-dir", str(tmp_path / "runs" / name),
                                     "--set", "epochs=2", "--quiet", "--threads", "1"])
        assert result.exit_code == 0, result.output
        [summary] = [json.loads(p.read_text()) for p in (tmp_path / "runs" / name).glob("*/summary.json")]
        assert summary["data"]["classes"] == ["birch", "maple", "oak"] and summary["test_examples"] == 120
