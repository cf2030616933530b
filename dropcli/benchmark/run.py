"""The benchmark's protocol, carried out through tune: for each workload, each regularizer tuned with the same
budget (one Optuna study each, tune.run_study), the best of each retrained on fresh seeds beside the baseline
(tune's own retraining), and each entry given with `set:` trained as set on the same seeds. Every workload is
an ordinary tune folder inside the benchmark folder (layout: folder.py), so the same command resumes: tune
never trains a finished trial again, and the sweep engine skips completed runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dropcli import tune
from dropcli.benchmark import aggregate, outputs
from dropcli.benchmark import folder as folders
from dropcli.benchmark.suite import BASELINE, BenchmarkError, Entry, Suite, resolve_workload
from dropcli.config import Config, ConfigError, ExecutorConfig
from dropcli.run_reading import load_run
from dropcli.sweep import SweepObserver, Trial


@dataclass
class WorkloadPlan:
    name: str
    config: Config  # the baseline: the workload's config, no regularizer
    spec: tune.TuneSpec  # its studies (the tuned entries), budget, seeds, metric
    fixed: list[Entry]  # entries trained as set
    folder: Path

    def fixed_trials(self) -> list[Trial]:
        return [Trial(f"{entry.name}_seed-{seed}", {**(entry.set or {}), "seed": seed},
                      self.spec.config({**(entry.set or {}), "seed": seed}))
                for entry in self.fixed for seed in self.spec.seeds]

    def record(self) -> dict[str, Any]:
        return {"fingerprint": self.spec.fingerprint(), "studies": self.spec.regularizers,
                "fixed": {e.name: e.set for e in self.fixed}, "trials": self.spec.trials, "seeds": self.spec.seeds}

    @property
    def runs(self) -> int:
        """Runs the workload trains from scratch: every tuning trial and every retrained one."""
        return self.spec.trials * len(self.spec.regularizers) + (1 + len(self.spec.regularizers) +
                                                                  len(self.fixed)) * len(self.spec.seeds)


@dataclass
class Plan:
    suite: Suite
    name: str
    out: Path
    workloads: list[WorkloadPlan]

    @property
    def executor(self) -> ExecutorConfig:
        return self.workloads[0].config.executor


def make_plan(suite: Suite, name: str, out: Path, overrides: list[str]) -> Plan:
    """Each workload's config resolved and its tune spec built; every problem is a BenchmarkError naming the
    workload or the suite's field. Nothing is written."""
    protocol = suite.protocol
    if protocol.metric not in tune.METRICS:
        raise BenchmarkError(f"protocol.metric: {protocol.metric!r}: expected one of {', '.join(tune.METRICS)}")
    for entry in suite.entries:
        if entry.tuned:
            try:
                tune.parse_regularizers(entry.name)
            except tune.TuneError:
                raise BenchmarkError(f"regularizers: {entry.name!r} is not a regularizer tune knows; expected "
                                     f"{tune.REGULARIZERS_FORM}, or an entry with `set:` (trained as set, not "
                                     f"tuned)") from None
    plans = []
    for workload in suite.workloads:
        config = resolve_workload(suite, workload, overrides)
        entries = suite.entries_on(workload.name)
        studies = ",".join(e.name for e in entries if e.tuned)
        try:
            spec = tune.build_spec(config, studies, protocol.trials, protocol.seeds, protocol.metric)
        except ConfigError as error:
            raise BenchmarkError([f"workload {workload.name}: {p}" for p in error.problems]) from None
        plan = WorkloadPlan(workload.name, config, spec, [e for e in entries if not e.tuned], out / workload.name)
        try:
            plan.fixed_trials()
        except ConfigError as error:
            names = ", ".join(e.name for e in plan.fixed)
            raise BenchmarkError([f"workload {workload.name}: {names}: {p}" for p in error.problems]) from None
        plans.append(plan)
    return Plan(suite, name, out, plans)


def open_benchmark_dir(plan: Plan, command: str) -> None:
    """Create the benchmark folder and its workloads' tune folders, or check that an existing one was made by
    this suite: a workload whose config, settings, tuned regularizers or protocol changed is refused (its
    trials would not be comparable), and so is an entry trained as set whose settings changed; a workload or an
    entry trained as set that is new to the suite is simply added."""
    out = plan.out
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"{out}: exists and is not a folder; choose another --out")
    previous: dict[str, Any] = {}
    if folders.is_benchmark_folder(out):
        previous = folders.read_record(out)["workloads"]
    elif out.is_dir() and any(out.iterdir()):
        raise BenchmarkError(f"{out}: exists and is not a benchmark folder (no {folders.RECORD}); choose another --out")
    for workload in plan.workloads:
        now, before = json.loads(json.dumps(workload.record())), previous.get(workload.name)
        if before is None:
            continue
        if not isinstance(before, dict) or {**before, "fixed": {}} != {**now, "fixed": {}}:
            raise BenchmarkError(f"workload {workload.name}: {out / workload.name} holds its runs under another "
                                 f"config, settings, tuned regularizers or protocol; choose another --out, or rename "
                                 f"the workload")
        trained: dict[str, Any] = before["fixed"] if isinstance(before.get("fixed"), dict) else {}
        changed = [n for n, s in now["fixed"].items() if n in trained and trained[n] != s]
        if changed:
            raise BenchmarkError(f"workload {workload.name}: {changed[0]} was trained with other settings; choose "
                                 f"another --out, or give the entry another name")
    out.mkdir(parents=True, exist_ok=True)
    for workload in plan.workloads:
        try:
            tune.open_tune_dir(workload.folder, workload.spec, command)
        except tune.TuneError as error:
            raise BenchmarkError(f"workload {workload.name}: {error}") from None
    record = {"suite": plan.suite.model_dump(mode="json"), "command": command,
              "updated_at": datetime.now().isoformat(timespec="seconds"),
              "workloads": {**previous, **{w.name: w.record() for w in plan.workloads}}}
    folders.write_record(out, record)


