"""L1: the penalty l1 * sum(|w|) over the weights (not biases), which drives weights to exactly 0.
Stacked, a coefficient per trial ([T])."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from dropcli.regularizers.base import REGULARIZERS, Regularizer, Stackable, per_trial_sums, trial_column
from dropcli.schema import NonNegative, Section

if TYPE_CHECKING:
    import torch
    from torch import nn


class L1Settings(Section):
    l1: NonNegative = Field(0.0, json_schema_extra={"label": "L1"}, description=(
        "adds l1 · Σ |w| over the weights (not biases) to the loss"))


@REGULARIZERS.register("l1")
class L1(Stackable, Regularizer):
    settings = L1Settings
    search_space = {"regularizer.l1": ("float", 1e-7, 1e-2, True)}
    per_trial_keys = ("l1",)

    def __init__(self, coefficient: float | torch.Tensor):
        self.coefficient = coefficient

    @classmethod
    def from_config(cls, config: Any) -> L1 | None:
        return cls(config.l1) if config.l1 else None

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> L1 | None:
        coefficients = trial_column([t.coefficient if isinstance(t, L1) else 0.0 for t in trials], device)
        return None if coefficients is None else cls(coefficients)

    def describe(self) -> str:
        return f"L1 {self.coefficient:g}"

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return (self.coefficient * per_trial_sums(model, lambda w: w.abs())).sum()
