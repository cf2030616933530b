"""dropcli tune: each regularizer at its tuned best with the same budget, compared over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dropcli.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    RunsDirOption,
    ThreadsOption,
    config_file,
    console,
    errors,
    refuse_extra_arguments,
    with_bad_input_handled,
)
from dropcli.config import load_config
from dropcli.display import plain
from dropcli.regularizers import search_spaces
from dropcli.signals import Terminated, stop_on_sigterm

TuneSetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE",
                 help="Override one value of the base config, e.g. --set epochs=100 or --set "
                      "model.hidden_sizes=[512,512]. Repeatable; applied after the YAML file, in order. Not "
                      "regularizer.*: the base is the no-regularizer baseline, and the studies set the rest."),
]


def described_spaces() -> str:
    """Each tunable regularizer with what its study searches, from its own search_space: "l2 (1e-06..0.1, log)"."""
    def one(name: str, key: str, space: tuple) -> str:
        kind, *bounds = space
        values = " or ".join(bounds[0]) if kind == "choice" else \
            f"{bounds[0]:g}..{bounds[1]:g}" + (", log" if bounds[2] else "")
        leaf = key.rsplit(".", 1)[-1]
        return values if leaf == name else f"{leaf} {values}"

    return ", ".join(f"{name} ({', '.join(one(name, key, space) for key, space in spaces.items())})"
                     for name, spaces in search_spaces().items())


def tune(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(dir_okay=False, metavar="CONFIG", callback=config_file,
                                           help="Base YAML config, with no regularizer switched on: the baseline.")
                      ] = Path("configs/quickstart.yaml"),
    regularizers: Annotated[str, typer.Option(
        "--regularizers", metavar="R1,R2,R1+R2",
        help=f"The regularizers to tune, each its own study: {described_spaces()}; join with + to tune a "
             f"combination, e.g. dropout+l2.")
                    ] = "dropout,l2,early_stopping,augmentation",
    trials: Annotated[int, typer.Option("--trials", help="The budget: trials per regularizer, the same for each "
                                                         "(pruned and failed ones count).")] = 20,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds each best setting (and the baseline) is retrained "
                                                       "over for the comparison: the config's seed + 1 .. + N.")] = 5,
    metric: Annotated[str, typer.Option("--metric", metavar="val_loss|val_acc",
                                        help="What the studies optimize (of the weights a run ends with) and "
                                             "prune on, per epoch.")] = "val_loss",
    overrides: TuneSetOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    out: Annotated[Path | None, typer.Option("--out", file_okay=False,
                                                help="The tune folder (default: RUNS_DIR/<name>-tune-<fingerprint>, "
                                                     "the same for the same command, so rerunning resumes).")] = None,
    batch: Annotated[str, typer.Option("--batch", metavar="auto|N|1",
                                       help="Trials asked of the sampler at a time, trained as stacked groups "
                                            "where the model allows (auto: 16 on CPU, 64 on GPU).")] = "auto",
    executor: Annotated[str | None, typer.Option(
        "--executor", metavar="local|slurm|submitit-local",
        help="Where trials train: here (default), or each batch as one job array through submitit (Slurm, or "
             "submitit's local subprocesses), waited for; the other settings come from the config's executor: "
             "section (--set executor.slurm_partition=gpu, ...). This process keeps the studies and must run "
             "until the end (rerunning resumes).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Tune each regularizer with the same budget, then compare them at their best over seeds.

    One Optuna study per regularizer (TPE sampler, seeded; median pruning on the per-epoch validation
    metric) over the validation metric; trials are ordinary run folders trained by the sweep engine. Each
    study's best setting is then retrained over fresh seeds beside the baseline (no regularizer), and every
    pair is compared on test accuracy, paired by seed, Holm-adjusted: comparison.md and comparison.csv in
    the tune folder. Running the same command again resumes: finished trials are never trained again.
    """
    import shlex
    import sys

    from dropcli import tune as tuning
    from dropcli.sweep import parse_batch

    refuse_extra_arguments(ctx, "tune")
    thread_sets = [f"threads={threads}"] if threads else []
    executor_sets = [f"executor.name={executor}"] if executor else []

    def make_spec():
        base = load_config(config, [*(overrides or []), *thread_sets, *executor_sets])
        return base, tuning.build_spec(base, regularizers, trials, seeds, metric)

    with_bad_input_handled(lambda: parse_batch(batch))
    base, spec = with_bad_input_handled(make_spec, tuning.TuneError)
    tune_dir = out or tuning.default_tune_dir(runs_dir, spec)
    from dropcli.display import SweepProgress, preparing

    with preparing(console, "preparing: loading torch and Optuna, checking data and sizes", enabled=not quiet):
        from dropcli import experiment
        from dropcli.data import DatasetError
        from dropcli.sweep import check_resources

        size = parse_batch(batch, experiment.resolve_device(base.device).type == "cuda")
        with_bad_input_handled(lambda: check_resources([tuning.retrain_trials(spec, [])[0]]), DatasetError)
    command = shlex.join(["dropcli", *sys.argv[1:]])
    with_bad_input_handled(lambda: tuning.open_tune_dir(tune_dir, spec, command), tuning.TuneError)
    console.print(f"[bold]tune[/bold] {escape(str(tune_dir))}: {', '.join(spec.regularizers)}; {spec.trials} trials "
                  f"each (batches of {size}), then the best of each and the baseline over {len(spec.seeds)} seeds")
    from dropcli.launch import SubmissionFailed
    from dropcli.train import TrainingInterrupted  # torch is loaded by now

    stop_on_sigterm()
    try:
        with SweepProgress(console, enabled=not quiet and base.executor.name == "local") as progress:
            outcome = with_bad_input_handled(lambda: tuning.tune(spec, tune_dir, size, progress, base.executor),
                                            tuning.TuneError)
    except SubmissionFailed as error:
        errors.print(f"[red]submission failed[/red]: {plain(error)}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except (KeyboardInterrupt, TrainingInterrupted) as stop:
        errors.print(f"[yellow]interrupted[/yellow]: finished trials are kept in {escape(str(tune_dir))}; the "
                     f"unfinished ones continue from their checkpoints. Resume with the same command: "
                     f"{escape(command)}", highlight=False)
        terminated = isinstance(stop, Terminated) or getattr(stop, "terminated", False)
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    for study in outcome.studies:
        best = (f"best {tuning.describe_params(study.best_params)} ({spec.metric} {study.best_value:.4f})"
                if study.best_value is not None else "no trial completed")
        console.print(f"{escape(study.name)}: {study.completed} completed, {study.pruned} pruned, {study.failed} "
                      f"failed; {escape(best)}")
    for sentence in tuning.pair_sentences(outcome):
        console.print(f"- {sentence}", highlight=False, markup=False)
    console.print(f"comparison: {escape(str(tune_dir / 'comparison.md'))}; the retrained runs: dropcli report "
                  f"{escape(str(tune_dir / 'best'))}")
    for name, reason in outcome.failed_retrains.items():
        errors.print(f"[red]failed[/red] {plain(name)}: {plain(reason)}", highlight=False)
    if outcome.failed_retrains:
        raise typer.Exit(EXIT_FAILED)
