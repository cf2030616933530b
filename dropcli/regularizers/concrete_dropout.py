"""Concrete dropout (Gal, Hron & Kendall 2017): every hidden dropout layer learns its rate p through a relaxed
Bernoulli mask, and the loss gains, per layer, l^2/N |W|^2 / (1-p) for the weights that read the dropped units
plus 2/N * units * (p log p + (1-p) log(1-p)): the rate's prior, which favours noise (p towards 0.5) against
the data's pull towards p = 0. The dropout regularizer builds the layers (dropout_layers.DropoutOptions.concrete,
dropout_layers.ConcreteDropout); this one trains them. It does not stack: each trial learns its own rates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, model_validator

from dropcli.models import model_entry, names_with
from dropcli.regularizers.base import REGULARIZERS, Config, Regularizer, Splits
from dropcli.schema import NonNegative, Section

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dropcli.regularizers.dropout_layers import ConcreteDropout as ConcreteDropoutLayer


class ConcreteDropoutConfig(Section):
    """Concrete dropout (Gal, Hron & Kendall 2017): each hidden dropout layer learns its own rate."""

    init_p: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.1, description="every layer's rate before training")
    temperature: Annotated[float, Field(gt=0.0, le=1.0)] = Field(0.1, description=(
        "temperature of the relaxed Bernoulli mask (the paper's 0.1)"))
    length_scale: NonNegative = Field(1e-4, description=(
        "prior length scale l: the loss gains, per layer, l²/N · ‖W‖² / (1-p) for the weights reading the dropped "
        "units, and 2/N · units · (p log p + (1-p) log(1-p)) for the rate, which pulls p towards 0.5 against the "
        "data's pull (N training examples)"))
    rate_lr: Annotated[float, Field(gt=0.0)] = Field(0.01, description=(
        "learning rate of the rates: Adam moves a parameter by about its lr per step, so at the weights' 1e-3 a "
        "rate would hardly move in 60 epochs"))


class ConcreteDropoutSettings(Section):
    concrete_dropout: ConcreteDropoutConfig | None = Field(None, json_schema_extra={"label": "Concrete dropout"},
                                                           description=(
        "mlp, cnn: `{}` or `{init_p: 0.1, ...}`: Concrete dropout (Gal, Hron & Kendall 2017), every hidden dropout "
        "layer learns its rate p. Logged per epoch as `learned_p1`, `learned_p2`, … in metrics.csv, as "
        "`learned_p` in summary.json and in a table of report.md. Not with `dropout`, `gaussian_dropout` or "
        "`dropblock` (they fix the rate it learns); not for recurrent models; trains one trial at a time in "
        "sweeps. null: off"))

    @model_validator(mode="after")
    def _concrete_replaces_fixed_rates(self) -> Any:
        if self.concrete_dropout is not None:
            fixed = [key for key in ("dropout", "gaussian_dropout", "dropblock") if getattr(self, key, None)]
            if fixed:
                raise ValueError(f"regularizer.concrete_dropout learns the hidden units' rate: set "
                                 f"regularizer.{fixed[0]} to 0 (or null)")
        return self


@REGULARIZERS.register("concrete_dropout")
class ConcreteDropout(Regularizer):
    settings = ConcreteDropoutSettings
    reads_weights_at_epoch_end = True  # its rates are in the model
    keeps_weights_after_evaluation = True  # finish only reads the learned rates

    def __init__(self, config: ConcreteDropoutConfig):
        self.config = config
        self.train_examples = 1

    needs_own_layers = {"concrete_dropout": "it puts dropcli's Concrete dropout layers, which learn their rates, "
                                            "into its own models"}

    @classmethod
    def check(cls, config: Any) -> None:
        if config.regularizer.concrete_dropout is not None and not model_entry(config.model.name).learns_rates:
            raise ValueError(f"regularizer.concrete_dropout: model.name {names_with(lambda e: e.learns_rates)} "
                             f"(not {config.model.name}; recurrent models take regularizer.dropout)")

    @classmethod
    def metric_columns(cls, config: Any) -> list[str]:
        """One learned rate per hidden dropout layer."""
        if config.regularizer.concrete_dropout is None:
            return []
        layers = len(config.model.hidden_sizes) if config.model.name == "mlp" else len(config.model.channels) + 1
        return [f"learned_p{i}" for i in range(1, layers + 1)]

    @classmethod
    def from_config(cls, config: Any) -> ConcreteDropout | None:
        return cls(config.concrete_dropout) if config.concrete_dropout is not None else None

    def stacking_refusal(self) -> str | None:
        return "Concrete dropout has no stacked implementation (each trial learns its own rates)"

    def describe(self) -> str:
        return f"Concrete dropout (from p={self.config.init_p:g})"

    def start(self, config: Config, splits: Splits, device: torch.device) -> None:
        self.train_examples = len(splits.y_train)

    def parameter_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        return [{"params": [layer.p_logit for layer in layers_of(model)], "lr": self.config.rate_lr}]

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        weight_factor = self.config.length_scale ** 2 / self.train_examples
        rate_factor = 2.0 / self.train_examples
        total = None
        for layer, weight in concrete_layers(model):
            p = layer.p
            term = (weight_factor * weight.square().sum() / (1 - p)
                    + rate_factor * layer.units * (p * p.log() + (1 - p) * (-p).log1p()))
            total = term if total is None else total + term
        return total

    def epoch_metrics(self, model: nn.Module) -> dict[str, float]:
        return {f"learned_p{i}": rate for i, rate in enumerate(learned_rates(model), start=1)}

    def finish(self, model: nn.Module) -> dict[str, Any]:
        return {"learned_p": learned_rates(model)}


def layers_of(model: nn.Module) -> list[ConcreteDropoutLayer]:
    from dropcli.regularizers.dropout_layers import ConcreteDropout as Layer  # here: keeps torch off --help

    return [module for module in model.modules() if isinstance(module, Layer)]


def concrete_layers(model: nn.Module) -> list[tuple[ConcreteDropoutLayer, torch.Tensor]]:
    """Each Concrete dropout layer with the weight of the layer that reads its output: the next module, in
    the model's order, that has a weight matrix or filter bank (mlp and cnn are built in data-flow order)."""
    layers = {id(layer) for layer in layers_of(model)}
    pairs, waiting = [], None
    for module in model.modules():
        if id(module) in layers:
            waiting = module
        elif waiting is not None and getattr(getattr(module, "weight", None), "ndim", 0) >= 2:
            pairs.append((waiting, module.weight))
            waiting = None
    return pairs  # type: ignore[return-value]


def learned_rates(model: nn.Module) -> list[float]:
    """The rates the Concrete dropout layers have learned, in the model's order (one device sync)."""
    import torch  # here, not at the top: keeps torch off the --help path

    layers = layers_of(model)
    return torch.stack([layer.p.detach() for layer in layers]).tolist() if layers else []
