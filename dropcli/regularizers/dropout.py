"""Dropout and its variants (Srivastava et al. 2014): Bernoulli or Gaussian noise on the hidden units, inverted
or scaled at test, dropout on the inputs, DropConnect, DropBlock, variational (per-sequence) dropout in the
recurrent models, and a schedule of the rate. The layers are in dropout_layers.py (nn.Modules import torch);
this module holds the settings, checks, search space and the regularizer, and imports torch only when a run
starts. Stacked, hidden-unit dropout draws every trial's masks from its own stream (masks.py), at its own p.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from dropcli.models import model_entry, names_with
from dropcli.regularizers.base import REGULARIZERS, Regularizer, Stackable
from dropcli.schema import Fraction, Section

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dropcli.masks import MaskStream
    from dropcli.regularizers.dropout_layers import DropoutOptions


class DropBlockConfig(Section):
    p: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.1, description=(
        "share of feature-map positions dropped, in contiguous blocks; on maps not much larger than the block a "
        "little more is dropped (0.10 at length 40, ~0.15 on 7×7 with block 3)"))
    block_size: Annotated[int, Field(gt=0)] = Field(3, description=(
        "side of each square (2-D) or length of each run (1-D) dropped"))


class DropoutSettings(Section):
    # label=: the regularizer's name in reports; a labelled key switches a regularizer on when it is not 0/null
    dropout: Fraction = Field(0.0, json_schema_extra={"label": "dropout"}, description=(
        "rate p: each hidden activation is zeroed with probability p while training (inverted dropout: the kept "
        "ones ×1/(1-p), identity in evaluation), after each hidden activation, never on the output layer; in "
        "recurrent models on the non-recurrent connections"))
    dropout_style: Literal["inverted", "scale_at_test"] = Field("inverted", description=(
        "where the correction for dropped units goes: `inverted` ×1/(1-p) while training, or `scale_at_test` "
        "no scaling in training and ×(1-p) at evaluation (the original 2012/2014 formulation); the expected "
        "activations are the same"))
    input_dropout: Fraction = Field(0.0, json_schema_extra={"label": "input dropout"}, description=(
        "dropout rate on the inputs (the 2014 paper used 0.2 there, 0.5 on hidden units)"))
    gaussian_dropout: Fraction = Field(0.0, json_schema_extra={"label": "gaussian dropout"}, description=(
        "hidden units multiplied by N(1, p/(1-p)) noise instead of 0/1 masks; not together with `dropout`"))
    dropconnect: Fraction = Field(0.0, json_schema_extra={"label": "DropConnect"}, description=(
        "mlp, cnn: DropConnect on the weights of hidden linear layers, y = f((W ⊙ M) x / (1-p) + b), one mask M "
        "per mini-batch (the 2013 paper draws one per example)"))
    dropblock: DropBlockConfig | None = Field(None, json_schema_extra={"label": "DropBlock"}, description=(
        "cnn only: e.g. `{p: 0.1, block_size: 3}` drops contiguous blocks of the conv feature maps (instead of "
        "the conv blocks' dropout); null: off"))
    rnn_dropout: Literal["naive", "variational"] = Field("naive", description=(
        "gru, lstm, rnn: `naive` draws a new mask at every time step; `variational` one mask per sequence, "
        "reused at every step, on the inputs and between layers"))
    dropout_schedule: Literal["constant", "linear_warmup", "linear_decay"] = Field("constant", description=(
        "the simplest adaptive dropout: `linear_warmup` ramps p up from 0 at epoch 1 to its full value from epoch "
        "N+1, `linear_decay` the reverse, N = `dropout_schedule_epochs`; acts on dropout and input dropout "
        "(not DropConnect or DropBlock)"))
    dropout_schedule_epochs: Annotated[int, Field(gt=0)] = Field(10, description=(
        "epochs the warmup or decay of `dropout_schedule` takes"))

    @field_validator("dropout", "input_dropout", "dropconnect")
    @classmethod
    def _resolvable_rate(cls, value: float) -> float:
        if round(value * 65536) >= 65536:  # masks resolve p to 1/65536 (masks.MASK_LEVELS)
            raise ValueError("must be at most 0.9999923 (masks resolve p to 1/65536): nothing would be left to "
                             "train")
        return value

    @model_validator(mode="after")
    def _one_noise_for_hidden_units(self) -> Any:
        if self.dropout and self.gaussian_dropout:
            raise ValueError("dropout and gaussian_dropout both act on the hidden units: set one of them to 0")
        return self


@REGULARIZERS.register("dropout")
class Dropout(Stackable, Regularizer):
    """The dropout family, handed to the model builder (dropout_layers.DropoutOptions)."""

    settings = DropoutSettings
    search_space = {"regularizer.dropout": ("float", 0.0, 0.8, False)}
    per_trial_keys = ("dropout",)
    keeps_weights_after_evaluation = True  # finish sets the layers' rates, never a weight

    def __init__(self, options: DropoutOptions, schedule: str = "constant", schedule_epochs: int = 10):
        self.options, self.schedule, self.schedule_epochs = options, schedule, schedule_epochs
        self.factor = 1.0  # the schedule's factor last applied to the layers' p

    # keys that need dropcli's own dropout layers (models.ModelEntry.own_layers), each with the reason a model
    # from code, which has torch's layers only, is refused them
    needs_own_layers = {
        "input_dropout": "dropcli puts it before the first layer of its own models; put an nn.Dropout on the "
                         "input of yours, whose p regularizer.dropout sets",
        "gaussian_dropout": "it replaces the masks of dropcli's own dropout layers with Gaussian noise",
        "dropconnect": "it replaces the hidden linear layers of dropcli's own models with DropConnect layers",
        "dropblock": "it puts dropcli's DropBlock layers into the conv blocks of its own cnn",
        "rnn_dropout": "variational dropout needs dropcli's own recurrent models, which reuse one mask per sequence",
        "dropout_style": "scale-at-test needs dropcli's own dropout layers (torch's nn.Dropout is inverted)",
        "dropout_schedule": "a schedule sets the rate of dropcli's own dropout layers at each epoch",
    }

    @classmethod
    def check(cls, config: Any) -> None:
        entry = model_entry(config.model.name)
        if config.regularizer.dropblock is not None and not entry.feature_maps:
            raise ValueError(f"regularizer.dropblock needs feature maps: only model.name "
                             f"{names_with(lambda e: e.feature_maps)} has them (got {config.model.name})")
        if config.regularizer.dropconnect and not entry.hidden_linear:
            raise ValueError(f"regularizer.dropconnect acts on hidden linear layers: model.name "
                             f"{names_with(lambda e: e.hidden_linear)} (the {config.model.name} has none)")

    @classmethod
    def format_setting(cls, key: str, value: Any) -> str | None:
        if key != "regularizer.dropblock":
            return None
        options = json.loads(value) if isinstance(value, str) else value
        return f"DropBlock (p={options['p']:g}, block {options['block_size']})"

    @classmethod
    def from_config(cls, config: Any) -> Dropout | None:
        from dropcli.regularizers.dropout_layers import DropoutOptions  # here: keeps torch off the --help path

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
        from dropcli.regularizers.dropout_layers import Dropout as DropoutLayer  # here: keeps torch off --help

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

    # --- stacked: hidden-unit Bernoulli dropout at a per-trial p (StackedDropout); the other variants refuse

    def stacking_refusal(self) -> str | None:
        o = self.options
        if (o.noise != "bernoulli" or o.style != "inverted" or o.input_p or o.dropconnect_p or o.dropblock
                or self.schedule != "constant"):
            return ("scale-at-test, input, gaussian, scheduled dropout, DropConnect and DropBlock have no "
                    "stacked implementation")
        return None

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> Regularizer | None:
        rates = [trial.options.p if isinstance(trial, Dropout) else 0.0 for trial in trials]
        return StackedDropout(rates, device) if any(p > 0 for p in rates) else None  # p = 0 draws nothing


class StackedDropout(Stackable, Regularizer):
    """A stacked group's dropout masks for one step: every trial's from its own stream (keyed by its seed, at
    the position the trials share), all sites at once, with per-trial rates as [T] cutoffs and keep values."""

    def __init__(self, rates: list[float], device: torch.device):
        import torch  # here, not at the top: keeps torch off the --help path

        from dropcli.masks import keep_value, lane_cutoff

        # p = 0 gives the cutoff -32768, which every lane passes
        self.cutoffs = torch.tensor([lane_cutoff(p) for p in rates], dtype=torch.int16, device=device)
        self.kept = torch.tensor([keep_value(p) for p in rates], dtype=torch.float32, device=device)

    def describe(self) -> str:
        return "dropout (stacked)"

    def masks(self, stream: MaskStream, shapes: list[tuple[int, ...]]) -> list[torch.Tensor | None] | None:
        return list(stream.masks(shapes, self.cutoffs, self.kept))
