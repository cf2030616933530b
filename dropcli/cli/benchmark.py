"""dropcli benchmark: regularizers across workloads, each tuned with the same budget, with aggregate statistics."""

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
    console,
    errors,
    exit_bad_input,
    with_bad_input_handled,
)
from dropcli.display import counted, plain
from dropcli.signals import Terminated, stop_on_sigterm


def suite_file_given(value: Path) -> Path:
    if not value.is_file():
        exit_bad_input(f"SUITE {value}: the file does not exist" if not value.exists() else
                       f"SUITE {value}: not a file")
    return value


def benchmark(
    suite_file: Annotated[Path, typer.Argument(dir_okay=False, metavar="SUITE", callback=suite_file_given,
                                               help="The suite YAML: workloads, regularizers, protocol "
                                                    "(docs/benchmark.md; e.g. benchmarks/regularizers-small.yaml).")],
    out: Annotated[Path | None, typer.Option("--out", file_okay=False,
                                                help="The benchmark folder (default: RUNS_DIR/benchmark-<suite name>; "
                                                     "rerunning the same command resumes).")] = None,
    runs_dir: RunsDirOption = Path("runs"),
    executor: Annotated[str | None, typer.Option(
        "--executor", metavar="local|slurm|submitit-local",
        help="Where trials train: here (default), or each batch of trials as one job array through submitit "
             "(Slurm, or submitit's local subprocesses), as in tune; the other settings come from each "
             "workload's executor: section. This process keeps the studies and must run to the end (rerunning "
             "resumes).")] = None,
    batch: Annotated[str, typer.Option("--batch", metavar="auto|N|1",
                                       help="Trials trained at a time as one stacked model where the model "
                                            "allows (auto: 16 on CPU, 64 on GPU), as in tune.")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (per workload: what is tuned, what is "
                                                            "trained as set, how much is already done) and write "
                                                            "nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Compare regularizers across workloads: each tuned with the same budget, retrained over seeds.

    For every workload of the suite, each regularizer gets its own Optuna study of the same number of trials
    (as `dropcli tune`), its best setting is retrained on fresh seeds beside the baseline (no regularizer) on
    the same seeds, and entries given with `set:` train as set. Then the runs are scored by the share of the
    baseline's test error they remove, and aggregated across workloads × seeds with 95 % stratified-bootstrap
    intervals: mean and IQM, the probability of improvement of every pair, performance profiles, and per
    workload the paired comparisons. Writes leaderboard.md/.tex, scores.csv, statistics.csv and figures/ in
    the benchmark folder. Running the same command again trains only what is missing.
    """
    import shlex
    import sys

    from dropcli.benchmark import suite as suites  # here, and torch below: `dropcli --help` stays instant

    overrides = [*([f"threads={threads}"] if threads else []), *([f"executor.name={executor}"] if executor else [])]
    suite = with_bad_input_handled(lambda: suites.load_suite(suite_file))
    folder = out or runs_dir / f"benchmark-{suites.default_name(suite, suite_file)}"
    from dropcli.display import SweepProgress, preparing

    with preparing(console, "preparing: loading torch and Optuna, checking the workloads", enabled=not quiet):
        from dropcli.benchmark import run as running
        from dropcli.sweep import parse_batch

        name = suites.default_name(suite, suite_file)
        plan = with_bad_input_handled(lambda: running.make_plan(suite, name, folder, overrides))
        with_bad_input_handled(lambda: parse_batch(batch))
    if dry_run:
        for line in running.describe_plan(plan):
            console.print(line, highlight=False, markup=False)
        console.print("dry run: nothing trained, submitted or written", highlight=False, markup=False)
        return
    from dropcli import experiment

    size = parse_batch(batch, experiment.resolve_device(plan.workloads[0].config.device).type == "cuda")
    command = shlex.join(["dropcli", *sys.argv[1:]])
    with_bad_input_handled(lambda: running.open_benchmark_dir(plan, command))
    console.print(f"[bold]benchmark[/bold] {escape(str(folder))}: {counted(len(plan.workloads), 'workload')}, "
                  f"{counted(len(suite.entries), 'regularizer')}, {counted(suite.protocol.trials, 'trial')} each, "
                  f"then {counted(suite.protocol.seeds, 'seed')}; progress: dropcli status {escape(str(folder))}")
    from dropcli.launch import SubmissionFailed
    from dropcli.train import TrainingInterrupted  # torch is loaded by now

    stop_on_sigterm()
    try:
        with SweepProgress(console, enabled=not quiet and plan.executor.name == "local") as progress:
            outcome = with_bad_input_handled(lambda: running.run(plan, size, progress))
    except SubmissionFailed as error:
        errors.print(f"[red]submission failed[/red]: {plain(error)}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except (KeyboardInterrupt, TrainingInterrupted) as stop:
        errors.print(f"[yellow]interrupted[/yellow]: finished runs are kept in {escape(str(folder))}; resume with "
                     f"the same command: {escape(command)}", highlight=False)
        terminated = isinstance(stop, Terminated) or getattr(stop, "terminated", False)
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    written = running.write_results(plan, outcome, command)
    for sentence in running.headline(written):
        console.print(f"- {sentence}", highlight=False, markup=False)
    console.print(f"leaderboard: {escape(str(folder / 'leaderboard.md'))}; figures in "
                  f"{escape(str(folder / 'figures'))}/")
    for name, reason in outcome.failed.items():
        errors.print(f"[red]failed[/red] {plain(name)}: {plain(reason)}", highlight=False)
    if outcome.failed:
        raise typer.Exit(EXIT_FAILED)

