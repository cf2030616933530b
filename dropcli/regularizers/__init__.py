"""Regularizers behind one small interface, so the training loop never branches on a regularizer's name.

A regularizer may do any of these things, each a hook the loop calls at a fixed stage:
  model_options()     shape the model before it is built (dropout's rate, Concrete dropout's layers)
  start(...)          learn what it needs of the run once it is prepared (the seed, the training set's size)
  augment(x)          transform each training batch, never a validation or test one (data augmentation)
  penalty(model)      add a term to the training loss (L2, L1, Concrete dropout's)
  after_step(model)   constrain the weights after each optimizer step (max-norm)
  epoch_metrics(...)  numbers for metrics.csv's row of the epoch (Concrete dropout's learned rates)
  end_of_epoch(...)   decide to stop (early stopping); finish(model) runs before the test evaluation
                      (both run after the epoch's metrics row: one that may change the weights there makes
                      the run evaluate its final numbers again, unless keeps_weights_after_evaluation says not)

They are registered under the names users write in the `regularizer:` section; each reads its own keys
there (`from_config`), and a key whose value is 0 or null is off. "Weights" means parameters with two or
more dimensions: biases are never penalized or clipped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from dropcli import augmentation
from dropcli.config import AUGMENTATIONS, ConcreteDropoutConfig, Config, EarlyStoppingConfig, RegularizerConfig
from dropcli.data import Splits
from dropcli.registry import Registry
from dropcli.regularizers.dropout_layers import ConcreteDropout as ConcreteDropoutLayer
from dropcli.regularizers.dropout_layers import Dropout as DropoutLayer
from dropcli.regularizers.dropout_layers import DropoutOptions


class Regularizer:
    # What the rest of dropcli derives from, declared here and nowhere else:
    # config_keys: the `regularizer:` keys this regularizer reads (its labelled ones name it in reports);
    # per_trial_keys: those a stacked group's trials may differ in (batched.py carries them per trial).
    config_keys: ClassVar[tuple[str, ...]] = ()
    per_trial_keys: ClassVar[tuple[str, ...]] = ()

    def stacking_refusal(self) -> str | None:
        """Why a trial using this regularizer cannot train in a stacked group (None: it can, with the same
        result as alone). The default refuses: a regularizer batched.py does not implement trains its trials
        one by one, never silently without it (tests/test_regularizers.py walks every registered one)."""
        return f"{self.describe()} has no stacked implementation"

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> Regularizer | None:
        """Build from the `regularizer:` section, or None when its keys leave this regularizer off."""
        raise NotImplementedError

    @classmethod
    def for_trials(cls, configs: list[RegularizerConfig], device: torch.device) -> Regularizer | None:
        """This regularizer for a stacked group (batched.py), its per-trial numbers as a tensor with a trial
        dimension, or None when no trial uses it, or when it acts per trial on each trial's lone model
        (early stopping; dropout, which shapes the masks). Penalties and constraints then see the stacked
        model, whose weights carry the trial dimension first (`per_trial_sums`)."""
        return None

    def describe(self) -> str:
        """A few words for titles and logs, e.g. "dropout p=0.5"."""
        raise NotImplementedError

    def model_options(self) -> dict[str, Any]:
        return {}

    def start(self, config: Config, splits: Splits, device: torch.device) -> None:
        """Called once the run's data is loaded, before its model is seeded and built."""

    augments = False  # augment() changes training batches (a stacked group calls augment_group)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """A training batch, transformed; validation and test data never pass here."""
        return x

    @classmethod
    def augment_group(cls, trials: list[Regularizer], x: torch.Tensor) -> torch.Tensor:
        """A stacked group's batch [T, B, ...], each trial's slice as its own instance (`trials`) would
        transform it alone."""
        return torch.stack([trial.augment(part) for trial, part in zip(trials, x)])

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def parameter_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Parameters of the model that train with their own optimizer settings (torch param groups)."""
        return []

    def epoch_metrics(self, model: nn.Module) -> dict[str, float]:
        """Extra columns of the epoch's metrics row (they must be in Config.learned_rate_columns)."""
        return {}

    def after_step(self, model: nn.Module) -> None:
        pass

    def start_of_epoch(self, epoch: int, model: nn.Module) -> None:
        """Called before each epoch's training pass (a dropout schedule sets p here)."""

    reads_weights_at_epoch_end = False  # end_of_epoch looks at the model (a batched group copies it out)

    def end_of_epoch(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> str | None:
        """Return a reason to stop training now, or None to go on."""
        return None

    # end_of_epoch and finish run after an epoch's metrics row was evaluated. A regularizer that overrides either
    # may change the weights the row describes (early stopping restores its best epoch's), so the run's final
    # train/val numbers are then evaluated again rather than taken from the last row, unless it says here
    # that those hooks never change a weight (changes_weights_after_evaluation)
    keeps_weights_after_evaluation = False

    def finish(self, model: nn.Module) -> dict[str, Any]:
        """Called once after the last epoch, before the test evaluation; returns facts for summary.json."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep for training to continue identically (most regularizers: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")


def changes_weights_after_evaluation(regularizer: Regularizer) -> bool:
    """Whether `regularizer` may change the weights after an epoch's metrics row was evaluated on them."""
    kind = type(regularizer)
    overrides = kind.end_of_epoch is not Regularizer.end_of_epoch or kind.finish is not Regularizer.finish
    return overrides and not regularizer.keeps_weights_after_evaluation


def build_regularizers(config: RegularizerConfig) -> list[Regularizer]:
    """The regularizers the `regularizer:` section switches on, in registry order. Each class reads its
    own keys (`from_config`) and returns None when they leave it off."""
    built = (factory.from_config(config) for factory in REGULARIZERS.values())
    return [regularizer for regularizer in built if regularizer is not None]


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters penalties and constraints act on: weights, never biases. A stacked model says which."""
    if hasattr(model, "weight_parameters"):
        return model.weight_parameters()
    return [p for p in model.parameters() if p.ndim >= 2]


def per_trial_sums(model: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The sum of transform(w) over the weights: a number for a lone model, one per trial ([T]) for a stacked
    model (whose weights are [T, ...])."""
    if getattr(model, "trials", None):
        return sum(transform(w).flatten(1).sum(1) for w in weight_parameters(model))
    return sum(transform(w).sum() for w in weight_parameters(model))


def trial_column(values: list[float], device: torch.device) -> torch.Tensor | None:
    """Per-trial coefficients as a [T] tensor (a trial without this regularizer has 0), or None if all are 0."""
    return torch.tensor(values, dtype=torch.float32, device=device) if any(values) else None


@REGULARIZERS.register("dropout")
class Dropout(Regularizer):
    """The dropout family, handed to the model builder (models.DropoutOptions): Bernoulli or Gaussian
    noise on the hidden units, inverted or scale-at-test, and dropout on the inputs."""

    config_keys = ("dropout", "dropout_style", "input_dropout", "gaussian_dropout", "dropconnect", "dropblock",
                   "rnn_dropout", "dropout_schedule", "dropout_schedule_epochs")
    per_trial_keys = ("dropout",)

    def __init__(self, options: DropoutOptions, schedule: str = "constant", schedule_epochs: int = 10):
        self.options, self.schedule, self.schedule_epochs = options, schedule, schedule_epochs
        self.factor = 1.0  # the schedule's factor last applied to the layers' p

    keeps_weights_after_evaluation = True  # finish sets the layers' rates, never a weight

    def stacking_refusal(self) -> str | None:
        o = self.options
        if (o.noise != "bernoulli" or o.style != "inverted" or o.input_p or o.dropconnect_p or o.dropblock
                or self.schedule != "constant"):
            return ("scale-at-test, input, gaussian, scheduled dropout, DropConnect and DropBlock have no "
                    "stacked implementation")
        return None  # hidden-unit dropout at a per-trial p: batched.GroupMasks

    def schedule_factor(self, epoch: int) -> float:
        """p at `epoch` (1-based) is the configured p times this."""
        progress = min(1.0, (epoch - 1) / self.schedule_epochs)
        return {"constant": 1.0, "linear_warmup": progress, "linear_decay": 1.0 - progress}[self.schedule]

    def start_of_epoch(self, epoch: int, model: nn.Module) -> None:
        if self.schedule == "constant":
            return
        self.factor = self.schedule_factor(epoch)
        self.apply_factor(model)

    def apply_factor(self, model: nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, DropoutLayer):
                module.p = module.base_p * self.factor

    def state_dict(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factor = float(state.get("factor", self.factor))  # checkpoints before 2026-11 did not keep it

    def finish(self, model: nn.Module) -> dict[str, Any]:
        # the rate of the last epoch trained, also after a resume that had no epoch left to train (its layers
        # were built at the configured p): a scale-at-test evaluation scales by it
        if self.schedule != "constant":
            self.apply_factor(model)
        return {}

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> Dropout | None:
        if not (config.dropout or config.gaussian_dropout or config.input_dropout or config.dropconnect
                or config.dropblock or config.concrete_dropout):
            return None
        concrete = config.concrete_dropout  # its layers are built here; the ConcreteDropout regularizer trains them
        noise = "gaussian" if config.gaussian_dropout else "bernoulli"
        return cls(DropoutOptions(p=config.gaussian_dropout or config.dropout, noise=noise,
                                  style=config.dropout_style, input_p=config.input_dropout,
                                  per_sequence=config.rnn_dropout == "variational", dropconnect_p=config.dropconnect,
                                  dropblock=(config.dropblock.p, config.dropblock.block_size)
                                  if config.dropblock else None,
                                  concrete=(concrete.init_p, concrete.temperature) if concrete else None),
                   config.dropout_schedule, config.dropout_schedule_epochs)

    def describe(self) -> str:
        o = self.options
        parts = [f"{'gaussian ' if o.noise == 'gaussian' else ''}dropout p={o.p:g}" if o.p else "",
                 "scaled at test" if o.style == "scale_at_test" else "",
                 f"input dropout {o.input_p:g}" if o.input_p else "",
                 "per sequence" if o.per_sequence else "",
                 f"DropConnect {o.dropconnect_p:g}" if o.dropconnect_p else "",
                 f"DropBlock p={o.dropblock[0]:g} size {o.dropblock[1]}" if o.dropblock else "",
                 self.schedule.replace("_", " ") if self.schedule != "constant" else ""]
        return ", ".join(p for p in parts if p)

    def model_options(self) -> dict[str, Any]:
        return {"dropout": self.options}


@REGULARIZERS.register("concrete_dropout")
class ConcreteDropout(Regularizer):
    """Concrete dropout (Gal, Hron & Kendall 2017): every hidden dropout layer learns its rate p through a
    relaxed Bernoulli mask, and the loss gains, per layer, l^2/N |W|^2 / (1-p) for the weights that read the
    dropped units plus 2/N * units * (p log p + (1-p) log(1-p)): the rate's prior, which favours noise (p
    towards 0.5) against the data's pull towards p = 0. (The dropout regularizer builds the layers:
    models.DropoutOptions.concrete.)"""

    config_keys = ("concrete_dropout",)
    reads_weights_at_epoch_end = True  # its rates are in the model
    keeps_weights_after_evaluation = True  # finish only reads the learned rates

    def __init__(self, config: ConcreteDropoutConfig):
        self.config = config
        self.train_examples = 1

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> ConcreteDropout | None:
        return cls(config.concrete_dropout) if config.concrete_dropout is not None else None

    def stacking_refusal(self) -> str | None:
        return "Concrete dropout has no stacked implementation (each trial learns its own rates)"

    def describe(self) -> str:
        return f"Concrete dropout (from p={self.config.init_p:g})"

    def start(self, config: Config, splits: Splits, device: torch.device) -> None:
        self.train_examples = len(splits.y_train)

    def parameter_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        layers = [m for m in model.modules() if isinstance(m, ConcreteDropoutLayer)]
        return [{"params": [layer.p_logit for layer in layers], "lr": self.config.rate_lr}]

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        weight_factor = self.config.length_scale ** 2 / self.train_examples
        rate_factor = 2.0 / self.train_examples
        total = None
        for layer, weight in concrete_layers(model):
            p = layer.p
            term = (weight_factor * weight.square().sum() / (1 - p)
                    + rate_factor * layer.units * (p * torch.log(p) + (1 - p) * torch.log1p(-p)))
            total = term if total is None else total + term
        return total

    def epoch_metrics(self, model: nn.Module) -> dict[str, float]:
        return {f"learned_p{i}": rate for i, rate in enumerate(learned_rates(model), start=1)}

    def finish(self, model: nn.Module) -> dict[str, Any]:
        return {"learned_p": learned_rates(model)}


def concrete_layers(model: nn.Module) -> list[tuple[ConcreteDropoutLayer, torch.Tensor]]:
    """Each Concrete dropout layer with the weight of the layer that reads its output: the next module, in
    the model's order, that has a weight matrix or filter bank (mlp and cnn are built in data-flow order)."""
    pairs, waiting = [], None
    for module in model.modules():
        if isinstance(module, ConcreteDropoutLayer):
            waiting = module
        elif waiting is not None and isinstance(getattr(module, "weight", None), torch.Tensor) \
                and module.weight.ndim >= 2:
            pairs.append((waiting, module.weight))
            waiting = None
    return pairs


def learned_rates(model: nn.Module) -> list[float]:
    """The rates the Concrete dropout layers have learned, in the model's order (one device sync)."""
    layers = [m for m in model.modules() if isinstance(m, ConcreteDropoutLayer)]
    return torch.stack([layer.p.detach() for layer in layers]).tolist() if layers else []


@REGULARIZERS.register("augmentation")
class Augmentation(Regularizer):
    """Data augmentation (augmentation.py): each training batch transformed on the device, the random numbers
    from a generator of the run's own (seeded by its seed), so a run is repeatable and a resume exact."""

    config_keys = ("augmentation", "augmentation_transforms")
    augments = True

    def __init__(self, strength: float, transforms: tuple[str, ...] | None):
        self.strength, self.requested = strength, transforms
        self.transforms: tuple[str, ...] = transforms or ()
        self.generator: torch.Generator | None = None

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> Augmentation | None:
        if not config.augmentation:
            return None
        return cls(config.augmentation, tuple(config.augmentation_transforms) if config.augmentation_transforms
                   else None)

    def stacking_refusal(self) -> str | None:
        return None  # augment_group: each trial's draws from its own generator, applied at once

    def describe(self) -> str:
        return f"augmentation {self.strength:g}" + (f" ({', '.join(self.requested)})" if self.requested else "")

    def start(self, config: Config, splits: Splits, device: torch.device) -> None:
        self.transforms = self.requested or AUGMENTATIONS[config.dataset.name][1]
        self.generator = torch.Generator(device=device).manual_seed(augmentation.seed_for(config.seed))

    def draw(self, x: torch.Tensor) -> augmentation.Draws:
        assert self.generator is not None, "start() was not called"
        return augmentation.draw(self.transforms, x.shape[0], tuple(x.shape[1:]), self.strength, self.generator)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return augmentation.apply(x, self.draw(x), self.strength)

    @classmethod
    def augment_group(cls, trials: list[Regularizer], x: torch.Tensor) -> torch.Tensor:
        # each trial draws from its own generator as alone; one transform over all trials' examples
        draws = [trial.draw(part) for trial, part in zip(trials, x)]  # type: ignore[attr-defined]
        joined = {name: torch.cat([d[name] for d in draws]) for name in draws[0]}
        flat = augmentation.apply(x.reshape(-1, *x.shape[2:]), joined, trials[0].strength)  # type: ignore[attr-defined]
        return flat.view(x.shape)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state() if self.generator is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(state["generator"])


@REGULARIZERS.register("l2")
class L2(Regularizer):
    config_keys = per_trial_keys = ("l2",)

    def stacking_refusal(self) -> str | None:
        return None  # a coefficient per trial (for_trials)

    def __init__(self, coefficient: float | torch.Tensor):
        self.coefficient = coefficient

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> L2 | None:
        return cls(config.l2) if config.l2 else None

    @classmethod
    def for_trials(cls, configs: list[RegularizerConfig], device: torch.device) -> L2 | None:
        coefficients = trial_column([c.l2 for c in configs], device)
        return None if coefficients is None else cls(coefficients)

    def describe(self) -> str:
        return f"L2 {self.coefficient:g}"

    def penalty(self, model: nn.Module) -> torch.Tensor:
        # l2/2 * ||w||^2 has gradient l2 * w: the same number means the same thing as SGD's weight_decay
        return 0.5 * (self.coefficient * per_trial_sums(model, torch.square)).sum()


@REGULARIZERS.register("l1")
class L1(Regularizer):
    config_keys = per_trial_keys = ("l1",)

    def stacking_refusal(self) -> str | None:
        return None  # a coefficient per trial (for_trials)

    def __init__(self, coefficient: float | torch.Tensor):
        self.coefficient = coefficient

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> L1 | None:
        return cls(config.l1) if config.l1 else None

    @classmethod
    def for_trials(cls, configs: list[RegularizerConfig], device: torch.device) -> L1 | None:
        coefficients = trial_column([c.l1 for c in configs], device)
        return None if coefficients is None else cls(coefficients)

    def describe(self) -> str:
        return f"L1 {self.coefficient:g}"

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return (self.coefficient * per_trial_sums(model, torch.abs)).sum()


@REGULARIZERS.register("max_norm")
class MaxNorm(Regularizer):
    """After every step, rescale each unit's incoming weight vector (a row of a Linear weight, an output
    channel's filter bank of a conv) so its L2 norm is at most `max_norm` (Srivastava et al. 2014)."""

    config_keys = per_trial_keys = ("max_norm",)

    def stacking_refusal(self) -> str | None:
        return None  # a norm per trial (for_trials)

    def __init__(self, max_norm: float | torch.Tensor):
        self.max_norm = max_norm

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> MaxNorm | None:
        return cls(config.max_norm) if config.max_norm else None

    @classmethod
    def for_trials(cls, configs: list[RegularizerConfig], device: torch.device) -> MaxNorm | None:
        if not any(c.max_norm for c in configs):
            return None
        return cls(torch.tensor([c.max_norm or float("inf") for c in configs], device=device))  # inf: unclipped

    def describe(self) -> str:
        return f"max-norm {self.max_norm:g}"

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        if not torch.is_tensor(self.max_norm):
            for w in weight_parameters(model):
                w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=self.max_norm))
            return
        # a stacked model: each trial's units with that trial's norm, rescaled as torch.renorm does
        for w, unit_dims in model.unit_weights():
            limit = self.max_norm.view(-1, *[1] * (w.ndim - 1))  # type: ignore[union-attr]  # a [T] tensor here
            norms = w.norm(dim=unit_dims, keepdim=True)
            w.mul_(torch.where(norms > limit, limit / (norms + 1e-7), 1.0))


