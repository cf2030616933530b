from __future__ import annotations

import pickle
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dropcli.data import DatasetError, flip_labels, load_splits, shuffled_batches
from dropcli.datasets import DATASETS
from dropcli.datasets.load_mnist1d import generate_mnist1d


def DatasetConfig(name: str = "mnist1d", **keys):  # noqa: N802  a built-in dataset's section, as the config makes it
    return DATASETS.lookup(name).section(**keys)


def test_mnist1d_splits_have_the_asked_sizes(data_root):
    splits = load_splits(DatasetConfig(root=str(data_root), train_size=500, val_fraction=0.25), seed=0)
    assert splits.x_train.shape == (500, 40) and splits.x_train.dtype == torch.float32
    assert len(splits.y_val) == 1000  # a quarter of the 4000-example pool
    assert len(splits.y_test) == 1000  # mnist1d's own held-out split, untouched
    assert splits.num_classes == 10 and set(splits.y_train.tolist()) <= set(range(10))


def test_split_depends_only_on_the_seed(data_root):
    config = DatasetConfig(root=str(data_root), train_size=300)
    a, b, c = load_splits(config, seed=1), load_splits(config, seed=1), load_splits(config, seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)


def test_train_and_val_never_overlap(data_root):
    splits = load_splits(DatasetConfig(root=str(data_root)), seed=0)
    train_rows = {tuple(row) for row in splits.x_train.numpy().round(5).tolist()}
    assert not any(tuple(row) in train_rows for row in splits.x_val.numpy().round(5).tolist())


def test_label_noise_flips_exactly_that_fraction_to_other_classes():
    labels = torch.arange(1000) % 10
    noisy = flip_labels(labels, 0.3, 10, torch.Generator().manual_seed(0))
    assert (noisy != labels).sum().item() == 300
    assert noisy.min() >= 0 and noisy.max() < 10


def test_label_noise_reaches_the_training_labels_only(data_root):
    clean = load_splits(DatasetConfig(root=str(data_root), train_size=400), seed=3)
    noisy = load_splits(DatasetConfig(root=str(data_root), train_size=400, label_noise=0.25), seed=3)
    assert (clean.y_train != noisy.y_train).sum().item() == 100
    assert torch.equal(clean.y_val, noisy.y_val) and torch.equal(clean.y_test, noisy.y_test)


def test_generating_mnist1d_leaves_the_global_generators_alone(tmp_path):
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    generate_mnist1d(tmp_path / "cache.npz")
    assert (random.random(), np.random.rand()) == expected
    assert (tmp_path / "cache.npz").is_file()


def test_train_size_larger_than_the_pool_is_a_clear_error(data_root):
    with pytest.raises(DatasetError, match="train_size"):
        load_splits(DatasetConfig(root=str(data_root), train_size=10_000), seed=0)


def test_no_training_example_left_is_a_clear_error(data_root):
    with pytest.raises(DatasetError, match="no training examples"):
        load_splits(DatasetConfig(root=str(data_root), val_fraction=0.99999), seed=0)


def test_an_unwritable_root_is_a_dataset_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetError, match="cannot write"):
        load_splits(DatasetConfig(root=str(tmp_path / "file" / "below")), seed=0)


def test_batches_cover_every_example_once_per_epoch():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    batches = list(shuffled_batches(x, y, 4, torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))


# --- torchvision datasets, fed small files written in torchvision's own on-disk formats -------------------


def write_idx_images(path: Path, images: np.ndarray) -> None:
    n, rows, cols = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def write_mnist_like(root: Path, folder: str, n_train: int = 60, n_test: int = 20) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_datasets_load_from_torchvision_files(tmp_path, name, folder):
    write_mnist_like(tmp_path, folder)
    splits = load_splits(DatasetConfig(name=name, root=str(tmp_path), val_fraction=0.25, download=False), seed=0)
    assert splits.x_train.shape == (45, 1, 28, 28) and len(splits.y_val) == 15
    assert splits.x_test.shape == (20, 1, 28, 28)
    assert splits.num_classes == 10
    assert abs(float(torch.cat([splits.x_train, splits.x_val]).mean())) < 1e-4  # normalised on the pool


def test_cifar10_loads_from_torchvision_pickles(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8), "labels": list(range(8))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    # torchvision checks each file's md5 against the real CIFAR-10; these small files cannot match it,
    # so the check is reduced to "the file exists" (the reading code is torchvision's own, unpatched)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: Path(path).is_file())
    splits = load_splits(DatasetConfig(name="cifar10", root=str(tmp_path), val_fraction=0.25, download=False), seed=0)
    assert splits.x_train.shape == (30, 3, 32, 32) and splits.x_test.shape == (8, 3, 32, 32)
    assert splits.num_classes == 10


def test_missing_torchvision_files_without_download_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="MNIST: not found"):
        load_splits(DatasetConfig(name="mnist", root=str(tmp_path), download=False), seed=0)


def test_a_failed_download_leaves_no_empty_folders_behind(tmp_path):
    from dropcli.datasets.load_vision import load_torchvision

    class Unreachable:  # what torchvision does without a network: make its folders, then fail
        def __init__(self, root, train, download):
            (Path(root) / "Unreachable" / "raw").mkdir(parents=True, exist_ok=True)
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="download failed"):
        load_torchvision(Unreachable, "Unreachable", tmp_path / "data", download=True)
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == ["keep.txt"]


def test_the_mnist1d_cache_is_never_written_through_a_link_planted_in_a_shared_root(tmp_path, monkeypatch):
    from dropcli.datasets import load_mnist1d as data

    arrays = {"x": np.zeros((4, 40)), "y": np.zeros(4, dtype=int), "x_test": np.ones((2, 40)),
              "y_test": np.ones(2, dtype=int)}
    monkeypatch.setattr(data, "make_mnist1d", lambda: arrays)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache = tmp_path / "root" / "mnist1d" / "mnist1d_default_seed42.npz"
    cache.parent.mkdir(parents=True)
    for name in (cache.with_suffix(".partial.npz").name, f".{cache.name}.partial"):  # the old and the new names
        (cache.parent / name).symlink_to(victim)
    data.generate_mnist1d(cache)
    assert victim.read_text() == "precious"
    assert cache.is_file() and not cache.is_symlink()
    with np.load(cache) as loaded:
        assert loaded["x_test"].shape == (2, 40)
