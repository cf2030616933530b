"""torchvision's image datasets: downloaded into dataset.root on first use (where a network exists), then
read into tensors once. Their loader: datasets/load_vision.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dropcli.datasets.base import DatasetKind, DatasetSection

IMAGE_TRANSFORMS = ("crop", "flip")


class TorchvisionSection(DatasetSection):
    root: str = Field("data", description=(
        "where datasets are cached or downloaded; relative paths are from the working directory"))
    download: bool = Field(True, description=(
        "download into `root` when missing (false: a clear 'not found' error instead)"))


class MnistSection(TorchvisionSection):
    name: Literal["mnist"] = Field("mnist", description="`mnist` (torchvision; downloaded into `root`)")


class FashionMnistSection(TorchvisionSection):
    name: Literal["fashion_mnist"] = Field("fashion_mnist", description=(
        "`fashion_mnist` (torchvision; downloaded into `root`)"))


class Cifar10Section(TorchvisionSection):
    name: Literal["cifar10"] = Field("cifar10", description="`cifar10` (torchvision; downloaded into `root`)")


LOADER = "dropcli.datasets.load_vision:load"

KINDS = (
    # digits are not mirror images of each other: a mirrored 2 is no 2
    DatasetKind("mnist", MnistSection, LOADER, "image", transforms=("crop",), default_transforms=("crop",),
                downloads=True, why_not={"flip": "a mirrored digit is not the same digit"}),
    DatasetKind("fashion_mnist", FashionMnistSection, LOADER, "image", IMAGE_TRANSFORMS, IMAGE_TRANSFORMS,
                downloads=True),
    DatasetKind("cifar10", Cifar10Section, LOADER, "image", IMAGE_TRANSFORMS, IMAGE_TRANSFORMS, downloads=True),
)
