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

import contextlib
import hashlib
import json
import os
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropcli import designs, locks, yamlsafe
from dropcli.config import Config, ConfigError, load_config, set_dotted, validate_config
from dropcli.files import read_regular, write_atomically
from dropcli.isolation import helper_command, isolated_environment
from dropcli.models import code
from dropcli.run_reading import load_run, recorded_status, run_status, watched_status
from dropcli.runs import NotARunFolder, RunFolder
from dropcli.schema import without_new_defaults
from dropcli.signals import Terminated, interruption_reason
from dropcli.yamlsafe import brief

if TYPE_CHECKING:
    from dropcli.train import StopRule

MAX_TRIALS = 10_000  # per sweep unless --max-trials says more: a typo like 0..0.7:0.0001 must not mean 7 million
MAX_RECORD_BYTES = 1 << 30  # sweep.json: ~200 bytes a trial, so a cap far above 10,000 trials
MAX_AXIS_VALUES = 10_000  # values of one axis (or seeds), checked before any list is built
RATE_FORM = "A..B[:STEP] (e.g. 0.1..0.7 or 0.1..0.7:0.2) or a comma list (e.g. 0,0.2,0.5), rates in [0, 1)"


class SweepError(ConfigError):
    """A sweep's options are wrong, or its folder belongs to another sweep (exit code 2)."""


# ---------------------------------------------------------------------------------------------------------
# Parsing the axis options. Decimal arithmetic: 0.1..0.7 gives 0.1, 0.2, 0.3 ... never 0.30000000000000004.


