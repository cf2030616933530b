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
import torch.nn.functional as F
from torch import nn

from dropcli.config import ModelConfig
from dropcli.masks import StreamedDropout, keep_mask, keep_value, lane_cutoff
from dropcli.registry import Registry

Builder = Callable[[ModelConfig, tuple[int, ...], int, "DropoutOptions"], nn.Module]
MODELS: Registry[Builder] = Registry("model")


def dropout_mask(shape: tuple[int, ...], p: float, device: torch.device, dtype: torch.dtype,
                 generator: torch.Generator | None = None, scale: bool = True) -> torch.Tensor:
    """Dropout mask from torch's generator (DropConnect; dropout outside training, e.g. MC passes): 0 with
    probability p, else 1/(1-p) (inverted dropout) or 1 (`scale` off). Each element is decided by 16
    random bits, one 64-bit draw serving four elements: 2x cheaper than `torch.rand` and 4x cheaper than
    `bernoulli_` on CPU. Training draws hidden-unit masks from the run's stream instead (masks.py)."""
    words = torch.empty((math.prod(shape) + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-2**63, 2**63 - 1, generator=generator)
    lanes = words.view(torch.int16)[:math.prod(shape)].view(shape)
    return keep_mask(lanes, lane_cutoff(p), keep_value(p) if scale else 1.0, dtype)


class Dropout(StreamedDropout):
    """Dropout on whatever it follows, identity in eval mode unless told otherwise.

    noise "bernoulli": each unit kept with probability 1-p; style "inverted" scales survivors by 1/(1-p) in
    training, "scale_at_test" instead multiplies by (1-p) at evaluation (same expected activation).
    noise "gaussian": multiplies by N(1, p/(1-p)) in training (Srivastava et al. 2014, section 10).
    `per_channel` drops whole feature maps (spatial dropout): the noise has shape [N, C, 1, ...].
    Bernoulli masks come from the run's mask stream while training (masks.attach), else from torch's
    generator."""

    def __init__(self, p: float, per_channel: bool = False, noise: str = "bernoulli", style: str = "inverted",
                 per_sequence: bool = False):
        super().__init__()
        self.p, self.per_channel, self.noise, self.style = float(p), per_channel, noise, style
        self.base_p = self.p  # a dropout schedule sets p = base_p * factor at each epoch
        self.per_sequence = per_sequence  # on [N, T, H] sequences: one mask per sequence, reused at every step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0:
            return x  # no random numbers drawn: p = 0 leaves every generator untouched
        if not self.training:
            return x * (1.0 - self.p) if self.style == "scale_at_test" and self.noise == "bernoulli" else x
        if self.per_sequence and x.ndim == 3:
            shape = (x.shape[0], 1, x.shape[2])
        else:
            shape = (*x.shape[:2], *([1] * (x.ndim - 2))) if self.per_channel else x.shape
        if self.noise == "gaussian":
            return x * (1.0 + math.sqrt(self.p / (1.0 - self.p)) * torch.randn(shape, device=x.device, dtype=x.dtype))
        scale = self.style == "inverted"
        if self.stream is not None:
            return x * self.stream.mask(shape, self.p, x.dtype, scale)
        return x * dropout_mask(shape, self.p, x.device, x.dtype, scale=scale)

    def extra_repr(self) -> str:
        return f"p={self.p}, per_channel={self.per_channel}, noise={self.noise}, style={self.style}"


class DropConnectLinear(nn.Linear):
    """A linear layer whose weights are dropped instead of its outputs (Wan et al. 2013): in training,
    y = ((W ⊙ M) / (1-p)) x + b with one mask M per mini-batch (the paper draws one per example, which
    costs a weight matrix per example); in evaluation the plain W, its expectation."""

    def __init__(self, in_features: int, out_features: int, p: float):
        super().__init__(in_features, out_features)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return super().forward(x)
        mask = dropout_mask(tuple(self.weight.shape), self.p, x.device, x.dtype)
        return F.linear(x, self.weight * mask, self.bias)


class DropBlock(nn.Module):
    """DropBlock (Ghiasi et al. 2018): drops contiguous block_size-wide regions of each feature map, so
    that neighbouring positions, which carry nearly the same information, cannot stand in for each other.
    Centres are drawn at a rate chosen so that about p of all positions end up dropped; survivors are
    scaled by (positions / kept positions). Works on [N, C, L] and [N, C, H, W]."""

    def __init__(self, p: float, block_size: int):
        super().__init__()
        self.p, self.block_size = p, block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        spatial = x.shape[2:]
        block = min(self.block_size, *spatial)
        valid = math.prod(max(size - block + 1, 1) for size in spatial)
        gamma = self.p / block ** len(spatial) * math.prod(spatial) / valid
        centres = (torch.rand(x.shape, device=x.device) < gamma).to(x.dtype)
        pool = F.max_pool1d if len(spatial) == 1 else F.max_pool2d
        dropped = pool(centres, kernel_size=block, stride=1, padding=block // 2)
        dropped = dropped[(..., *[slice(0, size) for size in spatial])]  # even block sizes pad one too many
        keep = 1.0 - dropped
        return x * keep * (keep.numel() / keep.sum().clamp_min(1.0))

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}"


class ConcreteDropout(nn.Module):
    """Dropout whose rate is learned (Gal, Hron & Kendall 2017): in training, x * (1 - z) / (1 - p) with z the
    relaxed (Concrete) Bernoulli sigmoid((logit p + log u - log(1 - u)) / temperature), u ~ U(0, 1), so the
    loss is differentiable in p. The identity in evaluation, like inverted dropout. Its regularization term
    (regularizers.ConcreteDropout) needs `units`, the values per example it masks, known after a forward."""

    def __init__(self, init_p: float, temperature: float):
        super().__init__()
        self.p_logit = nn.Parameter(torch.tensor(math.log(init_p) - math.log1p(-init_p)))
        self.temperature = temperature
        self.units = 0

    @property
    def p(self) -> torch.Tensor:
        return torch.sigmoid(self.p_logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        self.units = x[0].numel()
        eps = 1e-7
        u = torch.rand_like(x)  # the global generator, like the other dropout layers' masks
        p = self.p
        drop = torch.sigmoid((torch.log(p + eps) - torch.log1p(eps - p) + torch.log(u + eps) - torch.log1p(eps - u))
                             / self.temperature)
        return x * (1 - drop) / (1 - p)

    def extra_repr(self) -> str:
        return f"p={self.p.item():.4f}, temperature={self.temperature}"


@dataclass(frozen=True)
class DropoutOptions:
    """What the dropout regularizer tells a model builder: the hidden units' rate, noise and style, and
    the rate on the inputs."""

    p: float = 0.0
    noise: str = "bernoulli"
    style: str = "inverted"
    input_p: float = 0.0
    per_sequence: bool = False  # rnn_dropout: variational
    dropconnect_p: float = 0.0
    dropblock: tuple[float, int] | None = None  # (p, block_size)
    concrete: tuple[float, float] | None = None  # Concrete dropout on hidden units: (initial p, temperature)

    def linear(self, in_features: int, out_features: int) -> nn.Linear:
        """A hidden linear layer: with DropConnect when it is on."""
        if self.dropconnect_p:
            return DropConnectLinear(in_features, out_features, self.dropconnect_p)
        return nn.Linear(in_features, out_features)

    def conv_block(self, per_channel: bool) -> nn.Module:
        """What follows the activation in a conv block: DropBlock when it is on, else (spatial) dropout."""
        return DropBlock(*self.dropblock) if self.dropblock else self.hidden(per_channel)

    def hidden(self, per_channel: bool = False, sequence: bool = False) -> nn.Module:
        """`sequence`: the layer sees [N, T, H] sequences (the GRU), where variational dropout applies."""
        if self.concrete is not None:
            return ConcreteDropout(*self.concrete)
        return Dropout(self.p, per_channel, self.noise, self.style, self.per_sequence and sequence)

    def inputs(self, sequence: bool = False) -> Dropout:
        return Dropout(self.input_p, style=self.style, per_sequence=self.per_sequence and sequence)


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
