"""dropcli sweep: the same model across dropout rates, L2 coefficients or any config key, times seeds."""

from __future__ import annotations

import contextlib
import json
from contextlib import nullcontext
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
    refuse_extra_arguments,
    with_bad_input_handled,
)
from dropcli.config import load_config, short_name
from dropcli.display import counted, plain, timestamped
from dropcli.signals import Terminated, stop_on_sigterm


def sweep(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(dir_okay=False, metavar="CONFIG", callback=config_file,
                                           help="Base YAML config that every trial starts from.")
                      ] = Path("configs/quickstart.yaml"),
    rates: Annotated[str | None, typer.Option("--p", metavar="A..B[:STEP] | a,b,c",
                                                 help="Dropout rates: an inclusive range with step (default 0.1), "
                                                      "e.g. 0.1..0.7 or 0.1..0.7:0.2, or a comma list. The p = 0 "
                                                      "baseline is always added.")] = None,
    l2: Annotated[str | None, typer.Option("--l2", metavar="a,b,c",
                                              help="L2 coefficients, a comma list, e.g. 1e-4,1e-3. The l2 = 0 "
                                                   "baseline is always added.")] = None,
    early_stopping: Annotated[str | None, typer.Option("--early-stopping", metavar="a,b,c",
                                                          help="Early-stopping patience values (epochs), e.g. "
                                                               "5,10,20. Training without it is always added.")
                              ] = None,
    l1: Annotated[str | None, typer.Option("--l1", metavar="a,b,c",
                                              help="L1 coefficients, e.g. 1e-5,1e-4. l1 = 0 is always added.")
                  ] = None,
    max_norm: Annotated[str | None, typer.Option("--max-norm", metavar="a,b,c",
                                                    help="Max-norm bounds, e.g. 1,2,4. No bound is always added.")
                        ] = None,
    augmentation: Annotated[str | None, typer.Option("--augmentation", metavar="a,b,c",
                                                        help="Augmentation strengths in (0, 4], e.g. 0.5,1,2. "
                                                             "Strength 0 is always added.")] = None,
    label_smoothing: Annotated[str | None, typer.Option("--label-smoothing", metavar="a,b,c",
                                                           help="Label smoothing values in (0, 1), e.g. 0.05,0.1. "
                                                                "No smoothing is always added.")] = None,
    one_at_a_time: Annotated[bool, typer.Option("--one-at-a-time",
                                                help="Vary one axis at a time: the baseline (every regularizer "
                                                     "axis off) once per seed, then each axis's values alone, "
                                                     "instead of every combination (--p 0.1..0.5 --l2 1e-4,1e-3: "
                                                     "1 + 5 + 2 settings, not 6 × 3).")] = False,
    grid: Annotated[list[str] | None, typer.Option("--grid", metavar="KEY=V1,V2",
                                                      help="Any other config key as an axis, e.g. "
                                                           "--grid dataset.train_size=250,500,1000. Repeatable.")
                                  ] = None,
    seeds: Annotated[int | None, typer.Option("--seeds",
                                                 help="Run seeds 0..N-1 for every setting (default: 3).")] = None,
    seed_list: Annotated[str | None, typer.Option("--seed-list", metavar="0,1,7",
                                                     help="Exactly these seeds (instead of --seeds).")] = None,
    overrides: SetOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    out: Annotated[Path | None, typer.Option("--out", file_okay=False,
                                                help="The sweep folder (default: RUNS_DIR/<name>-sweep-<fingerprint>, "
                                                     "the same for the same command, so rerunning resumes).")] = None,
    batch: Annotated[str, typer.Option("--batch", metavar="auto|N|1",
                                       help="Train up to N trials that share model, data and optimizer as one "
                                            "stacked model (mlp, cnn, gru, lstm, rnn; batchnorm and some dropout "
                                            "variants run one by one). auto: 16 on CPU, 64 on GPU, fewer when "
                                            "that many would not fit in half the memory free; 1: one trial at a "
                                            "time.")
                     ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; print only the table.")] = False,
    threads: ThreadsOption = None,
    max_trials: Annotated[int, typer.Option("--max-trials", min=1,
                                            help="Refuse a sweep of more trials than this (a guard against "
                                                 "typos such as --p 0..0.7:0.0001).")] = 10_000,
    executor: Annotated[str | None, typer.Option("--executor", metavar="local|slurm|submitit-local",
                                                    help="Where trials run: here (default), as one Slurm job array "
                                                         "through submitit, or through submitit's local executor "
                                                         "(subprocesses). Also settable in the YAML's executor: "
                                                         "section.")] = None,
    slurm_partition: Annotated[str | None, typer.Option("--slurm-partition", help="Slurm partition.")] = None,
    timeout_min: Annotated[int | None, typer.Option("--timeout-min",
                                                       help="Time limit of each array task, in minutes; a task "
                                                            "that hits it is requeued and resumes.")] = None,
    gpus_per_task: Annotated[int | None, typer.Option("--gpus-per-task", help="GPUs per array task.")] = None,
    cpus_per_task: Annotated[int | None, typer.Option("--cpus-per-task", help="CPUs per array task.")] = None,
    array_parallelism: Annotated[int | None, typer.Option("--array-parallelism",
                                                             help="Array tasks running at once.")] = None,
    slurm_setup: Annotated[list[str] | None, typer.Option("--slurm-setup", metavar="LINE",
                                                             help="A shell line run before each task, e.g. "
                                                                  "'module load cuda'. Repeatable.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and write nothing: the sweep folder, "
                                                            "the trials already completed, how the rest are grouped "
                                                            "(stacked or alone, and why), and for Slurm the "
                                                            "#SBATCH parameters and array tasks.")] = False,
) -> None:
    """Train the same model across dropout rates, L2 coefficients or any config key, times seeds.

    Every trial is an ordinary run folder inside one sweep folder with a sweep.json (axes, seeds, trials).
    Running the same command again trains only what is missing, failed or interrupted. At the end a table
    gives, per setting, validation accuracy and the final generalization gap as mean ± std over seeds.
    Exit code 1 if any trial failed.
    """
    refuse_extra_arguments(ctx, "sweep")
    executor_options = {"name": executor, "slurm_partition": slurm_partition, "timeout_min": timeout_min,
                        "gpus_per_task": gpus_per_task, "cpus_per_task": cpus_per_task,
                        "array_parallelism": array_parallelism, "slurm_setup": slurm_setup}
    # applied like --set, after the YAML's executor: section
    executor_sets = [f"executor.{key}={json.dumps(value)}" for key, value in executor_options.items()
                     if value is not None]
    thread_sets = [f"threads={threads}"] if threads else []
    named = {"--early-stopping": early_stopping, "--l1": l1, "--max-norm": max_norm, "--augmentation": augmentation,
             "--label-smoothing": label_smoothing}
    # piped to a file: every line starts with the time (not stderr's: an error stays one `error: ...` line); a dry
    # run prints a plan, not a log, whose #SBATCH lines a user copies as they are
    with nullcontext() if dry_run else timestamped(console):
        _sweep(config, rates, l2, grid or [], seeds, seed_list, [*(overrides or []), *thread_sets, *executor_sets],
               runs_dir, out, batch, quiet, dry_run, max_trials, named, one_at_a_time)


