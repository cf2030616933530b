"""mlp: the quickstart's network. Hidden layers linear → [BatchNorm] → ReLU → dropout; the output layer has no
dropout. Stacked form: stacked.StackedMLP."""

from __future__ import annotations

import math

import torch
from torch import nn

from dropcli.config import ModelConfig
from dropcli.regularizers.dropout_layers import DropoutOptions
from dropcli.stacked import SAME, Layout, StackedModel


def build(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
          dropout: DropoutOptions) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()] + ([dropout.inputs()] if dropout.input_p else [])
    width = math.prod(input_shape)
    for hidden in config.hidden_sizes:
        norm = [nn.BatchNorm1d(hidden)] if config.batchnorm else []
        layers += [dropout.linear(width, hidden), *norm, nn.ReLU(), dropout.hidden()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))  # the output layer: no dropout
    return nn.Sequential(*layers)


class StackedMLP(StackedModel):
    """T copies of models.build_mlp's network.

    Hidden layers hold weights as [T, in, out] and compute h @ W; the output layer keeps nn.Linear's
    [T, classes, in] and computes the logits class-major, W @ h^T → [T, classes, B]: with 10 classes the
    batch-major product (N = 10) ran at a fifth of the CPU's speed, forward and backward.

    Evaluated on CPU trial by trial (trial_logits): one trial's whole split through ordinary matrix products
    beat the batched products over cache-sized chunks of all trials (16 quickstart trials' training split:
    2.1 against 2.5 ms a trial on one thread, 1.1 against 2.1 on two)."""

    evaluates_by_trial = True

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        depth = sum(isinstance(m, nn.Linear) for m in models[0].modules())
        transpose: Layout = lambda t: t.transpose(-1, -2)  # noqa: E731
        row: tuple[Layout, Layout] = (lambda t: t.unsqueeze(-2), lambda t: t.squeeze(-2))
        column: tuple[Layout, Layout] = (lambda t: t.unsqueeze(-1), lambda t: t.squeeze(-1))
        layouts = []
        for layer in range(depth):
            last = layer == depth - 1
            layouts += [(SAME, SAME) if last else (transpose, transpose), column if last else row]
        parameters = self.stack(models, layouts)
        self.weights = nn.ParameterList(parameters[0::2])
        self.biases = nn.ParameterList(parameters[1::2])
        self.hidden_sizes = [self.shapes[id(w)][1] for w in self.weights[:-1]]

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) per layer, shaped: hidden [T, in, out] and [T, 1, out]; output [T, classes, in] and
        [T, classes, 1]."""
        return [(self.shaped(weight), self.shaped(bias)) for weight, bias in zip(self.weights, self.biases)]

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """x: [T, B, ...] → logits, class-major [T, classes, B]. masks: one scaled dropout mask [T, B, H] (or
        None) per hidden layer, applied after the ReLU as in build_mlp."""
        *hidden, (output_weight, output_bias) = self.layers()
        h = x.flatten(2)
        for i, (weight, bias) in enumerate(hidden):
            h = torch.baddbmm(bias, h, weight).relu()
            if masks is not None and masks[i] is not None:
                h = h * masks[i]
        return torch.baddbmm(output_bias, output_weight, h.transpose(1, 2))

    def trial_logits(self, trial: int, x: torch.Tensor) -> torch.Tensor:
        *hidden, (output_weight, output_bias) = self.layers()
        h = x.flatten(1)
        for weight, bias in hidden:
            h = torch.addmm(bias[trial, 0], h, weight[trial]).relu_()
        return torch.addmm(output_bias[trial, :, 0], h, output_weight[trial].T)

    def mask_shapes(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        return [(x.shape[1], width) for width in self.hidden_sizes]

    def eval_width(self, x: torch.Tensor) -> int:
        return max(self.hidden_sizes)

    def weight_parameters(self) -> list[torch.Tensor]:
        return [self.shaped(weight) for weight in self.weights]

    def unit_weights(self) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        """Each weight with the dimension that holds a unit's incoming vector (max-norm's unit)."""
        weights = self.weight_parameters()
        return [(weight, (1,)) for weight in weights[:-1]] + [(weights[-1], (2,))]


STACKED = StackedMLP
