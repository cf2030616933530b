"""Launching a sweep: one plan, then a launcher that carries it out.

    plan_launch(...)  what would run and how: the sweep folder, the trials already completed, the groups
                      (stacked, or one trial alone, and why), and for submitit the array tasks and #SBATCH
                      parameters. Reads the sweep folder, writes nothing: `sweep --dry-run` prints it for
                      every executor.
    launcher(plan)    LocalLauncher trains here (sweep.run_sweep); SubmititLauncher submits one job array
                      (a task per group) to Slurm or to submitit's local executor, and waits for the latter.

The CLI turns a plan into lines and a result into messages and exit codes; nothing here prints.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropcli.config import ExecutorConfig
from dropcli.sweep import GroupPlan, SweepObserver, SweepOutcome, SweepSpec, Trial, open_sweep_dir, plan_groups

MEMORY_SHARE = 0.5  # --batch auto fills at most this share of the memory free when the sweep starts


class LaunchError(Exception):
    """The sweep cannot be launched from here as asked (no sbatch on this machine): exit code 2."""


class SubmissionFailed(Exception):
    """The scheduler refused the job array (a bad partition, limits ...): exit code 1."""


@dataclass
class LaunchPlan:
    executor: ExecutorConfig
    spec: SweepSpec
    trials: list[Trial]
    sweep_dir: Path
    batch: int  # the largest stacked group
    groups: GroupPlan
    alone: dict[str, str] = field(default_factory=dict)  # trial name → why it trains alone although batch > 1
    batch_note: str = ""  # why --batch auto chose fewer trials per group than usual
    submission: Any = None  # executors.Submission, for submitit

    @property
    def pending(self) -> list[Trial]:
        return [t for group in self.groups.groups for t in group]


def plan_launch(executor: ExecutorConfig, spec: SweepSpec, trials: list[Trial], sweep_dir: Path,
                batch: str, per_trial_bytes: int = 0) -> LaunchPlan:
    """`batch`: the --batch text (auto | N | 1). auto: 16 trials on CPU, 64 on a GPU, fewer when that many
    would not fit in half the memory free on the device (`per_trial_bytes`: sweep.check_resources)."""
    from dropcli import experiment
    from dropcli.batched import unbatchable_reason
    from dropcli.sweep import parse_batch

    device = experiment.resolve_device(trials[0].config.device)
    size = parse_batch(batch, device.type == "cuda")
    note = ""
    # only where the trials run: a login node's memory says nothing of a compute node's
    measured = batch == "auto" and per_trial_bytes > 0 and executor.name == "local"
    free = experiment.free_memory(device) if measured else None
    if free is not None and int(free * MEMORY_SHARE) // per_trial_bytes < size:
        size = max(1, int(free * MEMORY_SHARE) // per_trial_bytes)
        note = (f"--batch auto: {size} trial(s) per group, as ~{per_trial_bytes / 2**20:,.0f} MiB a trial fit "
                f"in half of the {free / 2**30:,.1f} GiB free on {device}")
    groups = plan_groups(trials, sweep_dir, size)
    alone = {} if size <= 1 else {t.name: reason for t in trials if (reason := unbatchable_reason(t.config))}
    plan = LaunchPlan(executor, spec, trials, sweep_dir, size, groups, alone, batch_note=note)
    if executor.name != "local":
        from dropcli import executors

        plan.submission = executors.plan_submission(executor, sweep_dir, groups.groups)
    return plan


def describe(plan: LaunchPlan) -> list[str]:
    """The plan in plain lines (the dry run): where, what is done, each group and how it trains."""
    lines = [f"sweep folder: {plan.sweep_dir}{'' if plan.sweep_dir.exists() else ' (not created yet)'}",
             f"executor: {plan.executor.name}; {len(plan.trials)} trials, {len(plan.groups.completed)} already "
             f"completed, {len(plan.pending)} to train in {len(plan.groups.groups)} "
             f"{'array tasks' if plan.submission is not None else 'groups'} (stacked groups of up to {plan.batch})",
             *([plan.batch_note] if plan.batch_note else [])]
    resumed = set(map(id, plan.groups.resumed))
    kinds = fresh_kinds(plan) if plan.batch > 1 else Counter()
    for index, group in enumerate(plan.groups.groups):
        how = f"{len(group)} trials stacked" if len(group) > 1 else "alone"
        names = ", ".join(t.name for t in group)
        why = "" if len(group) > 1 else f" ({plan.alone.get(group[0].name) or lone_reason(plan, group, kinds)})"
        again = ", resuming from checkpoints" if id(group) in resumed else ""
        label = "task" if plan.submission is not None else "group"
        lines.append(f"{label} {index}: {how}{again}: {names}{why}")
    if plan.submission is not None and plan.submission.tasks:
        from dropcli import executors

        if plan.executor.name == "slurm":
            lines += executors.sbatch_preview(plan.submission, plan.sweep_dir).splitlines()
        lines += [f"setup: {line}" for line in plan.executor.slurm_setup]
    return lines


def fresh_kinds(plan: LaunchPlan) -> Counter:
    """How many fresh trials to train share each group key (model, data, optimizer)."""
    from dropcli.batched import group_key  # torch is loaded by now: plan_groups needed it

    return Counter(group_key(t.config) for group in plan.groups.fresh for t in group)


def lone_reason(plan: LaunchPlan, group: list[Trial], kinds: Counter) -> str:
    """Why a trial that could stack trains alone (groups are as even as can be: see batched.split_into_groups)."""
    from dropcli.batched import group_key

    if plan.batch == 1:
        return "--batch 1"
    if any(group is resumed for resumed in plan.groups.resumed):
        return "resumes alone: already stopped, or no other trial of its kind stands at its checkpoint's epoch"
    if kinds[group_key(group[0].config)] == 1:
        return "no other trial to train shares its model, data and optimizer"
    return f"left over: the others of its kind fill groups of up to {plan.batch}"


@dataclass
class Launched:
    outcome: SweepOutcome | None = None  # trained here (or waited for): what happened to each trial
    job_ids: list[str] = field(default_factory=list)  # submitted
    failed: dict[str, str] = field(default_factory=dict)  # submitit-local: task or trial → error
    waited: bool = True  # False: submitted to Slurm, running on its own


class LocalLauncher:
    """Trains the plan here. `prepare` writes the sweep folder (errors there are the user's environment);
    `launch` trains."""

    def prepare(self, plan: LaunchPlan, command: str) -> None:
        open_sweep_dir(plan.sweep_dir, plan.spec, plan.trials, command)

    def launch(self, plan: LaunchPlan, observer: SweepObserver | None = None) -> Launched:
        from dropcli.sweep import run_sweep

        return Launched(outcome=run_sweep(plan.trials, plan.sweep_dir, observer, batch=plan.batch))


class SubmititLauncher:
    """Submits the plan's array tasks; waits for them when they run on this machine (submitit-local)."""

    def prepare(self, plan: LaunchPlan, command: str) -> None:
        if plan.executor.name == "slurm" and shutil.which("sbatch") is None:
            raise LaunchError("--executor slurm: no sbatch on this machine; submit from a Slurm login node "
                              "(--dry-run shows what would be submitted)")
        open_sweep_dir(plan.sweep_dir, plan.spec, plan.trials, command)

    def launch(self, plan: LaunchPlan, observer: SweepObserver | None = None) -> Launched:
        from dropcli import executors

        if not plan.submission.tasks:
            return Launched()
        try:
            jobs = executors.submit(plan.submission, plan.sweep_dir, plan.batch)
        except Exception as error:  # sbatch refused: its words, in one line
            raise SubmissionFailed(" ".join(str(error).split())) from None
        launched = Launched(job_ids=[job.job_id for job in jobs], waited=plan.submission.cluster != "slurm")
        if launched.waited:  # submitit-local: wait, as a local sweep would (KeyboardInterrupt: the caller's)
            for job in jobs:
                try:
                    launched.failed.update(executors.result_of(job, plan.sweep_dir)["failed"])
                except KeyboardInterrupt:
                    raise
                except Exception as error:  # the task died without a result; its trials say so in their folders
                    launched.failed[job.job_id] = str(error).splitlines()[-1] if str(error) else type(error).__name__
        return launched


def launcher(plan: LaunchPlan) -> LocalLauncher | SubmititLauncher:
    return LocalLauncher() if plan.executor.name == "local" else SubmititLauncher()
