"""Where a sweep's trials run: here (local), as a Slurm job array, or through submitit's local executor.

With submitit, the sweep is cut into tasks — one per batched trial group, or one per trial — submitted as
one job array (`map_array`). Each task reruns `sweep.run_sweep` on its own trials, in the sweep folder on
the shared file system, so run folders, `report`, `train --resume` and sweep resume work as locally. A
task that is preempted or reaches its time limit is requeued by submitit (`Checkpointable`): the rerun
skips completed trials and continues unfinished ones from their checkpoints, never retraining a
completed trial. Job logs go to SWEEP_DIR/.submitit/.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from dropcli.config import ExecutorConfig
from dropcli.isolation import check_private, isolated_children, private_folder
from dropcli.sweep import SweepSpec, Trial, read_sweep_record, run_sweep

LOG_FOLDER = ".submitit"
# submitit requeues a task that reaches its time limit at most this often (its default, 3, assumes a rerun
# starts over). A dropcli task resumes its trials from their checkpoints, so each rerun makes progress, and a
# short --timeout-min should cost requeues, not the sweep. (Under 50 minutes submitit counts every USR2 as a
# time-out, a preemption too.)
TIMEOUT_REQUEUES = 20


class TrialGroupTask(submitit.helpers.Checkpointable):
    """One array task: train some trials of a sweep. Picklable: it carries names, not models."""

    def __call__(self, sweep_dir: str, trial_names: list[str], batch: int) -> dict[str, Any]:
        folder = Path(sweep_dir)
        trials = trials_named(folder, trial_names)
        outcome = run_sweep(trials, folder, batch=batch)
        return {"trained": outcome.trained, "skipped": outcome.skipped, "failed": outcome.failed}


class TrialsTask(submitit.helpers.Checkpointable):
    """One array task: train the given trials in `folder` (tune's batches: trials the sampler asked for, and
    the stop rule its pruner decides by). A requeued task reruns it and resumes the trials' checkpoints."""

    def __call__(self, folder: str, trials: list[Trial], batch: int, stop_rule: Any = None) -> dict[str, Any]:
        outcome = run_sweep(trials, Path(folder), batch=batch, stop_rule=stop_rule)
        return {"trained": outcome.trained, "skipped": outcome.skipped, "failed": outcome.failed,
                "held": outcome.held, "stopped": outcome.stopped}


def trials_named(sweep_dir: Path, names: list[str]) -> list[Trial]:
    """Rebuild trials from sweep.json (the same validation as when the sweep was planned)."""
    record = read_sweep_record(sweep_dir)
    spec = SweepSpec.from_record(record)
    wanted = set(names)
    return [trial for trial in spec.trials() if trial.name in wanted]


@dataclass
class Submission:
    cluster: str  # "slurm" or "local"
    tasks: list[list[str]]  # trial names per array task
    parameters: dict[str, Any]


def plan_submission(config: ExecutorConfig, sweep_dir: Path, groups: list[list[Trial]]) -> Submission:
    """The array tasks (one per group of pending trials, sweep.plan_groups) and the parameters submitit will
    be given."""
    tasks = [[t.name for t in group] for group in groups]
    parameters: dict[str, Any] = {"name": f"dropcli-{sweep_dir.name}", "timeout_min": config.timeout_min,
                                  "cpus_per_task": config.cpus_per_task}
    if config.name == "slurm":
        parameters["slurm_array_parallelism"] = config.array_parallelism
        if config.slurm_partition:
            parameters["slurm_partition"] = config.slurm_partition
        if config.gpus_per_task:
            parameters["slurm_gpus_per_task"] = config.gpus_per_task
        if config.slurm_setup:
            parameters["slurm_setup"] = list(config.slurm_setup)
    return Submission("slurm" if config.name == "slurm" else "local", tasks, parameters)


def sbatch_preview(submission: Submission, sweep_dir: Path) -> str:
    """The #SBATCH header submitit would write for this array (for --dry-run); nothing is submitted.
    submitit has no public call for it: its private _make_sbatch_string, pinned (submitit <1.6 in
    pyproject.toml) and checked against what submitit really submits (tests/test_slurm.py)."""
    from submitit.slurm.slurm import _make_sbatch_string

    slurm = {key.removeprefix("slurm_"): value for key, value in submission.parameters.items()
             if key.startswith("slurm_")}
    text = _make_sbatch_string(
        command="python -u -m submitit.core._submit <folder>", folder=sweep_dir / LOG_FOLDER / "%j",
        job_name=submission.parameters["name"], time=submission.parameters["timeout_min"],
        cpus_per_task=submission.parameters["cpus_per_task"], partition=slurm.get("partition"),
        gpus_per_task=slurm.get("gpus_per_task"), setup=slurm.get("setup"),
        array_parallelism=slurm.get("array_parallelism", 256), map_count=len(submission.tasks))
    return "\n".join(line for line in text.splitlines() if line.startswith("#SBATCH"))


def submit(submission: Submission, sweep_dir: Path, batch: int) -> list[submitit.Job]:
    """Submit the sweep's array: a TrialGroupTask per group of trials."""
    count = len(submission.tasks)
    return submit_array(submission, sweep_dir, TrialGroupTask(), [str(sweep_dir)] * count, submission.tasks,
                        [batch] * count)


def submit_array(submission: Submission, folder: Path, task: Any, *arguments: list[Any]) -> list[submitit.Job]:
    """Submit `task` once per element of the argument lists, as one job array (logs in folder/.submitit/).
    When sbatch refuses, submitit prints sbatch's words to stderr and then raises them: they are held back
    here, so that the caller says them once, in its one-line error."""
    extra = {"slurm_max_num_timeout": TIMEOUT_REQUEUES} if submission.cluster == "slurm" else {}
    # the pickles (the tasks, their results) in a folder only this user can write: loading one runs code
    logs = private_folder(folder / LOG_FOLDER)
    executor = submitit.AutoExecutor(folder=logs / "%j", cluster=submission.cluster, **extra)
    executor.update_parameters(**submission.parameters)
    printed = io.StringIO()
    # the tasks (and submitit's local controller) start without the current folder on their import path
    with contextlib.redirect_stderr(printed), isolated_children():
        jobs = executor.map_array(task, *arguments)
    sys.stderr.write(printed.getvalue())  # submitted: anything else it said is shown
    return jobs


def result_of(job: submitit.Job, folder: Path) -> Any:
    """The task's result, unpickled only from a folder that is still private (see isolation.private_folder)."""
    check_private(folder / LOG_FOLDER)
    return job.result()
