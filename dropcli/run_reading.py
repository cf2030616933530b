"""Reading run folders back, for reports, status, exports and resumes: tolerant of anything a crash, a kill or
another user can leave behind. Nothing here writes: a reader leaves every run folder byte for byte as it was.

A run's status has one home, here:
    recorded_status   what summary.json says (running | completed | failed | interrupted), or None
    load_run          the run as a report reads it: recorded, or broken with a reason
    run_status        what a sweep needs to know of a trial's folder: also pending (never started) and unknown
    watched_status    what `status` shows: also "running (stale)" (says running, but no process holds it)
    reported_status   what tables and exports show: a completed run that tune's pruner ended is "pruned"
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from dropcli import locks, yamlsafe
from dropcli.config import ConfigError, validate_config
from dropcli.files import read_regular
from dropcli.run_files import MAX_SUMMARY_BYTES, read_metrics_tolerantly

log = logging.getLogger("dropcli")


RUN_MARKERS = ("config.yaml", "metrics.csv", "summary.json")
RECORDED_STATUSES = ("running", "completed", "failed", "interrupted")  # what a summary.json of dropcli's says
# every status `status` can show, in the order it lists them
WATCHED_STATUSES = ("completed", "running", "running (stale)", "failed", "interrupted", "broken", "pending", "unknown")
# how the stop_reason of a trial that tune's pruner ended begins: a completed run folder, left out of statistics
PRUNED = "pruned"


@dataclass
class LoadedRun:
    path: Path
    status: str  # completed | failed | interrupted | running | broken
    reason: str  # why it is not completed ("" when it is)
    config: dict[str, Any] | None
    summary: dict[str, Any]
    metrics: list[dict[str, float]]


def recorded_status(summary: Any) -> str | None:
    """The status a summary (parsed summary.json) records, or None when it records none dropcli writes: the
    file may have been written by anyone."""
    status = summary.get("status") if isinstance(summary, dict) else None
    return status if status in RECORDED_STATUSES else None


def reported_status(run: LoadedRun) -> str:
    """The status tables and exports show: a completed run that tune's pruner ended is "pruned" (a sweep
    counts it completed: it is never trained again), and is never averaged with the rest."""
    stop = run.summary.get("stop_reason")
    return "pruned" if run.status == "completed" and isinstance(stop, str) and stop.startswith(PRUNED) else run.status


def run_status(folder: Path) -> str:
    """The status a run folder's summary.json records; pending without one, unknown if it is unreadable,
    broken if it says completed but its config, metrics or results are missing (a sweep trains it again)."""
    summary = folder / "summary.json"
    if not summary.is_file():  # missing; or a FIFO, a device, a dangling link: nothing dropcli wrote
        return "pending" if not summary.exists() and not summary.is_symlink() else "unknown"
    try:
        data = json.loads(read_regular(summary, MAX_SUMMARY_BYTES))
    except (OSError, ValueError, RecursionError):  # torn, not UTF-8, not JSON, too large
        return "unknown"
    status = recorded_status(data)
    if status is None:
        return "unknown"
    if status == "completed" and load_run(folder).status != "completed":
        return "broken"
    return status


def watched_status(folder: Path) -> str:
    """run_status, and "running (stale)" for a run whose summary says running but that no process owns:
    it was killed (rerunning its sweep continues it). Asked without taking the folder's lock for long."""
    status = run_status(folder)
    return "running (stale)" if status == "running" and locks.holder_of(folder) is None else status


# MLflow's stores (export's `sqlite:///…` keeps artifacts in `mlartifacts/` beside the database; a file store
# is `mlruns/`): they hold copies of run folders' files, never run folders of their own
FOREIGN_STORES = frozenset({"mlruns", "mlartifacts"})


def discover_run_folders(root: Path) -> list[Path]:
    """Every folder under `root` (itself included) that holds any of a run folder's files. A link to a folder
    is not followed: the run it points to is counted where it is, or not at all (never twice). MLflow stores
    below `root` are not looked into (their artifact copies would count each exported run again)."""
    def unreadable(error: OSError) -> None:
        if error.filename != str(root):  # root itself: the caller finds it empty or missing
            log.warning(f"{error.filename}: cannot be read ({error.strerror}); any runs in it are left out")

    found = []
    for folder, subfolders, _ in os.walk(root, onerror=unreadable):
        subfolders[:] = [name for name in subfolders
                         if name not in FOREIGN_STORES and not os.path.islink(os.path.join(folder, name))]
        if any((Path(folder) / marker).is_file() for marker in RUN_MARKERS):
            found.append(Path(folder))
    return sorted(found)



