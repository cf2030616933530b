"""Dropout masks from a counter-based hash: a trial's masks depend only on its seed and on how many mask
words it has drawn before, never on which generator, process, device or stacked group drew them.

Word i of a trial's stream is splitmix64's i-th output for the trial's key (a hash of its seed): the
64-bit finalizer of key + i * 0x9E3779B97F4A7C15, computed with wrapping int64 tensor arithmetic (torch's
int64 multiply wraps on CPU and CUDA alike, and a logical shift is an arithmetic one masked). Each word
gives four 16-bit lanes; an element is kept when its lane reaches the rate's cutoff (models' 65,536
levels). So:

- a stacked group draws every trial's masks for one step, all layers at once, with one hash over a
  [trials, words] block: about a dozen elementwise kernels per step whatever the number of trials, instead
  of one generator call per trial (per layer, on CUDA);
- a lone run draws the very same words, site after site, so a trial's masks are identical stacked or alone,
  on CPU or GPU, in any group;
- the stream's state is one integer (the words drawn so far): checkpointed with the run, resumed exactly.

Masks that do not stack (DropConnect, DropBlock, Gaussian noise, Concrete dropout) and MC-dropout passes
keep drawing from torch's generators.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

MASK_LEVELS = 65536  # a rate p is realized as round(p * 65536) / 65536: within 1e-5 of what was asked
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment
MIX = ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None))  # splitmix64's finalizer
WORDS = 2 ** 64


def signed(value: int) -> int:
    """An unsigned 64-bit value as the int64 with the same bits."""
    value %= WORDS
    return value - WORDS if value >= 2 ** 63 else value


def mix64(value: int) -> int:
    """splitmix64's finalizer on a Python int (unsigned 64-bit arithmetic)."""
    value %= WORDS
    for shift, multiplier in MIX:
        value ^= value >> shift
        if multiplier is not None:
            value = value * multiplier % WORDS
    return value


def seed_key(seed: int) -> int:
    """A trial's stream key: its seed hashed, so neighbouring seeds start far apart in the Weyl sequence."""
    return signed(mix64(seed * GOLDEN + 0x5EED))


def mix64_(words: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer, in place, on an int64 tensor (wrapping multiplies, logical shifts)."""
    shifted = torch.empty_like(words)
    for shift, multiplier in MIX:
        torch.bitwise_right_shift(words, shift, out=shifted)
        shifted.bitwise_and_((1 << (64 - shift)) - 1)  # the sign bits an arithmetic shift brings in
        words.bitwise_xor_(shifted)
        if multiplier is not None:
            words.mul_(signed(multiplier))
    return words


def lane_cutoff(p: float) -> int:
    """A uniform int16 lane is at least this with probability 1 - round(p * 65536) / 65536."""
    return round(p * MASK_LEVELS) - MASK_LEVELS // 2


def keep_value(p: float) -> float:
    """1 / (1 - p) for p as the masks realize it (round(p * 65536) / 65536)."""
    return 1.0 / (1.0 - round(p * MASK_LEVELS) / MASK_LEVELS)


def keep_mask(lanes: torch.Tensor, cutoff: int | torch.Tensor, kept: float | torch.Tensor,
              dtype: torch.dtype) -> torch.Tensor:
    """`kept` where lanes >= cutoff, 0 elsewhere. In a stacked group cutoffs and kept values carry a trial
    dimension ([T, 1, ...] int16 and float tensors); a lone run passes numbers (a tensor made per call
    would cost a blocking host-to-GPU copy at every dropout layer). Either way an element is
    float32(kept) or 0. (A multiply, not torch.where: twice as fast on CPU.)"""
    return (lanes >= cutoff).to(dtype).mul_(kept)


class MaskStream:
    """The mask streams of one or more trials that draw in lockstep (a lone run: one; a stacked group: its
    trials, which share batch shapes and so their position)."""

    def __init__(self, seeds: Sequence[int], device: torch.device, position: int = 0):
        self.device = torch.device(device)
        self.keys = torch.tensor([seed_key(seed) for seed in seeds], dtype=torch.int64, device=self.device).view(-1, 1)
        self.position = position  # words drawn so far

    def words(self, count: int) -> torch.Tensor:
        """The next `count` words of every trial's stream: [trials, count] int64."""
        index = torch.arange(self.position + 1, self.position + 1 + count, dtype=torch.int64, device=self.device)
        self.position += count
        return mix64_(index.mul_(signed(GOLDEN)) + self.keys)

    def lanes(self, counts: Sequence[int]) -> list[torch.Tensor]:
        """Uniform int16 lanes for consecutive draws of `counts` elements, [trials, count] each: one hash for
        all of them, the same lanes as drawing them one after another (each draw takes ceil(count / 4) words)."""
        sizes = [(count + 3) // 4 for count in counts]
        words = self.words(sum(sizes)).view(torch.int16)
        lanes, offset = [], 0
        for count, size in zip(counts, sizes):
            lanes.append(words[:, 4 * offset:4 * offset + count])
            offset += size
        return lanes

    def mask(self, shape: Sequence[int], p: float, dtype: torch.dtype, scale: bool = True) -> torch.Tensor:
        """A lone run's mask for one dropout site: 0 with probability p, else 1/(1-p) (or 1 without `scale`)."""
        lanes = self.lanes([math.prod(shape)])[0].reshape(tuple(shape))
        return keep_mask(lanes, lane_cutoff(p), keep_value(p) if scale else 1.0, dtype)

    def masks(self, shapes: Sequence[Sequence[int]], cutoffs: torch.Tensor, kept: torch.Tensor) -> list[torch.Tensor]:
        """Every site's mask for one step of a stacked group, [trials, *shape] each, in the order a lone model
        draws them; per-trial `cutoffs` (int16) and `kept` values are [trials] tensors."""
        counts = [math.prod(shape) for shape in shapes]
        masks = []
        for shape, lanes in zip(shapes, self.lanes(counts)):
            view = (-1, *[1] * len(shape))
            masks.append(keep_mask(lanes.reshape(-1, *shape), cutoffs.view(view), kept.view(view), kept.dtype))
        return masks


class StreamedDropout(nn.Module):
    """What a dropout layer needs to draw from a run's stream: set by `attach`, None elsewhere (a model used
    outside training, an MC-dropout pass), where torch's global generator draws the masks."""

    stream: MaskStream | None = None

    def draws_from_stream(self) -> bool:
        """Whether training draws this layer's masks from the run's stream (a checkpoint keeps its position)."""
        return False


def attach(model: nn.Module, stream: MaskStream | None) -> None:
    """Every streamed dropout layer of `model` draws its masks from `stream` (None: torch's generator)."""
    for module in model.modules():
        if isinstance(module, StreamedDropout):
            module.stream = stream


@contextmanager
def from_global_generator(model: nn.Module) -> Iterator[None]:
    """Within: `model`'s dropout layers draw from torch's global generator (MC-dropout passes, which seed it
    themselves); after: from their streams again."""
    streams = [(module, module.stream) for module in model.modules() if isinstance(module, StreamedDropout)]
    attach(model, None)
    try:
        yield
    finally:
        for module, stream in streams:
            module.stream = stream
