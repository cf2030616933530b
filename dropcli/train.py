"""The training loop: experiment (experiment.py) → epochs → run folder.

`run_epochs` is the one loop, for a lone run and for a stacked group (batched.py) alike; `train` runs it
for one experiment, records it in its run folder and keeps its status honest (`run_experiment`).
"""

from __future__ import annotations

import errno
import logging
import math
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import dropcli
from dropcli.checkpoint import (
    capture,
    changed_settings,
    load_checkpoint,
    remove_checkpoints,
    restore,
    save_atomically,
    save_checkpoint,
)
from dropcli.config import Config, ConfigError
from dropcli.data import shuffled_batches
from dropcli.evaluation import expected_calibration_error, flat_mc_summary, mc_dropout_report
from dropcli.experiment import OPTIMIZERS, Experiment, build_optimizer, prepare, resolve_device  # noqa: F401 (used as training.*)
from dropcli.models.build import count_parameters
from dropcli.regularizers import Regularizer, changes_weights_after_evaluation
from dropcli.run_files import read_metrics_tolerantly
from dropcli.runs import RunFolder
from dropcli.signals import Terminated, interruption_reason

log = logging.getLogger("dropcli")

REQUEUED = "stopped by the job's scheduler (preempted or out of time); the requeued task resumes it"
EVAL_CHUNK = 4096  # examples per forward pass when evaluating; bounds memory on CIFAR-sized splits
# A checkpoint costs ~2-4 ms (1 MB for the quickstart MLP and its Adam state), 10-20% of a quickstart epoch.
# So one is written at the end of an epoch only when this long has passed since the last (a stacked group:
# this long per running trial; a lone run also after its first epoch; every trial when training decides
# to stop it): a kill loses at most this much work, and a resume is exact whichever epoch it starts from.
CHECKPOINT_INTERVAL_S = 1.0

EpochCallback = Callable[[dict[str, Any]], None]  # a metrics row (+ whose, in a group)
# A rule from outside the trial (tune's pruner): shown each recorded row, it may end the trial with a reason
StopRule = Callable[[RunFolder, dict[str, float]], "str | None"]


class TrainingFailed(Exception):
    """Training raised unexpectedly; the run folder records the error and is marked failed."""

    def __init__(self, run: RunFolder, error: BaseException):
        self.run, self.error = run, error
        super().__init__(f"{type(error).__name__}: {error}")


class Diverged(Exception):
    """A loss became NaN or infinite: nothing after it can be trusted, so the run ends failed."""

    def __init__(self, epoch: int, row: dict[str, float]):
        bad = [key for key in ("train_loss", "val_loss") if not math.isfinite(row[key])]
        super().__init__(f"epoch {epoch}: {' and '.join(bad)} became {row[bad[0]]} (training diverged; a lower "
                         f"optimizer.lr or a smaller regularizer coefficient may help)")


def disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


class TrainingInterrupted(Exception):
    def __init__(self, run: RunFolder, terminated: bool = False):
        self.run, self.terminated = run, terminated  # terminated: by SIGTERM, not Ctrl-C
        super().__init__(f"interrupted; what was done is in {run.path}")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             probabilities: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy in eval mode (dropout off). Returns device tensors: no sync here. With
    `probabilities`, each chunk's class probabilities are appended to it (the same pass)."""
    model.eval()
    return evaluate_logits(model, x, y, probabilities)


