"""The command line. Commands are thin: they parse options, call one function, and turn the project's
exceptions into a message and an exit code (2: bad input, 1: a run failed, 130: interrupted).

torch is imported inside the commands that train, never at module level, so `dropcli --help` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from dropcli import __version__
from dropcli.config import ConfigError, load_config

app = typer.Typer(
    name="dropcli",
    help="Experiments that show, with numbers and pictures, how dropout, L2, L1, max-norm and early stopping "
         "change overfitting. Every run leaves a self-describing folder under runs/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", metavar="KEY=VALUE",
                 help="Override one config value, e.g. --set regularizer.dropout=0.5 or "
                      "--set model.hidden_sizes=[512,512]. Repeatable; applied after the YAML file, in order."),
]
RunsDirOption = Annotated[
    Path, typer.Option("--runs-dir", help="Parent folder of the run folders.", file_okay=False),
]


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


@app.command()
def train(
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="CONFIG",
                                           help="YAML config: dataset, model, regularizer, optimizer, epochs, "
                                                "seed, device. See configs/ for presets.")],
    overrides: SetOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only the result.")] = False,
) -> None:
    """Train one model with one regularizer setting and write runs/<name>-<timestamp>/.

    The folder holds config.yaml (resolved), metrics.csv (per-epoch train/val loss and accuracy and the
    generalization gap), summary.json (test accuracy, best epoch, stop reason), model.pt and curves.png.
    Config merge order: schema defaults, then the YAML file, then each --set in order.
    """
    _train(config, overrides or [], runs_dir, quiet)


def _train(config_path: Path, overrides: list[str], runs_dir: Path, quiet: bool) -> None:
    config = with_bad_input_handled(lambda: load_config(config_path, overrides))
    from dropcli import train as training  # torch: only now
    from dropcli.data import DatasetError
    from dropcli.progress import epoch_progress
    from dropcli.runs import RunFolder

    experiment = with_bad_input_handled(lambda: training.prepare(config), DatasetError)
    run = RunFolder.create(runs_dir, config)
    console.print(f"[bold]run[/bold] {run.path}  ({config.model.name} on {config.dataset.name}, "
                  f"{training.describe_regularizers(experiment)}, device {experiment.device})")
    try:
        with epoch_progress(console, config.name, config.epochs, enabled=not quiet) as on_epoch:
            summary = training.run_experiment(experiment, run, on_epoch)
    except training.TrainingInterrupted as stop:
        errors.print(f"[yellow]interrupted[/yellow]: what was done is in {stop.run.path} (status: interrupted)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except training.TrainingFailed as failure:
        errors.print(f"[red]run failed[/red]: {failure}. The error is recorded in {failure.run.summary_path}")
        raise typer.Exit(EXIT_FAILED) from None
    console.print(
        f"[green]done[/green] in {summary['wall_time_s']:.1f}s, {summary['epochs_run']} epochs ({summary['stop_reason']}); "
        f"test acc {summary['test_acc']:.4f}, final gap: loss {summary['final_gap_loss']:+.4f}, "
        f"acc {summary['final_gap_acc']:+.4f}; best epoch {summary['best_epoch']}\n"
        f"     {run.path}/  (metrics.csv, summary.json, curves.png)"
    )


def with_bad_input_handled(action, *extra_errors: type[Exception]):
    """Run `action`; a user's mistake becomes one line per problem on stderr and exit code 2, no traceback."""
    try:
        return action()
    except (ConfigError, *extra_errors) as error:
        for problem in getattr(error, "problems", [str(error)]):
            errors.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


if __name__ == "__main__":
    app()
