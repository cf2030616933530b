"""Datasets by name. Every dataset becomes in-memory tensors (train / val / test) and a batch iterator.

Small datasets train fastest straight from memory on the device, so there is no per-sample DataLoader:
an epoch is a `randperm` sliced into batches. torchvision is imported only inside its loaders (~4 s).

The test split is the dataset's own held-out split and is used once, after training, for reporting;
validation is carved out of the training pool, so nothing is ever chosen on test data.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dropcli.config import DatasetConfig
from dropcli.files import write_atomically
from dropcli.registry import Registry

log = logging.getLogger("dropcli")


class DatasetError(Exception):
    """A dataset could not be found, downloaded or read."""


@dataclass(frozen=True)
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> Splits:
        moved = {name: getattr(self, name).to(device) for name in
                 ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return replace(self, **moved)


@dataclass(frozen=True)
class RawDataset:
    """What a loader returns: the dataset's own train pool and test split, as float32 / int64 tensors."""

    x_pool: torch.Tensor
    y_pool: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int


Loader = Callable[[Path, bool], RawDataset]
DATASETS: Registry[Loader] = Registry("dataset")


def load_splits(config: DatasetConfig, seed: int) -> Splits:
    """Load the named dataset and cut it into train / val / test. The split and the label noise depend only
    on `seed`, so two runs with the same seed see exactly the same examples and the same flipped labels."""
    raw = load_raw(config.name, Path(config.root).resolve(), config.download, WRITES.get())
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(raw.y_pool), generator=generator)
    n_val = max(1, round(len(order) * config.val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if config.train_size is not None:
        if config.train_size > len(train_idx):
            raise DatasetError(f"dataset.train_size: {config.train_size} is more than the {len(train_idx)} "
                               f"training examples left after validation (val_fraction={config.val_fraction})")
        train_idx = train_idx[: config.train_size]
    if len(train_idx) == 0:
        raise DatasetError(f"dataset.val_fraction: {config.val_fraction} leaves no training examples "
                           f"out of {len(order)}")
    y_train = flip_labels(raw.y_pool[train_idx], config.label_noise, raw.num_classes, generator)
    return Splits(raw.x_pool[train_idx], y_train, raw.x_pool[val_idx], raw.y_pool[val_idx],
                  raw.x_test, raw.y_test, raw.num_classes)


@functools.lru_cache(maxsize=2)
def load_raw(name: str, root: Path, download: bool, writes: bool = True) -> RawDataset:
    """Read a dataset once per process: a sweep's trials share it (the tensors are never modified).
    `writes` (WRITES, part of the cache key) tells the loader whether it may write under `root`."""
    return DATASETS.lookup(name)(root, download)


# Whether loading may write under dataset.root (MNIST-1D's cache, a download). `sweep --dry-run` loads its
# datasets to check sizes and memory, and promises to write nothing: it loads them inside without_writes().
WRITES: contextvars.ContextVar[bool] = contextvars.ContextVar("dataset_writes", default=True)


@contextlib.contextmanager
def without_writes() -> Iterator[None]:
    """Datasets loaded in here write nothing: MNIST-1D without its cache is generated in memory, a
    torchvision dataset not yet under its root raises NotDownloaded instead of being downloaded."""
    token = WRITES.set(False)
    try:
        yield
    finally:
        WRITES.reset(token)


class NotDownloaded(DatasetError):
    """A torchvision dataset is not under its root, and loading without_writes() may not download it."""


def flip_labels(labels: torch.Tensor, fraction: float, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Replace exactly round(fraction * n) labels by a different class, chosen uniformly."""
    n_flip = round(len(labels) * fraction)
    if n_flip == 0:
        return labels.clone()
    noisy = labels.clone()
    which = torch.randperm(len(labels), generator=generator)[:n_flip]
    # an offset in 1..C-1 guarantees the new label differs from the old one
    offset = torch.randint(1, num_classes, (n_flip,), generator=generator)
    noisy[which] = (labels[which] + offset) % num_classes
    return noisy


def shuffled_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                     generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch: a seeded permutation of the in-memory tensors, sliced into batches (the last may be short)."""
    order = torch.randperm(len(y), generator=generator).to(x.device)
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


# ---------------------------------------------------------------------------------------------------------
# MNIST-1D: generated offline by the mnist1d package, cached as .npz.


@DATASETS.register("mnist1d")
def load_mnist1d(root: Path, download: bool) -> RawDataset:
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


# ---------------------------------------------------------------------------------------------------------
# torchvision datasets: downloaded into `root` on first use (where a network exists), then read into tensors.


@DATASETS.register("mnist")
def load_mnist(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import MNIST

    return load_torchvision(MNIST, "MNIST", root, download)


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import FashionMNIST

    return load_torchvision(FashionMNIST, "Fashion-MNIST", root, download)


@DATASETS.register("cifar10")
def load_cifar10(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import CIFAR10

    return load_torchvision(CIFAR10, "CIFAR-10", root, download)


def load_torchvision(dataset_class: type, title: str, root: Path, download: bool) -> RawDataset:
    existed = folders_under(root)
    try:
        train = dataset_class(str(root), train=True, download=download and WRITES.get())
        test = dataset_class(str(root), train=False, download=download and WRITES.get())
    except (RuntimeError, OSError, ValueError, EOFError) as error:
        if download and not WRITES.get():  # the real run would download it
            raise NotDownloaded(f"dataset {title} is not under {root} yet") from None
        remove_new_empty_folders(root, existed)  # a failed download leaves no empty data/FashionMNIST/raw
        how = "not found or not readable, and the download failed (is there a network?)" if download else \
            "not found or not readable, and dataset.download is false"
        reason = " ".join(str(error).split())[:300]  # torchvision's messages span several lines
        raise DatasetError(f"dataset {title}: {how}: {reason}. Put torchvision's files under {root}/ (delete "
                           f"damaged ones to download them again) or use dataset.name=mnist1d, which is "
                           f"generated offline.") from None
    x_pool, x_test = images_to_tensor(train.data), images_to_tensor(test.data)
    mean = x_pool.mean(dim=(0, 2, 3), keepdim=True)
    std = x_pool.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    # normalised with the training pool's statistics only, never the test split's
    return RawDataset((x_pool - mean) / std, torch.as_tensor(train.targets).long(),
                      (x_test - mean) / std, torch.as_tensor(test.targets).long(),
                      num_classes=len(train.classes))


def folders_under(root: Path) -> set[Path]:
    return {p for p in [root, *root.rglob("*")] if p.is_dir()} if root.is_dir() else set()


def remove_new_empty_folders(root: Path, existed: set[Path]) -> None:
    """Undo the folders a failed attempt created, deepest first, as long as they are empty."""
    for folder in sorted(folders_under(root) - existed, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something was downloaded or put there, keep it
            folder.rmdir()


def images_to_tensor(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images as [N, H, W] (MNIST) or [N, H, W, C] (CIFAR) → float32 [N, C, H, W] in [0, 1]."""
    x = torch.as_tensor(np.asarray(images)).float() / 255.0
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
