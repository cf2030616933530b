"""What the terminal shows: rich progress bars for epochs and sweeps, and the sweep's results table.

When stdout is not a terminal (nohup, `| tee`, a Slurm log, CI) there are no bars: one plain line per
epoch (every Nth epoch for long runs) and per trial, each with the run's name, printed as it happens and
never wrapped, so a log file tells what happened. A sweep's log reads as a log: every line starts with the
time (`timestamped`), a finished trial says `[k/N] name  completed in 12.3 s  val_acc 0.512  test_acc 0.507`,
a stacked group's epoch line gives the range (min / median / max) of its trials' validation metrics, and
tables are as wide as they need to be (`print_table`).
"""

from __future__ import annotations

import io
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dropcli.labels import mean_std, runs_and_seeds
from dropcli.runs import RunFolder
from dropcli.sweep import SweepObserver, Trial

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """Text from a file someone else may have written, safe on a terminal: no rich markup, and no control
    characters (escape sequences could retitle, clear or rewrite the terminal)."""
    return escape(CONTROL_CHARACTERS.sub("?", str(text)))


def counted(count: int, noun: str) -> str:
    """'1 trial', '16 trials'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def format_epoch(row: dict[str, Any]) -> str:
    return (f"train loss {row['train_loss']:.3f}  val loss {row['val_loss']:.3f}  "
            f"val acc {row['val_acc']:.3f}  [bold]gap {row['gap_loss']:+.3f}[/bold]")


LOG_LINES_PER_RUN = 100  # a log shows at most about this many epoch lines per run (and every epoch of short runs)
LOG_EVERY_S = 60.0  # ... and at least one a minute


def log_mode(console: Console) -> bool:
    """True when the output goes to a file or a pipe rather than a terminal: plain lines, no live view."""
    return not console.is_terminal


class EpochLog:
    """Which epochs a log shows: the first, the last, every Nth, and one at least every LOG_EVERY_S."""

    def __init__(self, epochs: int):
        self.epochs, self.every, self.last = epochs, max(1, epochs // LOG_LINES_PER_RUN), time.monotonic()

    def due(self, epoch: int) -> bool:
        now = time.monotonic()
        if epoch in (1, self.epochs) or epoch % self.every == 0 or now - self.last >= LOG_EVERY_S:
            self.last = now
            return True
        return False


def log_line(console: Console, text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


class TimedLines(io.TextIOBase):
    """A log file's writer that starts every line with the time it was written (HH:MM:SS)."""

    def __init__(self, target: Callable[[], IO[str]]):
        self.target, self.at_line_start = target, True  # target: resolved at each write (tests swap sys.stdout)

    def write(self, text: str) -> int:
        pieces = []
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                pieces.append(time.strftime("%H:%M:%S "))
            pieces.append(piece)
            self.at_line_start = piece.endswith("\n")
        self.target().write("".join(pieces))
        return len(text)

    def flush(self) -> None:
        self.target().flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def timestamped(*consoles: Console) -> Iterator[None]:
    """While inside: each console that writes to a file or a pipe starts every line with the time."""
    with ExitStack() as restore:
        for console in consoles:
            if not log_mode(console):
                continue
            before = console._file  # None: sys.stdout / sys.stderr, whichever it is at the time of writing
            console.file = TimedLines(partial(current_file, before, console.stderr))  # type: ignore[assignment]
            restore.callback(setattr, console, "file", before)
        yield


def current_file(chosen: IO[str] | None, stderr: bool) -> IO[str]:
    return chosen or (sys.stderr if stderr else sys.stdout)


def print_table(console: Console, table: Table) -> None:
    """A table at its natural width in a log (a file's 80 columns would fold it), else as wide as the
    terminal lets it be."""
    if log_mode(console):
        width, before = Measurement.get(console, console.options.update_width(1000), table).maximum, console._width
        console.width = max(width, 40)  # print(width=) alone cannot go beyond the console's own width
        try:
            console.print(table)
        finally:
            console._width = before
    else:
        console.print(table)


