"""The command line: one module per command, each parsing its options, calling one function and turning
the project's exceptions into a message and an exit code (common.py: 2 bad input, 1 a run failed, 130
Ctrl-C, 143 SIGTERM). Launching a sweep lives in dropcli/launch.py, not here.

torch is imported inside the commands that train, never at module level, so `dropcli --help` is instant.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dropcli import __version__
from dropcli.cli.common import EXTRA_ARGUMENTS, console, show_warnings
from dropcli.cli.export import export
from dropcli.cli.report import report
from dropcli.cli.show_config import config
from dropcli.cli.status import status
from dropcli.cli.sweep import sweep
from dropcli.cli.train import train
from dropcli.cli.tune import tune

app = typer.Typer(
    name="dropcli",
    help="Experiments that show, with numbers and pictures, how dropout, L2, L1, max-norm and early stopping "
         "change overfitting. Every run leaves a self-describing folder under runs/.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain click help: reads the same in a terminal, a pipe or a log; flags without "<bool>"
    pretty_exceptions_enable=False,
)


def version_callback(value: bool) -> None:
    if value:
        console.print(f"dropcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """dropcli: regularization experiments on the command line."""
    show_warnings()


app.command(context_settings=EXTRA_ARGUMENTS)(train)
app.command(context_settings=EXTRA_ARGUMENTS)(sweep)
app.command(context_settings=EXTRA_ARGUMENTS)(tune)
app.command()(report)
app.command()(status)
app.command()(export)
app.command(context_settings=EXTRA_ARGUMENTS)(config)
