"""Early stopping: stop when the monitored validation metric has not improved by `min_delta` for `patience`
epochs, and restore the best epoch's weights before the test evaluation. Stacked, each trial's own instance
decides on its lone model; a stopped trial leaves the stack."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from dropcli.regularizers.base import REGULARIZERS, Regularizer, Stackable
from dropcli.schema import NonNegative, Section

if TYPE_CHECKING:
    import torch
    from torch import nn


class EarlyStoppingConfig(Section):
    patience: Annotated[int, Field(gt=0)] = Field(10, description="epochs without improvement before stopping")
    min_delta: NonNegative = Field(0.0, description="an improvement smaller than this does not count")
    metric: Literal["val_loss", "val_acc"] = Field("val_loss", description="the validation metric watched")


class EarlyStoppingSettings(Section):
    early_stopping: EarlyStoppingConfig | None = Field(None, json_schema_extra={"label": "early stopping"},
                                                       description=(
        "e.g. `{patience: 10, min_delta: 0, metric: val_loss}`: stop when the metric has not improved for "
        "`patience` epochs, and restore the best epoch's weights before the test evaluation. null: train for "
        "all epochs"))


@REGULARIZERS.register("early_stopping")
class EarlyStopping(Stackable, Regularizer):
    settings = EarlyStoppingSettings
    # which metric it watches matters as much as its patience (docs/claims.md, claim 2): both are tuned
    search_space = {"regularizer.early_stopping.patience": ("int", 1, 30, False),
                    "regularizer.early_stopping.metric": ("choice", ("val_loss", "val_acc"))}
    per_trial_keys = ("early_stopping",)
    reads_weights_at_epoch_end = True  # it keeps the best epoch's weights

    def __init__(self, config: EarlyStoppingConfig):
        self.config = config
        self.sign = 1.0 if config.metric == "val_loss" else -1.0  # compare as "lower is better"
        self.best_score = float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_epoch: int | None = None

    @classmethod
    def from_config(cls, config: Any) -> EarlyStopping | None:
        return cls(config.early_stopping) if config.early_stopping else None

    @classmethod
    def format_setting(cls, key: str, value: Any) -> str | None:
        options = json.loads(value) if isinstance(value, str) else value
        return f"early stopping (patience {options['patience']}, {options['metric']})"

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> None:
        return None  # nothing acts on the stack: the loop asks each trial's own instance (end_of_epoch)

    def describe(self) -> str:
        return f"early stopping ({self.config.metric}, patience {self.config.patience})"

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
