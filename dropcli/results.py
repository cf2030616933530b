"""Run folders as pandas tables, for notebooks and for `dropcli report` alike.

    import dropcli
    runs = dropcli.load_runs("runs/")        # one row per run folder: status, settings, seed, results
    curves = dropcli.load_metrics("runs/")   # one row per run and epoch (long format)

Both read every run folder under the path (itself included) the way `report` does: a broken, half-written
or foreign folder becomes a row with its status and reason (`load_runs`) or contributes no rows
(`load_metrics`), never an exception.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dropcli.runs import LoadedRun, discover_run_folders, load_run


def read_runs(root: str | Path) -> list[LoadedRun]:
    """Every run folder under `root`, itself included. FileNotFoundError when `root` is no folder at all (a
    mistyped path would otherwise read as "no runs")."""
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    return [load_run(path) for path in discover_run_folders(Path(root))]


def run_name(run: LoadedRun, root: Path) -> str:
    """A run's name in tables: its path under `root` (its folder name when it is `root` itself)."""
    return str(run.path.relative_to(root)) if run.path != root else run.path.name


def load_runs(root: str | Path) -> pd.DataFrame:
    """One row per run folder: run (its path under root), status, reason, every config key flattened
    (`regularizer.dropout`, ...; null → "off"), and the summary's results (test_acc, gap_loss, best_epoch,
    ...; missing where a run has none)."""
    from dropcli.report import runs_table

    runs = read_runs(root)
    return runs_table(runs, Path(root)) if runs else pd.DataFrame(columns=["run", "status", "reason"])


def load_metrics(root: str | Path) -> pd.DataFrame:
    """metrics.csv of every run folder in long format: run, seed, epoch, train/val loss and accuracy, the
    gaps, lr, seconds (and learned_p1... where Concrete dropout logged them). Torn last lines are dropped."""
    root = Path(root)
    frames = []
    for run in read_runs(root):
        if run.metrics:
            seed = (run.config or {}).get("seed")
            frames.append(pd.DataFrame(run.metrics).assign(run=run_name(run, root), seed=seed, status=run.status))
    if not frames:
        return pd.DataFrame(columns=["run", "seed", "status", "epoch"])
    table = pd.concat(frames, ignore_index=True)
    table["epoch"] = table["epoch"].astype(int)
    return table[["run", "seed", "status", *[c for c in table.columns if c not in ("run", "seed", "status")]]]
