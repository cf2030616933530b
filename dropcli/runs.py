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
            csv.writer(handle).writerow(METRIC_COLUMNS)
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

    def append_metrics(self, row: dict[str, float]) -> None:
        with open(self.metrics_path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=METRIC_COLUMNS).writerow(row)
            handle.flush()
            os.fsync(handle.fileno())

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_atomically(self.summary_path, json.dumps(summary, indent=2, default=str) + "\n")

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text())

    def read_metrics(self) -> list[dict[str, float]]:
        with open(self.metrics_path, newline="") as handle:
            return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]
