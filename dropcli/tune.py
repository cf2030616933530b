"""dropcli tune: each regularizer at its tuned best, every one with the same budget, then compared over seeds.

    dropcli tune configs/quickstart.yaml --regularizers dropout,l2,early_stopping,augmentation --trials 24

One Optuna study per regularizer (or combination, `dropout+l2`): TPE sampler, seeded; median pruning on the
per-epoch validation metric. The studies live in the tune folder (Optuna's JournalStorage, a plain file),
so running the same command again resumes: finished trials are never trained again, and the trials that
were training when the process died continue from their checkpoints. Trials are ordinary run folders,
trained by the sweep engine (sweep.run_sweep: stacked in groups where the model allows), a batch of them
asked of the sampler at a time. Then each regularizer's best trial (by the validation metric) is retrained
over fresh seeds beside the baseline (the base config: no regularizer) and every pair is compared on test
accuracy with the report's paired statistics (stats.compare, Holm-adjusted across the pairs).

    runs/<name>-tune-<fingerprint>/
      tune.json              what was asked (base config, regularizers, budget, seeds, metric); resume checks it
      optuna.journal         the studies
      dropout/trial-0000/    one run folder per trial; a pruned one has stop_reason "pruned: ..."
      best/dropout_seed-1/   the best settings (and the baseline, none_seed-N) retrained over seeds
      comparison.md, comparison.csv

Pruned and failed trials count against the budget (the same for every regularizer) and are never the
best; they are left out of the comparison, which uses the retrained runs only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dropcli import locks, stats
from dropcli.config import Config, ConfigError, ExecutorConfig, set_dotted, validate_config
from dropcli.files import read_regular, write_atomically
from dropcli.regularizers import build_regularizers, search_spaces
from dropcli.run_reading import PRUNED, is_number, load_run, run_status
from dropcli.runs import RunFolder
from dropcli.schema import without_new_defaults
from dropcli.sweep import MAX_TRIALS, SweepObserver, SweepOutcome, Trial, plan_groups, run_sweep
from dropcli.yamlsafe import brief

log = logging.getLogger("dropcli")
JOURNAL = "optuna.journal"
RECORD = "tune.json"
MAX_RECORD_BYTES = 1 << 20  # tune.json: the base config and the search spaces, a few KB
# What each regularizer's study searches, as each regularizer declares it (its module's search_space)
SEARCH_SPACES = search_spaces()
METRICS: dict[str, Literal["minimize", "maximize"]] = {"val_loss": "minimize", "val_acc": "maximize"}
BASELINE = "none"
SEED_LIMIT = 2**32  # config.py: seeds are below it
# median pruning: no trial is pruned before this many trials of its study completed, nor before 1/5 of its epochs
PRUNE_AFTER_TRIALS = 5
REGULARIZERS_FORM = f"a comma list of {', '.join(SEARCH_SPACES)}, or combinations joined by + (e.g. dropout+l2)"


class TuneError(ConfigError):
    """The tune's options are wrong, or its folder belongs to another tune (exit code 2)."""


def parse_regularizers(text: str) -> list[str]:
    """`dropout,l2,dropout+l2` → the studies, each a +-joined set of known regularizers, in order given."""
    studies: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        parts = [p.strip() for p in item.split("+")]
        unknown = [p for p in parts if p not in SEARCH_SPACES]
        if item == BASELINE:
            raise TuneError(f"--regularizers {BASELINE}: there is nothing to tune; the baseline (no regularizer) is "
                            f"always retrained and compared")
        if not item or unknown:
            what = brief(unknown[0]) if unknown and unknown[0] else "an empty item"
            raise TuneError(f"--regularizers {brief(text)}: {what} is not a regularizer tune knows; expected "
                            f"{REGULARIZERS_FORM}")
        name = "+".join(parts)
        if name not in studies:
            studies.append(name)
    return studies


def search_space(study: str) -> dict[str, tuple[Any, ...]]:
    return {key: space for part in study.split("+") for key, space in SEARCH_SPACES[part].items()}


