"""A run folder's file formats, shared by its writer (runs.py) and its readers (run_reading.py): metrics.csv's
columns and how it is read back (tolerating a torn last line), and how large a summary.json may be."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

MAX_SUMMARY_BYTES = 1 << 20  # a summary is ~2 KB; anything far larger was not written by dropcli
METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap_loss", "gap_acc", "lr", "seconds"]
# columns some runs add after those (Config.learned_rate_columns): read when the header names them
EXTRA_COLUMN = re.compile(r"learned_p\d{1,3}")


def read_metrics_tolerantly(path: Path) -> list[dict[str, float]]:
    """Rows of metrics.csv that are complete numbers; a truncated last line (a kill mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    columns = METRIC_COLUMNS + header_extras(path)
    with open(path, newline="", errors="replace") as handle:
        try:
            for row in csv.DictReader(handle):
                try:
                    values = {column: float(row[column]) for column in columns}
                except (TypeError, ValueError, KeyError):
                    continue
                # losses may be nan or inf (a diverged epoch); an epoch, its lr and its seconds never are
                if values["epoch"] >= 1 and values["epoch"].is_integer() and values["epoch"] < 1e9 \
                        and math.isfinite(values["lr"]) and math.isfinite(values["seconds"]):
                    rows.append(values)
        except csv.Error:  # a field of 128 KB, a NUL: not ours from here on
            pass
    return rows


def header_extras(path: Path) -> list[str]:
    """The columns after the standard ones that metrics.csv's header names and dropcli knows (learned_p1...)."""
    try:
        with open(path, newline="", errors="replace") as handle:
            header = handle.readline(4096).strip().split(",")
    except OSError:
        return []
    return [name for name in header[len(METRIC_COLUMNS):] if EXTRA_COLUMN.fullmatch(name)]