def parse_decimal(text: str, option: str, form: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except ArithmeticError:
        raise SweepError(f"{option} {brief(text.strip())}: not a number; expected {form}") from None
    if not value.is_finite():
        raise SweepError(f"{option} {brief(text.strip())}: not a finite number; expected {form}")
    return value


def parse_rates(text: str, option: str = "--p") -> list[float]:
    """Dropout rates: `A..B[:STEP]` (inclusive, default step 0.1) or `a,b,c`; the p = 0 baseline is added."""
    if ".." in text:
        start_text, _, rest = text.partition("..")
        end_text, _, step_text = rest.partition(":")
        start, end = parse_decimal(start_text, option, RATE_FORM), parse_decimal(end_text, option, RATE_FORM)
        step = parse_decimal(step_text, option, RATE_FORM) if step_text else Decimal("0.1")
        if step <= 0:
            raise SweepError(f"{option} {brief(text)}: the step must be > 0; expected {RATE_FORM}")
        if start > end:
            raise SweepError(f"{option} {brief(text)}: the range runs backwards ({start} > {end}); "
                             f"expected {RATE_FORM}")
        try:
            count = int((end - start) / step) + 1
        except ArithmeticError:  # a step like 1e-999999999
            count = MAX_AXIS_VALUES + 1
        if count > MAX_AXIS_VALUES:
            many = f"{count:,}" if count < 10**9 else f"~{Decimal(count):.1e}"  # a tiny step: no 400-digit count
            raise SweepError(f"{option} {brief(text)}: {many} rates; an axis may have at most "
                             f"{MAX_AXIS_VALUES:,} values (a larger step?)")
        values = [start + i * step for i in range(count)]
    else:
        values = [parse_decimal(part, option, RATE_FORM) for part in text.split(",")]
    out_of_range = [str(v) for v in values if not Decimal(0) <= v < Decimal(1)]
    if out_of_range:
        raise SweepError(f"{option} {brief(text)}: {', '.join(out_of_range[:5])} outside [0, 1); expected {RATE_FORM}")
    return [float(v) for v in sorted(set(values) | {Decimal(0)})]


def parse_non_negative_list(text: str, option: str) -> list[float]:
    form = "a comma list of numbers >= 0, e.g. 0,1e-4,1e-3"
    values = [parse_decimal(part, option, form) for part in text.split(",")]
    negative = [str(v) for v in values if v < 0]
    if negative:
        raise SweepError(f"{option} {brief(text)}: {', '.join(negative[:5])} is negative; expected {form}")
    return [float(v) for v in sorted(set(values))]


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """`--grid dataset.train_size=250,500,1000` or `--grid model.hidden_sizes=[64],[256,256]`: any config
    key, the values read as one YAML list (so brackets group), duplicates dropped."""
    form = "expected KEY=V1,V2,..., e.g. --grid dataset.train_size=250,500 or --grid model.hidden_sizes=[64],[128,128]"
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise SweepError(f"--grid {brief(text)}: {form}")
    try:
        parsed = yamlsafe.load(f"[{values}]")
    except yamlsafe.YamlError as error:
        raise SweepError(f"--grid {brief(key.strip())}: the values are not valid YAML ({error}); {form}") from None
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
        raise SweepError(f"--batch {brief(text)}: expected auto, or a group size >= 1 (1 trains trials one by one)")
    return size


def parse_seeds(seeds: int | None, seed_list: str | None) -> list[int]:
    if seeds is not None and seed_list is not None:
        raise SweepError(f"--seeds {seeds} and --seed-list {brief(seed_list)}: give one of them (--seeds N runs "
                         f"seeds 0..N-1, --seed-list names them)")
    if seed_list is not None:
        try:
            chosen = [int(part) for part in seed_list.split(",")]
        except ValueError:
            raise SweepError(f"--seed-list {brief(seed_list)}: expected integers separated by commas, "
                             f"e.g. 0,1,2") from None
        return sorted(set(chosen))
    if seeds is None:
        return [0, 1, 2]
    if not 1 <= seeds <= MAX_AXIS_VALUES:
        raise SweepError(f"--seeds {seeds}: expected a count from 1 to {MAX_AXIS_VALUES:,} (seeds 0..N-1 are run)")
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
    design: str = designs.GRID  # or designs.ONE_AT_A_TIME: which combinations of the axes' values are trained

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SweepSpec:
        """The spec a sweep.json holds (one written before designs existed is a grid)."""
        return cls(base=record["base"], axes=record["axes"], seeds=record["seeds"],
                   design=record.get("design", designs.GRID))

    def to_dict(self) -> dict[str, Any]:
        # a grid's record (and so its fingerprint) is what it was before there were other designs
        design = {} if self.design == designs.GRID else {"design": self.design}
        return {"base": self.base, "axes": self.axes, "seeds": self.seeds, **design}

    def fingerprint(self) -> str:
        # how many threads run it is not what the sweep is (like its executor): the same sweep may be resumed
        # with another --threads, and folders made before the key existed keep their name
        # and keys added since, at their defaults, leave it as it was: a sweep folder of an earlier release resumes
        what = {**self.to_dict(), "base": without_new_defaults(Config, {k: v for k, v in self.base.items()
                                                                         if k != "threads"})}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]

    def trials(self) -> list[Trial]:
        """The design's settings (every combination of axis values, or one axis at a time) × seeds, validated;
        any invalid value is a SweepError."""
        trials, problems = [], []
        for varied, combination in designs.settings(self.design, self.base, self.axes):
            for seed in self.seeds:
                settings = {**combination, "seed": seed}
                raw = json.loads(json.dumps(self.base))
                for key, value in settings.items():
                    set_dotted(raw, key, value)
                name = trial_name(settings) if self.design == designs.GRID else \
                    designs.one_at_a_time_name(varied, combination.get(varied or ""), seed)
                try:
                    trials.append(Trial(name, settings, validate_config(raw)))
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
    return "_".join(designs.name_part(key, value) for key, value in settings.items())


