"""The run folder: everything a run leaves behind, so that it can explain itself without dropcli's help.

    runs/<name>-<YYYYmmdd-HHMMSS>/
      config.yaml    the resolved config (defaults + YAML + overrides)
      metrics.csv    one row per epoch, appended and flushed as the epoch ends
      summary.json   status (running → completed | failed | interrupted), results, versions
      model.pt       the weights that were evaluated on the test split
      curves.png     train vs val loss and accuracy per epoch

Files that are rewritten (summary, config) are replaced atomically: write a temporary file, then rename,
so a crash leaves either the old or the new version, never half of one. A process owns the folder while it
writes (locks.py: `.lock`), so two writers never share one run. Reading run folders back (reports, status,
a resume's checks) is run_reading.py's: it never writes. The file formats both share: run_files.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dropcli import locks
from dropcli.config import Config, dump_yaml
from dropcli.files import read_regular, write_atomically
from dropcli.models import code
from dropcli.run_files import MAX_SUMMARY_BYTES, METRIC_COLUMNS, header_extras, read_metrics_tolerantly


class NotARunFolder(Exception):
    """The path of a run folder is something else: a file, or a symbolic link (its target is not ours)."""


def strict_json(data: Any) -> str:
    """JSON that every parser reads: NaN and infinities (a diverged run's losses) become null."""
    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(item) for item in value]
        return value

    return json.dumps(finite(data), indent=2, default=str, allow_nan=False) + "\n"


@dataclass
class RunFolder:
    path: Path
    lock: locks.FolderLock | None = field(default=None, repr=False, compare=False)
    _columns: list[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(cls, runs_dir: Path, config: Config, folder_name: str | None = None) -> RunFolder:
        """A new run folder, owned by this process: `<name>-<timestamp>`, or `folder_name` (a sweep's
        trial) when given, emptied first (FolderBusy if another process owns it)."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        if folder_name is not None:
            run = cls.claim(runs_dir / folder_name)
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            for suffix in range(1, 10_000):  # two runs started within the same second take the next name
                path = runs_dir / (f"{config.name}-{stamp}" + (f"-{suffix}" if suffix > 1 else ""))
                try:
                    path.mkdir()  # atomic: exactly one process creates a given folder
                    break
                except FileExistsError:
                    continue
            run = cls.claim(path)
        try:
            run.start_fresh(config)
        except BaseException:
            run.release()
            raise
        return run

    @classmethod
    def claim(cls, path: Path) -> RunFolder:
        """Own `path` (created if missing): FolderBusy when another process does, NotARunFolder when it is
        a symbolic link or not a folder (emptying it would empty whatever it points to)."""
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise NotARunFolder(f"{path}: is {'a symbolic link' if path.is_symlink() else 'not a folder'}; a "
                                    f"run folder must be a real folder (move it away)") from None
        return cls(path, locks.acquire(path))

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def start_fresh(self, config: Config) -> None:
        """Empty the folder (its lock file aside) and write the config and the metrics header."""
        for entry in self.path.iterdir():
            if entry.name != locks.LOCK_NAME:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        write_atomically(self.config_path, dump_yaml(config))
        code.write_record(self.path, config.model)  # a model from code: which file, with which content (resume)
        self._columns = METRIC_COLUMNS + config.learned_rate_columns()
        write_atomically(self.metrics_path, ",".join(self._columns) + "\n")

    @property
    def columns(self) -> list[str]:
        """metrics.csv's columns: the standard ones, then any a regularizer adds (its header says which)."""
        if self._columns is None:
            self._columns = METRIC_COLUMNS + header_extras(self.metrics_path)
        return self._columns

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

    @property
    def previous_checkpoint_path(self) -> Path:
        """The checkpoint before the newest: what a resume falls back to when the newest is damaged."""
        return self.path / "checkpoint.prev.pt"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file() or self.previous_checkpoint_path.is_file()

    def keep_metrics_up_to(self, last_epoch: int) -> list[dict[str, float]]:
        """Drop metrics rows written after the last checkpoint (and any torn last line); return those kept."""
        rows = [row for row in read_metrics_tolerantly(self.metrics_path) if row["epoch"] <= last_epoch]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({**row, "epoch": int(row["epoch"])} for row in rows)
        write_atomically(self.metrics_path, buffer.getvalue())
        return rows

    def append_metrics(self, row: dict[str, float]) -> None:
        """One row, handed to the OS at once (a reader or a killed process loses nothing); made durable
        against a machine crash by `sync_metrics`, before each checkpoint and at the end: rows after the
        last checkpoint are retrained by a resume anyway, so an fsync per row would buy nothing."""
        descriptor = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(descriptor, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n").writerow(row)

    def sync_metrics(self) -> None:
        """fsync metrics.csv: the rows a checkpoint or a completed summary is about to vouch for."""
        descriptor = os.open(self.metrics_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_atomically(self.summary_path, strict_json(summary))

    def read_summary(self) -> dict[str, Any]:
        """The summary as a dict; {} for a missing, torn or foreign summary.json."""
        try:
            data = json.loads(read_regular(self.summary_path, MAX_SUMMARY_BYTES))
        except (OSError, ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def read_metrics(self) -> list[dict[str, float]]:
        with open(self.metrics_path, newline="") as handle:
            return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]
