"""Watching runs as they train, from their folders alone: what `dropcli status` reads (every trial's status
in a sweep or tune folder, and where each running trial stands: its epoch and latest validation metrics),
and what `dropcli report --watch` waits for (a trial that starts or ends)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dropcli.run_reading import discover_run_folders, load_run, watched_status
from dropcli.sweep import SweepError, sweep_statuses


@dataclass(frozen=True)
class Standing:
    """A running trial's latest epoch row."""

    epoch: int
    epochs: int | None  # what its config asks for (early stopping may end it sooner)
    val_loss: float | None
    val_acc: float | None


def folder_statuses(folder: Path) -> tuple[str, dict[str, str]]:
    """(what the folder is, trial name → status): a sweep's trials from its sweep.json; a tune folder's, every
    run folder below it (named by its path under the folder: dropout/trial-0003, best/l2_seed-1). A trial
    that says running but that no process holds was killed: "running (stale)"."""
    if (folder / "sweep.json").exists() or not (folder / "tune.json").exists():
        try:
            return "sweep", sweep_statuses(folder)
        except SweepError as error:
            if not (folder / "sweep.json").exists():
                raise SweepError(f"{folder}: not a sweep folder (no sweep.json) nor a tune folder (no "
                                 f"tune.json)") from None
            raise error from None
    statuses = {}
    for path in discover_run_folders(folder):
        statuses[str(path.relative_to(folder)) if path != folder else path.name] = watched_status(path)
    return "tune", statuses


def standing(run_folder: Path) -> Standing | None:
    """The latest epoch a run folder's metrics.csv holds; None before its first epoch."""
    run = load_run(run_folder)
    if not run.metrics:
        return None
    last = run.metrics[-1]
    epochs = (run.config or {}).get("epochs")

    def number(key: str) -> float | None:
        value = last.get(key)
        return float(value) if isinstance(value, (int, float)) else None

    return Standing(int(last.get("epoch", len(run.metrics))), epochs if isinstance(epochs, int) else None,
                    number("val_loss"), number("val_acc"))


def describe(standing_now: Standing | None) -> str:
    if standing_now is None:
        return "before its first epoch"
    parts = [f"epoch {standing_now.epoch}" + (f"/{standing_now.epochs}" if standing_now.epochs else "")]
    if standing_now.val_acc is not None:
        parts.append(f"val acc {standing_now.val_acc:.3f}")
    if standing_now.val_loss is not None:
        parts.append(f"val loss {standing_now.val_loss:.3f}")
    return ", ".join(parts)


def changes(roots: list[Path]) -> tuple:
    """What moves when a trial starts or ends: each run folder's summary.json (written at both)."""
    marks: list[tuple[str, int | None, int | None]] = []
    for root in roots:
        for path in discover_run_folders(root):
            try:
                stat = (path / "summary.json").stat()
                marks.append((str(path), stat.st_mtime_ns, stat.st_size))
            except OSError:
                marks.append((str(path), None, None))
    return tuple(sorted(marks, key=str))


def watch(rebuild: Callable[[], None], roots: list[Path], every: float, rounds: int | None = None,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Call `rebuild` now and again whenever a trial under `roots` starts or ends, looking every `every`
    seconds, until interrupted (or after `rounds` looks: tests). Returns how many times it rebuilt."""
    seen, looks, rebuilt = None, 0, 0
    while rounds is None or looks < rounds:
        now = changes(roots)
        if now != seen:
            rebuild()
            seen, rebuilt = now, rebuilt + 1
        looks += 1
        if rounds is None or looks < rounds:
            sleep(every)
    return rebuilt
