"""Sweeps: expand axes (dropout rates, L2, any config key) and seeds into trials, run them, resume.

A sweep folder holds `sweep.json` (the base config, the axes, the seeds, the trial list and a fingerprint
of all of it) and one ordinary run folder per trial, named after the trial's settings:

    runs/quickstart-sweep-<fingerprint>/
      sweep.json
      p-0_seed-0/   p-0_seed-1/   p-0.1_seed-0/ ...      (each: config.yaml, metrics.csv, summary.json, ...)

The default folder name comes from the fingerprint, so running the same command again finds the same
folder and trains only what is missing, failed or interrupted; a different command never mixes in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

import yaml

from dropcli.config import Config, ConfigError, set_dotted, short_name, validate_config
from dropcli.runs import RunFolder, load_run, write_atomically

RATE_FORM = "A..B[:STEP] (e.g. 0.1..0.7 or 0.1..0.7:0.2) or a comma list (e.g. 0,0.2,0.5), rates in [0, 1)"


class SweepError(ConfigError):
    """A sweep's options are wrong, or its folder belongs to another sweep (exit code 2)."""


# ---------------------------------------------------------------------------------------------------------
# Parsing the axis options. Decimal arithmetic: 0.1..0.7 gives 0.1, 0.2, 0.3 ... never 0.30000000000000004.


def parse_decimal(text: str, option: str, form: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SweepError(f"{option} {text.strip()!r}: not a number; expected {form}") from None
    if not value.is_finite():
        raise SweepError(f"{option} {text.strip()!r}: not a finite number; expected {form}")
    return value


def parse_rates(text: str, option: str = "--p") -> list[float]:
    """Dropout rates: `A..B[:STEP]` (inclusive, default step 0.1) or `a,b,c`; the p = 0 baseline is added."""
    if ".." in text:
        start_text, _, rest = text.partition("..")
        end_text, _, step_text = rest.partition(":")
        start, end = parse_decimal(start_text, option, RATE_FORM), parse_decimal(end_text, option, RATE_FORM)
        step = parse_decimal(step_text, option, RATE_FORM) if step_text else Decimal("0.1")
        if step <= 0:
            raise SweepError(f"{option} {text!r}: the step must be > 0; expected {RATE_FORM}")
        if start > end:
            raise SweepError(f"{option} {text!r}: the range runs backwards ({start} > {end}); expected {RATE_FORM}")
        count = int((end - start) / step) + 1
        values = [start + i * step for i in range(count)]
    else:
        values = [parse_decimal(part, option, RATE_FORM) for part in text.split(",")]
    out_of_range = [str(v) for v in values if not Decimal(0) <= v < Decimal(1)]
    if out_of_range:
        raise SweepError(f"{option} {text!r}: {', '.join(out_of_range)} outside [0, 1); expected {RATE_FORM}")
    return [float(v) for v in sorted(set(values) | {Decimal(0)})]


def parse_non_negative_list(text: str, option: str) -> list[float]:
    form = "a comma list of numbers >= 0, e.g. 0,1e-4,1e-3"
    values = [parse_decimal(part, option, form) for part in text.split(",")]
    negative = [str(v) for v in values if v < 0]
    if negative:
        raise SweepError(f"{option} {text!r}: {', '.join(negative)} is negative; expected {form}")
    return [float(v) for v in sorted(set(values))]


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """`--grid dataset.train_size=250,500,1000` or `--grid model.hidden_sizes=[64],[256,256]`: any config
    key, the values read as one YAML list (so brackets group), duplicates dropped."""
    form = "expected KEY=V1,V2,..., e.g. --grid dataset.train_size=250,500 or --grid model.hidden_sizes=[64],[128,128]"
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise SweepError(f"--grid {text!r}: {form}")
    try:
        parsed = yaml.safe_load(f"[{values}]")
    except yaml.YAMLError:
        raise SweepError(f"--grid {text!r}: the values are not valid YAML; {form}") from None
    unique = []
    for value in parsed:
        if value not in unique:
            unique.append(value)
    return key.strip(), unique


def parse_batch(text: str, device_is_cuda: bool = False) -> int:
    """`--batch auto|N|1`: how many trials train together as one stacked model (1: one by one)."""
    if text == "auto":
        return 64 if device_is_cuda else 16  # measured in bench/sweep_speed.py
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise SweepError(f"--batch {text!r}: expected auto, or a group size >= 1 (1 trains trials one by one)")
    return size


def parse_seeds(seeds: int | None, seed_list: str | None) -> list[int]:
    if seed_list is not None:
        try:
            chosen = [int(part) for part in seed_list.split(",")]
        except ValueError:
            raise SweepError(f"--seed-list {seed_list!r}: expected integers separated by commas, e.g. 0,1,2") from None
        return sorted(set(chosen))
    if seeds is None:
        return [0, 1, 2]
    if seeds < 1:
        raise SweepError(f"--seeds {seeds}: expected a count >= 1 (seeds 0..N-1 are run)")
    return list(range(seeds))


# ---------------------------------------------------------------------------------------------------------
# Trials


@dataclass(frozen=True)
class Trial:
    name: str
    settings: dict[str, Any]  # dotted config key → value, the seed included
    config: Config


@dataclass
class SweepSpec:
    base: dict[str, Any]  # the resolved base config (defaults + YAML + --set)
    axes: dict[str, list[Any]] = field(default_factory=dict)  # dotted key → values
    seeds: list[int] = field(default_factory=lambda: [0])

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "axes": self.axes, "seeds": self.seeds}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]

    def trials(self) -> list[Trial]:
        """Every combination of axis values × seeds, validated; any invalid value is a SweepError."""
        trials, problems = [], []
        keys = list(self.axes)
        for combination in itertools.product(*(self.axes[k] for k in keys), self.seeds):
            settings = dict(zip([*keys, "seed"], combination))
            raw = json.loads(json.dumps(self.base))
            for key, value in settings.items():
                set_dotted(raw, key, value)
            try:
                trials.append(Trial(trial_name(settings), settings, validate_config(raw)))
            except ConfigError as error:
                problems += [p for p in error.problems if p not in problems]
        if problems:
            raise SweepError([f"axis value rejected: {p}" for p in problems])
        names = [t.name for t in trials]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise SweepError(f"two trials would share the folder {clashes[0]!r}: give axis values that differ")
        return trials