def load_run(path: Path) -> LoadedRun:
    """Read what there is; never raise. Anything missing or unreadable becomes a status and a reason.
    The files may have been written by anyone: YAML goes through yamlsafe, sizes are capped."""
    problems: list[str] = []
    config = summary = None
    try:
        config = yamlsafe.load(read_regular(path / "config.yaml", yamlsafe.MAX_BYTES))
        if not isinstance(config, dict) or not config:
            problems.append("config.yaml is empty or not a mapping")
            config = None
    except FileNotFoundError:
        problems.append("config.yaml is missing")
    except (ValueError, OSError, RecursionError):  # YamlError, UnicodeDecodeError, a FIFO ...
        problems.append("config.yaml is unreadable")
    try:
        summary = json.loads(read_regular(path / "summary.json", MAX_SUMMARY_BYTES))
        if not isinstance(summary, dict):
            raise ValueError
    except FileNotFoundError:
        problems.append("summary.json is missing (killed before its first epoch?)")
    except (ValueError, UnicodeDecodeError, OSError, RecursionError):
        problems.append("summary.json is corrupted")
        summary = None
    if config is not None:
        config = conforming_config(config, problems)
    metrics = read_metrics_tolerantly(path / "metrics.csv")
    summary = summary or {}
    status = recorded_status(summary) or "broken"
    if status == "completed" and (config is None or not metrics):
        status = "broken"
        problems.append("completed, but its config.yaml or metrics.csv is empty or missing")
    elif status == "completed" and [row["epoch"] for row in metrics] != list(range(1, len(metrics) + 1)):
        status = "broken"
        problems.append("completed, but the epochs in metrics.csv are repeated or out of order")
    elif status == "completed" and isinstance(summary.get("epochs_run"), int) and len(metrics) != summary["epochs_run"]:
        status = "broken"
        problems.append(f"completed after {summary['epochs_run']} epochs, but metrics.csv holds {len(metrics)}")
    if status == "completed" and not all(is_number(summary.get(k)) for k in ("val_acc", "test_acc", "gap_loss")):
        status = "broken"
        problems.append("completed, but summary.json lacks its results")
    elif status == "completed" and config is not None and (impossible := impossible_result(summary, config)):
        status = "broken"
        problems.append(f"completed, but summary.json says {impossible}")
    if status == "running":
        problems.append("never finished: still running, or killed")
    if status in ("failed", "interrupted") and summary.get("error"):
        problems.append(" ".join(str(summary["error"]).split())[:500])
    if status != "completed" and not problems:
        problems.append(f"status {status!r}")
    return LoadedRun(path, status, "; ".join(problems) if status != "completed" else "", config, summary, metrics)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float, as a summary's results are (a 400-digit int, which JSON allows, is none)."""
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:
        return False


# What a completed run's results can be, for the report averages them and summary.json may have been written by
# anyone: accuracies and calibration errors are fractions, accuracy gaps differences of two; losses are
# cross-entropies, at most what a float32 evaluation holds (a larger number was never computed, and its square
# overflows a standard deviation), loss gaps differences of two
FLOAT32_MAX = 3.4028234663852886e38
RESULT_RANGES = {
    **dict.fromkeys(["train_acc", "val_acc", "test_acc", "final_train_acc", "final_val_acc", "ws_test_acc",
                     "mc_test_acc", "test_ece", "ws_test_ece", "mc_test_ece"], (0.0, 1.0)),
    **dict.fromkeys(["gap_acc", "final_gap_acc", "max_gap_acc"], (-1.0, 1.0)),
    **dict.fromkeys(["train_loss", "val_loss", "test_loss", "final_train_loss", "final_val_loss", "ws_test_nll",
                     "mc_test_nll"], (0.0, FLOAT32_MAX)),
    **dict.fromkeys(["gap_loss", "final_gap_loss", "max_gap_loss"], (-FLOAT32_MAX, FLOAT32_MAX)),
}


def impossible_result(summary: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The first result a completed run cannot have had, in words ("test_acc = 1e+308, outside [0, 1]"), or None.
    A missing or null result is no problem here (older versions; a non-finite number is written as null)."""
    def problem(key: str, value: Any, low: float, high: float, whole: bool = False) -> str | None:
        if value is None:
            return None
        if not is_number(value):
            return f"{key} = {yamlsafe.brief(value)}, not a number"
        if whole and value != int(value):
            return f"{key} = {value:.4g}, not a whole number"
        return None if low <= value <= high else f"{key} = {value:.4g}, outside [{low:g}, {high:g}]"

    epochs, epochs_run = config["epochs"], summary.get("epochs_run")
    last = epochs_run if isinstance(epochs_run, int) and 1 <= epochs_run <= epochs else epochs
    checks: list[tuple[Any, ...]] = [(key, summary.get(key), *bounds) for key, bounds in RESULT_RANGES.items()]
    checks += [("epochs_run", epochs_run, 1, epochs, True), ("best_epoch", summary.get("best_epoch"), 1, last, True),
               ("mc_samples", summary.get("mc_samples"), 1, max(1, config["evaluation"]["mc_samples"]), True)]
    learned = summary.get("learned_p")
    if isinstance(learned, list):  # Concrete dropout's rate per layer
        checks += [(f"learned_p[{i}]", rate, 0.0, 1.0) for i, rate in enumerate(learned)]
    return next((found for check in checks if (found := problem(*check))), None)


def conforming_config(raw: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """The config as this dropcli's schema resolves it (types normalized, missing keys at their defaults,
    so runs written by older versions line up), or None with the reason in `problems`."""
    try:
        return validate_config(raw).to_dict()
    except ConfigError as error:
        problems.append(f"config.yaml does not fit this dropcli's config schema ({error.problems[0]})")
        return None
