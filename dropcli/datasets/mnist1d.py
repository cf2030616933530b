"""MNIST-1D (Greydanus 2020): 4,000 + 1,000 signals of length 40 in 10 classes, generated offline by the
mnist1d package and cached as .npz under dataset.root. Its loader: datasets/load_mnist1d.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dropcli.datasets.base import DatasetKind, DatasetSection

SIGNAL_TRANSFORMS = ("shift", "scale", "noise", "correlated_noise")  # its own generator's transforms


class Mnist1dSection(DatasetSection):
    name: Literal["mnist1d"] = Field("mnist1d", description=(
        "`mnist1d`: generated offline by the `mnist1d` package and cached under `root` (4000 train + 1000 test "
        "sequences of length 40)"))
    root: str = Field("data", description=(
        "where datasets are cached or downloaded; relative paths are from the working directory"))
    download: bool = Field(True, description="torchvision datasets only; mnist1d is always generated offline")


KINDS = (DatasetKind(
    "mnist1d", Mnist1dSection, "dropcli.datasets.load_mnist1d:load", "sequence",
    transforms=SIGNAL_TRANSFORMS, default_transforms=SIGNAL_TRANSFORMS),)
