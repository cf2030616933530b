"""dropcli train: one model, one regularizer setting, one run folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dropcli.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    RunsDirOption,
    SetOption,
    ThreadsOption,
    config_file,
    console,
    errors,
    exit_bad_input,
    refuse_extra_arguments,
    with_bad_input_handled,
)
from dropcli.config import load_config
from dropcli.models.code import CodeChanged, check_recorded
from dropcli.signals import Terminated, stop_on_sigterm

log = logging.getLogger("dropcli")


def train(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Argument(dir_okay=False, metavar="CONFIG", callback=config_file,
                                                     help="YAML config: dataset, model, regularizer, optimizer, "
                                                          "epochs, seed, device. See configs/ for presets.")] = None,
    overrides: SetOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    resume: Annotated[Path | None, typer.Option("--resume", file_okay=False, metavar="RUN_DIR",
                                                   help="Continue an interrupted, killed or failed run from its last "
                                                        "checkpoint (instead of CONFIG). The result is the same as a "
                                                        "run that was never stopped.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only the result.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Train one model with one regularizer setting and write runs/<name>-<timestamp>/.

    The folder holds config.yaml (resolved), metrics.csv (per-epoch train/val loss and accuracy and the
    generalization gap), summary.json (test accuracy, best epoch, stop reason), model.pt and curves.png,
    and checkpoint.pt while it trains. Config merge order: schema defaults, then the YAML file and the files
    it `extends:` (bases first), then each --set in order. `dropcli config CONFIG --set ...` prints the
    result without training. On a terminal a progress bar shows each epoch; in a log (stdout not a
    terminal) one plain line per epoch. Ctrl-C (exit 130) or SIGTERM (exit 143) stops cleanly and prints
    the --resume command.
    """
    refuse_extra_arguments(ctx, "train")
    if (config is None) == (resume is None):
        exit_bad_input("give a CONFIG file to start a run, or --resume RUN_DIR to continue one")
    if resume is not None and (overrides or threads):
        exit_bad_input("--set and --threads cannot change a run being resumed: it continues with its saved "
                       "config.yaml")
    _train(config, [*(overrides or []), *([f"threads={threads}"] if threads else [])], runs_dir, quiet, resume)


