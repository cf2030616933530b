"""gru, lstm, rnn: recurrent classifiers whose layers are written with plain matmuls (the same equations and
initialisation as nn.GRU / nn.LSTM / nn.RNN), so that they stack for batched sweeps (stacked.StackedRecurrent).

Dropout on the non-recurrent connections only (between layers and before the classifier, Zaremba et al.
2014), so the recurrent state is not disturbed at every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dropcli.config import ModelConfig
from dropcli.regularizers.dropout_layers import DropoutOptions
from dropcli.stacked import SAME, StackedModel


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


def build(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int, dropout: DropoutOptions) -> nn.Module:
    """The cell config.model.name names; the same dropout choices for all three: naive or variational
    (rnn_dropout), between layers and before the output."""
    input_size = 1 if len(input_shape) == 1 else input_shape[0] * input_shape[2]
    return RecurrentClassifier(input_size, config.hidden_size, config.num_layers, num_classes, dropout, config.name)


class StackedRecurrent(StackedModel):
    """T copies of models.RecurrentClassifier (GRU, LSTM or RNN): the same equations with batched matrix
    products (nn.GRU / nn.LSTM have no batching rule, which is why the lone models are written with plain
    matmuls too). Parameters keep the lone layout, with the trial dimension first."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        lone = models[0]
        self.cell = CELLS[lone.cell]
        self.num_layers, self.hidden_size = len(lone.layers), lone.layers[0].hidden_size
        # variational (locked) masks, one per sequence: as the trials that draw masks at all (p > 0) say
        self.per_sequence = any(model.dropouts[0].per_sequence for model in models)
        parameters = self.stack(models, [(SAME, SAME)] * len(list(lone.parameters())))
        self.layer_parameters = nn.ParameterList(parameters[:-2])  # per layer: W_in, W_h, b_in, b_h
        self.output_weight, self.output_bias = parameters[-2], parameters[-1]

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        trials, batch = x.shape[:2]
        sequence = as_sequence(x.flatten(0, 1)).unflatten(0, (trials, batch))  # [T, B, L, features]
        for layer in range(self.num_layers):
            input_weight, hidden_weight, input_bias, hidden_bias = (
                self.shaped(parameter) for parameter in self.layer_parameters[4 * layer:4 * layer + 4])
            # the input projections of all time steps at once; only the recurrent part is sequential
            input_gates = torch.matmul(sequence, input_weight.transpose(1, 2).unsqueeze(1)) + input_bias[:, None, None]
            state = tuple(sequence.new_zeros(trials, batch, self.hidden_size) for _ in range(self.cell.states))
            outputs = []
            for step in range(sequence.shape[2]):
                hidden_gates = torch.baddbmm(hidden_bias.unsqueeze(1), state[0], hidden_weight.transpose(1, 2))
                state = self.cell.step(input_gates[:, :, step], hidden_gates, state)
                outputs.append(state[0])
            sequence = torch.stack(outputs, dim=2)
            if masks is not None and masks[layer] is not None:
                sequence = sequence * masks[layer]  # non-recurrent connections only, as the lone model
        output_weight, output_bias = self.shaped(self.output_weight), self.shaped(self.output_bias)
        logits = torch.baddbmm(output_bias.unsqueeze(1), sequence[:, :, -1], output_weight.transpose(1, 2))
        return logits.transpose(1, 2)  # class-major [T, classes, B], as every stacked model returns

    def mask_shapes(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        steps = as_sequence(x[0, :1]).shape[1]
        return [(x.shape[1], 1 if self.per_sequence else steps, self.hidden_size)] * self.num_layers

    def eval_width(self, x: torch.Tensor) -> int:
        return as_sequence(x[0, :1]).shape[1] * self.cell.gates * self.hidden_size

    def weight_parameters(self) -> list[torch.Tensor]:
        return [self.shaped(p) for p, _, _ in self.slots if len(self.shapes[id(p)]) >= 2]

    def unit_weights(self) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        return [(weight, (2,)) for weight in self.weight_parameters()]  # lone [out, in]: a unit is a row


STACKED = StackedRecurrent
