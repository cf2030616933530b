"""Every dataset becomes in-memory tensors (train / val / test) and a batch iterator. What each dataset is
(its keys, its loader) lives in dropcli/datasets/, one module per dataset; this is what they share.

Small datasets train fastest straight from memory on the device, so there is no per-sample DataLoader:
an epoch is a `randperm` sliced into batches. A dataset's loader is imported when it is first loaded.

The test split is the dataset's own held-out split and is used once, after training, for reporting;
validation is carved out of the training pool, so nothing is ever chosen on test data.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch

from dropcli.datasets import DATASETS, DatasetError, DatasetSection, NotDownloaded
from dropcli.datasets.base import SPLIT_KEYS

__all__ = ["DatasetError", "NotDownloaded"]  # where a run's code has long caught them


@dataclass(frozen=True)
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    # data from files: their fingerprint, class names and how the test split was made (summary.json's "data")
    description: dict[str, Any] | None = None

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
    description: dict[str, Any] | None = None  # see Splits


def load_splits(config: DatasetSection, seed: int) -> Splits:
    """Load the named dataset and cut it into train / val / test. The split and the label noise depend only
    on `seed`, so two runs with the same seed see exactly the same examples and the same flipped labels."""
    raw = load_raw(config.name, loading_key(config), WRITES.get())
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
                  raw.x_test, raw.y_test, raw.num_classes, raw.description)


def loading_key(config: DatasetSection) -> str:
    """What the loaded data depend on: the section without the keys that only cut it into splits, the
    working directory a relative dataset.root is read from, and when the data files last changed (a file
    rewritten in the same process is read again)."""
    settings = config.model_dump(mode="json", exclude=set(SPLIT_KEYS))
    changed = {}
    for key in config.path_keys:
        with contextlib.suppress(OSError, TypeError, ValueError):  # not there (yet): the loader says so
            status = os.stat(getattr(config, key))
            changed[key] = [status.st_mtime_ns, status.st_size]
    return json.dumps({"settings": settings, "cwd": os.getcwd(), "changed": changed}, sort_keys=True)


@functools.lru_cache(maxsize=2)
def load_raw(name: str, key: str, writes: bool = True) -> RawDataset:
    """Read a dataset once per process: a sweep's trials share it (the tensors are never modified). `key`
    (loading_key) names the section it is loaded with; `writes` (WRITES, part of the cache key) tells the
    loader whether it may write under dataset.root."""
    kind = DATASETS.lookup(name)
    section = kind.section.model_validate(json.loads(key)["settings"])
    # "module:function": a dataset's heavy part (torch, torchvision, pandas), imported when first loaded
    module, _, function = kind.loader.partition(":")
    return getattr(importlib.import_module(module), function)(section)


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
