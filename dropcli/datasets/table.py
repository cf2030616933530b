"""A table from a .csv file (or .parquet, through pandas): the `target` column holds the class, every other
column is a numeric feature, standardised with the training pool's mean and std. Its loader:
datasets/load_table.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dropcli.datasets.base import DatasetKind, FileSection


class CsvSection(FileSection):
    name: Literal["csv"] = Field("csv", description="`csv`: a table (.csv, or .parquet through pandas)")
    target: str = Field(description=(
        "the column that holds the class (integers 0..K-1, or names numbered in sorted order)"))


KINDS = (DatasetKind(
    "csv", CsvSection, "dropcli.datasets.load_table:load", "table", transforms=("noise",),
    default_transforms=("noise",)),)
