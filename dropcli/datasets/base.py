"""What a dataset declares (DatasetKind): its config section, the input it gives models, the augmentations
that make sense on it, whether it downloads, and where its loader is; and the sections' shared keys.
Torch-free, and importing no other dataset module: each dataset's module builds on this one.

A dataset's loader is named as "module:function" and imported when a run starts (data.load_raw), so that
`dropcli --help` and config errors never import torch or torchvision; a dataset registered from a notebook
(register_dataset) hands over a function that makes arrays, which datasets/arrays.py checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StrictInt

from dropcli.schema import Fraction, Section


class DatasetError(Exception):
    """A dataset could not be found, downloaded or read, or its data are not fit to train on."""


class NotDownloaded(DatasetError):
    """A torchvision dataset is not under its root, and loading without_writes() may not download it."""


# what a model is given: [N, L], [N, C, H, W], [N, F], or arrays as stored
InputKind = Literal["sequence", "image", "table", "array"]
DEFAULT_DATASET = "mnist1d"


class DatasetSection(Section):
    """The keys every dataset has. Each dataset's own section adds its keys and fixes `name` to its name."""

    name: str = Field(DEFAULT_DATASET, description="the dataset: a built-in one, or data from files")
    train_size: Annotated[int, Field(gt=0)] | None = Field(None, description=(
        "training examples drawn from the pool left after validation; null: all of it"))
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.2, description=(
        "share of the training pool held out for validation; the test split stays separate"))
    label_noise: Fraction = Field(0.0, description="share of training labels replaced by a different, random class")

    # keys that hold a path to the data: a relative one in a config file is read from that file's folder
    path_keys: ClassVar[tuple[str, ...]] = ()


# the keys that cut the loaded data into splits: loading the data itself does not depend on them
SPLIT_KEYS = ("train_size", "val_fraction", "label_noise")


@dataclass(frozen=True)
class DatasetKind:
    name: str
    section: type[DatasetSection]
    # "module:function", imported when a run starts: it takes the section and returns a data.RawDataset
    loader: str
    input_kind: InputKind
    transforms: tuple[str, ...] = ()  # the augmentation transforms that make sense on this data
    default_transforms: tuple[str, ...] = ()  # those used when regularizer.augmentation_transforms is null
    downloads: bool = False  # whether loading may need a network (dataset.download)
    why_not: Mapping[str, str] = field(default_factory=dict)  # transform → why it does not apply here
    # register_dataset's function: section → arrays (x, y) or (x, y, x_test, y_test), which its loader
    # (datasets/arrays.py) checks and converts
    make_arrays: Callable[[Any], Any] | None = None


class HeldOutSection(DatasetSection):
    # used when the data bring no test split (no test_path, no x_test in the .npz): this share of the
    # examples is held out for testing, chosen by test_split_seed, never by the run's seed: every seed of a
    # sweep is tested on the same examples (both are recorded with the run)
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.2, description=(
        "share of the examples held out for testing when the data bring no test split"))
    test_split_seed: Annotated[StrictInt, Field(ge=0, lt=2**32)] = Field(0, description=(
        "which examples are held out for testing (not the run's seed: every seed is tested on the same ones)"))


class FileSection(HeldOutSection):
    # relative paths in a config file are read from that file's folder (from the working directory when given
    # with --set); the resolved config records them absolute
    path: str = Field(description="the data file or folder; relative: from the config file's folder")
    test_path: str | None = Field(None, description=(
        "test data in the same format; null: hold out `test_fraction` of `path`"))

    path_keys: ClassVar[tuple[str, ...]] = ("path", "test_path")


# why a transform does not apply to a dataset that does not list it (a dataset's why_not says it better)
TRANSFORM_USES = {"crop": "it is for images", "flip": "it is for images",
                  "noise": "it is for 1-D signals, tables and arrays",
                  **{name: "it is one of MNIST-1D's transforms of 1-D signals"
                     for name in ("shift", "scale", "correlated_noise")}}
