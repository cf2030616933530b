"""Bad data from files: one line naming the file and what is wrong, exit code 2, and no run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from dropcli.cli import app
from tests.test_datasets import separable, tiny, write_csv, write_images, write_npz


def refused(runner, tmp_path: Path, dataset: dict, *expected: str, **top: object) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**tiny(dataset), **top}))
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(runs), "--quiet", "--threads", "1"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert all(text in errors[0] for text in expected), errors[0]
    assert "Traceback" not in result.output
    assert not runs.exists() or not any(runs.iterdir())  # nothing written


def npz_with(tmp_path: Path, **arrays: np.ndarray) -> dict:
    np.savez(tmp_path / "data.npz", **arrays)
    return {"name": "npz", "path": "data.npz"}


X, Y = separable()


@pytest.mark.parametrize("arrays, expected", [
    ({"x": X}, ("no array 'y'",)),
    ({"y": Y}, ("no array 'x'",)),
    ({"x": X, "y": Y[:-1]}, ("120 examples but 119 labels",)),
    ({"x": X.astype(str), "y": Y}, ("features must be numbers",)),
    ({"x": np.where(np.arange(120)[:, None] == 7, np.nan, X), "y": Y}, ("NaN or infinite", "example 7")),
    ({"x": np.where(np.arange(120)[:, None] == 3, np.inf, X), "y": Y}, ("NaN or infinite",)),
    ({"x": X, "y": np.zeros(120, dtype=int)}, ("one class only",)),
    ({"x": X, "y": np.where(Y == 2, 3, Y)}, ("0..K-1", "no example of class 2")),
    ({"x": X, "y": Y - 1}, ("labels must be 0..K-1, got -1",)),
    ({"x": X, "y": Y + 0.5}, ("whole numbers",)),
    ({"x": X, "y": np.where(np.arange(120) == 0, np.nan, Y)}, ("missing (NaN)",)),
    ({"x": X, "y": Y[:, None]}, ("one label per example",)),
    ({"x": X[:, 0], "y": Y}, ("one row of features per example",)),
    ({"x": X, "y": Y, "x_test": X}, ("x_test without y_test",)),
    ({"x": X, "y": Y, "x_test": X[:, :3], "y_test": Y}, ("shape [3]", "[6]", "must match")),
    ({"x": X, "y": Y, "x_test": X, "y_test": Y + 5}, ("label 7 is not a class",)),
    ({"x": X, "y": Y, "classes": np.array(["a", "b"])}, ("2 names for 3 classes",)),
])
def test_bad_npz_arrays(runner, tmp_path, arrays, expected):
    refused(runner, tmp_path, npz_with(tmp_path, **arrays), *expected)


def test_object_arrays_are_not_unpickled(runner, tmp_path):
    np.savez(tmp_path / "data.npz", x=X, y=np.array([{"a": 1}] * 120, dtype=object))
    refused(runner, tmp_path, {"name": "npz", "path": "data.npz"}, "dataset.path", "class names as a string array")


@pytest.mark.parametrize("content, expected", [
    (None, ("dataset.path", "does not exist")),
    (b"not a zip", ("dataset.path", "which dropcli does not load")),
])
def test_missing_or_unreadable_npz(runner, tmp_path, content, expected):
    if content is not None:
        (tmp_path / "data.npz").write_bytes(content)
    refused(runner, tmp_path, {"name": "npz", "path": "data.npz"}, *expected)


def test_a_missing_test_file(runner, tmp_path):
    write_npz(tmp_path / "data.npz")
    refused(runner, tmp_path, {"name": "npz", "path": "data.npz", "test_path": "nope.npz"},
            "dataset.test_path", "nope.npz does not exist")


def write_table(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n")


ROWS = [f"{i % 7}.5,{i % 3},{'ab'[i % 2]}" for i in range(30)]


@pytest.mark.parametrize("rows, target, expected", [
    (ROWS, "label", ("dataset.target", "no column 'label'", "a, b, kind")),
    ([r.replace("5,", "x,", 1) if i == 4 else r for i, r in enumerate(ROWS)], "kind",
     ("column 'a' is not numeric", "'4.x'")),
    ([",".join(["", *r.split(",")[1:]]) if i == 2 else r for i, r in enumerate(ROWS)], "kind", ("NaN or infinite",)),
    ([",".join([*r.split(",")[:2], ""]) if i == 2 else r for i, r in enumerate(ROWS)], "kind",
     ("1 rows have no 'kind'",)),
    ([",".join([*r.split(",")[:2], "ab"]) for r in ROWS], "kind", ("one class only",)),
])
def test_bad_tables(runner, tmp_path, rows, target, expected):
    write_table(tmp_path / "t.csv", "a,b,kind", rows)
    refused(runner, tmp_path, {"name": "csv", "path": "t.csv", "target": target}, *expected)


def test_a_table_with_no_feature_column(runner, tmp_path):
    write_table(tmp_path / "t.csv", "kind", ["a", "b"] * 10)
    refused(runner, tmp_path, {"name": "csv", "path": "t.csv", "target": "kind"}, "no feature column")


def test_a_test_table_without_a_training_column(runner, tmp_path):
    write_csv(tmp_path / "train.csv")
    write_table(tmp_path / "test.csv", "a,b,kind", ["1,2,cat"] * 5)
    refused(runner, tmp_path, {"name": "csv", "path": "train.csv", "test_path": "test.csv", "target": "kind"},
            "dataset.test_path", "no column 'c'")


def test_a_test_table_with_a_class_the_training_data_lack(runner, tmp_path):
    write_csv(tmp_path / "train.csv")
    write_table(tmp_path / "test.csv", "a,b,c,d,e,f,kind", ["1,2,3,4,5,6,cat", "1,2,3,4,5,6,fox"])
    refused(runner, tmp_path, {"name": "csv", "path": "train.csv", "test_path": "test.csv", "target": "kind"},
            "class 'fox' is not among")


def test_parquet_without_a_parquet_engine_is_one_line(runner, tmp_path):
    pytest.importorskip("pandas")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
        refused(runner, tmp_path, {"name": "csv", "path": "t.parquet", "target": "kind"}, "needs pyarrow")
    else:
        pytest.skip("pyarrow is installed: parquet files are read")


def test_images_of_mixed_modes(runner, tmp_path):
    write_images(tmp_path / "images", mode="RGB")
    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(tmp_path / "images" / "b" / "grey.png")
    refused(runner, tmp_path, {"name": "image_folder", "path": "images", "image_size": [8, 8]},
            "images of mixed modes", "grey.png is grey (L)", "colour (RGB)")


@pytest.mark.parametrize("make, expected", [
    (lambda root: None, ("dataset.path", "does not exist")),
    (lambda root: write_images(root, classes=("a",)), ("one class folder only",)),
    (lambda root: (write_images(root), (root / "c").mkdir()), ("no valid file for the classes c",)),
    (lambda root: (write_images(root), (root / "a" / "bad.png").write_bytes(b"no png")),
     ("bad.png is not a readable",)),
])
def test_bad_image_folders(runner, tmp_path, make, expected):
    make(tmp_path / "images")
    refused(runner, tmp_path, {"name": "image_folder", "path": "images", "image_size": [8, 8]}, *expected)


@pytest.mark.parametrize("dataset, top, expected", [
    ({"name": "csv", "path": "t.csv"}, {}, ("dataset.target: required",)),
    ({"name": "npz"}, {}, ("dataset.path: required",)),
    ({"name": "npz", "path": "d.npz", "root": "data"}, {}, ("dataset.root: unknown key", "valid keys: name")),
    ({"name": "image_folder", "path": "i", "image_size": [8]}, {}, ("dataset.image_size", "[height, width]")),
    ({"name": "npz", "path": "d.npz", "test_fraction": 1.0}, {}, ("dataset.test_fraction",)),
    ({"name": "csv", "path": "t.csv", "target": "k"}, {"regularizer": {"augmentation": 1.0,
                                                                       "augmentation_transforms": ["crop"]}},
     ("crop does not apply to csv (it is for images); allowed there: noise",)),
    ({"name": "image_folder", "path": "i"},
     {"regularizer": {"augmentation": 1.0, "augmentation_transforms": ["noise"]}},
     ("noise does not apply to image_folder",)),
])
def test_config_refusals(runner, tmp_path, dataset, top, expected):
    refused(runner, tmp_path, dataset, *expected, **top)
