"""Building a model by name, when a run starts: the registry's entry (dropcli.models, torch-free) names the family
module, imported here, whose `build` makes the network."""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from dropcli.config import ModelConfig
from dropcli.models import model_entry
from dropcli.regularizers.dropout_layers import DropoutOptions


def family(name: str) -> ModuleType:
    """The module that builds model `name` (and holds its stacked form, `STACKED`)."""
    return model_entry(name).load()


def build_model(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
                dropout: DropoutOptions | float = 0.0) -> nn.Module:
    options = dropout if isinstance(dropout, DropoutOptions) else DropoutOptions(p=float(dropout))
    return family(config.name).build(config, tuple(input_shape), num_classes, options)


def verify_model(config: ModelConfig, model: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    """ConfigError unless the model takes a batch `x` of the data to logits [batch, num_classes]: asked of a
    model from code (its family's `verify`) before anything trains; dropcli's own are built to fit."""
    verify = getattr(family(config.name), "verify", None)
    if verify is not None:
        verify(model, x, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