def trial_name(settings: dict[str, Any]) -> str:
    parts = []
    for key, value in settings.items():
        label = short_name(key)
        text = "x".join(map(str, value)) if isinstance(value, list) else str(value)  # [256, 256] → 256x256
        parts.append(f"{label}-{re.sub(r'[^A-Za-z0-9.+-]', '-', text)}")
    return "_".join(parts)


def build_spec(base: Config, rates: str | None, l2: str | None, grid: list[str], seeds: list[int]) -> SweepSpec:
    axes: dict[str, list[Any]] = {}
    if rates is not None:
        axes["regularizer.dropout"] = parse_rates(rates)
    if l2 is not None:
        axes["regularizer.l2"] = parse_non_negative_list(l2, "--l2")
    for text in grid:
        key, values = parse_grid(text)
        if key in axes or key == "seed":
            raise SweepError(f"--grid {text!r}: {key} is already an axis (use --seeds / --seed-list for seeds)")
        axes[key] = values
    # where trials run is not what they are: the same sweep may be resumed through another executor
    settings = {key: value for key, value in base.to_dict().items() if key != "executor"}
    return SweepSpec(base=settings, axes=axes, seeds=seeds)


# ---------------------------------------------------------------------------------------------------------
# The sweep folder


def default_sweep_dir(runs_dir: Path, spec: SweepSpec) -> Path:
    return runs_dir / f"{spec.base['name']}-sweep-{spec.fingerprint()}"