@dataclass
class TuneSpec:
    base: dict[str, Any]  # the resolved base config, regularizers off
    regularizers: list[str]  # the studies
    trials: int  # budget per study
    seeds: list[int]  # the retraining seeds (not the tuning seed, base["seed"])
    metric: str = "val_loss"

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "regularizers": self.regularizers, "trials": self.trials, "seeds": self.seeds,
                "metric": self.metric, "search_spaces": {s: search_space(s) for s in self.regularizers}}

    def fingerprint(self) -> str:
        # keys added since (at their defaults) leave it as it was: a tune folder of an earlier release resumes
        base = without_new_defaults(Config, {k: v for k, v in self.base.items() if k not in ("threads", "executor")})
        what = {**self.to_dict(), "base": base}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return METRICS[self.metric]

    def config(self, settings: dict[str, Any]) -> Config:
        raw = json.loads(json.dumps(self.base))
        for key, value in settings.items():
            set_dotted(raw, key, value)
        return validate_config(raw)


def build_spec(base: Config, regularizers: str, trials: int, seeds: int, metric: str) -> TuneSpec:
    if metric not in METRICS:
        raise TuneError(f"--metric {brief(metric)}: expected one of {', '.join(METRICS)}")
    if trials < 1:
        raise TuneError(f"--trials {trials}: expected a budget of at least 1 trial per regularizer")
    if trials > MAX_TRIALS or seeds > MAX_TRIALS:  # a typo must not mean a tune that never ends, as in a sweep
        raise TuneError(f"--{'trials' if trials > MAX_TRIALS else 'seeds'} {max(trials, seeds):,}: at most "
                        f"{MAX_TRIALS:,} (trials per regularizer; seeds of the comparison)")
    if seeds < 2:
        raise TuneError(f"--seeds {seeds}: the comparison needs at least 2 seeds (5 or more make it worth reading)")
    if base.seed + seeds >= SEED_LIMIT:  # the retraining seeds follow the tuning seed
        raise TuneError(f"seed {base.seed}: the comparison retrains over the {seeds} seeds after it, and seeds end "
                        f"at {SEED_LIMIT - 1}; choose a seed of at most {SEED_LIMIT - 1 - seeds}")
    switched_on = [r.describe() for r in build_regularizers(base.regularizer) if r.describe()]
    if switched_on:
        raise TuneError(f"the base config switches on {', '.join(switched_on)}: tune compares regularizers against "
                        f"none, so the base config must have none (--set regularizer=none)")
    settings = {key: value for key, value in base.to_dict().items() if key != "executor"}
    first = base.seed + 1  # fresh seeds: the tuning seed chose the settings, so it would flatter them
    return TuneSpec(settings, parse_regularizers(regularizers), trials, list(range(first, first + seeds)), metric)


def default_tune_dir(runs_dir: Path, spec: TuneSpec) -> Path:
    return runs_dir / f"{spec.base['name']}-tune-{spec.fingerprint()}"


