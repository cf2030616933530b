"""The image folder loader (its metadata: datasets/image_folder.py): torchvision's ImageFolder layout
(`path/<class>/*.png`, classes in sorted order), read once into one tensor [N, C, H, W]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from dropcli.data import RawDataset
from dropcli.datasets.arrays import file_record, raw_dataset
from dropcli.datasets.base import DatasetError
from dropcli.datasets.image_folder import ImageFolderSection

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # read as one channel; every other mode as three (RGB)


def load(section: ImageFolderSection) -> RawDataset:
    x, y, classes, files = read_folder(section.path, "path", section.image_size)
    test: tuple[Any, Any] | None = None
    test_where = section.path
    if section.test_path is not None:
        x_test, y_test, test_classes, test_files = read_folder(section.test_path, "test_path", section.image_size)
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise DatasetError(f"dataset.test_path: class folder {unknown[0]!r} is not a class of {section.path} "
                               f"({', '.join(classes[:10])})")
        # named by class: the test folder may lack a class
        test = (x_test, np.array([test_classes[i] for i in y_test], dtype=str))
        files, test_where = files + test_files, section.test_path
    names = np.array([classes[i] for i in y], dtype=str)
    # names, not numbers: their sorted order is the classes' order (ImageFolder's), and test labels map by name
    raw = raw_dataset(x, names, test, section, section.path, test_where, files, class_names=classes)
    # normalised per channel with the training pool's statistics only, never the test split's
    mean = raw.x_pool.mean(dim=(0, 2, 3), keepdim=True)
    std = raw.x_pool.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return RawDataset((raw.x_pool - mean) / std, raw.y_pool, (raw.x_test - mean) / std, raw.y_test,
                      raw.num_classes, raw.description)


def read_folder(path_text: str, key: str, size: list[int]) -> tuple[np.ndarray, list[int], list[str], list[dict]]:
    """(images uint8 [N, C, H, W], class index per image, class names, file records)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset  # ~1 s: only when used

    root = Path(path_text)
    if not root.is_dir():
        raise DatasetError(f"dataset.{key}: {root} is not a folder" if root.exists() else
                           f"dataset.{key}: {root} does not exist")
    try:
        classes, class_to_idx = find_classes(root)
        samples = make_dataset(root, class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as error:
        raise DatasetError(f"dataset.{key}: {root}: {error}; expected {root}/<class>/<image>.png") from None
    if len(classes) < 2 and key == "path":
        raise DatasetError(f"dataset.{key}: {root} holds one class folder only ({classes[0]}); a classifier needs "
                           f"at least two")
    images: list[np.ndarray] = []
    modes: dict[bool, tuple[str, str]] = {}  # grey or not → the first file of that kind, its mode
    for file, _ in samples:
        try:
            with Image.open(file) as image:
                grey = image.mode in GREY_MODES
                modes.setdefault(grey, (file, image.mode))
                if len(modes) > 1:
                    (grey_file, grey_mode), (colour_file, colour_mode) = modes[True], modes[False]
                    raise DatasetError(f"dataset.{key}: images of mixed modes: {grey_file} is grey ({grey_mode}), "
                                       f"{colour_file} colour ({colour_mode}); convert them to one")
                converted = image.convert("L" if grey else "RGB").resize((size[1], size[0]), Image.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as error:
            raise DatasetError(f"dataset.{key}: {file} is not a readable image ({type(error).__name__})") from None
        images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
    records = [file_record(Path(file), str(Path(file).relative_to(root.parent))) for file, _ in samples]
    x = np.stack(images).astype(np.float32) / 255.0
    return x, [label for _, label in samples], classes, records
