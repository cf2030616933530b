"""The dropout family's layers: Bernoulli / Gaussian dropout (inverted or scaled at test), DropConnect, DropBlock,
Concrete dropout, and `DropoutOptions`, what the dropout regularizer tells a model builder to put where.

Apart from the regularizers' torch-free modules because a layer is an nn.Module: this module imports torch
when it is defined, and the `regularizer:` schema (validated by `dropcli --help` and `dropcli config`) must not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dropcli.masks import StreamedDropout, keep_mask, keep_value, lane_cutoff


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

    def draws_from_stream(self) -> bool:
        return self.p > 0.0 and self.noise == "bernoulli"

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
    (regularizers.concrete_dropout) needs `units`, the values per example it masks, known after a forward."""

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
