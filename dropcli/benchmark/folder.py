"""The benchmark folder: its record, and how far it is, read from its run folders (never written to).

    runs/benchmark-<name>/
      benchmark.json        the suite as resolved, and per workload its tune's fingerprint, studies and seeds
      <workload>/           a tune folder (tune.py): tune.json, optuna.journal, <study>/trial-*/, best/, comparison.md
        best/<entry>_seed-N/  the best setting of each study, each entry trained as set, and the baseline (none)
      scores.csv            one row per retrained run: test accuracy, the baseline's, the normalized score
      statistics.csv        every number the leaderboard and the figures show
      leaderboard.md, leaderboard.tex, figures/*.png
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropcli.benchmark.suite import BASELINE, BenchmarkError
from dropcli.files import read_regular, write_atomically
from dropcli.locks import holder_of
from dropcli.run_reading import run_status

RECORD = "benchmark.json"
MAX_RECORD_BYTES = 16 * 2**20


def is_benchmark_folder(path: Path) -> bool:
    return (path / RECORD).is_file()


def read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular(path / RECORD, MAX_RECORD_BYTES))
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: not a benchmark folder (no {RECORD})") from None
    except (OSError, ValueError, RecursionError):
        raise BenchmarkError(f"{path}/{RECORD} is corrupted") from None
    workloads = data.get("workloads") if isinstance(data, dict) else None
    if not isinstance(workloads, dict) or not all(isinstance(w, dict) for w in workloads.values()):
        raise BenchmarkError(f"{path}/{RECORD} is corrupted (no workloads)")
    return data


def write_record(path: Path, record: dict[str, Any]) -> None:
    write_atomically(path / RECORD, json.dumps(record, indent=2) + "\n")


def retrained_names(workload: dict[str, Any]) -> list[str]:
    """The run folders under <workload>/best/ a workload's record asks for: every entry and the baseline."""
    return [f"{name}_seed-{seed}" for name in [BASELINE, *workload["studies"], *workload["fixed"]]
            for seed in workload["seeds"]]


@dataclass
class WorkloadProgress:
    name: str
    tuned: int  # tuning trials finished (completed, pruned or failed), over every study
    budget: int  # trials per study × studies
    retrained: Counter  # status → runs under best/
    total: int  # runs to retrain

    @property
    def state(self) -> str:
        if self.tuned < self.budget:
            return "tuning" if self.tuned or self.retrained["completed"] else "pending"
        if self.retrained["completed"] == self.total:
            return "completed"
        return "retraining (some failed)" if self.retrained["failed"] else "retraining"


def progress(path: Path) -> list[WorkloadProgress]:
    """How far each workload of a benchmark folder is: tuning trials finished, retrained runs by status."""
    record = read_record(path)
    rows = []
    for name, workload in record["workloads"].items():
        try:
            folder, studies, trials = path / name, list(workload["studies"]), int(workload["trials"])
            names = retrained_names(workload)
        except (KeyError, TypeError, ValueError):
            raise BenchmarkError(f"{path}/{RECORD} is corrupted (workload {name!r})") from None
        if folder.parent != path or any("/" in n for n in [*studies, *names]):
            raise BenchmarkError(f"{path}/{RECORD} is corrupted (workload {name!r})")
        tuned = 0
        for study in studies:
            statuses = [run_status(p) for p in sorted((folder / study).glob("trial-*")) if p.is_dir()]
            tuned += min(trials, sum(s in ("completed", "failed") for s in statuses))
        retrained: Counter = Counter()
        for run in names:
            status = run_status(folder / "best" / run)
            if status == "running" and holder_of(folder / "best" / run) is None:
                status = "interrupted"  # killed while training; the same command continues it
            retrained[status] += 1
        rows.append(WorkloadProgress(name, tuned, trials * len(studies), retrained, len(names)))
    return rows