@torch.no_grad()
def evaluate_logits(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                    probabilities: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`evaluate` for any function from inputs to logits [B, classes] (a lone model in eval mode, one trial
    of a stacked model), in chunks of EVAL_CHUNK rows."""
    # float64 sums: 470 of 1000 correct reads 0.47, not 0.4699999988
    loss_sum = x.new_zeros((), dtype=torch.float64)
    correct = x.new_zeros((), dtype=torch.float64)
    for start in range(0, len(y), EVAL_CHUNK):
        logits = forward(x[start:start + EVAL_CHUNK])
        target = y[start:start + EVAL_CHUNK]
        loss_sum += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
        if probabilities is not None:
            probabilities.append(F.softmax(logits, dim=1))
    return loss_sum / len(y), correct / len(y)


def train_one_epoch(exp: Experiment) -> None:
    exp.model.train()
    augmenters = [regularizer for regularizer in exp.regularizers if regularizer.augments]
    for x, y in shuffled_batches(exp.splits.x_train, exp.splits.y_train, exp.config.optimizer.batch_size,
                                 exp.batch_order):
        for augmenter in augmenters:  # training batches only: evaluate() never augments
            x = augmenter.augment(x)
        take_step(exp.model, training_loss(exp.regularizers, exp.model(x), y), exp.regularizers, exp.optimizer)


def training_loss(regularizers: list[Regularizer], logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss a training step minimizes, before penalties: the first regularizer that supplies one (label
    smoothing), else cross-entropy (a lone model's mean; a stacked group's per-trial means, summed: the gradient
    of each trial's parameters is its own loss's)."""
    for regularizer in regularizers:
        loss = regularizer.loss(logits, y)
        if loss is not None:
            return loss
    if logits.ndim == 3:  # a stacked group: [T, classes, B]
        return F.cross_entropy(logits, y, reduction="none").mean(1).sum()
    return F.cross_entropy(logits, y)


def take_step(model: nn.Module, loss: torch.Tensor, regularizers: list[Regularizer],
              optimizer: torch.optim.Optimizer) -> None:
    """One update, for a lone model or a stacked one alike: the regularizers' penalties join the loss,
    autograd takes the gradient, the optimizer steps, the regularizers' constraints act."""
    for regularizer in regularizers:
        penalty = regularizer.penalty(model)
        if penalty is not None:
            loss = loss + penalty
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    for regularizer in regularizers:
        regularizer.after_step(model)


# ---------------------------------------------------------------------------------------------------------
# The one epoch loop. A lone run and a stacked group of trials (batched.py) differ only in their stepper:
# how an epoch trains, how the trials are evaluated and how one trial's state is read out. Epochs, metric
# rows, stop reasons, divergence, checkpoint pacing, progress callbacks and finishing live here, once.


@dataclass
class Member:
    """One trial the loop trains: its experiment (data, lone model, regularizers), its run folder, and what
    it has recorded so far."""

    experiment: Experiment
    run: RunFolder
    summary: dict[str, Any]
    rows: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None  # set once training decided this trial is done
    failure: Exception | None = None  # set when it ended failed (a diverged loss); the others go on


class Stepper:
    """How one epoch trains and how the trials are evaluated; `run_epochs` owns everything else."""

    members: list[Member]

    def lr(self) -> float:
        raise NotImplementedError

    def train_epoch(self, epoch: int) -> None:
        """One shuffled pass over each running trial's training set (and the scheduler's step)."""
        raise NotImplementedError

    def evaluate(self) -> list[list[float]]:
        """Per trial [train_loss, train_acc, val_loss, val_acc], eval mode; the epoch's one device sync."""
        raise NotImplementedError

    def sync(self, index: int) -> None:
        """Make member `index`'s lone model hold its current weights (a stacked group copies them out)."""

    def stop(self, index: int) -> None:
        """Member `index` trains no more: its weights stay as they are."""

    def state(self, index: int, epoch: int, elapsed: float) -> dict[str, Any]:
        """Member `index`'s checkpoint, in the lone format (`train --resume` continues it alone)."""
        raise NotImplementedError


class LoneStepper(Stepper):
    def __init__(self, member: Member):
        self.members, self.exp = [member], member.experiment

    def lr(self) -> float:
        return self.exp.optimizer.param_groups[0]["lr"]

    def train_epoch(self, epoch: int) -> None:
        for regularizer in self.exp.regularizers:
            regularizer.start_of_epoch(epoch, self.exp.model)
        train_one_epoch(self.exp)
        self.exp.scheduler.step()

    def evaluate(self) -> list[list[float]]:
        # train metrics in eval mode too, so dropout noise does not hide the gap
        splits = self.exp.splits
        numbers = [*evaluate(self.exp.model, splits.x_train, splits.y_train),
                   *evaluate(self.exp.model, splits.x_val, splits.y_val)]
        return [torch.stack(numbers).tolist()]  # .tolist(): the one CPU-GPU sync point of the epoch

    def state(self, index: int, epoch: int, elapsed: float) -> dict[str, Any]:
        return capture(self.exp, epoch, self.members[index].stop_reason, elapsed)


def run_epochs(stepper: Stepper, epochs: int, on_epoch: EpochCallback | None = None, elapsed: float = 0.0,
               stop_rule: StopRule | None = None) -> float:
    """Train every member until `epochs` or until its regularizers (or `stop_rule`) stop it; returns each
    member's share of the wall time (resumed time included)."""
    members = stepper.members
    wall_start = time.perf_counter() - elapsed * len(members)
    share = lambda: (time.perf_counter() - wall_start) / len(members)  # noqa: E731
    last_checkpoint = time.perf_counter()
    for epoch in range(min(len(m.rows) for m in members) + 1, epochs + 1):
        if all(m.stop_reason is not None for m in members):
            break
        started = time.perf_counter()
        lr = stepper.lr()
        # --- forward / backward / update over one shuffled pass of each trial's training set
        stepper.train_epoch(epoch)
        # --- evaluate, then log each running trial's row
        numbers = stepper.evaluate()
        seconds = time.perf_counter() - started
        for index, member in enumerate(members):
            if member.stop_reason is not None:
                continue
            train_loss, train_acc, val_loss, val_acc = numbers[index]
            row = metrics_row(epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds)
            if any(reg.reads_weights_at_epoch_end for reg in member.experiment.regularizers):
                stepper.sync(index)
            for regularizer in member.experiment.regularizers:
                row.update(regularizer.epoch_metrics(member.experiment.model))
            member.run.append_metrics(row)
            member.rows.append(row)
            if not all(math.isfinite(row[key]) for key in ("train_loss", "val_loss")):
                member.stop_reason, member.failure = "diverged", Diverged(epoch, row)
                stepper.stop(index)
                continue
            # --- terminate: any of its regularizers may end this trial's training
            reasons = [r for r in (reg.end_of_epoch(epoch, row, member.experiment.model)
                                   for reg in member.experiment.regularizers) if r]
            if not reasons and stop_rule is not None:
                reasons = [r for r in [stop_rule(member.run, row)] if r]
            if reasons:
                member.stop_reason = reasons[0]
                stepper.stop(index)
                save_checkpoint(member.run, stepper.state(index, epoch, share()))  # its last: resume finishes it
        # --- checkpoint each running trial, as often per trial as a lone run: once per CHECKPOINT_INTERVAL_S x
        # running trials (a lone run also after its first epoch; a group, whose first epoch would cost a
        # checkpoint per trial, waits for its time: what a kill before then loses is retrained exactly)
        running = [index for index, member in enumerate(members) if member.stop_reason is None]
        first = epoch == 1 and len(members) == 1
        if running and (first or time.perf_counter() - last_checkpoint >= CHECKPOINT_INTERVAL_S * len(running)):
            for index in running:
                save_checkpoint(members[index].run, stepper.state(index, epoch, share()))
            last_checkpoint = time.perf_counter()
        if on_epoch is not None:  # one running trial's row, named; a group's also each metric over its trials
            shown = next((i for i in running), 0)
            group = {key: [members[i].rows[-1][key] for i in running] for key in ("val_loss", "val_acc", "gap_loss")}
            on_epoch({**members[shown].rows[-1], "run": members[shown].run.path.name, "running": len(running),
                      "group": group})
    return share()


def finish_members(stepper: Stepper, wall_time: float) -> list[dict[str, Any]]:
    """After the loop: each trial finished as a lone run (restored weights, the test evaluation, model.pt, the
    completed summary), or recorded failed. Returns the completed summaries."""
    summaries = []
    for index, member in enumerate(stepper.members):
        if member.failure is not None:
            mark_ended(member.run, "failed", str(member.failure))
            continue
        stepper.sync(index)
        member.summary["wall_time_s"] = wall_time
        summaries.append(finish_run(member.experiment, member.run, member.rows, member.stop_reason, member.summary))
    return summaries


def train(exp: Experiment, run: RunFolder, on_epoch: EpochCallback | None = None,
          resume: bool = False, stop_rule: StopRule | None = None) -> dict[str, Any]:
    """Train for `epochs` (or until a regularizer stops it), then evaluate once on the test split.
    With `resume`, continue from the run folder's last checkpoint as if never interrupted."""
    summary, rows, stop_reason, elapsed = begin(exp, run, resume)
    for row in rows:  # a resumed run shows the epochs it already has
        if on_epoch is not None:
            on_epoch(row)
    member = Member(exp, run, summary, rows, stop_reason)
    stepper = LoneStepper(member)
    wall_time = run_epochs(stepper, exp.config.epochs, on_epoch, elapsed, stop_rule)
    if member.failure is not None:
        raise member.failure  # run_experiment records it: the run ends failed, the caller is told
    return finish_members(stepper, wall_time)[0]


def metrics_row(epoch: int, train_loss: float, train_acc: float, val_loss: float, val_acc: float, lr: float,
                seconds: float) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
            "val_acc": val_acc, "gap_loss": val_loss - train_loss, "gap_acc": train_acc - val_acc,
            "lr": lr, "seconds": seconds}