def open_sweep_dir(path: Path, spec: SweepSpec, trials: list[Trial], command: str) -> None:
    """Create the sweep folder, or check that an existing one was made by this very sweep."""
    record = path / "sweep.json"
    if record.is_file():
        try:
            existing = json.loads(record.read_text()).get("fingerprint")
        except json.JSONDecodeError:
            existing = None
        if existing != spec.fingerprint():
            raise SweepError(f"{path}: this folder holds a different sweep (other base config, axes or seeds); "
                             f"refusing to mix them. Choose another --out, or rerun that sweep's own command.")
        return
    if path.exists() and any(path.iterdir()):
        raise SweepError(f"{path}: exists and is not a sweep folder (no sweep.json); choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    content = {"fingerprint": spec.fingerprint(), "created_at": datetime.now().isoformat(timespec="seconds"),
               "command": command, **spec.to_dict(),
               "trials": [{"name": t.name, "settings": t.settings} for t in trials]}
    write_atomically(record, json.dumps(content, indent=2) + "\n")


def trial_status(sweep_dir: Path, trial: Trial) -> str:
    """completed | failed | interrupted | running (a run that died without saying so) | pending."""
    return run_status(sweep_dir / trial.name)


def run_status(folder: Path) -> str:
    """The status a run folder's summary.json records; pending without one, unknown if it is unreadable."""
    summary = folder / "summary.json"
    if not summary.is_file():
        return "pending"
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError):  # torn, not UTF-8, not JSON
        return "unknown"
    return str(data.get("status", "unknown")) if isinstance(data, dict) else "unknown"


def read_sweep_record(sweep_dir: Path) -> dict[str, Any]:
    record = sweep_dir / "sweep.json"
    try:
        data = json.loads(record.read_text())
    except FileNotFoundError:
        raise SweepError(f"{sweep_dir}: not a sweep folder (no sweep.json)") from None
    except (OSError, ValueError):
        raise SweepError(f"{sweep_dir}/sweep.json is corrupted") from None
    if not isinstance(data, dict):
        raise SweepError(f"{sweep_dir}/sweep.json is corrupted")
    return data


def sweep_statuses(sweep_dir: Path) -> dict[str, str]:
    """Trial name → completed | running | failed | interrupted | pending | unknown, from the run folders."""
    record = read_sweep_record(sweep_dir)
    return {trial["name"]: run_status(sweep_dir / trial["name"]) for trial in record.get("trials", [])}


# ---------------------------------------------------------------------------------------------------------
# Running


class SweepObserver:
    """What a sweep tells the outside world; the CLI's progress view implements it."""

    def start(self, total: int, already_done: int) -> None: ...
    def trial_started(self, trial: Trial) -> None: ...
    def group_started(self, trials: list[Trial]) -> None: ...
    def epoch(self, row: dict[str, float]) -> None: ...
    def trial_ended(self, trial: Trial, status: str, error: str | None = None) -> None: ...


@dataclass
class SweepOutcome:
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # trial name → error


def run_sweep(trials: list[Trial], sweep_dir: Path, observer: SweepObserver | None = None,
              batch: int = 1) -> SweepOutcome:
    """Train every trial not yet completed; a failing trial is recorded and the sweep goes on.

    batch > 1 trains trials that share model, data and optimizer as stacked groups of up to `batch`
    (batched.py); trials with a checkpoint to continue from, and models without a stacked version, run
    one by one."""
    from dropcli import batched

    observer = observer or SweepObserver()
    outcome = SweepOutcome()
    pending = [t for t in trials if trial_status(sweep_dir, t) != "completed"]
    outcome.skipped = [t.name for t in trials if t not in pending]
    observer.start(len(trials), len(outcome.skipped))
    resumable = [t for t in pending if (sweep_dir / t.name / "checkpoint.pt").is_file()]
    fresh = [t for t in pending if t not in resumable]
    groups = batched.split_into_groups(fresh, lambda t: batched.group_key(t.config), batch) if batch > 1 else \
        [[t] for t in fresh]
    for group in [[t] for t in resumable] + groups:
        if len(group) == 1:
            run_one(group[0], sweep_dir, observer, outcome)
        else:
            run_group(group, sweep_dir, observer, outcome)
    return outcome


