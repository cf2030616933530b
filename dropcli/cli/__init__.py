"""The command line: one module per command, each parsing its options, calling one function and turning
the project's exceptions into a message and an exit code (common.py: 2 bad input, 1 a run failed, 130
Ctrl-C, 143 SIGTERM). Launching a sweep lives in dropcli/launch.py, not here.

torch is imported inside the commands that train, never at module level, so `dropcli --help` is instant.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # the click that raises the usage errors: typer vendors it as typer._click (0.2x), older typers use click
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import click  # type: ignore[no-redef]

from dropcli import __version__
from dropcli.cli.benchmark import benchmark
from dropcli.cli.common import EXIT_BAD_INPUT, EXTRA_ARGUMENTS, console, errors, show_warnings
from dropcli.cli.export import export
from dropcli.cli.report import report
from dropcli.cli.show_config import config
from dropcli.cli.status import status
from dropcli.cli.sweep import sweep
from dropcli.cli.train import train
from dropcli.cli.tune import tune
from dropcli.display import plain

# what click raises for `dropcli` without arguments (click ≥ 8.2): its message is the help
HELP_WANTED: Any = getattr(click.exceptions, "NoArgsIsHelpError", type("NeverRaised", (Exception,), {}))


class OneLineErrors(TyperGroup):
    """Click's own usage errors (an option's value out of range, a missing argument, an unknown option) in
    one line, like every other bad input: `error: ... (dropcli train --help)`, exit 2 — instead of click's
    usage line, hint, blank line and error."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        def run() -> Any:
            return super(OneLineErrors, self).main(args, prog_name, complete_var, standalone_mode=False,
                                                   windows_expand_args=windows_expand_args, **extra)

        if not standalone_mode:
            return run()
        words = list(sys.argv[1:] if args is None else args)
        empty = empty_path(words)
        if empty is not None:
            errors.print(f"[red]error:[/red] {empty}: an empty path; write . for the current folder", highlight=False)
            sys.exit(EXIT_BAD_INPUT)
        try:
            code = run()
        except HELP_WANTED as help_wanted:  # `dropcli` alone: the help, as click shows it
            help_wanted.show()
            sys.exit(help_wanted.exit_code)
        except click.exceptions.UsageError as error:
            # an option missing its value carries no context: the command is the first word naming one
            command = next((word for word in words if word in self.commands), None)
            where = error.ctx.command_path if error.ctx is not None else " ".join(filter(None, ["dropcli", command]))
            message = error.format_message().rstrip(".")
            errors.print(f"[red]error:[/red] {plain(message)} ({where} --help)", highlight=False)
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:  # end of input at a prompt
            errors.print("Aborted!", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


PATH_OPTIONS = ("--runs-dir", "--out", "--tensorboard", "--resume")


def empty_path(words: list[str]) -> str | None:
    """The option (or "an argument") given an empty string where a path goes: Path('') is '.', so `--out ''`
    (an unset shell variable) would silently write into the current folder."""
    for index, word in enumerate(words):
        if word == "--":  # everything after it is an argument
            return "an argument" if "" in words[index + 1:] else None
        name, equals, value = word.partition("=")
        if name in PATH_OPTIONS and equals and not value:
            return name
        if word == "":
            previous = words[index - 1] if index else ""
            if previous in PATH_OPTIONS:
                return previous
            if not previous.startswith("-"):  # not the value of another option: an argument
                return "an argument"
    return None


app = typer.Typer(
    name="dropcli",
    cls=OneLineErrors,
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
    escape_undecodable_names()


def escape_undecodable_names() -> None:
    """A path whose bytes are not UTF-8 (a folder named by anyone) reaches Python as surrogates, which a UTF-8
    terminal cannot take: printed as \\udcNN escapes instead of ending the command with a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]


app.command(context_settings=EXTRA_ARGUMENTS)(train)
app.command(context_settings=EXTRA_ARGUMENTS)(sweep)
app.command(context_settings=EXTRA_ARGUMENTS)(tune)
app.command()(benchmark)
app.command()(report)
app.command()(status)
app.command()(export)
app.command(context_settings=EXTRA_ARGUMENTS)(config)
