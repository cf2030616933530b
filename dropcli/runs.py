"""The run folder: everything a run leaves behind, so that it can explain itself without dropcli's help.

    runs/<name>-<YYYYmmdd-HHMMSS>/
      config.yaml    the resolved config (defaults + YAML + overrides)
      metrics.csv    one row per epoch, appended and flushed as the epoch ends
      summary.json   status (running → completed | failed | interrupted), results, versions
      model.pt       the weights that were evaluated on the test split
      curves.png     train vs val loss and accuracy per epoch

Files that are rewritten (summary, config) are replaced atomically: write a temporary file, then rename,
so a crash leaves either the old or the new version, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dropcli.config import Config, dump_yaml

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap_loss", "gap_acc", "lr", "seconds"]


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


@dataclass
class RunFolder:
    path: Path

    @classmethod
    def create(cls, runs_dir: Path, config: Config, folder_name: str | None = None) -> RunFolder:
        """A new run folder: `<name>-<timestamp>`, or `folder_name` (a sweep's trial) when given."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        if folder_name is not None:
            path = runs_dir / folder_name
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = runs_dir / f"{config.name}-{stamp}"
            suffix = 1
            while path.exists():  # two runs started within the same second
                suffix += 1
                path = runs_dir / f"{config.name}-{stamp}-{suffix}"
        path.mkdir()
        run = cls(path)
        write_atomically(run.config_path, dump_yaml(config))
        with open(run.metrics_path, "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerow(METRIC_COLUMNS)
        return run

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def model_path(self) -> Path:
        return self.path / "model.pt"

    @property
    def curves_path(self) -> Path:
        return self.path / "curves.png"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def keep_metrics_up_to(self, last_epoch: int) -> list[dict[str, float]]:
        """Drop metrics rows written after the last checkpoint (and any torn last line); return those kept."""
        rows = [row for row in read_metrics_tolerantly(self.metrics_path) if row["epoch"] <= last_epoch]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**row, "epoch": int(row["epoch"])} for row in rows)
        write_atomically(self.metrics_path, buffer.getvalue())
        return rows

    def append_metrics(self, row: dict[str, float]) -> None:
        with open(self.metrics_path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, lineterminator="\n").writerow(row)
            handle.flush()
            os.fsync(handle.fileno())

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_atomically(self.summary_path, json.dumps(summary, indent=2, default=str) + "\n")

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text())

    def read_metrics(self) -> list[dict[str, float]]:
        with open(self.metrics_path, newline="") as handle:
            return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


# ---------------------------------------------------------------------------------------------------------
# Reading run folders back, for reports: tolerant of anything a crash or a kill can leave behind.

RUN_MARKERS = ("config.yaml", "metrics.csv", "summary.json")


@dataclass
class LoadedRun:
    path: Path
    status: str  # completed | failed | interrupted | running | broken
    reason: str  # why it is not completed ("" when it is)
    config: dict[str, Any] | None
    summary: dict[str, Any]
    metrics: list[dict[str, float]]


def discover_run_folders(root: Path, skip: Path | None = None) -> list[Path]:
    """Every folder under `root` (itself included) that holds any of a run folder's files."""
    found = []
    for candidate in sorted([root, *root.rglob("*")]):
        if not candidate.is_dir() or (skip is not None and skip in (candidate, *candidate.parents)):
            continue
        if any((candidate / marker).is_file() for marker in RUN_MARKERS):
            found.append(candidate)
    return found


def load_run(path: Path) -> LoadedRun:
    """Read what there is; never raise. Anything missing or unreadable becomes a status and a reason."""
    import yaml

    problems: list[str] = []
    config = summary = None
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
        if not isinstance(config, dict):
            problems.append("config.yaml is not a mapping")
            config = None
    except FileNotFoundError:
        problems.append("config.yaml is missing")
    except (yaml.YAMLError, UnicodeDecodeError):
        problems.append("config.yaml is unreadable")
    try:
        summary = json.loads((path / "summary.json").read_text())
        if not isinstance(summary, dict):
            raise ValueError
    except FileNotFoundError:
        problems.append("summary.json is missing (killed before its first epoch?)")
    except (ValueError, UnicodeDecodeError):
        problems.append("summary.json is corrupted")
        summary = None
    metrics = read_metrics_tolerantly(path / "metrics.csv")
    summary = summary or {}
    status = summary.get("status", "broken")
    if status == "completed" and (config is None or not metrics):
        status = "broken"
        problems.append("completed, but its metrics.csv is empty or missing")
    if status == "completed" and not all(isinstance(summary.get(k), (int, float)) for k in ("val_acc", "test_acc", "gap_loss")):
        status = "broken"
        problems.append("completed, but summary.json lacks its results")
    if status == "running":
        problems.append("never finished: still running, or killed")
    if status in ("failed", "interrupted") and summary.get("error"):
        problems.append(str(summary["error"]))
    if status != "completed" and not problems:
        problems.append(f"status {status!r}")
    return LoadedRun(path, status, "; ".join(problems) if status != "completed" else "", config, summary, metrics)


def read_metrics_tolerantly(path: Path) -> list[dict[str, float]]:
    """Rows of metrics.csv that are complete numbers; a truncated last line (a kill mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", errors="replace") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append({column: float(row[column]) for column in METRIC_COLUMNS})
            except (TypeError, ValueError, KeyError):
                continue
    return rows
