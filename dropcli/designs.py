"""Sweep designs: which combinations of the axes' values a sweep trains, and the axes that have an option.

    grid            every combination of every axis's values, times seeds (the default)
    one at a time   the baseline once per seed, then each axis's other values alone, the rest at the baseline

The baseline of a one-at-a-time design sets each regularizer axis to its "off" value (the schema's default:
p = 0, l2 = 0, no early stopping, ...) and any other axis (`--grid dataset.train_size=...`) to the base
config's value. `--p 0.1..0.5 --l2 1e-5,1e-4,1e-3 --early-stopping 5,10,20 --one-at-a-time` is therefore
1 + 5 + 3 + 3 = 12 settings, where the grid would be 6 × 4 × 4 = 96: the question "does dropout beat L2 and
early stopping, and at which setting of each?" needs no combination of them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dropcli import regularizers
from dropcli.config import ConfigError, short_name, validate_config
from dropcli.yamlsafe import brief

GRID, ONE_AT_A_TIME = "grid", "one_at_a_time"
DESIGN_WORDS = {GRID: "grid", ONE_AT_A_TIME: "one at a time"}
BASELINE = "baseline"  # the folder-name stem of a one-at-a-time design's baseline trials


@dataclass(frozen=True)
class NamedAxis:
    """A regularizer with one number, swept by an option of its own (`--early-stopping 5,10,20`); --p and
    --l2 are the sweep's first two and keep their own parsing. The "off" value (the baseline) is added as
    --p adds p = 0."""

    option: str
    key: str  # the config key the values go to
    form: str  # what the option takes, for its help and its errors
    integer: bool = False  # patience counts epochs

    def values(self, text: str, base: dict[str, Any]) -> list[Any]:
        """The axis's values, "off" first: early stopping's patience becomes the section {patience: N} (the base
        config's other early-stopping options kept)."""
        numbers = parse_numbers(text, self.option, self.form, self.integer)
        if self.key == "regularizer.early_stopping":
            options = base.get("regularizer", {}).get("early_stopping") or {}
            return [None, *({**options, "patience": n} for n in numbers)]
        off = off_value(self.key)
        return [off, *(n for n in numbers if n != off)]


NAMED_AXES = (
    NamedAxis("--early-stopping", "regularizer.early_stopping", "patience values, integers > 0, e.g. 5,10,20",
              integer=True),
    NamedAxis("--l1", "regularizer.l1", "L1 coefficients >= 0, e.g. 1e-5,1e-4"),
    NamedAxis("--max-norm", "regularizer.max_norm", "max-norm bounds > 0, e.g. 1,2,4"),
    NamedAxis("--augmentation", "regularizer.augmentation", "augmentation strengths in (0, 4], e.g. 0.5,1,2"),
    NamedAxis("--label-smoothing", "regularizer.label_smoothing", "label smoothing in (0, 1), e.g. 0.05,0.1"),
)
OPTION_OF = {"regularizer.dropout": "--p", "regularizer.l2": "--l2", **{a.key: a.option for a in NAMED_AXES}}


def parse_numbers(text: str, option: str, form: str, integer: bool = False) -> list[Any]:
    """A comma list of numbers, sorted, duplicates dropped; their ranges are the schema's to check."""
    values = []
    for part in text.split(","):
        try:
            value = Decimal(part.strip())
        except ArithmeticError:
            raise ConfigError(f"{option} {brief(part.strip())}: not a number; expected {form}") from None
        if not value.is_finite() or (integer and value != value.to_integral_value()):
            raise ConfigError(f"{option} {brief(part.strip())}: expected {form}")
        values.append(int(value) if integer else float(value))
    return sorted(set(values))


def off_value(key: str) -> Any:
    """What switches a regularizer off: the schema's default for its key (0 or null)."""
    value: Any = validate_config({}).to_dict()
    for part in key.split("."):
        value = value[part]
    return value


def baseline(base: dict[str, Any], axes: dict[str, list[Any]]) -> dict[str, Any]:
    """The one-at-a-time baseline: every regularizer axis off, every other axis at the base config's value."""
    switches = regularizers.labels()  # every key that switches a regularizer on
    out = {}
    for key in axes:
        if key in switches:
            out[key] = off_value(key)
        else:
            value: Any = base
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            out[key] = value
    return out


def settings(design: str, base: dict[str, Any], axes: dict[str, list[Any]]) -> Iterator[tuple[str | None, dict]]:
    """(the axis varied, or None for the baseline and a grid's combinations; the axes' values) per setting."""
    if design == GRID:
        keys = list(axes)
        for combination in itertools.product(*(axes[k] for k in keys)):
            yield None, dict(zip(keys, combination))
        return
    start = baseline(base, axes)
    yield None, start
    for key, values in axes.items():
        for value in values:
            if value != start[key]:
                yield key, {**start, key: value}


def count_settings(design: str, base: dict[str, Any], axes: dict[str, list[Any]]) -> int:
    """How many settings, counted without building them (a grid of 10,000 values an axis is refused first)."""
    if design == GRID:
        count = 1
        for values in axes.values():
            count *= len(values)
        return count
    start = baseline(base, axes)
    return 1 + sum(sum(1 for value in values if value != start[key]) for key, values in axes.items())


def name_part(key: str, value: Any) -> str:
    """One setting in a folder name: p-0.3, hidden_sizes-256x256, early_stopping-patience5+metric.val.acc."""
    if isinstance(value, list):
        text = "x".join(map(str, value))  # [256, 256] → 256x256
    elif isinstance(value, dict):  # {patience: 5, metric: val_acc} → patience5+metric.val.acc
        text = "+".join(f"{k}{v}" if isinstance(v, (int, float)) else f"{k}.{v}" for k, v in value.items())
    else:
        text = str(value)
    return f"{short_name(key)}-{re.sub(r'[^A-Za-z0-9.+-]', '-', text)}"


def one_at_a_time_name(varied: str | None, value: Any, seed: int) -> str:
    """baseline_seed-0, p-0.3_seed-0, l2-0.0001_seed-0, patience-10_seed-0: the one thing that differs."""
    if varied is None:
        stem = BASELINE
    elif varied == "regularizer.early_stopping" and isinstance(value, dict):
        stem = f"patience-{value['patience']}"
    else:
        stem = name_part(varied, value)
    return f"{stem}_seed-{seed}"


def describe(design: str, base: dict[str, Any], axes: dict[str, list[Any]], seeds: list[int]) -> str:
    """"one at a time: baseline + 5 p + 3 l2 + 3 early_stopping = 12 settings × 5 seeds = 60 trials"."""
    n = count_settings(design, base, axes)
    seeds_text = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
    trials = f"{n * len(seeds)} trial{'s' if n * len(seeds) != 1 else ''}"
    if design == GRID:
        sizes = " × ".join(f"{len(v)} {axis_word(k)}" for k, v in axes.items()) or "1 setting"
        return f"grid: {sizes} × {seeds_text} = {trials}"
    start = baseline(base, axes)
    parts = [f"{sum(1 for v in values if v != start[key])} {axis_word(key)}" for key, values in axes.items()]
    return f"one at a time: {' + '.join([BASELINE, *parts])} = {n} settings × {seeds_text} = {trials}"


def axis_word(key: str) -> str:
    return "patience" if key == "regularizer.early_stopping" else short_name(key)
