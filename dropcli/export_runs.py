"""What an export takes of each run folder, shared by both trackers: which runs (and why the others are left
out: a bound on rows, numbers a tracker cannot take), their fingerprint, their per-epoch rows and times, and
their names as text any tracker takes."""

from __future__ import annotations

import hashlib
import math
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dropcli.results import read_runs, run_name
from dropcli.run_reading import LoadedRun, is_number
from dropcli.yamlsafe import brief

FINGERPRINTED = ("config.yaml", "metrics.csv", "summary.json", "curves.png")
MAX_EXPORT_ROWS = 100_000  # epochs a run may have to be exported (a 200k-row metrics.csv took 2 minutes and 820 MB)
MAX_EPOCH_SECONDS = 1e7  # 115 days: a `seconds` beyond is no duration (1e308 overflowed MLflow's timestamps)
LATEST_TIME = 253402300799.0  # 9999-12-31: the last wall time a tracker's clock can show


@dataclass
class ExportOutcome:
    written: list[str] = field(default_factory=list)  # exported now (new, or replacing a changed export)
    unchanged: list[str] = field(default_factory=list)  # exported before with the same files: skipped
    left_out: dict[str, str] = field(default_factory=dict)  # run → why it cannot be exported


def exportable_runs(root: Path, outcome: ExportOutcome) -> Iterator[tuple[str, LoadedRun]]:
    """The runs to export, by name; the others are left out with a reason (no config or epochs, too many rows,
    a number no tracker can take): one bad run folder never stops the export of the rest."""
    for run in read_runs(root):
        name = run_name(run, root)
        if run.config is None or not run.metrics:
            outcome.left_out[shown_name(name)] = run.reason or "no config or no epochs to export"
        elif problem := export_problem(run):
            outcome.left_out[shown_name(name)] = f"{problem}; not exported"
        else:
            yield name, run


def export_problem(run: LoadedRun) -> str | None:
    """Why a run's rows cannot be exported as they are, or None (the files may have been written by anyone)."""
    if len(run.metrics) > MAX_EXPORT_ROWS:
        return f"metrics.csv holds {len(run.metrics):,} epochs; export takes at most {MAX_EXPORT_ROWS:,} a run"
    for row in run.metrics:
        epoch, seconds = row.get("epoch"), row.get("seconds", 0.0)
        if not is_number(epoch) or epoch != int(epoch) or not 0 <= epoch <= MAX_EXPORT_ROWS:
            return f"metrics.csv: epoch {brief(epoch)} is not an epoch number"
        if not is_number(seconds) or not 0 <= seconds <= MAX_EPOCH_SECONDS:
            return f"metrics.csv, epoch {int(epoch)}: seconds = {brief(seconds)}, not a duration an epoch can take"
        wrong = next((column for column, value in row.items() if not isinstance(value, (int, float))), None)
        if wrong is not None:
            return f"metrics.csv, epoch {int(epoch)}: {brief(wrong)} = {brief(row[wrong])}, not a number"
    if not all(0 <= when <= LATEST_TIME for when in epoch_times(run)):
        return f"summary.json: started_at {brief(run.summary.get('started_at'))} is no time an epoch ended at"
    return None


def shown_name(name: str) -> str:
    """A path as text any tracker or terminal takes: bytes that are not UTF-8 (a folder named by anyone) as
    \\xNN escapes, not the surrogates Python reads them as (which neither sqlite nor a terminal can write)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def describe(error: OSError) -> str:
    return f"{shown_name(str(error.filename or 'a file'))}: {error.strerror or type(error).__name__}"


def fingerprint(run: LoadedRun) -> str:
    """What an export was made from: the run folder's files, hashed (a changed file means export again)."""
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        path = run.path / name
        digest.update(path.read_bytes() if regular_file(path) else b"-")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def regular_file(path: Path) -> bool:
    """A plain file, not a link or a FIFO (a run folder may have been written by anyone: a link to a
    secret must not become an artifact, a FIFO must not hang the export)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def summary_numbers(run: LoadedRun) -> dict[str, float]:
    """The summary's numeric results (test_acc, gap_loss, best_epoch, ...), as `summary.<key>`."""
    return {f"summary.{key}": float(value) for key, value in run.summary.items()
            if is_number(value) and key not in ("seed", "resumed")}


def epoch_columns(run: LoadedRun) -> list[str]:
    return [c for c in run.metrics[0] if c not in ("epoch", "seconds")]


def epoch_times(run: LoadedRun) -> list[float]:
    """Each epoch's wall-clock end (seconds since 1970), from started_at and the epochs' durations, so that
    TensorBoard's and MLflow's time axes show when the run trained (not when it was exported)."""
    try:
        start = datetime.fromisoformat(str(run.summary.get("started_at"))[:64]).timestamp()
    except (ValueError, OverflowError, OSError):
        start = run.path.joinpath("metrics.csv").stat().st_mtime - sum(r.get("seconds", 0.0) for r in run.metrics)
    times, clock = [], start
    for row in run.metrics:
        clock += row.get("seconds", 0.0) if math.isfinite(row.get("seconds", 0.0)) else 0.0
        times.append(clock)
    return times