def open_tune_dir(path: Path, spec: TuneSpec, command: str) -> None:
    """Create the tune folder, or check that an existing one was made by this very tune."""
    if path.exists() and not path.is_dir():
        raise TuneError(f"{path}: exists and is not a folder; choose another --out")
    record = path / RECORD
    if record.is_file():
        try:  # a planted one may be huge, nested deep, or hold numbers of 5,000 digits: then it is not ours
            existing = json.loads(read_regular(record, MAX_RECORD_BYTES)).get("fingerprint")
        except (OSError, ValueError, RecursionError, AttributeError):
            existing = None
        if existing != spec.fingerprint():
            raise TuneError(f"{path}: this folder holds a different tune (other base config, regularizers, budget, "
                            f"seeds or metric); choose another --out, or rerun that tune's own command")
        return
    if path.is_dir() and any(path.iterdir()):
        raise TuneError(f"{path}: exists and is not a tune folder (no {RECORD}); choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    content = {"fingerprint": spec.fingerprint(), "created_at": datetime.now().isoformat(timespec="seconds"),
               "command": command, **spec.to_dict()}
    write_atomically(record, json.dumps(content, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------
# The studies


def storage(tune_dir: Path):
    """The studies' journal, replayed. One that cannot be (not UTF-8, not JSON, not Optuna's entries: a shared
    folder's file may be anyone's) is a TuneError naming it, and is left as it is."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = tune_dir / JOURNAL
    lock = JournalFileSymlinkLock(str(path))  # Optuna's own default: every process of the tune takes the same one
    try:
        mend_journal_end(path, lock)
        return JournalStorage(JournalFileBackend(str(path), lock))
    except (OSError, TuneError):
        raise
    except Exception as error:
        what = ("it is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else "a line in it is not JSON"
                if isinstance(error, ValueError) else "it holds entries Optuna does not know")
        raise TuneError(f"{path}: the studies' journal is corrupted ({what}); it is left as it is: move "
                        f"{tune_dir} away, or choose another --out (the studies then start afresh)") from None


def mend_journal_end(path: Path, lock: Any) -> None:
    """Cut off a last line that has no newline: what a process killed while appending to the journal leaves
    (Optuna writes each entry with its newline in one write). Optuna skips such a line when it reads, but
    appends its next entry onto it, and the joined line makes the whole journal unreadable; for the same reason
    a last whole line that is not JSON (a ValueError here) is corruption, not a kill. The cut is made under
    Optuna's lock, so that no living process is half-way through an append."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return  # a new tune: Optuna creates it
    if not stat.S_ISREG(info.st_mode):  # a planted link would have us cut another file; a pipe, block forever
        raise TuneError(f"{path}: not a regular file (a link, a folder, a pipe?); move it away, or choose "
                        f"another --out")
    with open(os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "r+b") as handle:
        content = handle.read()
        if content and not content.endswith(b"\n"):
            lock.acquire()
            try:
                handle.seek(0)
                content = handle.read()
                kept = content.rfind(b"\n") + 1
                if kept < len(content):
                    handle.truncate(kept)
                    log.warning(f"{path}: cut off its last line, {len(content) - kept} bytes without an end: a "
                                f"process was killed while writing it; the studies resume from the line before")
                    content = content[:kept]
            finally:
                lock.release()
    last = content[content.rfind(b"\n", 0, -1) + 1:]
    if last:
        json.loads(last)


def open_study(tune_dir: Path, spec: TuneSpec, name: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a seed of its own per study: the same command asks the same settings; studies do not mirror each other
    seed = int(hashlib.sha256(f"{spec.base['seed']}:{name}".encode()).hexdigest()[:8], 16)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(1, spec.trials // 3)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS,
                                         n_warmup_steps=max(1, spec.base["epochs"] // 5))
    study = optuna.create_study(study_name=name, storage=storage(tune_dir), direction=spec.direction,
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if study.direction.name.lower() != spec.direction:  # Optuna keeps the journal's direction, silently
        raise TuneError(f"{tune_dir / JOURNAL}: the study {name} there is to {study.direction.name.lower()} "
                        f"{spec.metric}, this tune's to {spec.direction}; the journal was edited or belongs to "
                        f"another tune: move it away, or choose another --out")
    return study


def outside_space(trial: Any, study: str) -> str | None:
    """Why a journal's trial is none this tune asked for (parameters it does not search, a value outside its
    range: an edited journal), or None. Such a trial is never trained, and never the best."""
    expected = distributions(study)
    if set(trial.params) != set(expected):
        return (f"its parameters ({brief(sorted(trial.params))}) are not those this tune searches "
                f"({', '.join(expected)})")
    for key, value in trial.params.items():
        try:
            inside = expected[key]._contains(expected[key].to_internal_repr(value))
        except Exception:  # a value of another type altogether
            inside = False
        if not inside:
            return f"{key} = {brief(value)} is outside the search space"
    return None


def distributions(study: str) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    def distribution(kind: str, *bounds: Any) -> Any:
        if kind == "choice":
            return CategoricalDistribution(bounds[0])
        low, high, log = bounds
        return IntDistribution(int(low), int(high)) if kind == "int" else FloatDistribution(low, high, log=log)

    return {key: distribution(*space) for key, space in search_space(study).items()}


def trial_folder_name(number: int) -> str:
    return f"trial-{number:04d}"


class MedianPruning:
    """The stop rule (train.StopRule) a study's trials train under: each epoch's validation metric is reported
    to the trial, and the study's median pruner may end it. Built from names and paths only (picklable)."""

    def __init__(self, tune_dir: Path, spec: TuneSpec, study: str, numbers: dict[str, int]):
        # absolute: an array task may start elsewhere, and opens the journal from its own process
        self.tune_dir, self.spec, self.study_name, self.numbers = tune_dir.absolute(), spec, study, numbers
        self.trials: dict[int, Any] = {}
        self.reported: dict[int, set[int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "trials": {}, "reported": {}}

    def __call__(self, run: RunFolder, row: dict[str, float]) -> str | None:
        import optuna

        number = self.numbers.get(run.path.name)
        if number is None:
            return None
        if number not in self.trials:
            study = open_study(self.tune_dir, self.spec, self.study_name)
            frozen = study.get_trials(deepcopy=False)[number]
            self.trials[number] = optuna.trial.Trial(study, frozen._trial_id)
            self.reported[number] = set(frozen.intermediate_values)  # a resumed trial reported these already
        trial, epoch, value = self.trials[number], int(row["epoch"]), row[self.spec.metric]
        if epoch not in self.reported[number]:
            trial.report(value, epoch)
            self.reported[number].add(epoch)
        if trial.should_prune():
            return (f"{PRUNED}: {self.spec.metric} {value:.4g} at epoch {epoch} is worse than the median of the "
                    f"study's completed trials there")
        return None


@dataclass
class StudyResult:
    name: str
    completed: int = 0
    pruned: int = 0
    failed: int = 0
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)


def run_study(tune_dir: Path, spec: TuneSpec, name: str, batch: int, observer: SweepObserver | None = None,
              executor: ExecutorConfig | None = None) -> StudyResult:
    """Ask, train and tell until the study holds its budget of finished trials."""
    from optuna.trial import TrialState

    study = open_study(tune_dir, spec, name)
    folder = tune_dir / name
    while True:
        frozen = study.get_trials(deepcopy=False)
        unfinished = [t for t in frozen if t.state == TrialState.RUNNING]  # a batch the last process left
        if not unfinished:
            left = spec.trials - sum(not outside_space(t, name) for t in frozen)  # a planted trial uses no budget
            if left <= 0:
                break
            for _ in range(min(batch, left)):
                study.ask(distributions(name))
            continue
        foreign = {t.number: why for t in unfinished if (why := outside_space(t, name))}
        for number, why in foreign.items():
            log.warning(f"{name}: trial {number} of {JOURNAL} is left out: {why}")
            study.tell(number, state=TrialState.FAIL)
        unfinished = [t for t in unfinished if t.number not in foreign]
        if not unfinished:
            continue
        finished = len(frozen) - len(unfinished)
        (observer or SweepObserver()).note(
            f"{name}: trials {unfinished[0].number + 1}-{unfinished[-1].number + 1} of {spec.trials} "
            f"({finished} finished before)")
        trials = [Trial(trial_folder_name(t.number), {**t.params, "seed": spec.base["seed"]},
                        spec.config({**t.params, "seed": spec.base["seed"]})) for t in unfinished]
        rule = MedianPruning(tune_dir, spec, name, {trial_folder_name(t.number): t.number for t in unfinished})
        outcome = train_trials(trials, folder, batch, executor, observer, rule)
        if outcome.held:
            raise TuneError(f"{folder}: another process is training trials of this study "
                            f"({next(iter(outcome.held.values()))}); let it finish, or stop it first")
        if outcome.stopped:
            raise TuneError(stopped_message(outcome.stopped, folder))
        for trial in unfinished:
            study.tell(trial.number, **verdict(folder / trial_folder_name(trial.number), spec.metric))
    return study_result(study, name)


def train_trials(trials: list[Trial], folder: Path, batch: int, executor: ExecutorConfig | None,
                 observer: SweepObserver | None = None, stop_rule: MedianPruning | None = None) -> SweepOutcome:
    """Train trials through the sweep's engine: here (run_sweep), or as one submitit job array of their
    stacked groups (Slurm, submitit-local), waited for: the sampler needs their results before it asks again."""
    if executor is None or executor.name == "local":
        return run_sweep(trials, folder, observer, batch=batch, stop_rule=stop_rule)
    from dropcli import executors
    from dropcli.launch import SubmissionFailed

    folder = folder.absolute()
    groups = plan_groups(trials, folder, batch).groups
    if not groups:
        return SweepOutcome(skipped=[t.name for t in trials])
    submission = executors.plan_submission(executor, folder, groups)
    count = len(groups)
    try:
        jobs = executors.submit_array(submission, folder, executors.TrialsTask(), [str(folder)] * count, groups,
                                      [batch] * count, [stop_rule] * count)
    except Exception as error:  # sbatch refused: its words, in one line
        raise SubmissionFailed(" ".join(str(error).split())) from None
    outcome = SweepOutcome()
    for job, group in zip(jobs, groups):
        try:
            result = executors.result_of(job, folder)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # the task died without a result; its trials' folders say how far they got
            reason = str(error).splitlines()[-1] if str(error) else type(error).__name__
            outcome.failed.update({t.name: reason for t in group})
            continue
        outcome.trained += result["trained"]
        outcome.skipped += result["skipped"]
        outcome.failed.update(result["failed"])
        outcome.held.update(result["held"])
        outcome.stopped = outcome.stopped or result["stopped"]
    return outcome


def stopped_message(stopped: str, folder: Path) -> str:
    """The sweep engine stopped (a full disk): what it said names the file; rerunning resumes."""
    return f"{folder}: {stopped}; the tune stopped there: free some space and rerun the same command to resume"


def verdict(run_path: Path, metric: str) -> dict[str, Any]:
    """What to tell the study of a trained trial: its validation metric, pruned, or failed."""
    from optuna.trial import TrialState

    if run_status(run_path) != "completed":
        return {"state": TrialState.FAIL}
    summary = RunFolder(run_path).read_summary()
    if str(summary.get("stop_reason", "")).startswith(PRUNED):
        return {"state": TrialState.PRUNED}
    value = summary.get(metric)
    if not is_number(value):
        return {"state": TrialState.FAIL}
    return {"values": float(value)}


def study_result(study: Any, name: str) -> StudyResult:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    result = StudyResult(name, completed=sum(t.state == TrialState.COMPLETE for t in trials),
                         pruned=sum(t.state == TrialState.PRUNED for t in trials),
                         failed=sum(t.state == TrialState.FAIL for t in trials))
    completed = [t for t in trials if t.state == TrialState.COMPLETE and is_number(t.value)]
    chosen = [t for t in completed if not outside_space(t, name)]
    for trial in completed:
        if trial not in chosen:
            log.warning(f"{name}: trial {trial.number} of {JOURNAL} is never the best: {outside_space(trial, name)}")
    if chosen:
        pick = min if study.direction.name == "MINIMIZE" else max
        best = pick(chosen, key=lambda t: t.value)
        result.best_number, result.best_value, result.best_params = best.number, best.value, dict(best.params)
    return result


# ---------------------------------------------------------------------------------------------------------
# The retraining over seeds, and the comparison


def retrain_trials(spec: TuneSpec, results: list[StudyResult]) -> list[Trial]:
    """The baseline and each study's best setting, over the retraining seeds."""
    chosen: list[tuple[str, dict[str, Any]]] = [(BASELINE, {})]
    chosen += [(r.name, r.best_params) for r in results if r.best_number is not None]
    return [Trial(f"{name}_seed-{seed}", {**params, "seed": seed}, spec.config({**params, "seed": seed}))
            for name, params in chosen for seed in spec.seeds]


def compare_tuned(best_dir: Path, spec: TuneSpec, results: list[StudyResult], metric: str = "test_acc"):
    """One row per pair of (tuned) regularizers, baseline included: the paired difference on `metric` over the
    retraining seeds, Holm-adjusted across all pairs."""
    import pandas as pd

    names = [BASELINE] + [r.name for r in results if r.best_number is not None]
    values: dict[str, dict[int, float]] = {}
    for name in names:
        values[name] = {}
        for seed in spec.seeds:
            run = load_run(best_dir / f"{name}_seed-{seed}")
            if run.status == "completed":
                values[name][seed] = float(run.summary[metric])
    pairs = [(a, b) for a, b in itertools.combinations(names, 2) if values[a] and values[b]]
    # each tuned regularizer against the baseline, and the tuned ones against each other (later minus earlier)
    differences = stats.holm([stats.compare(values[b], values[a]) for a, b in pairs])
    rows = [{"setting": b, "against": a, f"{metric}_diff": d.mean, f"{metric}_diff_low": d.low,
             f"{metric}_diff_high": d.high, "p_value": d.p_value, "p_holm": d.p_adjusted, "n_pairs": d.n,
             "no_spread": d.constant, "difference": d} for (a, b), d in zip(pairs, differences)]
    return pd.DataFrame(rows), values


@dataclass
class TuneOutcome:
    studies: list[StudyResult]
    comparison: Any  # pandas DataFrame: compare_tuned
    values: dict[str, dict[int, float]]  # study → seed → test accuracy of the retrained best
    failed_retrains: dict[str, str]


def tune(spec: TuneSpec, tune_dir: Path, batch: int, observer: SweepObserver | None = None,
         executor: ExecutorConfig | None = None) -> TuneOutcome:
    """Every study to its budget, then the retraining and the comparison (comparison.md / .csv). `executor`:
    where trials train (default: here)."""
    try:  # one process per tune folder, in every phase: the studies, the retraining and the comparison
        owner = locks.acquire(tune_dir)
    except locks.FolderBusy as busy:
        raise TuneError(f"{tune_dir}: another tune is running in this folder ({busy.holder}); let it finish, or "
                        f"stop it first") from None
    with owner:
        return tune_locked(spec, tune_dir, batch, observer, executor)


def tune_locked(spec: TuneSpec, tune_dir: Path, batch: int, observer: SweepObserver | None,
                executor: ExecutorConfig | None) -> TuneOutcome:
    results = [run_study(tune_dir, spec, name, batch, observer, executor) for name in spec.regularizers]
    best_dir = tune_dir / "best"
    (observer or SweepObserver()).note(f"retraining the best setting of each and the baseline over seeds "
                                       f"{', '.join(map(str, spec.seeds))}")
    outcome = train_trials(retrain_trials(spec, results), best_dir, batch, executor, observer)
    if outcome.stopped:
        raise TuneError(stopped_message(outcome.stopped, best_dir))
    comparison, values = compare_tuned(best_dir, spec, results)
    done = TuneOutcome(results, comparison, values, outcome.failed)
    from dropcli.results import spreadsheet_csv

    write_atomically(tune_dir / "comparison.csv",
                     spreadsheet_csv(comparison.drop(columns=["difference"], errors="ignore")))
    write_atomically(tune_dir / "comparison.md", comparison_markdown(spec, done))
    return done


def describe_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key.removeprefix('regularizer.')} = {value:.3g}" if isinstance(value, float)
                     else f"{key.removeprefix('regularizer.')} = {value}" for key, value in params.items()) or "—"


def label(name: str) -> str:
    return name if name == BASELINE else f"{name} (tuned)"


def pair_sentences(outcome: TuneOutcome) -> list[str]:
    """Every compared pair in words (a winner only where the interval excludes zero)."""
    return [stats.sentence(label(row.setting), label(row.against), row.difference)  # type: ignore[arg-type]
            for row in outcome.comparison.itertuples()]


def comparison_markdown(spec: TuneSpec, outcome: TuneOutcome) -> str:
    """The tuned comparison in words: each study's budget and best setting, test accuracy over the seeds, and
    every pair with its interval (a winner only where the interval excludes zero)."""
    lines = [f"# Regularizers tuned with the same budget: {spec.base['name']}", "",
             f"Each regularizer had {spec.trials} trials (Optuna TPE, median pruning on the per-epoch "
             f"{spec.metric}; tuned on seed {spec.base['seed']}), chosen by {spec.metric}; the best setting of "
             f"each was retrained over seeds {', '.join(map(str, spec.seeds))} beside the baseline (no "
             f"regularizer). Pruned and failed trials count against the budget and are never chosen.", "",
             f"| regularizer | trials: completed / pruned / failed | best setting | best {spec.metric} (tuning) | "
             f"test acc over seeds (mean, 95 % CI) |", "| --- | --- | --- | --- | --- |"]
    rows = [(BASELINE, "—", "—", "—")] + [
        (r.name, f"{r.completed} / {r.pruned} / {r.failed}", describe_params(r.best_params),
         f"{r.best_value:.4f}" if r.best_value is not None else "—") for r in outcome.studies]
    for name, budget, setting, best in rows:
        accuracies = list(outcome.values.get(name, {}).values())
        if accuracies:
            mean, half = sum(accuracies) / len(accuracies), stats.half_width(accuracies)
            cell = f"{100 * mean:.1f} % ± {100 * half:.1f} ({len(accuracies)} seeds)" if not math.isnan(half) \
                else f"{100 * mean:.1f} % ({len(accuracies)} seed)"
        else:
            cell = "no completed run"
        lines.append(f"| {name} | {budget} | {setting} | {best} | {cell} |")
    lines += ["", "Every pair on test accuracy (the later one minus the earlier, paired by seed; p-values "
                  "Holm-adjusted across all pairs):", ""]
    lines += [f"- {sentence}" for sentence in pair_sentences(outcome)]
    if outcome.failed_retrains:
        lines += ["", "Retrained runs that failed (left out): " + ", ".join(sorted(outcome.failed_retrains)) + "."]
    return "\n".join(lines) + "\n"