def build_spec(base: Config, rates: str | None, l2: str | None, grid: list[str], seeds: list[int],
               max_trials: int = MAX_TRIALS, named: dict[str, str] | None = None,
               design: str = designs.GRID) -> SweepSpec:
    """The sweep's axes and seeds; `named`: option → its text for the other regularizers with an option
    (designs.NAMED_AXES: --early-stopping 5,10,20 ...). Refused when it would have more than `max_trials`
    trials (counted before any trial is built)."""
    axes: dict[str, list[Any]] = {}
    if rates is not None:
        axes["regularizer.dropout"] = parse_rates(rates)
    if l2 is not None:
        axes["regularizer.l2"] = sorted({0.0, *parse_non_negative_list(l2, "--l2")})  # the baseline, as --p adds p = 0
    resolved = base.to_dict()
    for axis in designs.NAMED_AXES:
        if (named or {}).get(axis.option) is not None:
            axes[axis.key] = axis.values((named or {})[axis.option], resolved)
    for text in grid:
        key, values = parse_grid(text)
        if key == "seed":
            raise SweepError(f"--grid {brief(text)}: seeds are an axis of every sweep: use --seeds N or --seed-list")
        if key in axes:
            raise SweepError(f"--grid {brief(text)}: {key} is already an axis ({designs.OPTION_OF[key]} is {key})"
                             if key in designs.OPTION_OF else f"--grid {brief(text)}: {key} is given twice")
        nested = next((k for k in axes if key.startswith(f"{k}.") or k.startswith(f"{key}.")), None)
        if nested is not None:  # `--grid regularizer={...}` would silently replace what --p sets in each trial
            raise SweepError(f"--grid {brief(text)}: {key} and {nested} are both axes, and one holds the other: "
                             f"give each setting its own axis (--grid {nested}=... or the option for it)")
        if key.split(".")[0] in ("executor", "threads"):  # where and how fast trials run, not what they are
            raise SweepError(f"--grid {brief(text)}: {key} is not something trials can differ in (it says where "
                             f"and how fast they run): set it once with --set {key}=VALUE")
        axes[key] = values
    # where trials run is not what they are: the same sweep may be resumed through another executor
    settings = {key: value for key, value in resolved.items() if key != "executor"}
    if design not in designs.DESIGN_WORDS:
        raise SweepError(f"design {brief(design)}: expected one of {', '.join(designs.DESIGN_WORDS)}")
    if design == designs.ONE_AT_A_TIME and not axes:
        raise SweepError("--one-at-a-time: give the axes to vary one at a time (--p, --l2, --early-stopping, ...)")
    count = designs.count_settings(design, settings, axes) * len(seeds)
    if count > max_trials:
        sizes = " × ".join(str(len(v)) for v in [*axes.values(), seeds]) if design == designs.GRID else \
            designs.describe(design, settings, axes, seeds)
        raise SweepError(f"{count:,} trials ({sizes}); at most "
                         f"{max_trials:,} per sweep: use fewer values, or raise the cap with --max-trials")
    return SweepSpec(base=settings, axes=axes, seeds=seeds, design=design)


# ---------------------------------------------------------------------------------------------------------
# The sweep folder


def default_sweep_dir(runs_dir: Path, spec: SweepSpec) -> Path:
    return runs_dir / f"{spec.base['name']}-sweep-{spec.fingerprint()}"


def open_sweep_dir(path: Path, spec: SweepSpec, trials: list[Trial], command: str) -> None:
    """Create the sweep folder, or check that an existing one was made by this very sweep. Two processes
    opening one folder at once take turns (the sweep folder's lock, held only while opening)."""
    check_folder_names(path, trials)
    if path.exists() and not path.is_dir():
        raise SweepError(f"{path}: exists and is not a folder; choose another --out")
    path.mkdir(parents=True, exist_ok=True)  # what it holds is checked under its lock (create_or_check_record)
    for _ in range(100):  # another process is writing sweep.json: it takes milliseconds
        try:
            with locks.acquire(path):
                return create_or_check_record(path, spec, trials, command)
        except locks.FolderBusy:
            time.sleep(0.05)
    raise SweepError(f"{path}: another process keeps the sweep folder locked; try again")


def check_folder_names(sweep_dir: Path, trials: list[Trial]) -> None:
    """Every trial's folder name must be possible here, checked before anything is written."""
    parent = existing_parent(sweep_dir)
    limit = os.pathconf(parent, "PC_NAME_MAX") if parent else 255
    too_long = [t.name for t in trials if len(t.name.encode()) > limit]
    if too_long:
        raise SweepError(f"trial folder name {brief(too_long[0])} is {len(too_long[0].encode())} bytes; this file "
                         f"system allows {limit}: use shorter --grid values")
    longest = max((len(os.fsencode((sweep_dir / t.name).absolute())) for t in trials), default=0)
    if longest + len("/checkpoint.prev.pt") >= 4096:
        raise SweepError(f"{brief(str(sweep_dir))}: trial paths would be longer than Linux allows (4096 bytes)")


def existing_parent(path: Path) -> Path | None:
    for candidate in (path, *path.absolute().parents):
        if candidate.is_dir():
            return candidate
    return None


def create_or_check_record(path: Path, spec: SweepSpec, trials: list[Trial], command: str) -> None:
    if check_sweep_dir(path, spec):
        return
    content = {"fingerprint": spec.fingerprint(), "created_at": datetime.now().isoformat(timespec="seconds"),
               "command": command, **spec.to_dict(),
               "trials": [{"name": t.name, "settings": t.settings} for t in trials]}
    write_atomically(path / "sweep.json", json.dumps(content, indent=2) + "\n")


