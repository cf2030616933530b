"""What a report reads: run folders under one or several folders, narrowed by `--select KEY=V1,V2`.

    dropcli report runs/sweep-a runs/sweep-b --out cmp --select p=0,0.3 --select model.name=mlp

Several folders are read as if they were one: each run is named by its path under their common parent
(sweep-a/p-0.3_seed-0), and a run reached through two of them is read once. `--select` keeps the runs whose
setting has one of the values (a config key, dotted or short: `p`, `l2`, `train_size`, `regularizer.dropout`);
several `--select` must all hold.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from dropcli import yamlsafe
from dropcli.config import ConfigError, short_name
from dropcli.results import read_runs
from dropcli.run_reading import LoadedRun
from dropcli.yamlsafe import brief

SELECT_FORM = "expected KEY=V1,V2,..., e.g. --select p=0,0.3 or --select regularizer.l2=0.0001"


class SelectError(ConfigError):
    """A --select that names no key of the runs, or is malformed (exit code 2)."""


def read_roots(roots: list[Path]) -> tuple[list[LoadedRun], Path]:
    """Every run folder under each root, each once, and the folder their names are relative to."""
    if len(roots) == 1:
        return read_runs(roots[0]), roots[0]
    runs: dict[Path, LoadedRun] = {}
    for root in roots:  # absolute, so that every run's path lies under the common parent
        for run in read_runs(root.absolute()):
            runs.setdefault(run.path.resolve(), run)
    common = Path(os.path.commonpath([str(root.absolute()) for root in roots]))
    return [run for _, run in sorted(runs.items())], common


def parse_select(text: str) -> tuple[str, list[Any]]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise SelectError(f"--select {brief(text)}: {SELECT_FORM}")
    try:
        parsed = yamlsafe.load(f"[{values}]")
    except yamlsafe.YamlError as error:
        raise SelectError(f"--select {brief(key.strip())}: the values are not valid YAML ({error}); "
                          f"{SELECT_FORM}") from None
    return key.strip(), list(parsed)


def select(table: pd.DataFrame, selections: list[str]) -> pd.DataFrame:
    """The rows of a runs table whose settings match every --select; unknown keys are refused, listing the
    keys the runs have."""
    for text in selections:
        key, wanted = parse_select(text)
        column = resolve_key(table, key, text)
        table = table[table[column].map(lambda value, wanted=wanted: matches(value, wanted))]
    return table


def resolve_key(table: pd.DataFrame, key: str, text: str) -> str:
    if key in table.columns:
        return key
    matching = [c for c in table.columns if "." in c and short_name(c) == key]
    if len(matching) == 1:
        return matching[0]
    known = sorted({short_name(c) for c in table.columns if "." in c})
    hint = f"it could be {', '.join(matching)}: write it in full" if matching else \
        f"known keys: {', '.join(known[:40])}"
    raise SelectError(f"--select {brief(text)}: no setting {brief(key)} in these runs; {hint}")


def matches(value: Any, wanted: list[Any]) -> bool:
    """A cell equals one of the values: numbers as numbers (0 matches 0.0), anything else as text."""
    for candidate in wanted:
        if isinstance(candidate, (int, float)) and not isinstance(candidate, bool):
            try:
                if float(value) == float(candidate):
                    return True
            except (TypeError, ValueError):
                pass
        elif str(value) == str(candidate):
            return True
    return False
