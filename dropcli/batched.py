"""Batched sweeps: T trials of the same model (each family's stacked form; a model from code's: torch.func)
trained as one stacked model.

Trials that share architecture, data set, optimizer and epochs differ only in numbers: seed, dropout p, L2,
L1, max-norm, early stopping. Stacking their parameters on a trial dimension turns T small products into
one large one (batched matmuls, grouped convolutions; on this 2-core CPU the stacked MLP layer beat
`vmap(functional_call)`). Each trial keeps everything of its own:

- its data split, label noise and batch order: each trial's tensors are gathered from its own split with
  its own batch-order generator, exactly as when it trains alone;
- its initial weights: built by the same `prepare` as a lone run, then copied into the stack;
- its dropout masks: the counter-based stream keyed by its seed (masks.py), drawn for all trials and
  layers of a step with one hash: the very masks it draws alone;
- its p, L2, L1 and max-norm as tensors with a trial dimension;
- its early stopping: a stopped trial keeps its best weights and leaves the stack before the next epoch (the
  running ones are stacked again from their lone states, as a resumed group is), so the group's work shrinks
  as its trials stop.

Adam and SGD act element-wise, so one optimizer over the stacked parameters (with the trials' losses
summed) is T independent optimizers. Each trial still writes an ordinary run folder through the same
`finish_run` steps as a lone run (the sweep draws the group's curves.png pictures afterwards, on shared axes),
and checkpoints as often as a lone run, in the lone format: each trial's weights, its slice of the
optimizer state, its generators and its mask stream's position: an interrupted group resumes stacked
(train_group(resume=True)), and `train --resume` continues one of its trials alone. What differs from
training alone: float rounding of the batched matrix products (metrics agree closely, not bitwise) and the
`seconds` column (the group's epoch time).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dropcli import train as training
from dropcli.checkpoint import capture, cuda_index
from dropcli.config import Config
from dropcli.masks import MaskStream
from dropcli.models import custom, model_entry
from dropcli.regularizers import REGULARIZERS, Regularizer, Stackable, build_regularizers, per_trial_keys
from dropcli.runs import RunFolder
from dropcli.stacked import StackedModel

STACKED_EVAL_ELEMENTS = 2**19  # CPU: activations per evaluation chunk, all trials together (2 MB of float32)
CPU_GROUP = 16  # the group size evaluation chunks are sized for on CPU (--batch auto there)
# CUDA: the widest layer's activations per evaluation chunk for a group of CUDA_GROUP trials (1 GiB of float32;
# a CNN on MNIST's 28 x 28 x 32 first block would take 26 GB in chunks of 4,096 rows of 64 trials)
CUDA_EVAL_ELEMENTS, CUDA_GROUP = 2**28, 64
EPOCH_GATHER_BYTES = 2**28  # up to this much training data, each epoch's shuffled copy is gathered at once


def unbatchable_reason(config: Config) -> str | None:
    """Why this trial cannot join a stacked group (None: it can). An allow-list: the model must have a stacked
    form (a model from code: one its probe trusts) and every regularizer the trial uses must declare one."""
    if not (entry := model_entry(config.model.name)).stacked:
        return f"model {config.model.name} has no batched implementation"
    if config.model.batchnorm:
        return "batchnorm has no batched implementation (its running statistics)"
    refusals = [r for r in (reg.stacking_refusal() for reg in build_regularizers(config.regularizer)) if r]
    return refusals[0] if refusals else custom.probe(config)[0] if entry.stacked == "probed" else None


def group_key(config: Config) -> str | None:
    """Trials with the same key can train as one stack; None: this one trains alone."""
    if unbatchable_reason(config) is not None:
        return None
    shared = config.to_dict()
    shared.pop("seed")
    shared.pop("name")
    for key in per_trial_keys():
        shared["regularizer"].pop(key)
    probed = model_entry(config.model.name).stacked == "probed"  # its layers may depend on the rate (dropout_arg)
    return repr({**shared, "structure": custom.probe(config)[1]} if probed else shared)


def stacked_regularizers(trials: list[list[Regularizer]], device: torch.device) -> list[Regularizer]:
    """The regularizers acting on a stacked group, from each trial's own (`trials[t]`), in registry order:
    each registered regularizer that some trial uses and that acts on the stack (Stackable.stack)."""
    stacked = []
    for kind in REGULARIZERS.values():
        instances = [next((r for r in regularizers if type(r) is kind), None) for regularizers in trials]
        if not any(instances):
            continue
        if not issubclass(kind, Stackable):  # group_key keeps such trials out of any group
            raise TypeError(f"{kind.__name__} cannot act on a stacked group")
        regularizer = kind.stack(instances, device)
        if regularizer is not None:
            stacked.append(regularizer)
    return stacked


def global_generator_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def set_global_generator_state(device: torch.device, state: torch.Tensor) -> None:
    torch.cuda.set_rng_state(state, device) if device.type == "cuda" else torch.set_rng_state(state)


def resume_key(config: Config, run: RunFolder) -> str | None:
    """Unfinished trials with equal keys resume as one stack: same group key, same checkpoint epoch, not yet
    stopped. None: it resumes alone."""
    from dropcli.checkpoint import peek

    key, where = group_key(config), peek(run)
    if key is None or where is None or where[1] is not None:
        return None
    return f"{key}@{where[0]}"


def train_group(configs: list[Config], runs: list[RunFolder],
                on_epoch: Callable[[dict[str, Any]], None] | None = None,
                resume: bool = False, stop_rule: training.StopRule | None = None) -> list[dict[str, Any]]:
    """Train the trials together through the one epoch loop (train.run_epochs); every run folder ends
    completed, or failed for a trial whose loss diverged. Returns the completed summaries.

    resume: continue each trial from its checkpoint, stacked again: the trials that stand at the same epoch
    train as one stack (a group interrupted together; those with a checkpoint and those without, after a kill
    in between), to exactly the metrics of an uninterrupted group; one that had already stopped is finished."""
    members, generator_states, elapsed = [], [], []
    splits: dict = {}  # one split per seed (and dataset settings) for the whole group
    for config, run in zip(configs, runs):
        experiment = training.prepare(config, splits)  # seeds, splits and initial weights exactly as a lone run
        if resume:
            summary, rows, stop_reason, spent = training.begin(experiment, run, resume=True)
            members.append(training.Member(experiment, run, summary, rows, stop_reason))
            elapsed.append(spent)
        else:
            members.append(training.Member(experiment, run, training.base_summary(experiment, run)))
            members[-1].summary["batched_with"] = len(configs)
            run.write_summary(members[-1].summary)
            elapsed.append(0.0)
        # the global generator as this trial's training starts (after a resume: its checkpoint's): stacked
        # training draws nothing from it, so its checkpoints carry it on unchanged; a trial that goes on
        # alone (DropConnect's masks, Gaussian noise) draws from it as it would alone
        generator_states.append(global_generator_state(experiment.device))
    epochs = configs[0].epochs
    # the running members that stand at the same epoch train as one stack each: after a kill, those with a
    # checkpoint apart from those without; a stack of one too, since a trial alone (lone products, unpadded
    # parameters) would round otherwise than in any group
    stacks: dict[int, list[int]] = {}
    for index, member in enumerate(members):
        if member.stop_reason is None:
            stacks.setdefault(len(member.rows), []).append(index)
    summaries = []
    for stack in stacks.values():
        stepper = StackedStepper([members[i] for i in stack], [generator_states[i] for i in stack])
        if resume:
            stack_optimizer_states(stepper)
            if on_epoch is not None:
                for row in members[stack[0]].rows:
                    on_epoch(row)
        wall_time = training.run_epochs(stepper, epochs, on_epoch, sum(elapsed[i] for i in stack) / len(stack),
                                        stop_rule)
        summaries += training.finish_members(stepper, wall_time)
    for index, member in enumerate(members):  # those that had already stopped: only their finish is left
        if member.stop_reason is None:
            continue
        lone = training.LoneStepper(member)
        set_global_generator_state(member.experiment.device, generator_states[index])  # its own, as alone
        wall_time = training.run_epochs(lone, epochs, on_epoch, elapsed[index], stop_rule)
        summaries += training.finish_members(lone, wall_time)
    return summaries


class StackedStepper(training.Stepper):
    """The trials of a group as one stacked model: one optimizer over the stacked parameters (the trials'
    losses summed: Adam and SGD act element-wise), per-trial coefficients as [T, 1, 1] tensors, each
    trial's batches from its own permutation and its masks from its own stream.

    A trial that stops (early stopping, a pruner, a diverged loss) leaves the stack before the next epoch: the
    trials still running are stacked again from their lone states, as a resumed group is, so the group's work
    shrinks with it (a trial's numbers do not depend on which trials share its stack)."""

    def __init__(self, members: list[training.Member], generator_states: list[torch.Tensor]):
        self.members, self.generator_states = members, generator_states
        first = members[0].experiment
        self.device, self.optimizer_config = first.device, first.config.optimizer
        self.build(list(range(len(members))))

    def build(self, stacked: list[int]) -> None:
        """Stack the members at these indices (their lone models' weights) with a fresh optimizer."""
        self.stacked, self.slot = stacked, {index: slot for slot, index in enumerate(stacked)}
        members = [self.members[index] for index in stacked]
        first = members[0].experiment
        build = model_entry(first.config.model.name).load().STACKED
        self.model = build([m.experiment.model for m in members]).to(self.device)
        # the regularizers that act on the stack, each from the trials' own instances (their numbers as tensors
        # with a trial dimension; dropout's masks from each trial's stream); early stopping acts per trial on
        # each trial's lone model (the loop)
        self.regularizers = stacked_regularizers([m.experiment.regularizers for m in members], self.device)
        self.optimizer, self.scheduler = training.build_optimizer(self.model, self.regularizers, first.config)
        stack = lambda name: torch.stack([getattr(m.experiment.splits, name) for m in members])  # noqa: E731
        self.x_train, self.y_train = stack("x_train"), stack("y_train")
        self.x_val, self.y_val = stack("x_val"), stack("y_val")
        # the trials' dropout-mask streams (keyed by their seeds), at the position they share
        self.stream = MaskStream([m.experiment.config.seed for m in members], self.device,
                                 members[0].experiment.masks.position)

    def shrink(self) -> None:
        """Restack without the members that stopped: every stacked member's state goes to its lone
        experiment (a stopped one's weights for its finish; a running one's whole training state, as its
        checkpoint holds it: export_member), then the running ones are stacked again from there."""
        running = [index for index in self.stacked if self.members[index].stop_reason is None]
        if len(running) == len(self.stacked) or not running:
            return
        for index in self.stacked:
            export_member(self.members[index].experiment, self.slot[index], self.model, self.optimizer,
                          self.scheduler, self.stream.position)
        self.build(running)
        stack_optimizer_states(self)

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def draw_masks(self, x: torch.Tensor) -> list[torch.Tensor | None] | None:
        """This step's dropout masks for every site, from the regularizer that draws them (None: no dropout)."""
        shapes = self.model.mask_shapes(x)
        for regularizer in self.regularizers:
            masks = regularizer.masks(self.stream, shapes) if isinstance(regularizer, Stackable) else None
            if masks is not None:
                return masks
        return None

    def train_epoch(self, epoch: int) -> None:
        """Every running trial's batch from its own permutation, one stacked step."""
        self.shrink()
        for regularizer in self.regularizers:
            regularizer.start_of_epoch(epoch, self.model)
        members, x_train, y_train = [self.members[index] for index in self.stacked], self.x_train, self.y_train
        order = torch.stack([torch.randperm(len(m.experiment.splits.y_train), generator=m.experiment.batch_order)
                             for m in members]).to(self.device)
        trial_index = torch.arange(len(members), device=self.device).unsqueeze(1)
        # small data: one gather of the shuffled epoch, then slices (a gather per step cost ~150 us a step);
        # large data (CIFAR-sized stacks): a gather per step, not a second copy of every trial's data
        whole_epoch = x_train.numel() * x_train.element_size() <= EPOCH_GATHER_BYTES
        x_epoch, y_epoch = (x_train[trial_index, order], y_train[trial_index, order]) if whole_epoch \
            else (x_train, y_train)
        for start in range(0, order.shape[1], self.optimizer_config.batch_size):
            batch = slice(start, start + self.optimizer_config.batch_size)
            x, y = (x_epoch[:, batch], y_epoch[:, batch]) if whole_epoch else \
                (x_train[trial_index, order[:, batch]], y_train[trial_index, order[:, batch]])
            for regularizer in self.regularizers:
                if regularizer.augments:  # each trial's own draws, as alone
                    x = regularizer.augment(x)
            logits = self.model(x, self.draw_masks(x))
            loss = training.training_loss(self.regularizers, logits, y)
            training.take_step(self.model, loss, self.regularizers, self.optimizer)
        self.scheduler.step()

    def evaluate(self) -> list[list[float]]:
        """All stacked trials at once, eval mode; one sync for all their numbers (NaN for a member that
        has left the stack: the loop reads only running members' rows)."""
        train_loss, train_acc = evaluate_stacked(self.model, self.x_train, self.y_train)
        val_loss, val_acc = evaluate_stacked(self.model, self.x_val, self.y_val)
        numbers = torch.stack([train_loss, train_acc, val_loss, val_acc]).T.tolist()
        return [numbers[self.slot[index]] if index in self.slot else [math.nan] * 4
                for index in range(len(self.members))]

    def sync(self, index: int) -> None:
        if index in self.slot:  # one that left the stack got its weights then
            self.model.copy_into(self.slot[index], self.members[index].experiment.model)
            self.members[index].experiment.masks.position = self.stream.position

    def stop(self, index: int) -> None:
        """It leaves the stack before the next epoch trains (shrink): until then its weights are as they
        were at the end of this epoch, for its checkpoint and its finish."""

    def state(self, index: int, epoch: int, elapsed: float) -> dict[str, Any]:
        return member_state(self.members[index], self.slot[index], self.model, self.optimizer, self.scheduler,
                            self.generator_states[index], self.stream.position, epoch, elapsed)


def member_state(member: training.Member, index: int, model: StackedModel, optimizer: torch.optim.Optimizer,
                 scheduler: Any, generator_state: torch.Tensor, mask_position: int, epoch: int,
                 elapsed: float) -> dict[str, Any]:
    """Trial `index`'s share of the group, as the checkpoint it would have written training alone: its
    weights, its slice of the optimizer's state, the scheduler, its regularizers (early stopping's best
    weights), its batch-order generator, its mask stream's position and its global generator (as its
    training began: stacked training draws nothing from it). `train --resume` and a rerun sweep continue
    it on its own (a requeued cluster task too)."""
    exp = member.experiment
    export_member(exp, index, model, optimizer, scheduler, mask_position)
    state = capture(exp, epoch, member.stop_reason, elapsed)
    if exp.device.type == "cuda":
        state["rng"]["cuda"][cuda_index(exp.device)] = generator_state
    else:
        state["rng"]["torch"] = generator_state
    return state


def export_member(exp: training.Experiment, index: int, model: StackedModel, optimizer: torch.optim.Optimizer,
                  scheduler: Any, mask_position: int) -> None:
    """Put trial `index`'s training state in its lone experiment: its weights, its slice of the optimizer's
    state, the scheduler's position and its mask stream's position."""
    model.copy_into(index, exp.model)
    exp.optimizer.load_state_dict(lone_optimizer_state(exp, index, model, optimizer))
    exp.scheduler.load_state_dict(scheduler.state_dict())
    exp.masks.position = mask_position


def lone_optimizer_state(exp: training.Experiment, index: int, model: StackedModel,
                         optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The stacked optimizer's state (Adam's moments, SGD's momentum) sliced to one trial, in the layout
    of its lone model's parameters."""
    # lone parameter → (stacked parameter, how one trial's slice maps onto it)
    source = {lone: (stacked, lambda t, to_lone=to_lone: to_lone(t[index]))
              for (stacked, _, to_lone), lone in zip(model.slots, exp.model.parameters())}
    lone = exp.optimizer.state_dict()
    stacked_state = optimizer.state
    for position, parameter in enumerate(exp.optimizer.param_groups[0]["params"]):
        stacked, slice_of = source[parameter]
        entries = stacked_state.get(stacked, {})
        lone["state"][position] = {
            # contiguous copies: fused Adam walks state and parameter memory in step, so a transposed view's
            # strides would pair each moment with the wrong weight
            key: (slice_of(value) if value.shape == stacked.shape else value).clone(
                memory_format=torch.contiguous_format)
            if torch.is_tensor(value) else value
            for key, value in entries.items()}
    lone["param_groups"][0].update({k: v for k, v in optimizer.param_groups[0].items() if k != "params"})
    return lone


def stack_optimizer_states(stepper: StackedStepper) -> None:
    """The inverse of lone_optimizer_state: the members' restored lone optimizer states (Adam's moments and
    step, SGD's momentum), stacked into the group's optimizer, and the schedule's position. A group of
    trials that stopped at the same epoch resumes stacked, exactly where it was."""
    lone = [stepper.members[index].experiment for index in stepper.stacked]
    per_trial = [list(exp.model.parameters()) for exp in lone]
    for position, (stacked, to_stacked, _) in enumerate(stepper.model.slots):
        parameters = [parameters[position] for parameters in per_trial]
        states = [exp.optimizer.state.get(parameter, {}) for exp, parameter in zip(lone, parameters)]
        stepper.optimizer.state[stacked] = {
            key: torch.stack([to_stacked(state[key]) for state in states]).contiguous()
            if torch.is_tensor(value) and value.shape == parameters[0].shape
            else (value.clone() if torch.is_tensor(value) else value)  # Adam's step: the same for all trials
            for key, value in states[0].items()}
    stepper.optimizer.param_groups[0]["lr"] = lone[0].optimizer.param_groups[0]["lr"]
    stepper.scheduler.load_state_dict(lone[0].scheduler.state_dict())


@torch.no_grad()
def evaluate_stacked(model: StackedModel, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-trial mean loss and accuracy without dropout masks (eval mode); [T] tensors on the device.

    On CPU, a model that can (`evaluates_by_trial`) is evaluated one trial after another, each through
    ordinary products over its whole split, as a lone run is (train.evaluate_logits): faster there than
    batched products. Otherwise, the stacked pass: on a GPU (one kernel per layer for all trials) in chunks of up to
    EVAL_CHUNK rows, fewer where the widest layer of 64 trials would pass 1 GiB; on CPU in chunks small
    enough that a layer's activations for all trials stay in the CPU's cache (~2 MB): on 16 trials x 1000
    rows x 256 units, one pass over [16, 1000, 256] tensors spent more time moving memory than multiplying.

    Either way the chunks depend on the model and data only, never on how many trials are stacked, so that a
    trial's numbers do not change when its group shrinks (trials that stopped resume alone) wherever the
    products themselves do not: trial by trial and the stacked GRU's batched matmuls are bit-identical
    across group sizes; the CNN's grouped convolution may round differently with the number of groups."""
    if not x.is_cuda and model.evaluates_by_trial:
        losses, accuracies = zip(*(training.evaluate_logits(functools.partial(model.trial_logits, trial), x[trial],
                                                            y[trial]) for trial in range(x.shape[0])))
        return torch.stack(losses), torch.stack(accuracies)
    loss_sum = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    correct = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    chunk = evaluation_chunk(model.eval_width(x), x.is_cuda)
    for start in range(0, y.shape[1], chunk):
        logits = model(x[:, start:start + chunk])
        target = y[:, start:start + chunk]
        loss_sum += F.cross_entropy(logits, target, reduction="none").double().sum(1)
        correct += (logits.argmax(dim=1) == target).sum(1)
    return loss_sum / y.shape[1], correct / y.shape[1]


def evaluation_chunk(widest: int, cuda: bool) -> int:
    """Rows per stacked evaluation pass for a model whose widest layer has `widest` activations per example:
    never depends on how many trials are stacked (a shrunk or resumed group must give the same numbers)."""
    if cuda:
        return max(32, min(training.EVAL_CHUNK, CUDA_EVAL_ELEMENTS // (CUDA_GROUP * widest)))
    return max(32, STACKED_EVAL_ELEMENTS // (CPU_GROUP * widest))


def split_into_groups(items: list, key: Callable, size: int) -> list[list]:
    """Items with equal keys, in as few chunks of at most `size` as there can be, of sizes as even as can be
    (17 by 16: 9 and 8, both stacked, not 16 and a lone one), in their original order; key None → alone."""
    groups: dict[Any, list] = {}
    singles = []
    for item in items:
        k = key(item)
        (singles.append([item]) if k is None else groups.setdefault(k, []).append(item))
    chunks = []
    for group in groups.values():
        count = -(-len(group) // size)
        bounds = [-(-len(group) * i // count) for i in range(count + 1)]  # ceil: the larger chunks first
        chunks += [group[start:end] for start, end in zip(bounds, bounds[1:])]
    return chunks + singles
