"""`dropcli status` on a benchmark folder: per workload, tuning trials finished and runs retrained (read
from its run folders, like a sweep's status; nothing is written)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from dropcli.benchmark.folder import progress
from dropcli.cli.common import console, with_bad_input_handled
from dropcli.display import counted, plain


def benchmark_status(folder: Path) -> None:
    rows = with_bad_input_handled(lambda: progress(folder))
    done = sum(row.state == "completed" for row in rows)
    console.print(f"[bold]{escape(str(folder))}[/bold]: {counted(len(rows), 'workload')} — {done} completed")
    table = Table("workload", "tuning trials", "retrained runs", "status")
    for row in rows:
        others = ", ".join(f"{count} {state}" for state, count in sorted(row.retrained.items()) if state != "completed")
        table.add_row(plain(row.name), f"{row.tuned} / {row.budget}",
                      f"{row.retrained['completed']} / {row.total}" + (f" ({others})" if others else ""), row.state)
    console.print(table)
