"""MNIST-1D's loader (its metadata: datasets/mnist1d.py): generated offline by the mnist1d package, cached
as .npz under dataset.root."""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

import numpy as np
import torch

from dropcli.data import WRITES, RawDataset
from dropcli.datasets.base import DatasetError
from dropcli.datasets.mnist1d import Mnist1dSection
from dropcli.files import write_atomically

log = logging.getLogger("dropcli")


def load(section: Mnist1dSection) -> RawDataset:
    root = Path(section.root).resolve()
    cache = root / "mnist1d" / "mnist1d_default_seed42.npz"
    if cache.is_file():
        try:
            return read_mnist1d(cache)
        except Exception as error:  # truncated, not a zip, other arrays: the cache is ours to remake
            log.warning(f"{cache} is damaged ({type(error).__name__}); generating MNIST-1D again")
    if not WRITES.get():
        return mnist1d_tensors(make_mnist1d())
    try:
        generate_mnist1d(cache)
    except OSError as error:
        raise DatasetError(f"dataset.root: cannot write the MNIST-1D cache under {root}: "
                           f"{error.strerror or error}") from None
    return read_mnist1d(cache)


def read_mnist1d(cache: Path) -> RawDataset:
    # allow_pickle=False: a cache in a shared folder must not run code when read
    with np.load(cache, allow_pickle=False) as arrays:
        return mnist1d_tensors({name: arrays[name] for name in ("x", "y", "x_test", "y_test")})


def mnist1d_tensors(arrays: dict[str, np.ndarray]) -> RawDataset:
    x, y, x_test, y_test = (arrays[name] for name in ("x", "y", "x_test", "y_test"))
    if x.ndim != 2 or len(x) != len(y) or x_test.shape[1:] != x.shape[1:] or len(x_test) != len(y_test) \
            or min(y.min(), y_test.min()) < 0 or max(y.max(), y_test.max()) >= 10:
        raise ValueError("arrays of the wrong shape or labels")
    return RawDataset(torch.from_numpy(x).float(), torch.from_numpy(y).long(),
                      torch.from_numpy(x_test).float(), torch.from_numpy(y_test).long(), num_classes=10)


def make_mnist1d() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds Python's and NumPy's global generators; put them back so it cannot leak into a run
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        return make_dataset(get_dataset_args())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def generate_mnist1d(cache: Path) -> None:
    data = make_mnist1d()
    cache.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # the arrays in memory, then one safe write: never through a link planted in a shared root
    np.savez(buffer, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
    write_atomically(cache, buffer.getvalue())
