"""Arrays from a NumPy .npz file: x [N, ...] and y [N], optionally x_test and y_test (and classes, the K class
names). Features are used as stored. Its loader: datasets/load_npz.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dropcli.datasets.base import DatasetKind, FileSection


class NpzSection(FileSection):
    name: Literal["npz"] = Field("npz", description="`npz`: arrays x, y (and x_test, y_test, classes) in a .npz file")


# arrays of any shape: noise is the one transform that fits every shape (crop/flip need to know an image)
KINDS = (DatasetKind(
    "npz", NpzSection, "dropcli.datasets.load_npz:load", "array", transforms=("noise",),
    default_transforms=("noise",)),)
