"""The loader of torchvision's datasets (their metadata: datasets/vision_sets.py): downloaded into
dataset.root on first use (where a network exists), then read into tensors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from dropcli.data import WRITES, RawDataset
from dropcli.datasets.base import DatasetError, NotDownloaded
from dropcli.datasets.vision_sets import TorchvisionSection

TITLES = {"mnist": ("MNIST", "MNIST"), "fashion_mnist": ("FashionMNIST", "Fashion-MNIST"),
          "cifar10": ("CIFAR10", "CIFAR-10")}  # dataset → (torchvision's class, its name in messages)


def load(section: TorchvisionSection) -> RawDataset:
    import torchvision.datasets  # ~4 s: only when one of its datasets is loaded

    class_name, title = TITLES[section.name]
    return load_torchvision(getattr(torchvision.datasets, class_name), title, Path(section.root).resolve(),
                            section.download)


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