@REGULARIZERS.register("early_stopping")
class EarlyStopping(Regularizer):
    """Stop when the monitored validation metric has not improved by `min_delta` for `patience` epochs,
    and restore the best epoch's weights before the test evaluation."""

    config_keys = per_trial_keys = ("early_stopping",)

    def stacking_refusal(self) -> str | None:
        return None  # each trial's own instance decides on its lone model; a stopped trial is frozen

    def __init__(self, config: EarlyStoppingConfig):
        self.config = config
        self.sign = 1.0 if config.metric == "val_loss" else -1.0  # compare as "lower is better"
        self.best_score = float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_epoch: int | None = None

    @classmethod
    def from_config(cls, config: RegularizerConfig) -> EarlyStopping | None:
        return cls(config.early_stopping) if config.early_stopping else None

    def describe(self) -> str:
        return f"early stopping ({self.config.metric}, patience {self.config.patience})"

    reads_weights_at_epoch_end = True  # it keeps the best epoch's weights

    def end_of_epoch(self, epoch: int, metrics: dict[str, float], model: nn.Module) -> str | None:
        score = self.sign * metrics[self.config.metric]
        if score < self.best_score - self.config.min_delta:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy(model.state_dict())
            return None
        if epoch - self.best_epoch >= self.config.patience:
            self.stopped_epoch = epoch
            return (f"early_stopping: {self.config.metric} did not improve by more than {self.config.min_delta} "
                    f"for {self.config.patience} epochs")
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_state": self.best_state,
                "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.best_state, self.stopped_epoch = state["best_state"], state["stopped_epoch"]

    def finish(self, model: nn.Module) -> dict[str, Any]:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return {"restored_epoch": self.best_epoch, "early_stopping_epoch": self.stopped_epoch}
