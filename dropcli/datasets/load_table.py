"""The table loader (its metadata: datasets/table.py): a .csv file, or .parquet through pandas; the target
column is the class, every other column a numeric feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dropcli.data import RawDataset
from dropcli.datasets.arrays import existing_file, file_record, raw_dataset
from dropcli.datasets.base import DatasetError
from dropcli.datasets.table import CsvSection


def load(section: CsvSection) -> RawDataset:
    path = existing_file(section.path, "path")
    table = read_table(path, "path")
    x, y = split_columns(table, section.target, path, "path")
    files, test, test_where = [file_record(path)], None, str(path)
    if section.test_path is not None:
        test_file = existing_file(section.test_path, "test_path")
        test_table = read_table(test_file, "test_path")
        columns = [c for c in table.columns if c != section.target]
        missing = [c for c in columns if c not in test_table.columns]
        if missing:
            raise DatasetError(f"dataset.test_path: {test_file} has no column {missing[0]!r}; it needs the same "
                               f"columns as {path}")
        test = split_columns(test_table[[*columns, section.target]] if section.target in test_table.columns
                             else test_table, section.target, test_file, "test_path")
        files.append(file_record(test_file))
        test_where = str(test_file)
    return raw_dataset(x, y, test, section, str(path), test_where, files, standardise=True)


def read_table(path: Path, key: str) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise DatasetError(f"dataset.{key}: reading {path} needs pyarrow (pip install pyarrow); or save "
                                   f"the table as .csv") from None
        return pd.read_csv(path)
    except DatasetError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        reason = " ".join(str(error).split())[:200]
        raise DatasetError(f"dataset.{key}: {path} is not a readable table: {reason}") from None


def split_columns(table: pd.DataFrame, target: str, path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, F], labels [N]) with every feature column numeric."""
    if target not in table.columns:
        shown = ", ".join(map(str, table.columns[:20]))
        raise DatasetError(f"dataset.target: {path} has no column {target!r} (its columns: {shown})")
    features = table.drop(columns=[target])
    if features.shape[1] == 0:
        raise DatasetError(f"dataset.{key}: {path} has no feature column besides {target!r}")
    for column in features.columns:
        if not pd.api.types.is_numeric_dtype(features[column]):
            numbers = pd.to_numeric(features[column], errors="coerce")
            bad = features[column][numbers.isna() & features[column].notna()]
            example = f" such as {str(bad.iloc[0])[:40]!r}" if len(bad) else ""
            raise DatasetError(f"dataset.{key}: {path}: column {column!r} is not numeric (it holds values"
                               f"{example}); every column but the target must be a number")
    labels = table[target]
    if labels.isna().any():
        raise DatasetError(f"dataset.{key}: {path}: {int(labels.isna().sum()):,} rows have no {target!r}")
    values = labels.to_numpy()
    if values.dtype.kind == "O":
        values = values.astype(str)  # names: pandas keeps them as objects
    return features.to_numpy(dtype=np.float64, na_value=np.nan), values
