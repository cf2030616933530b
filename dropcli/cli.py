"""The command line. Commands are thin: they parse options, call one function, and turn the project's
exceptions into a message and an exit code (2: bad input, 1: a run failed, 130: interrupted by Ctrl-C, 143: by SIGTERM).

torch is imported inside the commands that train, never at module level, so `dropcli --help` is instant.
"""

from __future__ import annotations

import json
import logging
import shutil
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from dropcli import __version__
from dropcli.config import ConfigError, load_config, short_name
from dropcli.display import plain
from dropcli.signals import Terminated, stop_on_sigterm

app = typer.Typer(
    name="dropcli",
    help="Experiments that show, with numbers and pictures, how dropout, L2, L1, max-norm and early stopping "
         "change overfitting. Every run leaves a self-describing folder under runs/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: a line is never broken at the terminal's width (a path or a command split mid-word cannot be
# copied); tables still fit the width
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 1, 130, 143

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", metavar="KEY=VALUE",
                 help="Override one config value, e.g. --set regularizer.dropout=0.5 or "
                      "--set model.hidden_sizes=[512,512]. Repeatable; applied after the YAML file, in order."),
]
ThreadsOption = Annotated[
    Optional[int],
    typer.Option("--threads", min=1, help="CPU threads torch may use (the config's threads:). Default: "
                                          "OMP_NUM_THREADS when set, else the CPUs this process may run on. "
                                          "On a busy machine 1 can be much faster."),
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
    show_warnings()


class WarningLine(logging.Handler):
    """dropcli's warnings (a damaged checkpoint it fell back from, ...) as one plain line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        errors.print(f"[yellow]warning:[/yellow] {plain(record.getMessage())}", highlight=False, soft_wrap=True)


def show_warnings() -> None:
    logger = logging.getLogger("dropcli")
    if not any(isinstance(handler, WarningLine) for handler in logger.handlers):
        logger.addHandler(WarningLine(logging.WARNING))
        logger.propagate = False


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(exists=True, dir_okay=False, readable=True, metavar="CONFIG",
                                                     help="YAML config: dataset, model, regularizer, optimizer, epochs, "
                                                          "seed, device. See configs/ for presets.")] = None,
    overrides: SetOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option("--resume", file_okay=False, metavar="RUN_DIR",
                                                   help="Continue an interrupted, killed or failed run from its last "
                                                        "checkpoint (instead of CONFIG). The result is the same as a "
                                                        "run that was never stopped.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only the result.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Train one model with one regularizer setting and write runs/<name>-<timestamp>/.

    The folder holds config.yaml (resolved), metrics.csv (per-epoch train/val loss and accuracy and the
    generalization gap), summary.json (test accuracy, best epoch, stop reason), model.pt and curves.png,
    and checkpoint.pt while it trains. Config merge order: schema defaults, then the YAML file, then each
    --set in order. Ctrl-C (exit 130) or SIGTERM (exit 143) stops cleanly and prints the --resume command.
    """
    if (config is None) == (resume is None):
        exit_bad_input("give a CONFIG file to start a run, or --resume RUN_DIR to continue one")
    if resume is not None and (overrides or threads):
        exit_bad_input("--set and --threads cannot change a run being resumed: it continues with its saved "
                       "config.yaml")
    _train(config, [*(overrides or []), *([f"threads={threads}"] if threads else [])], runs_dir, quiet, resume)


def _train(config_path: Path | None, overrides: list[str], runs_dir: Path, quiet: bool, resume: Path | None) -> None:
    from dropcli.locks import FolderBusy
    from dropcli.runs import NotARunFolder, RunFolder, load_run

    if resume is not None:
        previous = load_run(resume)
        if previous.status == "completed":
            console.print(f"{escape(str(resume))} is already completed; nothing to resume")
            return
        if previous.config is None or not previous.summary.get("run") or not resume.joinpath("metrics.csv").is_file():
            # never train a default config into a folder that is not one of ours: it would overwrite its files
            exit_bad_input(f"--resume {resume}: not a dropcli run folder (it needs a non-empty config.yaml, "
                           f"metrics.csv and summary.json); nothing to resume")
        config_path = resume / "config.yaml"
    config = with_bad_input_handled(lambda: load_config(config_path, overrides))
    from dropcli.display import epoch_progress, preparing

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
    verb = "resuming" if resume is not None else "run"
    console.print(f"[bold]{verb}[/bold] {escape(str(run.path))}  ({config.model.name} on {config.dataset.name}, "
                  f"{training.describe_regularizers(experiment)}, device {experiment.device})", soft_wrap=True)
    stop_on_sigterm()
    try:
        with epoch_progress(console, config.name, config.epochs, enabled=not quiet) as on_epoch:
            summary = with_bad_input_handled(
                lambda: training.run_experiment(experiment, run, on_epoch, resume=resume is not None), UnsafeCheckpoint)
    except training.TrainingInterrupted as stop:
        errors.print(f"[yellow]interrupted[/yellow]: what was done is kept in {escape(str(stop.run.path))} (status: "
                     f"interrupted). Resume with: dropcli train --resume {escape(str(stop.run.path))}",
                     highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_TERMINATED if stop.terminated else EXIT_INTERRUPTED) from None
    except training.TrainingFailed as failure:
        errors.print(f"[red]run failed[/red]: {escape(training.failure_reason(failure.error))}. The error is "
                     f"recorded in {escape(str(failure.run.summary_path))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        run.release()
    from dropcli.plots import draw_run_curves  # presentation: after training, from the run folder

    draw_run_curves([run.path])
    console.print(
        f"[green]done[/green] in {summary['wall_time_s']:.1f}s, {summary['epochs_run']} epochs ({summary['stop_reason']}); "
        f"test acc {summary['test_acc']:.4f}, final gap: loss {summary['gap_loss']:+.4f}, "
        f"acc {summary['gap_acc']:+.4f}; best epoch {summary['best_epoch']}\n"
        f"     {escape(str(run.path))}/  (metrics.csv, summary.json, curves.png)", soft_wrap=True
    )


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="CONFIG",
                                           help="Base YAML config that every trial starts from.")] = Path("configs/quickstart.yaml"),
    rates: Annotated[Optional[str], typer.Option("--p", metavar="A..B[:STEP] | a,b,c",
                                                 help="Dropout rates: an inclusive range with step (default 0.1), "
                                                      "e.g. 0.1..0.7 or 0.1..0.7:0.2, or a comma list. The p = 0 "
                                                      "baseline is always added.")] = None,
    l2: Annotated[Optional[str], typer.Option("--l2", metavar="a,b,c",
                                              help="L2 coefficients, a comma list, e.g. 0,1e-4,1e-3.")] = None,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", metavar="KEY=V1,V2",
                                                      help="Any other config key as an axis, e.g. "
                                                           "--grid dataset.train_size=250,500,1000. Repeatable.")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Run seeds 0..N-1 for every setting (default: 3).")] = None,
    seed_list: Annotated[Optional[str], typer.Option("--seed-list", metavar="0,1,7",
                                                     help="Exactly these seeds (instead of --seeds).")] = None,
    overrides: SetOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    out: Annotated[Optional[Path], typer.Option("--out", file_okay=False,
                                                help="The sweep folder (default: RUNS_DIR/<name>-sweep-<fingerprint>, "
                                                     "the same for the same command, so rerunning resumes).")] = None,
    batch: Annotated[str, typer.Option("--batch", metavar="auto|N|1",
                                       help="Train up to N trials that share model, data and optimizer as one "
                                            "stacked model (mlp, cnn, gru; batchnorm and some dropout variants run one by one). auto: 16 "
                                            "on CPU, 64 on GPU; 1: one trial at a time.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; print only the table.")] = False,
    threads: ThreadsOption = None,
    max_trials: Annotated[int, typer.Option("--max-trials", min=1,
                                            help="Refuse a sweep of more trials than this (a guard against "
                                                 "typos such as --p 0..0.7:0.0001).")] = 10_000,
    executor: Annotated[Optional[str], typer.Option("--executor", metavar="local|slurm|submitit-local",
                                                    help="Where trials run: here (default), as one Slurm job array "
                                                         "through submitit, or through submitit's local executor "
                                                         "(subprocesses). Also settable in the YAML's executor: "
                                                         "section.")] = None,
    slurm_partition: Annotated[Optional[str], typer.Option("--slurm-partition", help="Slurm partition.")] = None,
    timeout_min: Annotated[Optional[int], typer.Option("--timeout-min",
                                                       help="Time limit of each array task, in minutes; a task "
                                                            "that hits it is requeued and resumes.")] = None,
    gpus_per_task: Annotated[Optional[int], typer.Option("--gpus-per-task", help="GPUs per array task.")] = None,
    cpus_per_task: Annotated[Optional[int], typer.Option("--cpus-per-task", help="CPUs per array task.")] = None,
    array_parallelism: Annotated[Optional[int], typer.Option("--array-parallelism",
                                                             help="Array tasks running at once.")] = None,
    slurm_setup: Annotated[Optional[list[str]], typer.Option("--slurm-setup", metavar="LINE",
                                                             help="A shell line run before each task, e.g. "
                                                                  "'module load cuda'. Repeatable.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --executor slurm: print the #SBATCH "
                                                            "parameters and the array tasks, submit nothing, "
                                                            "write nothing.")] = False,
) -> None:
    """Train the same model across dropout rates, L2 coefficients or any config key, times seeds.

    Every trial is an ordinary run folder inside one sweep folder with a sweep.json (axes, seeds, trials).
    Running the same command again trains only what is missing, failed or interrupted. At the end a table
    gives, per setting, validation accuracy and the final generalization gap as mean ± std over seeds.
    Exit code 1 if any trial failed.
    """
    executor_options = {"name": executor, "slurm_partition": slurm_partition, "timeout_min": timeout_min,
                        "gpus_per_task": gpus_per_task, "cpus_per_task": cpus_per_task,
                        "array_parallelism": array_parallelism, "slurm_setup": slurm_setup}
    # applied like --set, after the YAML's executor: section
    executor_sets = [f"executor.{key}={json.dumps(value)}" for key, value in executor_options.items() if value is not None]
    thread_sets = [f"threads={threads}"] if threads else []
    _sweep(config, rates, l2, grid or [], seeds, seed_list, [*(overrides or []), *thread_sets, *executor_sets],
           runs_dir, out, batch, quiet, dry_run, max_trials)