def finish_run(exp: Experiment, run: RunFolder, rows: list[dict[str, float]], stop_reason: str | None,
               summary: dict[str, Any]) -> dict[str, Any]:
    """After the last epoch: regularizers may restore weights (early stopping), then the one test
    evaluation, model.pt and the completed summary. curves.png is drawn afterwards, off the training path,
    from what the folder holds (run_plots.draw_run_curves: by the CLI or after a sweep's group; `report` draws
    a missing one into its own folder)."""
    conclude_run(exp, run, rows, stop_reason, summary)
    return mark_completed(run, summary)


def conclude_run(exp: Experiment, run: RunFolder, rows: list[dict[str, float]], stop_reason: str | None,
                 summary: dict[str, Any]) -> None:
    """finish_run up to the completed summary: restored weights, model.pt, the test evaluation and what the
    run's picture is to say (its title) into `summary`."""
    facts: dict[str, Any] = {}
    for regularizer in exp.regularizers:
        facts.update(regularizer.finish(exp.model))
    # CPU tensors: model.pt loads with a plain torch.load on a machine without the GPU it was trained on
    weights = {key: value.detach().cpu() for key, value in exp.model.state_dict().items()}
    save_atomically({"state_dict": weights, "config": exp.config.to_dict()}, run.model_path)
    best_val_epoch = min(rows, key=lambda r: r["val_loss"])["epoch"]
    best_epoch = facts.get("restored_epoch") or best_val_epoch
    # the last row was evaluated on the weights the run ends with, unless a regularizer may have changed them
    unchanged = not any(changes_weights_after_evaluation(regularizer) for regularizer in exp.regularizers)
    summary.update(results_summary(rows, stop_reason or "max_epochs", best_epoch),
                   **evaluated_metrics(exp, rows[-1] if unchanged else None), **facts)
    if exp.config.evaluation.mc_samples:
        report = mc_dropout_report(exp.model, exp.splits.x_test, exp.splits.y_test, exp.config.evaluation.mc_samples,
                                   seed=exp.config.seed)
        summary.update(flat_mc_summary(report), mc_dropout=report)
    summary["title"] = curves_title(exp)