def check_sweep_dir(path: Path, spec: SweepSpec) -> bool:
    """SweepError unless `path` can take this sweep: missing, empty, or made by this very sweep (True: it
    holds its sweep.json already). Writes nothing: `--dry-run` asks it too."""
    if path.exists() and not path.is_dir():
        raise SweepError(f"{path}: exists and is not a folder; choose another --out")
    if not path.is_dir():
        return False
    # listed before the record is looked for: another process opening the same sweep (this check also runs
    # unlocked, before torch loads) renames its sweep.json into place before it makes any trial folder, so a
    # listing with more than the lock and that temporary file means the record now exists
    entries = [entry.name for entry in path.iterdir()]
    record = path / "sweep.json"
    if record.is_file() or record.is_symlink():
        try:
            existing = read_sweep_record(path).get("fingerprint")
        except SweepError as error:  # not this sweep's, nor anybody's: say so, rather than "a different sweep"
            raise SweepError(f"{error}; refusing to add trials to it: choose another --out (or move the "
                             f"folder away)") from None
        if existing != spec.fingerprint():
            raise SweepError(f"{path}: this folder holds a different sweep (other base config, axes or seeds); "
                             f"refusing to mix them. Choose another --out, or rerun that sweep's own command.")
        return True
    # the lock, and sweep.json being written: by another process opening the same sweep this instant, or by
    # one killed while writing it
    if any(name not in (locks.LOCK_NAME, ".sweep.json.partial") for name in entries):
        raise SweepError(f"{path}: exists and is not a sweep folder (no sweep.json); choose another --out")
    return False


def trial_status(sweep_dir: Path, trial: Trial) -> str:
    """completed | failed | interrupted | running (a run that died without saying so) | pending."""
    return run_status(sweep_dir / trial.name)


def read_sweep_record(sweep_dir: Path) -> dict[str, Any]:
    record = sweep_dir / "sweep.json"
    try:
        data = json.loads(read_regular(record, MAX_RECORD_BYTES))
    except FileNotFoundError:
        raise SweepError(f"{sweep_dir}: not a sweep folder (no sweep.json)") from None
    except (OSError, ValueError, RecursionError):
        raise SweepError(f"{sweep_dir}/sweep.json is corrupted") from None
    if not isinstance(data, dict):
        raise SweepError(f"{sweep_dir}/sweep.json is corrupted")
    return data


def sweep_statuses(sweep_dir: Path) -> dict[str, str]:
    """Trial name → completed | running | failed | interrupted | pending | broken | unknown, from the run
    folders. A trial whose summary says running but that no process owns was killed: "running (stale)"."""
    record = read_sweep_record(sweep_dir)
    trials = record.get("trials")
    if not isinstance(trials, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in trials):
        raise SweepError(f"{sweep_dir}/sweep.json is corrupted (no list of trials)")
    statuses = {}
    for trial in trials:
        folder = sweep_dir / trial["name"]
        if folder.parent != sweep_dir:  # a name with a path in it: not ours
            raise SweepError(f"{sweep_dir}/sweep.json is corrupted (trial {brief(trial['name'])})")
        statuses[trial["name"]] = watched_status(folder)
    return statuses


# ---------------------------------------------------------------------------------------------------------
# Running


class SweepObserver:
    """What a sweep tells the outside world; the CLI's progress view implements it."""

    def start(self, total: int, already_done: int) -> None: ...
    def note(self, text: str) -> None: ...  # what the caller is doing (tune: which study, which trials)
    def trial_started(self, trial: Trial) -> None: ...
    def group_started(self, trials: list[Trial]) -> None: ...
    def epoch(self, row: dict[str, float]) -> None: ...
    def trial_ended(self, trial: Trial, status: str, error: str | None = None) -> None: ...


@dataclass
class SweepOutcome:
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # trial name → error
    held: dict[str, str] = field(default_factory=dict)  # trial name → who else is training it
    stopped: str | None = None  # why the sweep stopped before its end (a full disk)


class DiskFull(Exception):
    """The disk filled up: the trial is recorded failed and the sweep stops (every next trial would fail)."""


