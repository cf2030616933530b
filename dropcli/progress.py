"""Progress on the terminal: a rich bar over epochs that shows the current losses and the gap."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def format_epoch(row: dict[str, float]) -> str:
    return (f"train loss {row['train_loss']:.3f}  val loss {row['val_loss']:.3f}  "
            f"val acc {row['val_acc']:.3f}  [bold]gap {row['gap_loss']:+.3f}[/bold]")


@contextmanager
def epoch_progress(console: Console, description: str, epochs: int,
                   enabled: bool = True) -> Iterator[Callable[[dict[str, float]], None]]:
    """Yield a callback to call with each epoch's metrics row; it advances the bar and shows the gap."""
    if not enabled:
        yield lambda row: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=epochs, stats="")
        yield lambda row: progress.update(task, advance=1, stats=format_epoch(row))