def mark_completed(run: RunFolder, summary: dict[str, Any]) -> dict[str, Any]:
    """The last step of a run, once curves.png is written: the summary says completed."""
    run.sync_metrics()  # every row on disk before the summary says so
    run.write_summary(summary)
    remove_checkpoints(run)  # completed: model.pt holds the weights, the checkpoints are spent
    return summary


def begin(exp: Experiment, run: RunFolder,
          resume: bool) -> tuple[dict[str, Any], list[dict[str, float]], str | None, float]:
    """The summary, the metrics rows so far, a stop already decided, and the seconds already spent."""
    summary = base_summary(exp, run)
    state = load_checkpoint(run) if resume else None
    if state is not None and state["device"] != str(exp.device):
        # generator states continue exactly only on the kind of device that wrote them
        raise ConfigError(f"--resume {run.path}: its checkpoint was written on {state['device']}, this run would "
                          f"be on {exp.device}; resume where it ran (its config.yaml says device: "
                          f"{exp.config.device})")
    refuse_changed_config(state, exp.config, run)
    if state is not None and len(read_metrics_tolerantly(run.metrics_path)) < state["epoch"]:
        log.warning(f"{run.path}: metrics.csv holds fewer epochs than its checkpoint ({state['epoch']}); the run "
                    f"restarts from its first epoch")
        state = None
    if resume:
        previous = run.read_summary()
        summary.update(started_at=previous.get("started_at", summary["started_at"]),
                       resumed=previous.get("resumed", 0) + 1 if isinstance(previous.get("resumed", 0), int) else 1)
        if "batched_with" in previous:  # began in a batched group, continues alone
            summary["batched_with"] = previous["batched_with"]
    if state is not None:
        restore(exp, state)
    rows = run.keep_metrics_up_to(state["epoch"] if state else 0) if resume else []
    run.write_summary(summary)
    return summary, rows, state["stop_reason"] if state else None, state["elapsed_s"] if state else 0.0


