"""Models by name: mlp, cnn, gru, lstm, rnn. Each builder takes its dropout rate from the regularizers.

Dropout follows each family's convention: after the activation of every hidden layer, never on the
output layer; in the recurrent models (GRU, LSTM, plain tanh RNN) on the non-recurrent connections only
(between layers and before the classifier, Zaremba et al. 2014), so the recurrent state is not disturbed
at every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dropcli.config import ModelConfig
from dropcli.registry import Registry
from dropcli.regularizers.dropout_layers import DropoutOptions

Builder = Callable[[ModelConfig, tuple[int, ...], int, "DropoutOptions"], nn.Module]
MODELS: Registry[Builder] = Registry("model")


def build_model(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
                dropout: DropoutOptions | float = 0.0) -> nn.Module:
    options = dropout if isinstance(dropout, DropoutOptions) else DropoutOptions(p=float(dropout))
    return MODELS.lookup(config.name)(config, input_shape, num_classes, options)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------------


@MODELS.register("mlp")
def build_mlp(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
              dropout: DropoutOptions) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()] + ([dropout.inputs()] if dropout.input_p else [])
    width = math.prod(input_shape)
    for hidden in config.hidden_sizes:
        norm = [nn.BatchNorm1d(hidden)] if config.batchnorm else []
        layers += [dropout.linear(width, hidden), *norm, nn.ReLU(), dropout.hidden()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))  # the output layer: no dropout
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------------------


@MODELS.register("cnn")
def build_cnn(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
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


# ---------------------------------------------------------------------------------------------------------


class RecurrentLayer(nn.Module):
    """One recurrent layer (GRU, LSTM or plain tanh RNN) written with plain matmuls, the same equations and
    initialisation as nn.GRU / nn.LSTM / nn.RNN, so that it stacks for batched sweeps (stacked.py); the
    torch modules have no batching rule."""

    def __init__(self, input_size: int, hidden_size: int, cell: str = "gru"):
        super().__init__()
        self.hidden_size, self.cell = hidden_size, cell
        gates = CELLS[cell].gates
        self.input_weight = nn.Parameter(torch.empty(gates * hidden_size, input_size))
        self.hidden_weight = nn.Parameter(torch.empty(gates * hidden_size, hidden_size))
        self.input_bias = nn.Parameter(torch.empty(gates * hidden_size))
        self.hidden_bias = nn.Parameter(torch.empty(gates * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)  # torch's initialisation for all three
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """[N, T, input_size] → [N, T, hidden_size]."""
        # the input projections of all time steps at once; only the recurrent part is sequential
        input_gates = sequence @ self.input_weight.T + self.input_bias
        cell = CELLS[self.cell]
        state = tuple(sequence.new_zeros(sequence.shape[0], self.hidden_size) for _ in range(cell.states))
        outputs = []
        for step in range(sequence.shape[1]):
            state = cell.step(input_gates[:, step], state[0] @ self.hidden_weight.T + self.hidden_bias, state)
            outputs.append(state[0])
        return torch.stack(outputs, dim=1)



def gru_step(input_gates: torch.Tensor, hidden_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One GRU step from the gates' pre-activations (reset, update, candidate along the last dimension),
    shared by the lone layer and the stacked one (stacked.py)."""
    in_r, in_z, in_n = input_gates.chunk(3, dim=-1)
    hid_r, hid_z, hid_n = hidden_gates.chunk(3, dim=-1)
    reset = torch.sigmoid(in_r + hid_r)
    update = torch.sigmoid(in_z + hid_z)
    candidate = torch.tanh(in_n + reset * hid_n)
    return (1 - update) * candidate + update * h


def gru_cell(input_gates: torch.Tensor, hidden_gates: torch.Tensor, state: tuple) -> tuple:
    return (gru_step(input_gates, hidden_gates, state[0]),)


def lstm_cell(input_gates: torch.Tensor, hidden_gates: torch.Tensor, state: tuple) -> tuple:
    """nn.LSTM's step: input, forget, cell and output gates along the last dimension; state (h, c)."""
    i, f, g, o = (input_gates + hidden_gates).chunk(4, dim=-1)
    c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def rnn_cell(input_gates: torch.Tensor, hidden_gates: torch.Tensor, state: tuple) -> tuple:
    """nn.RNN's (Elman) step with tanh."""
    return (torch.tanh(input_gates + hidden_gates),)


@dataclass(frozen=True)
class Cell:
    gates: int  # blocks of hidden_size rows in the weights
    states: int  # tensors carried from step to step; the first is the output h
    step: Callable[[torch.Tensor, torch.Tensor, tuple], tuple]


CELLS = {"gru": Cell(3, 1, gru_cell), "lstm": Cell(4, 2, lstm_cell), "rnn": Cell(1, 1, rnn_cell)}


class RecurrentClassifier(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int, num_classes: int, dropout: DropoutOptions,
                 cell: str = "gru"):
        super().__init__()
        self.cell = cell
        self.input_dropout = dropout.inputs(sequence=True)  # the identity unless input_dropout > 0
        sizes = [input_size] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(RecurrentLayer(a, b, cell) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropouts = nn.ModuleList(dropout.hidden(sequence=True) for _ in range(num_layers))
        self.output = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = self.input_dropout(as_sequence(x))
        for layer, dropout in zip(self.layers, self.dropouts):
            sequence = dropout(layer(sequence))  # non-recurrent connections only
        return self.output(sequence[:, -1])


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """MNIST-1D [N, L] → L steps of 1 feature; images [N, C, H, W] → H steps (rows) of C*W features."""
    if x.ndim == 2:
        return x.unsqueeze(-1)
    n, c, h, w = x.shape
    return x.permute(0, 2, 1, 3).reshape(n, h, c * w)


def build_recurrent(cell: str) -> Callable[..., nn.Module]:
    def build(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
              dropout: DropoutOptions) -> nn.Module:
        input_size = 1 if len(input_shape) == 1 else input_shape[0] * input_shape[2]
        return RecurrentClassifier(input_size, config.hidden_size, config.num_layers, num_classes, dropout, cell)
    return build


# the same dropout choices for all three: naive or variational (rnn_dropout), between layers and before the output
for _cell in CELLS:
    MODELS.register(_cell)(build_recurrent(_cell))