@dataclass
class GroupPlan:
    """How a sweep's trials will train, read from their folders: what is already completed, the interrupted
    groups that resume stacked from their checkpoints, and the fresh ones (a group of one trains alone)."""

    completed: list[Trial]
    resumed: list[list[Trial]]
    fresh: list[list[Trial]]

    @property
    def groups(self) -> list[list[Trial]]:
        return self.resumed + self.fresh


def plan_groups(trials: list[Trial], sweep_dir: Path, batch: int) -> GroupPlan:
    """The one grouping every launcher and the dry run use; nothing is written."""
    from dropcli import batched

    pending = [t for t in trials if trial_status(sweep_dir, t) != "completed"]
    resumable = [t for t in pending if RunFolder(sweep_dir / t.name).has_checkpoint()]
    check_resumed_code(sweep_dir, resumable)
    fresh = [t for t in pending if t not in resumable]
    if batch > 1:  # an interrupted group resumes stacked: its trials stand at the same checkpoint epoch
        resumed = batched.split_into_groups(
            resumable, lambda t: batched.resume_key(t.config, RunFolder(sweep_dir / t.name)), batch)
        groups = batched.split_into_groups(fresh, lambda t: batched.group_key(t.config), batch)
    else:
        resumed, groups = [[t] for t in resumable], [[t] for t in fresh]
    return GroupPlan([t for t in trials if t not in pending], resumed, groups)


def check_resumed_code(sweep_dir: Path, trials: list[Trial]) -> None:
    """SweepError unless each trial that will resume from a checkpoint finds its model's code in the file it
    was created with, unchanged (models.code): checked before any of it is imported."""
    for trial in trials:
        if RunFolder(sweep_dir / trial.name).has_checkpoint():
            try:
                code.check_recorded(sweep_dir / trial.name, trial.config.model)
            except code.CodeChanged as error:
                raise SweepError(str(error)) from None


def run_sweep(trials: list[Trial], sweep_dir: Path, observer: SweepObserver | None = None,
              batch: int = 1, stop_rule: StopRule | None = None) -> SweepOutcome:
    """Train every trial not yet completed; a failing trial is recorded and the sweep goes on.

    Each trial is owned while it trains (its run folder's lock): a trial that another process owns (the
    same sweep started twice, a live array task) is left to it, and one that completed meanwhile is not
    trained again. batch > 1 trains trials that share model, data and optimizer as stacked groups of up
    to `batch` (batched.py), and an interrupted group resumes stacked; models without a stacked version
    run one by one. `stop_rule` (tune's pruner) may end any trial after an epoch."""
    observer = observer or SweepObserver()
    outcome = SweepOutcome()
    plan = plan_groups(trials, sweep_dir, batch)
    outcome.skipped = [t.name for t in plan.completed]
    observer.start(len(trials), len(outcome.skipped))
    # a worker costs seconds to start: it pays for itself from about a hundred pictures drawn while groups train
    pending = sum(len(group) for group in plan.groups)
    pictures = PictureWorker(parallel=len(plan.groups) > 1 and pending >= PICTURE_WORKER_FROM)
    try:
        for group in plan.groups:
            claimed = claim_trials(group, sweep_dir, observer, outcome)
            try:
                if len(claimed) == 1 and not stackable(claimed[0][0], batch):
                    run_one(*claimed[0], observer, outcome, stop_rule)
                elif claimed:
                    run_group(claimed, observer, outcome, resume=group in plan.resumed, stop_rule=stop_rule)
            finally:
                pictures.draw([run.path for _, run in claimed])
    except DiskFull as full:
        outcome.stopped = str(full)
    except BaseException:  # interrupted: no waiting for pictures; `report` draws any that are missing
        pictures.abandon()
        raise
    # trials completed by an earlier run of the sweep that was killed before it drew their pictures
    for trial in plan.completed:  # each on its own axes: its group is not here to share them
        if not (sweep_dir / trial.name / "curves.png").is_file():
            pictures.draw([sweep_dir / trial.name])
    pictures.finish()
    return outcome


def stackable(trial: Trial, batch: int) -> bool:
    """Whether a trial left alone in its group still trains stacked (a stack of one): with --batch > 1, for
    a trial that could join a group, so that its numbers are those it would have in any group."""
    from dropcli import batched

    return batch > 1 and batched.group_key(trial.config) is not None


PICTURE_WORKER_FROM = 64  # trials to train, below which their pictures are drawn in this process


