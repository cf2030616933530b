"""Words for settings and numbers, shared by the report's tables, its text, its figures and the terminal's
summary table (so none of them imports another)."""

from __future__ import annotations

import math
from typing import Any

from dropcli import regularizers
from dropcli.config import short_name

REGULARIZER_NAMES = regularizers.labels()  # "regularizer.l2" → "L2", each declared by its regularizer


def comparable_settings(summary, row, keys: list[str]):
    """The settings (rows of a report's summary) that agree with `row` on every compared key that is not a
    regularizer: the same epochs, data, model ... Only these may be compared with it."""
    for key in [k for k in keys if k not in REGULARIZER_NAMES]:
        summary = summary[summary[key].astype(str) == str(row[key])]
    return summary


def setting_label(row, keys: list[str]) -> str:
    """Words for one setting, from the keys that vary: "p=0.3, l2=0.0001", "train_size=250, no regularizer".
    Regularizers that are off are left out of the label rather than spelled "=0"."""
    if not keys:
        return "all runs"
    parts = [format_setting(key, row[key]) for key in keys]
    parts = [part for part in parts if part]
    if not any(key in REGULARIZER_NAMES and format_setting(key, row[key]) for key in keys) and \
            any(key in REGULARIZER_NAMES for key in keys):
        parts.append("no regularizer")
    return ", ".join(parts)


def format_setting(key: str, value: Any) -> str:
    if key in REGULARIZER_NAMES and value in (0, 0.0, "off", None):
        return ""
    words = regularizers.format_setting(key, value)  # the regularizer's own words for its settings
    if words is not None:
        return words
    return f"{short_name(key)}={value:g}" if isinstance(value, float) else f"{short_name(key)}={value}"


def mean_std(mean: float, std: float, digits: int = 3) -> str:
    """"0.512 ± 0.013"; the mean alone without a spread; "–" without a mean."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def runs_and_seeds(row: Any) -> str:
    """"3" when every run has its own seed; "4 (2 seeds)" when some seed was run twice."""
    if row["runs"] == row["seeds"]:
        return str(row["runs"])
    return f"{row['runs']} ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''})"