def _sweep(config_path: Path, rates: str | None, l2: str | None, grid: list[str], seeds: int | None,
           seed_list: str | None, overrides: list[str], runs_dir: Path, out: Path | None, batch: str,
           quiet: bool, dry_run: bool = False, max_trials: int = 10_000) -> None:
    import shlex
    import sys

    from dropcli import sweep as sweeps

    def plan():
        base = load_config(config_path, overrides)
        spec = sweeps.build_spec(base, rates, l2, grid, sweeps.parse_seeds(seeds, seed_list), max_trials)
        sweeps.parse_batch(batch)  # checked before anything runs
        return base.executor, spec, spec.trials()

    executor_config, spec, trials = with_bad_input_handled(plan)
    if dry_run and executor_config.name != "slurm":
        exit_bad_input("--dry-run: only with --executor slurm (the other executors run right away)")
    from dropcli.display import SweepProgress, preparing, summary_table

    sweep_dir = out or sweeps.default_sweep_dir(runs_dir, spec)
    with preparing(console, f"preparing {len(trials)} trials: loading torch, checking data and sizes", enabled=not quiet):
        from dropcli import train as training  # torch: only from here on
        from dropcli.data import DatasetError

        with_bad_input_handled(lambda: sweeps.check_folder_names(sweep_dir, trials))
        with_bad_input_handled(lambda: sweeps.check_resources(trials), DatasetError)
    on_gpu = training.resolve_device(trials[0].config.device).type == "cuda"
    group_size = sweeps.parse_batch(batch, on_gpu)
    command = shlex.join(["dropcli", *sys.argv[1:]])
    if executor_config.name != "local":
        _sweep_through_submitit(executor_config, trials, spec, sweep_dir, group_size, command, dry_run)
        return
    with_bad_input_handled(lambda: sweeps.open_sweep_dir(sweep_dir, spec, trials, command))
    console.print(f"[bold]sweep[/bold] {escape(str(sweep_dir))}: {len(trials)} trials "
                  f"({' × '.join(f'{len(v)} {short_name(k)}' for k, v in spec.axes.items()) or '1 setting'} × {len(spec.seeds)} seeds)")
    from dropcli.batched import unbatchable_reason

    reasons = sorted({r for r in (unbatchable_reason(t.config) for t in trials) if r})
    if group_size > 1 and reasons:
        console.print(f"note: {'; '.join(reasons)}: those trials run one by one")
    stop_on_sigterm()
    try:
        with SweepProgress(console, enabled=not quiet) as progress:
            outcome = sweeps.run_sweep(trials, sweep_dir, progress, batch=group_size)
    except (KeyboardInterrupt, training.TrainingInterrupted) as stop:
        errors.print(f"[yellow]interrupted[/yellow]: completed trials are kept in {escape(str(sweep_dir))}; an "
                     f"unfinished one continues from its checkpoint. Resume with the same command: "
                     f"{escape(command)}", highlight=False, soft_wrap=True)
        terminated = isinstance(stop, Terminated) or getattr(stop, "terminated", False)
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    summary = sweeps.summarize(trials, sweep_dir)
    if not summary.empty:
        console.print(summary_table(summary, f"{sweep_dir.name}: mean ± std over seeds"))
    held = f", left to another process {len(outcome.held)}" if outcome.held else ""
    console.print(f"trained {len(outcome.trained)}, already completed {len(outcome.skipped)}, "
                  f"failed {len(outcome.failed)}{held}; run folders in {escape(str(sweep_dir))}/", soft_wrap=True)
    for name, holder in outcome.held.items():
        errors.print(f"[yellow]held[/yellow] {plain(name)}: trained by {plain(holder)}", highlight=False, soft_wrap=True)
    for name, error in outcome.failed.items():
        errors.print(f"[red]failed[/red] {plain(name)}: {plain(error)}", highlight=False, soft_wrap=True)
    if outcome.stopped:
        not_run = len(trials) - len(outcome.trained) - len(outcome.skipped) - len(outcome.failed) - len(outcome.held)
        errors.print(f"[red]stopped[/red]: {escape(outcome.stopped)}; {not_run} trials not started. Free some space "
                     f"and rerun the same command: {escape(command)}", highlight=False, soft_wrap=True)
    if outcome.failed:
        raise typer.Exit(EXIT_FAILED)