@dataclass
class BenchmarkOutcome:
    studies: dict[str, list[tune.StudyResult]] = field(default_factory=dict)  # workload → tune's results
    failed: dict[str, str] = field(default_factory=dict)  # "<workload>/<run>" → why


def run(plan: Plan, batch: int, observer: SweepObserver | None = None) -> BenchmarkOutcome:
    """Every workload in turn: its studies to their budget, the retraining of their best and the baseline
    (tune.tune), then the entries trained as set on the same seeds. A workload already done trains nothing.
    Trials train where the workload's executor: section says (--executor sets it for every workload)."""
    observer = observer or SweepObserver()
    outcome = BenchmarkOutcome()
    for index, workload in enumerate(plan.workloads, 1):
        fixed = f"; trained as set: {', '.join(e.name for e in workload.fixed)}" if workload.fixed else ""
        observer.note(f"workload {workload.name} ({index}/{len(plan.workloads)}): tuning "
                      f"{', '.join(workload.spec.regularizers)}{fixed}")
        executor = workload.config.executor
        tuned = tune.tune(workload.spec, workload.folder, batch, observer, executor)
        outcome.studies[workload.name] = tuned.studies
        outcome.failed.update({f"{workload.name}/{name}": why for name, why in tuned.failed_retrains.items()})
        if workload.fixed:
            trained = tune.train_trials(workload.fixed_trials(), workload.folder / "best", batch, executor, observer)
            if trained.stopped:
                raise OSError(trained.stopped)
            outcome.failed.update({f"{workload.name}/{name}": why for name, why in trained.failed.items()})
    return outcome


def retrained_runs(plan: Plan, outcome: BenchmarkOutcome):
    """One row per retrained run that completed: workload, regularizer, kind, setting, seed, test_acc."""
    rows = []
    for workload in plan.workloads:
        chosen = {r.name: r.best_params for r in outcome.studies.get(workload.name, []) if r.best_number is not None}
        kinds = [(BASELINE, "baseline", {}), *[(n, "tuned", p) for n, p in chosen.items()],
                 *[(e.name, "as set", e.set or {}) for e in workload.fixed]]
        for name, kind, settings in kinds:
            for seed in workload.spec.seeds:
                run = load_run(workload.folder / "best" / f"{name}_seed-{seed}")
                if run.status == "completed":
                    rows.append({"workload": workload.name, "regularizer": name, "kind": kind,
                                 "setting": tune.describe_params(settings), "seed": seed,
                                 "test_acc": float(run.summary["test_acc"])})
    return pd.DataFrame(rows, columns=["workload", "regularizer", "kind", "setting", "seed", "test_acc"])


def describe_plan(plan: Plan) -> list[str]:
    """The dry run's lines: per workload what trains, and how much is already done."""
    done = {p.name: p for p in folders.progress(plan.out)} if folders.is_benchmark_folder(plan.out) else {}
    lines = [f"benchmark folder: {plan.out}{'' if plan.out.exists() else ' (new)'}",
             f"protocol: {plan.suite.protocol.trials} tuning trials per regularizer and workload (chosen by "
             f"{plan.suite.protocol.metric}), then the best of each and the baseline over "
             f"{plan.suite.protocol.seeds} fresh seeds"]
    total = 0
    for workload in plan.workloads:
        spec = workload.spec
        progress = done.get(workload.name)
        finished = (progress.tuned + progress.retrained["completed"]) if progress else 0
        total += workload.runs - finished
        fixed = f"; as set: {', '.join(e.name for e in workload.fixed)}" if workload.fixed else ""
        lines.append(f"- {workload.name}: {spec.base['model']['name']} on {spec.base['dataset']['name']} "
                     f"(train_size {spec.base['dataset']['train_size']}, {spec.base['epochs']} epochs); tuned: "
                     f"{', '.join(spec.regularizers)}{fixed}; seeds {', '.join(map(str, spec.seeds))}; "
                     f"{workload.runs} runs, {finished} already done")
    lines.append(f"to train: about {total} runs (pruned trials end early)")
    return lines


def write_results(plan: Plan, outcome: BenchmarkOutcome, command: str) -> aggregate.Statistics | None:
    """Score the retrained runs, compute every statistic, draw the figures and write the leaderboard; the
    statistics (aggregate.Statistics), or None when no run completed."""
    from dropcli.benchmark import figures  # matplotlib: loaded only when there is something to draw

    runs = retrained_runs(plan, outcome)
    if runs.empty:
        return None
    result = aggregate.compute(runs)
    drawn = figures.draw(result, plan.out / "figures")
    outputs.write_outputs(plan.out, runs, result, plan.name, plan.suite.protocol.model_dump(), command, drawn)
    return result


def headline(result: aggregate.Statistics | None) -> list[str]:
    """The across-workload sentence of each regularizer (what its intervals allow)."""
    return [] if result is None else [outputs.aggregate_sentence(n, result) for n in result.order if n != BASELINE]
