"""What every command shares: the consoles, exit codes, options, and the one place where the project's
exceptions become a message and an exit code (2: bad input, 1: a run failed, 130: Ctrl-C, 143: SIGTERM)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from dropcli.config import ConfigError
from dropcli.display import plain

# soft_wrap: a line is never broken at the terminal's width (a path or a command split mid-word cannot be
# copied); tables still fit the width
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 1, 130, 143

# train and sweep read extra arguments themselves, to answer Hydra habits (`key=value`) with a hint
EXTRA_ARGUMENTS = {"allow_extra_args": True, "ignore_unknown_options": True}

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE",
                 help="Override one config value, e.g. --set regularizer.dropout=0.5 or "
                      "--set model.hidden_sizes=[512,512]. Repeatable; applied after the YAML file, in order."),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="CPU threads torch may use (the config's threads:). Default: "
                                          "OMP_NUM_THREADS when set, else the CPUs this process may run on. "
                                          "On a busy machine 1 can be much faster."),
]
RunsDirOption = Annotated[
    Path, typer.Option("--runs-dir", help="Parent folder of the run folders.", file_okay=False),
]


def config_file(ctx: typer.Context, value: Path | None) -> Path | None:
    """The CONFIG argument: an existing file; `key=value` in its place gets the --set hint."""
    if value is not None and not value.is_file():
        if str(value).startswith("-"):  # an option the command does not know, read as CONFIG
            exit_bad_input(f"{value}: no such option ({ctx.command_path} --help)")
        if "=" in value.name:
            exit_bad_input(f"{value}: dropcli takes config values as --set {value} after the CONFIG file "
                           f"(Hydra's bare key=value is not read)")
        exit_bad_input(f"CONFIG {value}: the file does not exist" if not value.exists() else
                       f"CONFIG {value}: not a file")
    return value


def a_folder(value: Path | None) -> Path | None:
    """A DIR argument that exists: a folder. (click's file_okay=False lets a device or a pipe through:
    /dev/null is no regular file, and `report /dev/null` said 'a file: FileNotFoundError'.)"""
    if value is not None and value.exists() and not value.is_dir():
        exit_bad_input(f"{value}: not a folder")
    return value


def refuse_extra_arguments(ctx: typer.Context, command: str) -> None:
    """Arguments the command does not take, each answered with what to write instead."""
    problems = []
    for argument in ctx.args:
        if re.fullmatch(r"[A-Za-z_][\w.]*=.*", argument):
            problems.append(f"{argument}: dropcli takes config values as --set {argument} (Hydra's bare "
                            f"key=value is not read)")
        elif argument.startswith("-"):
            key = argument.lstrip("-").split("=")[0]
            problems.append(f"{argument}: `dropcli {command}` has no such option (dropcli {command} --help); "
                            f"a config value is set with --set {key}=VALUE")
        else:
            problems.append(f"{argument}: unexpected argument (dropcli {command} --help)")
    if problems:
        exit_bad_input(*problems)


class WarningLine(logging.Handler):
    """dropcli's warnings (a damaged checkpoint it fell back from, ...) as one plain line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        errors.print(f"[yellow]warning:[/yellow] {plain(record.getMessage())}", highlight=False, soft_wrap=True)


def show_warnings() -> None:
    logger = logging.getLogger("dropcli")
    if not any(isinstance(handler, WarningLine) for handler in logger.handlers):
        logger.addHandler(WarningLine(logging.WARNING))
        logger.propagate = False


def with_bad_input_handled(action: Callable[[], T], *extra_errors: type[Exception]) -> T:
    """Run `action`; a user's mistake becomes one line per problem on stderr and exit code 2, no traceback."""
    try:
        return action()
    except (ConfigError, *extra_errors) as error:  # type: ignore[misc]  # a tuple built at run time
        exit_bad_input(*getattr(error, "problems", [str(error)]))
    except OSError as error:  # the environment: an unwritable or impossible path, a full disk, too long a name
        exit_bad_input(describe_os_error(error))


def describe_os_error(error: OSError) -> str:
    """"runs/x: Permission denied" — the path and the system's words, without Python's [Errno N]."""
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: {error.strerror or type(error).__name__}" + (
        f" (and {error.filename2})" if error.filename2 is not None else "")


def exit_bad_input(*problems: str) -> NoReturn:
    for problem in problems:
        errors.print(f"[red]error:[/red] {plain(problem)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)
