"""Arrays a user brings (a .npz, a table, image files, a notebook's function) checked and made into tensors:
what every file-based dataset shares. Each refusal is one DatasetError line naming the file and what to fix;
nothing is written before data pass these checks (a run folder is made after its data are loaded).

Labels are integers 0..K-1 with every class present, or class names, mapped to 0..K-1 in sorted order (a
log line says so). The data files' fingerprint (size and sha256 of each) goes into summary.json, so that a
report can tell runs on different data apart.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dropcli.data import RawDataset
from dropcli.datasets import DATASETS
from dropcli.datasets.base import DatasetError, HeldOutSection

log = logging.getLogger("dropcli")
HASH_CHUNK = 1 << 20


def file_record(path: Path, shown: str | None = None) -> dict[str, Any]:
    """A data file's identity: its path, size and sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return {"path": shown or str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def fingerprint(records: Sequence[dict[str, Any]]) -> str:
    """One hash for all the data files: equal exactly when every file's content is (in the same order)."""
    return hashlib.sha256("\n".join(r["sha256"] for r in records).encode()).hexdigest()


def existing_file(path_text: str, key: str) -> Path:
    path = Path(path_text)
    if not path.exists():
        raise DatasetError(f"dataset.{key}: {path} does not exist")
    if not path.is_file():
        raise DatasetError(f"dataset.{key}: {path} is not a file")
    return path


