"""dropcli status: how far a sweep is, read from its run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dropcli.cli.common import a_folder, console, with_bad_input_handled
from dropcli.display import plain
from dropcli.run_reading import WATCHED_STATUSES


def status(
    sweep_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, callback=a_folder, metavar="SWEEP_DIR",
                                              help="A sweep folder (it holds sweep.json), a tune folder (tune.json) "
                                                   "or a benchmark folder (benchmark.json).")],
) -> None:
    """How far a sweep (or a tune) is: trials completed, running, failed, interrupted and pending, and each
    running trial's epoch and latest validation accuracy and loss.

    Read from its run folders, so it works while the sweep runs, on this machine or another sharing the
    folder. Besides those: broken (says completed, but its config, metrics or results are missing: the
    sweep trains it again), unknown (its summary.json is unreadable or not one dropcli writes) and running
    (stale) (says running, but no process holds it: killed; rerunning the sweep continues it)."""
    from collections import Counter

    from rich.table import Table

    from dropcli import watching
    from dropcli.benchmark.folder import is_benchmark_folder

    if is_benchmark_folder(sweep_dir):  # a benchmark: its workloads, each a tune
        from dropcli.cli.benchmark_status import benchmark_status

        return benchmark_status(sweep_dir)
    kind, statuses = with_bad_input_handled(lambda: watching.folder_statuses(sweep_dir))
    counts = Counter(statuses.values())
    what = "" if kind == "sweep" else f" ({kind})"
    console.print(f"[bold]{escape(str(sweep_dir))}[/bold]{what}: {len(statuses)} trials — " +
                  ", ".join(f"{count} {state}" for state, count in sorted(counts.items(), key=status_order)))
    unfinished = [(name, state) for name, state in statuses.items() if state != "completed"]
    if unfinished:
        table = Table("trial", "status", "where it stands")
        for name, state in unfinished:
            where = watching.describe(watching.standing(sweep_dir / name)) if state.startswith("running") else ""
            table.add_row(plain(name), state, where)  # names come from sweep.json: anyone may have written it
        console.print(table)
        if counts["running (stale)"]:
            console.print("running (stale): the summary says running but no process holds the trial: it was "
                          "killed; rerunning the sweep continues it")


def status_order(item: tuple[str, int]) -> int:
    return WATCHED_STATUSES.index(item[0]) if item[0] in WATCHED_STATUSES else len(WATCHED_STATUSES)