def refuse_changed_config(state: dict[str, Any] | None, config: Config, run: RunFolder) -> None:
    """ConfigError when config.yaml was edited after the checkpoint `state`: its weights, optimizer and epochs
    belong to another run (`train --resume` asks before it starts: `checkpoint.peek_state`)."""
    changed = changed_settings(state, config) if state is not None else []
    if changed:
        shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise ConfigError(f"--resume {run.path}: config.yaml was changed after its checkpoint ({shown}); a run "
                          f"continues the config it started with: put config.yaml back, or start a new run")


def run_experiment(exp: Experiment, run: RunFolder, on_epoch: EpochCallback | None = None,
                   resume: bool = False, stop_rule: StopRule | None = None) -> dict[str, Any]:
    """`train`, with the run's status kept honest: failed (with the error) or interrupted when it ends early.
    A checkpoint that is unsafe or from another device is bad input (ConfigError, UnsafeCheckpoint) and
    leaves the run as it was."""
    from dropcli.checkpoint import UnsafeCheckpoint

    try:
        return train(exp, run, on_epoch, resume, stop_rule)
    except (ConfigError, UnsafeCheckpoint):
        raise
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM
        mark_ended(run, "interrupted", interruption_reason(stop))
        raise TrainingInterrupted(run, isinstance(stop, Terminated)) from None
    except SystemExit:  # submitit's requeue on preemption or time limit: the rerun resumes the checkpoint
        mark_ended(run, "interrupted", REQUEUED)
        raise
    except Exception as error:
        mark_ended(run, "failed", failure_reason(error), None if known_failure(error) else traceback.format_exc())
        raise TrainingFailed(run, error) from error


def known_failure(error: BaseException) -> bool:
    """Failures that are no bug of dropcli's: the reason says it all, a traceback would only hide it."""
    return isinstance(error, (Diverged, OSError))


def failure_reason(error: BaseException) -> str:
    if disk_full(error):
        return f"disk full while writing {getattr(error, 'filename', None) or 'the run folder'}"
    if isinstance(error, OSError):
        return f"{error.strerror or type(error).__name__}: {error.filename or ''}".rstrip(": ")
    return str(error) if isinstance(error, Diverged) else f"{type(error).__name__}: {error}"


