"""cnn: conv blocks on 1-D signals (Conv1d) or images (Conv2d), a dense hidden layer and the output.
Stacked form: stacked.StackedCNN (one grouped convolution)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dropcli.config import ModelConfig
from dropcli.regularizers.dropout_layers import DropoutOptions
from dropcli.stacked import SAME, Layout, StackedModel


def build(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
          dropout: DropoutOptions) -> nn.Module:
    """Conv blocks (conv → [BatchNorm] → ReLU → dropout → max-pool), then a dense hidden layer and the output.
    A 1-D input such as MNIST-1D ([L]) uses Conv1d; images ([C, H, W]) use Conv2d. With
    `spatial_dropout`, the conv blocks drop whole feature maps (Tompson et al. 2015)."""
    one_d = len(input_shape) == 1
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if one_d else (nn.Conv2d, nn.MaxPool2d)
    layers: list[nn.Module] = [nn.Unflatten(1, (1, input_shape[0]))] if one_d else []
    layers += [dropout.inputs()] if dropout.input_p else []
    in_channels = 1 if one_d else input_shape[0]
    for out_channels in config.channels:
        block_dropout = dropout.conv_block(per_channel=config.spatial_dropout)
        norm = [(nn.BatchNorm1d if one_d else nn.BatchNorm2d)(out_channels)] if config.batchnorm else []
        layers += [conv(in_channels, out_channels, kernel_size=3, padding=1), *norm, nn.ReLU(), block_dropout, pool(2)]
        in_channels = out_channels
    layers.append(nn.Flatten())
    features = nn.Sequential(*layers)
    with torch.no_grad():
        flat = features(torch.zeros(1, *input_shape)).shape[1]
    head = [dropout.linear(flat, config.hidden_size), nn.ReLU(), dropout.hidden(),
            nn.Linear(config.hidden_size, num_classes)]
    return nn.Sequential(features, *head)


class StackedCNN(StackedModel):
    """T copies of models.build_cnn's network. The conv blocks run as one grouped convolution (groups = T:
    the trials' channels side by side, [B, T·C, ...]); the dense head as the MLP's batched products."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        features, *head = models[0]
        convs = [m for m in features if isinstance(m, (nn.Conv1d, nn.Conv2d))]
        self.one_d = isinstance(convs[0], nn.Conv1d)
        self.blocks = [(conv.out_channels, conv.kernel_size, conv.padding) for conv in convs]
        # spatial dropout drops whole feature maps: as the trials that draw masks at all say
        self.per_channel = any(m.per_channel for model in models for m in model[0] if hasattr(m, "per_channel"))
        transpose: Layout = lambda t: t.transpose(-1, -2)  # noqa: E731
        layouts = [(SAME, SAME)] * (2 * len(convs)) + [
            (transpose, transpose), (lambda t: t.unsqueeze(-2), lambda t: t.squeeze(-2)),  # dense hidden: [flat, H]
            (SAME, SAME), (lambda t: t.unsqueeze(-1), lambda t: t.squeeze(-1))]  # output, class-major
        parameters = self.stack(models, layouts)
        self.conv_parameters = nn.ParameterList(parameters[:2 * len(convs)])
        self.dense_weight, self.dense_bias, self.output_weight, self.output_bias = parameters[2 * len(convs):]
        self.hidden_size = self.shapes[id(self.dense_weight)][1]

    def features(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        """x: [T, B, L] or [T, B, C, H, W] → the flattened features, [T, B, flat]."""
        trials, batch = x.shape[:2]
        h = x.unsqueeze(2) if self.one_d else x  # [T, B, C, ...]
        h = h.transpose(0, 1).flatten(1, 2)  # [B, T·C, ...]: each trial's channels side by side
        conv, pool = (F.conv1d, F.max_pool1d) if self.one_d else (F.conv2d, F.max_pool2d)
        for block, (_, _, padding) in enumerate(self.blocks):
            weight, bias = (self.shaped(p) for p in self.conv_parameters[2 * block:2 * block + 2])
            h = conv(h, weight.flatten(0, 1), bias.flatten(), padding=padding, groups=trials).relu()
            mask = None if masks is None else masks[block]
            if mask is not None:  # [T, B, C, ...] → the grouped layout
                h = h * mask.transpose(0, 1).flatten(1, 2)
            h = pool(h, 2)
        return h.unflatten(1, (trials, -1)).flatten(2).transpose(0, 1)  # [T, B, C·L']

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        dense_weight, dense_bias, output_weight, output_bias = (
            self.shaped(p) for p in (self.dense_weight, self.dense_bias, self.output_weight, self.output_bias))
        h = torch.baddbmm(dense_bias, self.features(x, masks), dense_weight).relu()
        if masks is not None and masks[-1] is not None:
            h = h * masks[-1]
        return torch.baddbmm(output_bias, output_weight, h.transpose(1, 2))

    def block_shapes(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        """Each conv block's activation shape for one example ([C, L] or [C, H, W]), before its pooling."""
        size = [x.shape[2]] if self.one_d else list(x.shape[3:])  # x: [T, B, L] or [T, B, C, H, W]
        shapes = []
        for out_channels, _, _ in self.blocks:
            shapes.append((out_channels, *size))
            size = [s // 2 for s in size]
        return shapes

    def mask_shapes(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        batch = x.shape[1]
        blocks = [(batch, shape[0], *([1] * (len(shape) - 1))) if self.per_channel else (batch, *shape)
                  for shape in self.block_shapes(x)]
        return [*blocks, (batch, self.hidden_size)]

    def eval_width(self, x: torch.Tensor) -> int:
        return max(max(math.prod(shape) for shape in self.block_shapes(x)), self.hidden_size)

    def weight_parameters(self) -> list[torch.Tensor]:
        return [self.shaped(p) for p in (*self.conv_parameters[0::2], self.dense_weight, self.output_weight)]

    def unit_weights(self) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        *convs, dense, output = self.weight_parameters()
        return [*[(weight, tuple(range(2, weight.ndim))) for weight in convs], (dense, (1,)), (output, (2,))]


STACKED = StackedCNN