class PictureWorker:
    """curves.png drawn by a second process (`python -m dropcli.picture_worker`) while the next group trains:
    matplotlib and PNG encoding cost ~50 ms a trial, as much as training a small one. The sweep waits for it
    before it returns, and draws here whatever it did not draw, so every completed trial has its picture.
    Interrupted, the sweep does not wait: the worker finishes the pictures it was sent on its own."""

    def __init__(self, parallel: bool = True) -> None:
        self.parallel = parallel
        self.process: subprocess.Popen | None = None
        self.sent: list[Path] = []

    def draw(self, folders: list[Path]) -> None:
        if not folders:
            return
        if self.parallel and self.process is None:
            try:
                # isolated: the current folder (maybe shared) is not on its import path
                self.process = subprocess.Popen(helper_command("dropcli.picture_worker"),
                                                env=isolated_environment(), stdin=subprocess.PIPE,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
            except OSError:
                self.parallel = False
        if self.process is None or self.process.stdin is None:
            draw_pictures(folders)
            return
        try:
            self.process.stdin.write(json.dumps([str(folder) for folder in folders]) + "\n")
            self.process.stdin.flush()
            self.sent += folders
        except OSError:  # the worker died: draw here from now on
            self.process, self.parallel = None, False
            draw_pictures(folders)

    def finish(self) -> None:
        if self.process is not None:
            self.abandon()
            self.process.wait()
        missing = [folder for folder in self.sent if not (folder / "curves.png").is_file()]
        draw_pictures(missing)  # whatever the worker could not draw (draw_run_curves skips unfinished runs)

    def abandon(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


def draw_pictures(folders: list[Path]) -> None:
    """Each completed trial's curves.png, after its group ended: drawn from its folder, off the training path
    (the trials of a group on shared axes)."""
    from dropcli.run_plots import draw_run_curves

    draw_run_curves(folders)


def claim_trials(group: list[Trial], sweep_dir: Path, observer: SweepObserver,
                 outcome: SweepOutcome) -> list[tuple[Trial, RunFolder]]:
    """Own each trial's run folder; trials owned by another process, or completed since the sweep
    looked, are left out (and reported)."""
    from dropcli import train as training

    claimed: list[tuple[Trial, RunFolder]] = []
    for trial in group:
        try:
            run = RunFolder.claim(sweep_dir / trial.name)
        except locks.FolderBusy as busy:
            outcome.held[trial.name] = busy.holder
            observer.trial_ended(trial, "held", f"trained by {busy.holder}")
            continue
        except (OSError, NotARunFolder) as error:  # a file or a link where its folder goes, a full disk ...
            message = training.failure_reason(error) if isinstance(error, OSError) else str(error)
            outcome.failed[trial.name] = message
            observer.trial_ended(trial, "failed", message)
            if training.disk_full(error):
                for _, run in claimed:
                    run.release()
                raise DiskFull(message) from None
            continue
        if trial_status(sweep_dir, trial) == "completed":  # another process finished it meanwhile
            run.release()
            outcome.skipped.append(trial.name)
            observer.trial_ended(trial, "completed")
            continue
        claimed.append((trial, run))
    return claimed


def resumable_with(run: RunFolder, config: Config) -> bool:
    """An unfinished trial continues from its checkpoint when its folder still holds this trial's config;
    anything else (killed before its first checkpoint, a damaged config.yaml) starts afresh."""
    if not run.has_checkpoint():
        return False
    try:
        return load_config(run.config_path) == config
    except ConfigError:
        return False


def run_one(trial: Trial, run: RunFolder, observer: SweepObserver, outcome: SweepOutcome,
            stop_rule: StopRule | None = None) -> None:
    from dropcli import train as training

    observer.trial_started(trial)
    try:
        resume = resumable_with(run, trial.config)
        if not resume:
            run.start_fresh(trial.config)
        experiment = training.prepare(trial.config)
        training.run_experiment(experiment, run, observer.epoch, resume=resume, stop_rule=stop_rule)
    except training.TrainingInterrupted:
        raise
    except Exception as error:  # TrainingFailed, or anything before it: recorded, and the sweep goes on
        cause = error.error if isinstance(error, training.TrainingFailed) else error
        message = training.failure_reason(cause)
        if not isinstance(error, training.TrainingFailed) and run.path.is_dir():
            details = None if training.known_failure(cause) else traceback.format_exc()
            training.mark_ended(run, "failed", message, details)
        outcome.failed[trial.name] = message
        observer.trial_ended(trial, "failed", message)
        if training.disk_full(cause):
            raise DiskFull(message) from None
        return
    finally:
        run.release()
    outcome.trained.append(trial.name)
    observer.trial_ended(trial, "completed")


def run_group(claimed: list[tuple[Trial, RunFolder]], observer: SweepObserver, outcome: SweepOutcome,
              resume: bool = False, stop_rule: StopRule | None = None) -> None:
    """Train a group as one stacked model (resume: continue it, stacked, from its members' checkpoints);
    statuses are kept honest for every member, as for a lone run."""
    from dropcli import batched
    from dropcli import train as training

    if resume:  # a member whose folder no longer holds its config starts afresh, alone
        for trial, run in [(t, r) for t, r in claimed if not resumable_with(r, t.config)]:
            run_one(trial, run, observer, outcome, stop_rule)
        claimed = [(t, r) for t, r in claimed if resumable_with(r, t.config)]
        if not claimed:
            return
    group, runs = [trial for trial, _ in claimed], [run for _, run in claimed]
    observer.group_started(group)
    message, full = "the group ended before this trial completed", False
    emptied: set[Path] = set()  # folders this process emptied: a summary in them is one it wrote
    try:
        if not resume:
            for trial, run in claimed:
                run.start_fresh(trial.config)
                emptied.add(run.path)
        batched.train_group([t.config for t in group], runs, observer.epoch, resume=resume, stop_rule=stop_rule)
    except KeyboardInterrupt as stop:
        for run in runs:
            training.mark_ended(run, "interrupted", interruption_reason(stop))
        raise training.TrainingInterrupted(runs[0], isinstance(stop, Terminated)) from None
    except SystemExit:  # submitit's requeue on preemption or time limit: the rerun resumes the checkpoints
        for run in runs:
            training.mark_ended(run, "interrupted", training.REQUEUED)
        raise
    except Exception as error:
        message, full = training.failure_reason(error), training.disk_full(error)
        trace = None if training.known_failure(error) else traceback.format_exc()
        for run in runs:
            training.mark_ended(run, "failed", message, trace)  # completed ones stay completed
    finally:
        for run in runs:
            run.release()
    for trial, run in claimed:
        # a summary this process wrote, under the trial's lock, says the truth; any other (a resumed folder, one
        # a failed start never emptied) is checked in full: it may say completed over missing files
        summary = run.read_summary()
        status = recorded_status(summary) or "unknown"
        if status == "completed" and run.path not in emptied:
            status = run_status(run.path)
        if status == "completed":
            outcome.trained.append(trial.name)
        else:
            outcome.failed[trial.name] = str(summary.get("error") or message)
        observer.trial_ended(trial, status, outcome.failed.get(trial.name))
    if full:
        raise DiskFull(message)


def check_resources(trials: list[Trial]) -> int:
    """Fail fast, before anything is written, on a device, dataset or model that the trials cannot use:
    one full `prepare` for each distinct (device, dataset, model). Returns the most memory one trial of a
    stacked group may hold (trial_bytes), for `--batch auto`."""
    from dropcli import train as training

    checked: dict[str, int] = {}
    for trial in trials:
        key = repr((trial.config.device, trial.config.dataset, trial.config.model))
        if key not in checked:
            checked[key] = trial_bytes(training.prepare(trial.config))
    return max(checked.values(), default=0)


def trial_bytes(experiment) -> int:
    """A rough upper bound of what one trial of a stacked group holds on its device: its data split and its
    model with gradients and Adam's two moments, once alone and once in the stack (x2)."""
    splits = experiment.splits
    data = sum(t.numel() * t.element_size() for t in (splits.x_train, splits.y_train, splits.x_val, splits.y_val))
    parameters = sum(p.numel() * p.element_size() for p in experiment.model.parameters())
    return 2 * (data + 4 * parameters)


# ---------------------------------------------------------------------------------------------------------
# Results


def summarize(trials: list[Trial], sweep_dir: Path):
    """The report's per-setting table (mean ± std over seeds, best by validation accuracy) for this sweep."""
    import pandas as pd

    from dropcli.results import runs_table, settings_summary, varying_settings

    table = runs_table([load_run(sweep_dir / t.name) for t in trials], sweep_dir)
    if not (table["status"] == "completed").any():
        return pd.DataFrame()
    return settings_summary(table, varying_settings(table))