def run_one(trial: Trial, sweep_dir: Path, observer: SweepObserver, outcome: SweepOutcome) -> None:
    from dropcli import train as training

    observer.trial_started(trial)
    folder = sweep_dir / trial.name
    # an unfinished trial continues from its last checkpoint; one killed before it had a config starts afresh
    resume = (folder / "config.yaml").is_file()
    run = RunFolder(folder)
    try:
        if not resume:
            shutil.rmtree(folder, ignore_errors=True)
            run = RunFolder.create(sweep_dir, trial.config, folder_name=trial.name)
        experiment = training.prepare(trial.config)
        if resume:
            training.check_resumable(experiment, run)
        training.run_experiment(experiment, run, observer.epoch, resume=resume)
    except training.TrainingInterrupted:
        raise
    except Exception as error:  # TrainingFailed, or anything prepare raised: recorded, and the sweep goes on
        message = str(error) if isinstance(error, training.TrainingFailed) else f"{type(error).__name__}: {error}"
        if not isinstance(error, training.TrainingFailed) and run.path.is_dir():
            training.mark_ended(run, "failed", message, traceback.format_exc())
        outcome.failed[trial.name] = message
        observer.trial_ended(trial, "failed", message)
        return
    outcome.trained.append(trial.name)
    observer.trial_ended(trial, "completed")


def run_group(group: list[Trial], sweep_dir: Path, observer: SweepObserver, outcome: SweepOutcome) -> None:
    """Train a group as one stacked model; statuses are kept honest for every member, as for a lone run."""
    from dropcli import batched
    from dropcli import train as training

    observer.group_started(group)
    for trial in group:  # members have no checkpoint (those that had one resume alone): they start afresh
        shutil.rmtree(sweep_dir / trial.name, ignore_errors=True)
    runs = [RunFolder.create(sweep_dir, t.config, folder_name=t.name) for t in group]
    message = "the group ended before this trial completed"
    try:
        batched.train_group([t.config for t in group], runs, observer.epoch)
    except KeyboardInterrupt:
        for run in runs:
            training.mark_ended(run, "interrupted", "stopped by the user (Ctrl-C)")
        raise training.TrainingInterrupted(runs[0]) from None
    except SystemExit:  # submitit's requeue on preemption or time limit: the rerun resumes the checkpoints
        for run in runs:
            training.mark_ended(run, "interrupted", training.REQUEUED)
        raise
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        for run in runs:
            training.mark_ended(run, "failed", message, traceback.format_exc())  # completed ones stay completed
    for trial in group:
        status = trial_status(sweep_dir, trial)
        if status == "completed":
            outcome.trained.append(trial.name)
        else:
            outcome.failed[trial.name] = message
        observer.trial_ended(trial, status, None if status == "completed" else message)


def check_resources(trials: list[Trial]) -> None:
    """Fail fast, before anything is written, on a device, dataset or model that the trials cannot use:
    one full `prepare` for each distinct (device, dataset, model)."""
    from dropcli import train as training

    checked = set()
    for trial in trials:
        key = repr((trial.config.device, trial.config.dataset, trial.config.model))
        if key not in checked:
            checked.add(key)
            training.prepare(trial.config)


# ---------------------------------------------------------------------------------------------------------
# Results


def summarize(trials: list[Trial], sweep_dir: Path):
    """The report's per-setting table (mean ± std over seeds, best by validation accuracy) for this sweep."""
    import pandas as pd

    from dropcli.report import runs_table, settings_summary, varying_settings

    table = runs_table([load_run(sweep_dir / t.name) for t in trials], sweep_dir)
    if not (table["status"] == "completed").any():
        return pd.DataFrame()
    return settings_summary(table, varying_settings(table))
