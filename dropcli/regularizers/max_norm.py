"""Max-norm (Srivastava et al. 2014): after every step, rescale each unit's incoming weight vector (a row of a
Linear weight, an output channel's filter bank of a conv) so that its L2 norm is at most `max_norm`.
Stacked, a norm per trial ([T]; inf for a trial without it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from dropcli.regularizers.base import REGULARIZERS, Regularizer, Stackable, weight_parameters
from dropcli.schema import Section

if TYPE_CHECKING:
    import torch
    from torch import nn


class MaxNormSettings(Section):
    max_norm: Annotated[float, Field(gt=0.0)] | None = Field(None, json_schema_extra={"label": "max-norm"},
                                                            description=(
        "after each step, each unit's incoming weight vector is rescaled to at most this L2 norm; null: off"))


@REGULARIZERS.register("max_norm")
class MaxNorm(Stackable, Regularizer):
    settings = MaxNormSettings
    search_space = {"regularizer.max_norm": ("float", 0.5, 20.0, True)}
    per_trial_keys = ("max_norm",)

    def __init__(self, max_norm: float | torch.Tensor):
        self.max_norm = max_norm

    @classmethod
    def from_config(cls, config: Any) -> MaxNorm | None:
        return cls(config.max_norm) if config.max_norm else None

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> MaxNorm | None:
        import torch  # here, not at the top: keeps torch off the --help path

        if not any(isinstance(t, MaxNorm) for t in trials):
            return None
        norms = [t.max_norm if isinstance(t, MaxNorm) else float("inf") for t in trials]  # inf: unclipped
        return cls(torch.tensor(norms, device=device))

    def describe(self) -> str:
        return f"max-norm {self.max_norm:g}"

    def after_step(self, model: nn.Module) -> None:
        import torch  # here, not at the top: keeps torch off the --help path

        with torch.no_grad():
            if not torch.is_tensor(self.max_norm):
                for w in weight_parameters(model):
                    w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=self.max_norm))
                return
            # a stacked model: each trial's units with that trial's norm, rescaled as torch.renorm does
            for w, unit_dims in model.unit_weights():  # type: ignore[operator]
                limit = self.max_norm.view(-1, *[1] * (w.ndim - 1))  # type: ignore[union-attr]  # [T] here
                norms = w.norm(dim=unit_dims, keepdim=True)
                w.mul_(torch.where(norms > limit, limit / (norms + 1e-7), 1.0))
