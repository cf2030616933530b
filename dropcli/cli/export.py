"""dropcli export: run folders into TensorBoard event files or an MLflow tracking store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dropcli.cli.common import a_folder, console, errors, exit_bad_input, with_bad_input_handled
from dropcli.display import plain


def export(
    runs_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, callback=a_folder, metavar="DIR",
                                             help="A folder of run folders: a sweep, several sweeps, lone runs.")],
    tensorboard: Annotated[Path | None, typer.Option(
        "--tensorboard", metavar="OUT", file_okay=False,
        help="Write TensorBoard event files under OUT, one TensorBoard run per run folder "
             "(then: tensorboard --logdir OUT).")] = None,
    mlflow: Annotated[str | None, typer.Option(
        "--mlflow", metavar="URI",
        help="Log one MLflow run per run folder to this tracking URI: sqlite:///PATH/mlflow.db (artifacts go "
             "beside it, in mlartifacts/) or http://HOST:PORT of an MLflow server. MLflow 3 refuses ./mlruns "
             "file stores.")] = None,
    experiment: Annotated[str, typer.Option("--mlflow-experiment",
                                            help="The MLflow experiment the runs go into.")] = "dropcli",
) -> None:
    """Export every run folder under DIR to TensorBoard and/or MLflow: per-epoch train/val loss, accuracy,
    gaps and lr; the summary's results (summary.test_acc, ...); the config as hparams / params; for MLflow
    also curves.png, config.yaml and summary.json as artifacts and the run's status.

    Idempotent: exporting again skips runs whose files have not changed and replaces those that have (a
    run that trained on), never duplicating one. Needs the export extra (uv sync --extra export, or
    pip install 'dropcli[export]'). Reads run folders only; never trains.
    """
    from dropcli import export as exporting

    if tensorboard is None and mlflow is None:
        exit_bad_input("nothing to export to: give --tensorboard OUT and/or --mlflow URI")
    from dropcli.run_reading import discover_run_folders

    if not discover_run_folders(runs_dir):  # as `report` says; and no empty store or folder is made for it
        exit_bad_input(f"{runs_dir}: no run folders found (a run folder holds config.yaml, metrics.csv and "
                       f"summary.json); nothing to export")
    outcomes = []
    if tensorboard is not None:
        outcomes.append((f"TensorBoard {tensorboard}", with_bad_input_handled(
            lambda: exporting.to_tensorboard(runs_dir, tensorboard), exporting.ExportError)))
    if mlflow is not None:
        outcomes.append((f"MLflow {mlflow} (experiment {experiment})", with_bad_input_handled(
            lambda: exporting.to_mlflow(runs_dir, mlflow, experiment), exporting.ExportError)))
    for where, outcome in outcomes:
        for name, reason in outcome.left_out.items():
            errors.print(f"[yellow]left out[/yellow] {plain(name)}: {plain(reason)}", highlight=False)
        console.print(f"{escape(where)}: {len(outcome.written)} runs exported, {len(outcome.unchanged)} unchanged "
                      f"since the last export, {len(outcome.left_out)} left out")