def _sweep_through_submitit(executor_config, trials, spec, sweep_dir: Path, group_size: int, command: str,
                            dry_run: bool) -> None:
    """Submit the sweep as one submitit job array (one task per trial group), or print it (--dry-run)."""
    from dropcli import batched, executors
    from dropcli import sweep as sweeps

    groups = batched.split_into_groups(trials, lambda t: batched.group_key(t.config), group_size) \
        if group_size > 1 else [[t] for t in trials]
    if dry_run:
        submission = executors.plan_submission(executor_config, trials, sweep_dir, groups)
        if not submission.tasks:
            console.print(f"every trial of {escape(str(sweep_dir))} is already completed; nothing would be submitted")
            return
        console.print(f"[bold]dry run[/bold]: {len(submission.tasks)} array tasks for {len(trials)} trials "
                      f"into {escape(str(sweep_dir))}; nothing submitted", soft_wrap=True)
        console.print(executors.sbatch_preview(submission, sweep_dir), highlight=False, markup=False, soft_wrap=True)
        for line in executor_config.slurm_setup:
            console.print(f"setup: {line}", highlight=False, markup=False)
        for index, task in enumerate(submission.tasks):
            console.print(f"task {index}: {', '.join(task)}", highlight=False, markup=False)
        return
    if executor_config.name == "slurm" and shutil.which("sbatch") is None:
        exit_bad_input("--executor slurm: no sbatch on this machine; submit from a Slurm login node "
                       "(--dry-run shows what would be submitted)")
    with_bad_input_handled(lambda: sweeps.open_sweep_dir(sweep_dir, spec, trials, command))
    submission = executors.plan_submission(executor_config, trials, sweep_dir, groups)
    if not submission.tasks:
        console.print(f"every trial of {escape(str(sweep_dir))} is already completed")
        return
    try:
        jobs = executors.submit(submission, sweep_dir, group_size)
    except Exception as error:  # sbatch refused (bad partition, limits ...): say so in one line
        errors.print(f"[red]submission failed[/red]: {plain(' '.join(str(error).split()))}", highlight=False,
                     soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    console.print(f"submitted {len(jobs)} array tasks ({executor_config.name}), job {jobs[0].job_id.split('_')[0]}; "
                  f"logs in {escape(str(sweep_dir / executors.LOG_FOLDER))}/; progress: dropcli status "
                  f"{escape(str(sweep_dir))}; resume: the same command again", soft_wrap=True)
    if submission.cluster == "slurm":
        return
    failed = {}
    for job in jobs:  # submitit-local: wait, as a local sweep would
        try:
            failed.update(job.result()["failed"])
        except KeyboardInterrupt:
            errors.print(f"[yellow]interrupted[/yellow]: stopped waiting; the tasks may go on. Progress: "
                         f"dropcli status {escape(str(sweep_dir))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:  # the task died without a result; its trials say so in their folders
            failed[job.job_id] = str(error).splitlines()[-1] if str(error) else type(error).__name__
    summary = sweeps.summarize(trials, sweep_dir)
    if not summary.empty:
        from dropcli.display import summary_table

        console.print(summary_table(summary, f"{sweep_dir.name}: mean ± std over seeds"))
    console.print(f"failed {len(failed)}; run folders in {escape(str(sweep_dir))}/", soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def status(
    sweep_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, metavar="SWEEP_DIR",
                                              help="A sweep folder (it holds sweep.json).")],
) -> None:
    """How far a sweep is: trials completed, running, failed, interrupted and pending, read from its run
    folders (so it works while the sweep runs, on this machine or another sharing the folder)."""
    from collections import Counter

    from rich.table import Table

    from dropcli import sweep as sweeps

    statuses = with_bad_input_handled(lambda: sweeps.sweep_statuses(sweep_dir))
    counts = Counter(statuses.values())
    console.print(f"[bold]{escape(str(sweep_dir))}[/bold]: {len(statuses)} trials — " +
                  ", ".join(f"{count} {state}" for state, count in sorted(counts.items(), key=status_order)),
                  soft_wrap=True)
    unfinished = [(name, state) for name, state in statuses.items() if state != "completed"]
    if unfinished:
        table = Table("trial", "status")
        for name, state in unfinished:
            table.add_row(plain(name), state)  # names come from sweep.json: anyone may have written it
        console.print(table)
        if counts["running (stale)"]:
            console.print("running (stale): the summary says running but no process holds the trial: it was "
                          "killed; rerunning the sweep continues it")


def status_order(item: tuple[str, int]) -> int:
    order = ["completed", "running", "running (stale)", "failed", "interrupted", "broken", "pending", "unknown"]
    return order.index(item[0]) if item[0] in order else len(order)


class FigureFormat(str, Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


@app.command()
def report(
    runs_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, metavar="DIR",
                                             help="A folder of run folders: a sweep, several sweeps, lone runs.")],
    out: Annotated[Optional[Path], typer.Option("--out", file_okay=False,
                                                help="Where the report goes (default: DIR/report).")] = None,
    figure_format: Annotated[FigureFormat, typer.Option("--format", help="File format of the figures.")] = FigureFormat.png,
    latex: Annotated[bool, typer.Option("--latex", help="Also write summary.tex: the summary as a booktabs LaTeX "
                                                        "table (95 % CIs, differences to the baseline, Holm p).")] = False,
) -> None:
    """Tables and overfitting curves for every run folder under DIR. Reads run folders only; never trains.

    Writes runs.csv (one row per run), summary.csv (per setting: mean, std and 95 % CI over seeds, and the
    difference to its baseline with a paired interval and Holm-adjusted p-value), figures (overfitting
    curves, gap per epoch, gap and accuracy against dropout rate, regularizers compared; bands are 95 % CIs)
    and report.md, which says in words what the intervals support: a winner only where the interval
    excludes zero. Failed, interrupted or broken runs are listed with their reason and never stop the report.
    """
    from dropcli.report import ReportError, build_report
    from dropcli.display import summary_table

    target = out or runs_dir / "report"
    result = with_bad_input_handled(lambda: build_report(runs_dir, target, figure_format.value, latex), ReportError)
    if not result.summary.empty:
        console.print(summary_table(result.summary, f"{runs_dir}: mean ± std over seeds"))
    for row in result.problems.itertuples():
        errors.print(f"[yellow]left out[/yellow] {plain(row.run)}: {plain(row.status)} ({plain(row.reason)})",
                     highlight=False, soft_wrap=True)
    written = ["runs.csv"] + (["summary.csv"] + (["summary.tex"] if latex else []) if not result.summary.empty else [])
    console.print(f"report: {escape(str(target / 'report.md'))}  ({len(result.table)} runs, {len(result.figures)} figures, "
                  f"{', '.join(written)})")


def with_bad_input_handled(action, *extra_errors: type[Exception]):
    """Run `action`; a user's mistake becomes one line per problem on stderr and exit code 2, no traceback."""
    try:
        return action()
    except (ConfigError, *extra_errors) as error:
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


if __name__ == "__main__":
    app()
