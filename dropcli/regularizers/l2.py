"""L2: the penalty l2/2 * sum(w^2) over the weights (not biases), whose gradient l2 * w is SGD's weight decay.
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


class L2Settings(Section):
    l2: NonNegative = Field(0.0, json_schema_extra={"label": "L2"}, description=(
        "adds l2/2 · Σ w² over the weights (not biases) to the loss: gradient l2 · w, like SGD's weight decay"))


@REGULARIZERS.register("l2")
class L2(Stackable, Regularizer):
    settings = L2Settings
    search_space = {"regularizer.l2": ("float", 1e-6, 1e-1, True)}
    per_trial_keys = ("l2",)

    def __init__(self, coefficient: float | torch.Tensor):
        self.coefficient = coefficient

    @classmethod
    def from_config(cls, config: Any) -> L2 | None:
        return cls(config.l2) if config.l2 else None

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> L2 | None:
        coefficients = trial_column([t.coefficient if isinstance(t, L2) else 0.0 for t in trials], device)
        return None if coefficients is None else cls(coefficients)

    def describe(self) -> str:
        return f"L2 {self.coefficient:g}"

    def penalty(self, model: nn.Module) -> torch.Tensor:
        # l2/2 * ||w||^2 has gradient l2 * w: the same number means the same thing as SGD's weight_decay
        return 0.5 * (self.coefficient * per_trial_sums(model, lambda w: w.square())).sum()
