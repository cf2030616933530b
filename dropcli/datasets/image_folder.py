"""Images in class folders, as torchvision's ImageFolder reads them (`path/<class>/*.png`, classes in sorted
order), resized to image_size, grey or colour as the files are, normalised with the training pool's mean
and std per channel. Its loader: datasets/load_image_folder.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from dropcli.datasets.base import DatasetKind, FileSection

IMAGE_TRANSFORMS = ("crop", "flip")


class ImageFolderSection(FileSection):
    name: Literal["image_folder"] = Field("image_folder", description=(
        "`image_folder`: images in class folders, `path/<class>/*.png`"))
    image_size: list[Annotated[int, Field(gt=0, le=4096)]] = Field([32, 32], description=(
        "[height, width] every image is resized to"))

    @field_validator("image_size")
    @classmethod
    def _height_and_width(cls, value: list[int]) -> list[int]:
        if len(value) != 2:
            raise ValueError("expected [height, width], e.g. [32, 32]")
        return value


KINDS = (DatasetKind(
    "image_folder", ImageFolderSection, "dropcli.datasets.load_image_folder:load", "image",
    transforms=IMAGE_TRANSFORMS, default_transforms=IMAGE_TRANSFORMS),)
