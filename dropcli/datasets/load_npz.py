"""The .npz loader (its metadata: datasets/npz.py): arrays x and y, optionally x_test and y_test (or a
test_path holding x and y) and classes (the K class names, for reports)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dropcli.data import RawDataset
from dropcli.datasets.arrays import existing_file, file_record, raw_dataset
from dropcli.datasets.base import DatasetError
from dropcli.datasets.npz import NpzSection


def load(section: NpzSection) -> RawDataset:
    path = existing_file(section.path, "path")
    arrays = read_npz(path, "path")
    files = [file_record(path)]
    has_test = [key for key in ("x_test", "y_test") if key in arrays]
    if len(has_test) == 1:
        raise DatasetError(f"dataset.path: {path} holds {has_test[0]} without "
                           f"{'y_test' if has_test[0] == 'x_test' else 'x_test'}; store both or neither")
    test: tuple[Any, Any] | None = None
    test_where = f"{path}"
    if section.test_path is not None:
        if has_test:
            raise DatasetError(f"dataset.test_path: {path} already holds x_test and y_test; give one test split")
        test_file = existing_file(section.test_path, "test_path")
        test_arrays = read_npz(test_file, "test_path")
        test, test_where = (test_arrays["x"], test_arrays["y"]), str(test_file)
        files.append(file_record(test_file))
    elif has_test:
        test, test_where = (arrays["x_test"], arrays["y_test"]), f"{path} (x_test, y_test)"
    names = None
    if "classes" in arrays:
        names = [str(name) for name in np.asarray(arrays["classes"]).reshape(-1).tolist()]
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset.path: {path}: `classes` names a class twice")
    raw = raw_dataset(arrays["x"], arrays["y"], test, section, str(path), test_where, files)
    if names is not None:
        if len(names) != raw.num_classes:
            raise DatasetError(f"dataset.path: {path}: `classes` holds {len(names)} names for {raw.num_classes} "
                               f"classes (labels 0..{raw.num_classes - 1})")
        assert raw.description is not None
        raw.description["classes"] = names
    return raw


def read_npz(path: Path, key: str) -> dict[str, np.ndarray]:
    try:
        stored = np.load(path, allow_pickle=False)  # allow_pickle=False: a file from elsewhere runs no code
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise DatasetError(f"dataset.{key}: {path} holds one array; a .npz file of arrays x and y is expected")
        with stored:
            missing = [name for name in ("x", "y") if name not in stored.files]
            if missing:
                raise DatasetError(f"dataset.{key}: {path} has no array {missing[0]!r} (it holds "
                                   f"{', '.join(stored.files) or 'no arrays'}); expected x [N, ...] and y [N]")
            return {name: stored[name] for name in stored.files}
    except DatasetError:
        raise
    except ValueError as error:  # object arrays, or a pickle: they would need unpickling
        reason = "holds pickled Python objects (an object array, or no .npz file at all)" if "pickle" in str(error) \
            else f"is not a readable .npz file ({' '.join(str(error).split())[:200]})"
        raise DatasetError(f"dataset.{key}: {path} {reason}, which dropcli does not load: store numbers, and "
                           f"class names as a string array") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DatasetError(f"dataset.{key}: {path} is not a readable .npz file ({type(error).__name__})") from None
