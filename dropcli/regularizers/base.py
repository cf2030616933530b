"""The regularizer interface: lone hooks every regularizer may use, and the optional stacked capability.

A regularizer may do any of these things, each a hook the loop calls at a fixed stage:
  model_options()     shape the model before it is built (dropout's rate, Concrete dropout's layers)
  start(...)          learn what it needs of the run once it is prepared (the seed, the training set's size)
  start_of_epoch(...) act before each epoch's training pass (a dropout schedule sets p)
  augment(x)          transform each training batch, never a validation or test one (data augmentation)
  loss(logits, y)     supply the training loss instead of plain cross-entropy (label smoothing)
  penalty(model)      add a term to the training loss (L2, L1, Concrete dropout's)
  parameter_groups()  parameters that train with their own optimizer settings (Concrete dropout's rates)
  after_step(model)   constrain the weights after each optimizer step (max-norm)
  epoch_metrics(...)  numbers for metrics.csv's row of the epoch (Concrete dropout's learned rates)
  end_of_epoch(...)   decide to stop (early stopping); finish(model) runs before the test evaluation
                      (both run after the epoch's metrics row: one that may change the weights there makes
                      the run evaluate its final numbers again, unless keeps_weights_after_evaluation says not)

A regularizer that can train in a stacked group (batched.py) is also `Stackable`: `stack` turns the trials'
own instances into one regularizer acting on the stacked model (its per-trial numbers as tensors with a trial
dimension), whose hooks the stacked loop calls like the lone ones; `masks` draws dropout masks there. One that
is not refuses to stack (`stacking_refusal`), and its trials train one by one.

What the rest of dropcli needs to know about a regularizer is declared on its class, and derived from the
registry: its `settings` (its keys of the `regularizer:` section, each a pydantic field; a labelled key
switches it on and names it in reports), `check` (cross-checks against the other sections), its
`search_space` for `dropcli tune`, and how its settings read in reports (`format_setting`). "Weights" means
parameters with two or more dimensions: biases are never penalized or clipped.

Torch-free at import (type hints only): `dropcli --help` and config validation import this package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dropcli.registry import Registry
from dropcli.schema import Section

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dropcli.masks import MaskStream

# dotted config key → ("float" | "int", low, high, log scale) or ("choice", options)
SearchSpace = dict[str, tuple[Any, ...]]
# A run's config.Config and its data.Splits. Named, not imported: config.py builds its `regularizer:` section
# from this package, so this package imports neither (no import circle)
Config = Any
Splits = Any


class Regularizer:
    settings: ClassVar[type[Section]] = Section  # the `regularizer:` keys it reads (a pydantic section)
    search_space: ClassVar[SearchSpace] = {}  # what `dropcli tune` searches; empty: not tunable
    per_trial_keys: ClassVar[tuple[str, ...]] = ()  # keys the trials of one stacked group may differ in
    # keys that act through dropcli's own layers, each with why: refused for a model from code (own_layers False)
    needs_own_layers: ClassVar[dict[str, str]] = {}

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        return tuple(cls.settings.model_fields)

    @classmethod
    def check(cls, config: Config) -> None:
        """Raise ValueError (one sentence naming the keys) if its settings do not fit the rest of the config."""

    @classmethod
    def metric_columns(cls, config: Config) -> list[str]:
        """metrics.csv columns its epoch_metrics adds for this config."""
        return []

    @classmethod
    def format_setting(cls, key: str, value: Any) -> str | None:
        """Words for one of its keys' values in reports (None: the generic `key=value`)."""
        return None

    @classmethod
    def from_config(cls, config: Any) -> Regularizer | None:
        """Build from the `regularizer:` section, or None when its keys leave this regularizer off."""
        raise NotImplementedError

    def describe(self) -> str:
        """A few words for titles and logs, e.g. "dropout p=0.5"."""
        raise NotImplementedError

    def stacking_refusal(self) -> str | None:
        """Why a trial using this regularizer cannot train in a stacked group (None: it can, with the same
        result as alone). Refused unless the regularizer is Stackable: never silently trained without it."""
        return f"{self.describe()} has no stacked implementation"

    # --- the lone hooks

    def model_options(self) -> dict[str, Any]:
        return {}

    def start(self, config: Config, splits: Splits, device: torch.device) -> None:
        """Called once the run's data is loaded, before its model is seeded and built."""

    def start_of_epoch(self, epoch: int, model: nn.Module) -> None:
        """Called before each epoch's training pass."""

    augments = False  # augment() changes training batches

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """A training batch, transformed; validation and test data never pass here."""
        return x

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """The training loss (a lone model's logits [B, classes]; a stacked group's [T, classes, B], whose loss
        is the sum of each trial's mean), or None: cross-entropy. Evaluation always scores cross-entropy."""
        return None

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def parameter_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Parameters of the model that train with their own optimizer settings (torch param groups)."""
        return []

    def after_step(self, model: nn.Module) -> None:
        pass

    def epoch_metrics(self, model: nn.Module) -> dict[str, float]:
        """Extra columns of the epoch's metrics row (they must be in its metric_columns)."""
        return {}

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


class Stackable:
    """The optional stacked capability (mix in before Regularizer). A stacked group's trials share every
    setting but their seeds and the regularizer keys in `per_trial_keys`."""

    def stacking_refusal(self) -> str | None:
        return None

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> Regularizer | None:
        """One regularizer for a stacked group from each trial's own instance (None: off for that trial), its
        hooks seeing the stacked model, whose weights carry the trial dimension first (`per_trial_sums`); or
        None when nothing acts on the stack (early stopping decides per trial on each trial's lone model)."""
        raise NotImplementedError

    def masks(self, stream: MaskStream, shapes: list[tuple[int, ...]]) -> list[torch.Tensor | None] | None:
        """A stacked group's dropout masks for one step, one per site of `shapes` (None: it draws none)."""
        return None


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")


def changes_weights_after_evaluation(regularizer: Regularizer) -> bool:
    """Whether `regularizer` may change the weights after an epoch's metrics row was evaluated on them."""
    kind = type(regularizer)
    overrides = kind.end_of_epoch is not Regularizer.end_of_epoch or kind.finish is not Regularizer.finish
    return overrides and not regularizer.keeps_weights_after_evaluation


def weight_parameters(model: nn.Module) -> list[Any]:
    """The parameters penalties and constraints act on: weights, never biases. A stacked model says which."""
    if hasattr(model, "weight_parameters"):
        return model.weight_parameters()
    return [p for p in model.parameters() if p.ndim >= 2]


def per_trial_sums(model: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """The sum of transform(w) over the weights: a number for a lone model, one per trial ([T]) for a stacked
    model (whose weights are [T, ...])."""
    if getattr(model, "trials", None):
        return sum(transform(w).flatten(1).sum(1) for w in weight_parameters(model))
    return sum(transform(w).sum() for w in weight_parameters(model))


def trial_column(values: list[float], device: torch.device) -> torch.Tensor | None:
    """Per-trial coefficients as a [T] tensor (a trial without this regularizer has 0), or None if all are 0."""
    import torch  # here, not at the top: keeps torch off the --help path (config imports this package)

    return torch.tensor(values, dtype=torch.float32, device=device) if any(values) else None