def mark_ended(run: RunFolder, status: str, error: str, trace: str | None = None) -> None:
    """Record how the run ended, unless it completed first. Never raises: on a full disk the summary may be
    unwritable, and the error that brought us here is the one to report."""
    summary = run.read_summary()
    if summary.get("status") == "completed":
        return  # finished before the error or Ctrl-C came: it stays completed
    summary.update(status=status, error=error, finished_at=now())
    if trace:
        summary["traceback"] = trace
    try:
        run.write_summary(summary)
    except OSError as write_error:
        log.warning(f"{run.path}: could not record the run as {status}: {write_error.strerror or write_error}")


def base_summary(exp: Experiment, run: RunFolder) -> dict[str, Any]:
    return {
        "status": "running",
        "run": run.path.name,
        "started_at": now(),
        "seed": exp.config.seed,
        "device": str(exp.device),
        "device_name": torch.cuda.get_device_name(exp.device) if exp.device.type == "cuda"
        else platform.processor() or "cpu",
        # CPU results can differ in the last bits with the thread count (the order of float sums)
        "torch_threads": torch.get_num_threads(),
        "num_parameters": count_parameters(exp.model),
        "train_examples": len(exp.splits.y_train),
        "val_examples": len(exp.splits.y_val),
        "test_examples": len(exp.splits.y_test),
        # data from files: their fingerprint (report pools only runs on the same data), classes, test split
        **({"data": exp.splits.description} if exp.splits.description is not None else {}),
        "versions": {"dropcli": dropcli.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def evaluated_metrics(exp: Experiment, last_row: dict[str, float] | None = None) -> dict[str, float]:
    """Train / val / test metrics of the weights the run ends with (the restored ones under early stopping):
    the numbers to compare runs by. `last_row`: the metrics row evaluated on these very weights, whose train
    and val numbers are taken instead of a second pass. The test split is touched here, once, and nowhere
    else: one pass gives its loss, accuracy and calibration."""
    splits, metrics = exp.splits, {}
    if last_row is not None:
        metrics.update({key: last_row[key] for key in ("train_loss", "train_acc", "val_loss", "val_acc")})
    else:
        for split, x, y in (("train", splits.x_train, splits.y_train), ("val", splits.x_val, splits.y_val)):
            loss, acc = evaluate(exp.model, x, y)
            metrics.update({f"{split}_loss": loss.item(), f"{split}_acc": acc.item()})
    probabilities: list[torch.Tensor] = []
    loss, acc = evaluate(exp.model, splits.x_test, splits.y_test, probabilities)
    metrics.update(test_loss=loss.item(), test_acc=acc.item())
    metrics.update(gap_loss=metrics["val_loss"] - metrics["train_loss"],
                   gap_acc=metrics["train_acc"] - metrics["val_acc"])
    # calibration (evaluation.py's ECE, 15 bins)
    metrics["test_ece"] = expected_calibration_error(torch.cat(probabilities), splits.y_test)
    return metrics


def results_summary(rows: list[dict[str, float]], stop_reason: str, best_epoch: float) -> dict[str, Any]:
    final = rows[-1]
    return {
        "status": "completed",
        "finished_at": now(),
        "epochs_run": len(rows),
        "stop_reason": stop_reason,
        "best_epoch": int(best_epoch),
        **{f"final_{key}": final[key]
           for key in ("train_loss", "train_acc", "val_loss", "val_acc", "gap_loss", "gap_acc")},
        "max_gap_loss": max(r["gap_loss"] for r in rows),
        "max_gap_acc": max(r["gap_acc"] for r in rows),
    }


def describe_regularizers(exp: Experiment) -> str:
    return ", ".join(text for text in (r.describe() for r in exp.regularizers) if text) or "no regularizer"


def curves_title(exp: Experiment) -> str:
    config = exp.config
    regularizers = describe_regularizers(exp)
    train_size = config.dataset.train_size or "all"
    return (f"{config.name}: {config.model.describe()} on {config.dataset.name} (train_size={train_size}), "
            f"{regularizers}, seed {config.seed}")


def now() -> str:
    """Local time with its UTC offset (2026-11-24T23:28:45+01:00): an export in another time zone places the
    run where it happened (an older summary's time without offset is read as local time)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")