def _sweep(config_path: Path, rates: str | None, l2: str | None, grid: list[str], seeds: int | None,
           seed_list: str | None, overrides: list[str], runs_dir: Path, out: Path | None, batch: str,
           quiet: bool, dry_run: bool = False, max_trials: int = 10_000, named: dict[str, str | None] | None = None,
           one_at_a_time: bool = False) -> None:
    import shlex
    import sys

    from dropcli import designs
    from dropcli import sweep as sweeps
    from dropcli.display import SweepProgress, preparing, print_table, summary_table

    def spec_and_trials():
        base = load_config(config_path, overrides)
        spec = sweeps.build_spec(base, rates, l2, grid, sweeps.parse_seeds(seeds, seed_list), max_trials,
                                 {k: v for k, v in (named or {}).items() if v is not None},
                                 designs.ONE_AT_A_TIME if one_at_a_time else designs.GRID)
        sweeps.parse_batch(batch)  # checked before anything runs
        return base.executor, spec, spec.trials()

    executor_config, spec, trials = with_bad_input_handled(spec_and_trials)
    sweep_dir = out or sweeps.default_sweep_dir(runs_dir, spec)
    with_bad_input_handled(lambda: sweeps.check_folder_names(sweep_dir, trials))  # before torch loads
    with_bad_input_handled(lambda: sweeps.check_sweep_dir(sweep_dir, spec))
    with_bad_input_handled(lambda: sweeps.check_resumed_code(sweep_dir, trials))  # before any model code is imported
    with preparing(console, f"preparing {counted(len(trials), 'trial')}: loading torch, checking data and sizes",
                   enabled=not quiet and not dry_run):
        from dropcli import launch
        from dropcli.data import DatasetError, NotDownloaded, without_writes

        def resources() -> tuple[int, str | None]:  # a dry run loads the data without writing: no cache, no download
            try:
                with without_writes() if dry_run else contextlib.nullcontext():
                    return sweeps.check_resources(trials), None
            except NotDownloaded as missing:
                return 0, f"{missing}: the sweep downloads it; sizes and memory are checked then"

        per_trial, unchecked = with_bad_input_handled(resources, DatasetError)
        plan = with_bad_input_handled(lambda: launch.plan_launch(executor_config, spec, trials, sweep_dir, batch,
                                                                 per_trial))
    design = designs.describe(spec.design, spec.base, spec.axes, spec.seeds)
    if dry_run:
        console.print(f"design: {design}", highlight=False, markup=False)
        if spec.design == designs.ONE_AT_A_TIME:
            for name in dict.fromkeys(t.name.rsplit("_seed-", 1)[0] for t in trials):
                console.print(f"  {name}", highlight=False, markup=False)
        if unchecked:
            console.print(f"note: {unchecked}", highlight=False, markup=False)
        for line in launch.describe(plan):
            console.print(line, highlight=False, markup=False)
        console.print("dry run: nothing trained, submitted or written", highlight=False, markup=False)
        return
    if every_trial_done(plan, trials):  # nothing to write: a completed sweep on a read-only disk is no error
        summary = sweeps.summarize(trials, sweep_dir)
        if not summary.empty:
            console.print(summary_table(summary, f"{sweep_dir.name}: mean ± std over seeds"))
        console.print(f"trained 0, already completed {len(trials)}, failed 0; every trial of "
                      f"{escape(str(sweep_dir))}/ is already completed")
        return
    command = shlex.join(["dropcli", *sys.argv[1:]])
    launcher = launch.launcher(plan)
    with_bad_input_handled(lambda: launcher.prepare(plan, command), launch.LaunchError)
    axes = " × ".join(f"{len(v)} {short_name(k)}" for k, v in spec.axes.items()) or "1 setting"
    shape = f"{axes} × {counted(len(spec.seeds), 'seed')}" if spec.design == designs.GRID else design
    console.print(f"[bold]sweep[/bold] {escape(str(sweep_dir))}: {counted(len(trials), 'trial')} ({escape(shape)})")
    if plan.alone:
        console.print(f"note: {'; '.join(sorted(set(plan.alone.values())))}: those trials run one by one")
    if plan.batch_note:
        console.print(f"note: {escape(plan.batch_note)}")
    from dropcli.train import TrainingInterrupted  # torch is loaded by now

    stop_on_sigterm()
    try:
        with SweepProgress(console, enabled=not quiet and executor_config.name == "local",
                           folder=sweep_dir) as progress:
            launched = launcher.launch(plan, progress)
    except launch.SubmissionFailed as error:
        errors.print(f"[red]submission failed[/red]: {plain(error)}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except (KeyboardInterrupt, TrainingInterrupted) as stop:
        if executor_config.name != "local":
            errors.print(f"[yellow]interrupted[/yellow]: stopped waiting; the tasks may go on. Progress: "
                         f"dropcli status {escape(str(sweep_dir))}", highlight=False)
        else:
            errors.print(f"[yellow]interrupted[/yellow]: completed trials are kept in {escape(str(sweep_dir))}; an "
                         f"unfinished one continues from its checkpoint. Resume with the same command: "
                         f"{escape(command)}", highlight=False)
        terminated = isinstance(stop, Terminated) or getattr(stop, "terminated", False)
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    if launched.job_ids:
        from dropcli.executors import LOG_FOLDER

        console.print(f"submitted {len(launched.job_ids)} array tasks ({executor_config.name}), job "
                      f"{launched.job_ids[0].split('_')[0]}; logs in {escape(str(sweep_dir / LOG_FOLDER))}/; progress: "
                      f"dropcli status {escape(str(sweep_dir))}; resume: the same command again")
    elif launched.outcome is None:
        console.print(f"every trial of {escape(str(sweep_dir))} is already completed")
    if not launched.waited:
        return
    summary = sweeps.summarize(trials, sweep_dir)
    if not summary.empty:
        print_table(console, summary_table(summary, f"{sweep_dir.name}: mean ± std over seeds"))
    outcome = launched.outcome
    failed = launched.failed if outcome is None else outcome.failed
    if outcome is None:
        console.print(f"failed {len(failed)}; run folders in {escape(str(sweep_dir))}/")
    else:
        held = f", left to another process {len(outcome.held)}" if outcome.held else ""
        console.print(f"trained {len(outcome.trained)}, already completed {len(outcome.skipped)}, "
                      f"failed {len(outcome.failed)}{held}; run folders in {escape(str(sweep_dir))}/")
        for name, holder in outcome.held.items():
            errors.print(f"[yellow]held[/yellow] {plain(name)}: trained by {plain(holder)}", highlight=False)
        if outcome.stopped:
            accounted = len(outcome.trained) + len(outcome.skipped) + len(outcome.failed) + len(outcome.held)
            errors.print(f"[red]stopped[/red]: {escape(outcome.stopped)}; {len(trials) - accounted} trials not "
                         f"started. Free some space and rerun the same command: {escape(command)}", highlight=False)
    for name, reason in failed.items():
        errors.print(f"[red]failed[/red] {plain(name)}: {plain(reason)}", highlight=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def every_trial_done(plan, trials: list) -> bool:
    """Every trial completed with its picture drawn: the sweep would only take its lock to do nothing."""
    return (not plan.pending and len(plan.groups.completed) == len(trials)
            and all((plan.sweep_dir / t.name / "curves.png").is_file() for t in trials))