def _train(config_path: Path | None, overrides: list[str], runs_dir: Path, quiet: bool, resume: Path | None) -> None:
    from dropcli.locks import FolderBusy
    from dropcli.run_reading import load_run
    from dropcli.runs import NotARunFolder, RunFolder

    if resume is not None:
        previous = load_run(resume)
        if previous.summary.get("status") == "completed":  # what it wrote when it ended: never trained again
            refuse_edited_completed(resume, previous)
            console.print(f"{escape(str(resume))} is already completed; nothing to resume")
            return
        config_path = resume / "config.yaml"
        not_ours = (f"--resume {resume}: not a dropcli run folder (it needs a non-empty config.yaml, metrics.csv and "
                    f"summary.json); nothing to resume")
        if not previous.summary.get("run") or not resume.joinpath("metrics.csv").is_file():
            # never train a default config into a folder that is not one of ours: it would overwrite its files
            exit_bad_input(not_ours)
        if previous.config is None:
            if config_path.is_file():  # one of ours whose config.yaml is wrong: say what is wrong with it
                with_bad_input_handled(lambda: load_config(config_path))
            exit_bad_input(not_ours)
    config = with_bad_input_handled(lambda: load_config(config_path, overrides))
    if resume is not None:  # a model from code: only the file the run was created with, unchanged, is imported
        with_bad_input_handled(lambda: check_recorded(resume, config.model), CodeChanged)
    from dropcli.display import counted, epoch_progress, preparing

    with preparing(console, f"preparing {config.name}: loading torch and {config.dataset.name}", enabled=not quiet):
        from dropcli import train as training  # torch: only now
        from dropcli.checkpoint import UnsafeCheckpoint
        from dropcli.data import DatasetError

        experiment = with_bad_input_handled(lambda: training.prepare(config), DatasetError)
    run = with_bad_input_handled(lambda: RunFolder.claim(resume) if resume is not None
                                 else RunFolder.create(runs_dir, config), FolderBusy, NotARunFolder)
    if resume is not None and load_run(resume).status == "completed":  # its owner finished it meanwhile
        run.release()
        console.print(f"{escape(str(resume))} is already completed; nothing to resume")
        return
    if resume is not None:  # before anything is said of resuming it
        from dropcli.checkpoint import peek_state

        try:
            with_bad_input_handled(lambda: training.refuse_changed_config(peek_state(run), config, run))
        except typer.Exit:
            run.release()
            raise
        from dropcli.run_files import read_metrics_tolerantly

        recorded = len(read_metrics_tolerantly(run.metrics_path))
        if not run.has_checkpoint() and recorded:  # (a damaged one is named when it is read)
            log.warning(f"{run.path}: no checkpoint to continue from (it was killed before its first, or they "
                        f"were deleted): it restarts from its first epoch, replacing the "
                        f"{counted(recorded, 'recorded epoch')} in metrics.csv")
    verb = "resuming" if resume is not None else "run"
    console.print(f"[bold]{verb}[/bold] {escape(str(run.path))}  ({config.model.describe()} on {config.dataset.name}, "
                  f"{training.describe_regularizers(experiment)}, device {experiment.device})")
    stop_on_sigterm()
    try:
        with epoch_progress(console, config.name, config.epochs, enabled=not quiet) as on_epoch:
            summary = with_bad_input_handled(
                lambda: training.run_experiment(experiment, run, on_epoch, resume=resume is not None), UnsafeCheckpoint)
    except training.TrainingInterrupted as stop:
        errors.print(f"[yellow]interrupted[/yellow]: what was done is kept in {escape(str(stop.run.path))} (status: "
                     f"interrupted). Resume with: dropcli train --resume {escape(str(stop.run.path))}",
                     highlight=False)
        raise typer.Exit(EXIT_TERMINATED if stop.terminated else EXIT_INTERRUPTED) from None
    except training.TrainingFailed as failure:
        errors.print(f"[red]run failed[/red]: {escape(training.failure_reason(failure.error))}. The error is "
                     f"recorded in {escape(str(failure.run.summary_path))}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        run.release()
    drawn = False
    try:  # Ctrl-C or SIGTERM from here on finds the run completed: at most its picture is missing
        from dropcli.run_plots import draw_run_curves  # presentation: after training, from the run folder

        draw_run_curves([run.path])
        drawn = True
        console.print(
            f"[green]done[/green] in {summary['wall_time_s']:.1f}s, {summary['epochs_run']} epochs "
            f"({summary['stop_reason']}); "
            f"test acc {summary['test_acc']:.4f}, final gap: loss {summary['gap_loss']:+.4f}, "
            f"acc {summary['gap_acc']:+.4f}; best epoch {summary['best_epoch']}\n"
            f"     {escape(str(run.path))}/  (metrics.csv, summary.json, curves.png)"
        )
    except KeyboardInterrupt as stop:
        missing = "" if drawn else (f"; curves.png was not drawn (dropcli report {escape(str(run.path))} draws it "
                                    f"into its report folder)")
        errors.print(f"[yellow]interrupted[/yellow] after the run completed: {escape(str(run.path))} holds its "
                     f"results{missing}", highlight=False)
        raise typer.Exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED) from None


def refuse_edited_completed(resume: Path, previous) -> None:
    """A completed run whose config.yaml (or other files) changed since: exit 2 naming what changed. Restarting
    it would replace its results with those of another config."""
    never = "a completed run is never trained again: put its files back, or start a new run"
    try:
        config = load_config(resume / "config.yaml")
    except Exception as error:  # ConfigError, YamlError, OSError: the message says which
        exit_bad_input(f"--resume {resume}: completed, but its config.yaml is no longer valid ({error}); {never}")
    from dropcli.checkpoint import edited_since_completion  # torch: only on this path

    changed = edited_since_completion(resume / "model.pt", config)
    if changed:
        shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
        exit_bad_input(f"--resume {resume}: config.yaml was edited after the run completed ({shown}); {never}")
    if previous.status != "completed":
        exit_bad_input(f"--resume {resume}: completed, but {previous.reason}; {never}")