@contextmanager
def preparing(console: Console, text: str, enabled: bool = True) -> Iterator[None]:
    """Something on screen at once while torch is imported and the data generated or loaded (seconds): a
    spinner on a terminal, one line in a log."""
    if not enabled:
        yield
    elif log_mode(console):
        log_line(console, text)
        yield
    else:
        with console.status(escape(text)):
            yield


def progress_columns() -> tuple:
    return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))


@contextmanager
def epoch_progress(console: Console, description: str, epochs: int,
                   enabled: bool = True) -> Iterator[Callable[[dict[str, float]], None]]:
    """Yield a callback to call with each epoch's metrics row; it advances the bar and shows the gap."""
    if not enabled:
        yield lambda row: None
        return
    if log_mode(console):
        pacing = EpochLog(epochs)

        def log(row: dict[str, Any]) -> None:
            if pacing.due(int(row["epoch"])):
                log_line(console, f"{description} epoch {int(row['epoch'])}/{epochs}: {format_epoch(row)}")
        yield log
        return
    with Progress(*progress_columns(), console=console) as progress:
        task = progress.add_task(description, total=epochs, unit="epochs", stats="")
        yield lambda row: progress.update(task, advance=1, stats=format_epoch(row))


class SweepProgress(SweepObserver):
    """Two bars: trials done of the total (with the sweep's ETA, moving during a batched group too) and the
    current trial's or group's epochs, naming the trial whose metrics it shows. Plain lines in log mode."""

    def __init__(self, console: Console, enabled: bool = True, folder: Path | None = None):
        self.console, self.enabled, self.log = console, enabled, enabled and log_mode(console)
        self.progress = Progress(*progress_columns(), console=console, disable=not enabled or self.log)
        self.trials_task: TaskID | None = None
        self.epochs_task: TaskID | None = None
        self.done, self.current, self.epochs, self.pacing = 0, 1, 1, EpochLog(1)
        self.folder, self.total, self.started = folder, 0, time.monotonic()  # the sweep folder: trials' results

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start(self, total: int, already_done: int) -> None:
        self.done, self.total = already_done, total
        if self.trials_task is not None:  # another sweep through the same view (tune's batches)
            self.progress.remove_task(self.trials_task)
        if self.log:
            done = f", {already_done} already completed" if already_done else ""
            log_line(self.console, f"sweep: {counted(total, 'trial')}{done}")
        self.trials_task = self.progress.add_task("sweep", total=total, completed=already_done, unit="trials",
                                                  stats=f"{already_done} already completed" if already_done else "")

    def note(self, text: str) -> None:
        if self.log:
            log_line(self.console, plain(text))
        elif self.enabled:
            self.progress.console.print(plain(text), highlight=False, soft_wrap=True)

    def trial_started(self, trial: Trial) -> None:
        self.begin(f"trial {plain(trial.name)}", 1, trial.config.epochs)

    def group_started(self, trials: list[Trial]) -> None:
        names = ", ".join(plain(t.name) for t in trials)
        self.begin(f"{len(trials)} trials batched", len(trials), trials[0].config.epochs,
                   f"group of {len(trials)} trials stacked: {names}" if len(trials) > 1 else
                   f"{names} stacked alone (the numbers it would have in a group)")

    def begin(self, label: str, size: int, epochs: int, log_text: str | None = None) -> None:
        self.current, self.epochs, self.pacing = size, epochs, EpochLog(epochs)
        self.started = time.monotonic()
        if self.log:
            log_line(self.console, f"{log_text or label}: {epochs} epochs")
            return
        if self.epochs_task is not None:
            self.progress.remove_task(self.epochs_task)
        self.epochs_task = self.progress.add_task(label, total=epochs, unit="epochs", stats="")

    def epoch(self, row: dict[str, Any]) -> None:
        # a group reports one running trial's row: say whose
        who = plain(row["run"]) if "run" in row else ""
        running = int(row.get("running", 1))
        shown = f" (shows {who}, 1 of {running} running)" if running > 1 else ""
        epoch = int(row["epoch"])
        if self.log:
            if self.pacing.due(epoch):
                if running > 1 and "group" in row:
                    log_line(self.console, f"epoch {epoch}/{self.epochs} ({running} stacked trials running): "
                                           f"{format_group(row['group'])}")
                else:
                    log_line(self.console, f"epoch {epoch}/{self.epochs} {who}: {format_epoch(row)}")
            return
        if self.epochs_task is not None:
            self.progress.update(self.epochs_task, completed=epoch, stats=format_epoch(row) + shown)
        if self.trials_task is not None:
            self.progress.update(self.trials_task, completed=self.done + self.current * epoch / self.epochs)

    def trial_ended(self, trial: Trial, status: str, error: str | None = None) -> None:
        self.done += 1
        if self.log:
            seconds = time.monotonic() - self.started
            counter = f"[{self.done}/{self.total}] " if self.total else ""
            took = "" if status not in ("completed", "failed") else f" in {seconds:.1f} s" + (
                f" (its stacked group of {self.current})" if self.current > 1 else "")
            log_line(self.console, f"{escape(counter)}{plain(trial.name)}  {status}{took}"
                                   + (f": {plain(error)}" if error else self.results(trial, status)))
            return
        if self.trials_task is not None:
            self.progress.update(self.trials_task, completed=self.done, stats=f"last: {trial.name} {status}")
        if error:
            label = "held" if status == "held" else "failed"
            self.progress.console.print(f"[red]trial {plain(trial.name)} {label}[/red]: {plain(error)}",
                                        highlight=False, soft_wrap=True)


    def results(self, trial: Trial, status: str) -> str:
        """"  val_acc 0.512  test_acc 0.507" from the trial's summary.json, when its folder is known."""
        if status != "completed" or self.folder is None:
            return ""
        summary = RunFolder(self.folder / trial.name).read_summary()
        return "".join(f"  {key} {summary[key]:.3f}" for key in ("val_acc", "test_acc")
                       if isinstance(summary.get(key), (int, float)))