def features(x: Any, where: str) -> np.ndarray:
    """x as float32 [N, ...]: numbers only, all finite."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: features must be numbers, got {x.dtype} values")
    if x.ndim < 2:
        raise DatasetError(f"{where}: expected one row of features per example ([N, ...]), got shape {list(x.shape)}")
    if len(x) == 0:
        raise DatasetError(f"{where}: holds no examples")
    finite = np.isfinite(x)
    if not finite.all():
        bad = (~finite).reshape(len(x), -1).any(axis=1)
        raise DatasetError(f"{where}: {int(bad.sum()):,} examples hold NaN or infinite values (the first is example "
                           f"{int(np.argmax(bad))}); remove or fill them")
    return x.astype(np.float32, copy=False)


def class_labels(y: Any, where: str, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(labels as int64 0..K-1, the K class names). Without `names` (training labels) they define the
    classes; with them (test labels) they must be among them."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DatasetError(f"{where}: expected one label per example ([N]), got shape {list(y.shape)}")
    if y.dtype.kind in "USO":  # class names
        if not all(isinstance(v, str) for v in y.tolist()):
            raise DatasetError(f"{where}: labels mix names and other values (missing ones?); use names or "
                               f"integers 0..K-1")
        if names is None:
            names = sorted(set(y.tolist()))
            if len(names) < 2:
                raise DatasetError(f"{where}: one class only ({names[0]!r}); a classifier needs at least two")
            shown = ", ".join(f"{name} → {i}" for i, name in enumerate(names[:5]))
            log.warning(f"{where}: labels are class names, numbered in sorted order: {shown}"
                        f"{', ...' if len(names) > 5 else ''}")
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(y.tolist()) - set(index))
        if unknown:
            raise DatasetError(f"{where}: class {unknown[0]!r} is not among the training data's classes "
                               f"({', '.join(names[:10])})")
        return np.array([index[v] for v in y.tolist()], dtype=np.int64), names
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DatasetError(f"{where}: {int((~np.isfinite(y)).sum()):,} labels are missing (NaN) or infinite")
        if not (y == np.round(y)).all():
            raise DatasetError(f"{where}: labels must be whole numbers 0..K-1 (or class names), got "
                               f"{y[y != np.round(y)][0]}")
    elif y.dtype.kind not in "biu":
        raise DatasetError(f"{where}: labels must be integers 0..K-1 or class names, got {y.dtype} values")
    labels = y.astype(np.int64)
    if len(labels) and labels.min() < 0:
        raise DatasetError(f"{where}: labels must be 0..K-1, got {labels.min()}")
    if names is None:
        present = np.unique(labels)
        if len(present) < 2:
            raise DatasetError(f"{where}: one class only ({present.tolist()}); a classifier needs at least two")
        missing = sorted(set(range(int(labels.max()) + 1)) - set(present.tolist()))
        if missing:
            raise DatasetError(f"{where}: labels must be 0..K-1 with every class present: no example of class "
                               f"{missing[0]} (labels run 0..{labels.max()}); renumber them, or store class names")
        names = [str(i) for i in range(int(labels.max()) + 1)]
    elif len(labels) and labels.max() >= len(names):
        raise DatasetError(f"{where}: label {labels.max()} is not a class of the training data (0..{len(names) - 1})")
    return labels, names


def hold_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool indices, test indices): round(fraction * n) examples held out, chosen by `seed` alone."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    n_test = max(1, round(n * fraction))
    if n_test >= n:
        raise DatasetError(f"dataset.test_fraction: {fraction} of {n} examples leaves none to train on")
    return order[n_test:], order[:n_test]


def raw_dataset(x: Any, y: Any, test: tuple[Any, Any] | None, section: HeldOutSection, where: str,
                test_where: str, files: list[dict[str, Any]], class_names: list[str] | None = None,
                standardise: bool = False) -> RawDataset:
    """Checked tensors and their description (summary.json's "data"). Without `test`, section.test_fraction
    of the examples is held out with section.test_split_seed. `standardise`: each feature to mean 0, std 1
    with the training pool's statistics (a table's columns come in any units)."""
    x = features(x, f"{where} (x)")
    labels, names = class_labels(y, f"{where} (y)", class_names)
    if len(x) != len(labels):
        raise DatasetError(f"{where}: {len(x):,} examples but {len(labels):,} labels; they must have the same length")
    if test is None:
        pool, held = hold_out(len(labels), section.test_fraction, section.test_split_seed)
        x_pool, y_pool, x_test, y_test = x[pool], labels[pool], x[held], labels[held]
        how: dict[str, Any] = {"held_out": section.test_fraction, "seed": section.test_split_seed}
    else:
        x_pool, y_pool = x, labels
        x_test = features(test[0], f"{test_where} (x)")
        y_test, _ = class_labels(test[1], f"{test_where} (y)", names)
        if len(x_test) != len(y_test):
            raise DatasetError(f"{test_where}: {len(x_test):,} examples but {len(y_test):,} labels; they must have "
                               f"the same length")
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(f"{test_where}: test examples of shape {list(x_test.shape[1:])}, training ones "
                               f"{list(x.shape[1:])}; they must match")
        how = {"from": test_where}
    pool_x, test_x = torch.from_numpy(np.ascontiguousarray(x_pool)), torch.from_numpy(np.ascontiguousarray(x_test))
    if standardise:  # with the training pool's statistics only, never the test split's
        mean, std = pool_x.mean(dim=0, keepdim=True), pool_x.std(dim=0, keepdim=True).clamp_min(1e-6)
        pool_x, test_x = (pool_x - mean) / std, (test_x - mean) / std
    description = {"fingerprint": fingerprint(files), "files": files, "classes": names, "test_split": how}
    return RawDataset(pool_x, torch.from_numpy(y_pool), test_x, torch.from_numpy(y_test), len(names), description)


def load_registered(section: HeldOutSection) -> RawDataset:
    """A dataset registered with register_dataset: its function's arrays, checked as a .npz file's are."""
    kind = DATASETS.lookup(section.name)
    assert kind.make_arrays is not None, "a registered dataset keeps its function"
    where = f"dataset {section.name}"
    made = kind.make_arrays(section)
    if not isinstance(made, tuple | list) or len(made) not in (2, 4):
        raise DatasetError(f"{where}: its function must return (x, y) or (x, y, x_test, y_test), got "
                           f"{type(made).__name__}")
    arrays = [a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a) for a in made]
    digest = hashlib.sha256()
    for array in arrays:  # no files: the arrays themselves are fingerprinted
        digest.update(f"{array.dtype}{array.shape}".encode())
        content = repr(array.tolist()).encode() if array.dtype.kind == "O" else np.ascontiguousarray(array).tobytes()
        digest.update(content)
    record = {"path": f"<{where}>", "bytes": sum(a.nbytes for a in arrays), "sha256": digest.hexdigest()}
    test = (arrays[2], arrays[3]) if len(arrays) == 4 else None
    return raw_dataset(arrays[0], arrays[1], test, section, where, f"{where} (test)", [record])
