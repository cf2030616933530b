"""Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture"): train against targets that
put 1 - ε on the true class and spread ε evenly over all classes, so the network is not pushed towards
ever larger logits, a regularizer often compared with dropout. Only the training loss changes: validation
and test losses stay plain cross-entropy, comparable with every other run. Stacked, ε per trial ([T]).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from dropcli.regularizers.base import REGULARIZERS, Regularizer, Stackable, trial_column
from dropcli.schema import NEW_IN, Fraction, Section

if TYPE_CHECKING:
    import torch


class LabelSmoothingSettings(Section):
    label_smoothing: Fraction = Field(0.0, json_schema_extra={"label": "label smoothing", NEW_IN: "0.2"}, description=(
        "ε: the training targets are (1 - ε) one-hot + ε / classes; 0 is off (0.1 is the paper's)"))


@REGULARIZERS.register("label_smoothing")
class LabelSmoothing(Stackable, Regularizer):
    settings = LabelSmoothingSettings
    search_space = {"regularizer.label_smoothing": ("float", 0.0, 0.3, False)}
    per_trial_keys = ("label_smoothing",)

    def __init__(self, epsilon: float | torch.Tensor):
        self.epsilon = epsilon

    @classmethod
    def from_config(cls, config: Any) -> LabelSmoothing | None:
        return cls(config.label_smoothing) if config.label_smoothing else None

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> LabelSmoothing | None:
        epsilons = trial_column([t.epsilon if isinstance(t, LabelSmoothing) else 0.0 for t in trials], device)
        return None if epsilons is None else cls(epsilons)

    def describe(self) -> str:
        return f"label smoothing {self.epsilon:g}"

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F  # here, not at the top: keeps torch off the --help path

        if not isinstance(self.epsilon, float):  # a stacked group: logits [T, classes, B], ε [T]
            epsilon = self.epsilon.view(-1, 1)
            uniform = -F.log_softmax(logits, dim=1).mean(1)  # cross-entropy against the uniform targets, [T, B]
            hard = F.cross_entropy(logits, y, reduction="none")
            return ((1 - epsilon) * hard + epsilon * uniform).mean(1).sum()  # each trial's mean, summed
        return F.cross_entropy(logits, y, label_smoothing=self.epsilon)
