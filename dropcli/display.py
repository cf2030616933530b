"""What the terminal shows: rich progress bars for epochs and sweeps, and the sweep's results table.

When stdout is not a terminal (nohup, `| tee`, a Slurm log, CI) there are no bars: one plain line per
epoch (every Nth epoch for long runs) and per trial, each with the run's name, printed as it happens and
never wrapped, so a log file tells what happened.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
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

    def __init__(self, console: Console, enabled: bool = True):
        self.console, self.enabled, self.log = console, enabled, enabled and log_mode(console)
        self.progress = Progress(*progress_columns(), console=console, disable=not enabled or self.log)
        self.trials_task: TaskID | None = None
        self.epochs_task: TaskID | None = None
        self.done, self.current, self.epochs, self.pacing = 0, 1, 1, EpochLog(1)

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start(self, total: int, already_done: int) -> None:
        self.done = already_done
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
                group = f" ({running} stacked trials running; shown: {who})" if running > 1 else f" {who}"
                log_line(self.console, f"epoch {epoch}/{self.epochs}{group}: {format_epoch(row)}")
            return
        if self.epochs_task is not None:
            self.progress.update(self.epochs_task, completed=epoch, stats=format_epoch(row) + shown)
        if self.trials_task is not None:
            self.progress.update(self.trials_task, completed=self.done + self.current * epoch / self.epochs)

    def trial_ended(self, trial: Trial, status: str, error: str | None = None) -> None:
        self.done += 1
        if self.log:
            log_line(self.console, f"trial {plain(trial.name)}: {status}" + (f": {plain(error)}" if error else ""))
            return
        if self.trials_task is not None:
            self.progress.update(self.trials_task, completed=self.done, stats=f"last: {trial.name} {status}")
        if error:
            label = "held" if status == "held" else "failed"
            self.progress.console.print(f"[red]trial {plain(trial.name)} {label}[/red]: {plain(error)}",
                                        highlight=False, soft_wrap=True)


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