def format_group(values: dict[str, list[float]]) -> str:
    """A stacked group's epoch: each metric's min / median / max over its running trials."""
    parts = []
    for key, words in (("val_loss", "val loss"), ("val_acc", "val acc"), ("gap_loss", "gap")):
        numbers = [v for v in values.get(key, []) if v == v]  # NaN: a trial that diverged
        if numbers:
            parts.append(f"{words} {min(numbers):.3f} / {statistics.median(numbers):.3f} / {max(numbers):.3f}")
    return "  ".join(parts) + "  (min / median / max)"


def summary_table(summary, title: str) -> Table:
    """One row per setting: mean ± std over seeds; the best setting (by validation accuracy) in bold green."""
    table = Table(title=escape(title), title_justify="left")
    longest = max((len(str(s)) for s in summary["setting"]), default=7) + 7
    for header in ("setting", "runs", "val acc", "test acc", "final gap (loss)", "final gap (acc)"):
        # nothing is cut short ("train_size…" would make 250 and 1000 look alike): narrow columns fold
        table.add_column(header, justify="left" if header == "setting" else "right", overflow="fold",
                         min_width=min(longest, 24) if header == "setting" else None)
    for _, row in summary.iterrows():
        cells = [plain(row["setting"]) + (" (best)" if row["best"] else ""), runs_and_seeds(row)]  # no markup
        cells += [mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in ("val_acc", "test_acc", "gap_loss", "gap_acc")]
        table.add_row(*cells, style="bold green" if row["best"] else None)
    table.caption = "(best): highest mean validation accuracy; test accuracy is shown, never used to choose"
    return table
