"""Data augmentation of training batches: random transforms drawn per example, applied on the device.

Each transform is two steps, so that a stacked group (batched.py) gives every trial exactly the batch it would
get alone: `draw` takes the random numbers for n examples from one trial's generator, `apply` transforms a
batch with them (a group concatenates its trials' draws and applies them once).

MNIST-1D ([N, 40] signals) gets the transforms its own generator (mnist1d.transform) makes the data with,
at its magnitudes when strength = 1:
  shift             circular shift by up to 2/3 of the length (its translate: 48 of 72 positions)
  scale             amplitude × 1 + 0.4 (u - 1/2)                (its scale_coeff 0.4)
  noise             + N(0, 0.02²) per position                    (its iid_noise_scale)
  correlated_noise  + 0.25 N(0, 1) smoothed by a Gaussian, σ = 2  (its corr_noise_scale and filter)
Images ([N, C, H, W]):
  crop              pad by 1/8 of the side with zeros (the normalised mean), cut a random window back out
  flip              mirror left-right with probability 1/2
Strength scales each magnitude (the flip's probability stays 1/2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SHIFT_SHARE = 48 / 72  # mnist1d: max_translation over template_len + padding[1]
SCALE_COEFF = 0.4
NOISE_SCALE = 0.02
CORRELATED_NOISE_SCALE = 0.25
CORRELATION_SIGMA = 2.0  # scipy.ndimage.gaussian_filter(noise, 2), truncated at 4 sigma as scipy does
CROP_SHARE = 1 / 8  # 4 of CIFAR-10's 32 pixels; 4 of MNIST's 28 (3.5, rounded)

Draws = dict[str, torch.Tensor]


def draw(transforms: tuple[str, ...], n: int, shape: tuple[int, ...], strength: float,
         generator: torch.Generator) -> Draws:
    """The random numbers `apply` needs for n examples of `shape` (without the batch dimension), drawn in a
    fixed order from `generator` (on the data's device)."""
    device, drawn = generator.device, {}
    for name in transforms:
        if name == "shift":
            reach = round(strength * SHIFT_SHARE * shape[-1])
            drawn[name] = torch.randint(-reach, reach + 1, (n,), device=device, generator=generator)
        elif name == "scale":
            drawn[name] = 1 + strength * SCALE_COEFF * (torch.rand(n, device=device, generator=generator) - 0.5)
        elif name in ("noise", "correlated_noise"):
            drawn[name] = torch.randn((n, *shape), device=device, generator=generator)
        elif name == "crop":
            pad = crop_padding(shape, strength)
            drawn[name] = torch.randint(0, 2 * pad + 1, (n, 2), device=device, generator=generator)
        elif name == "flip":
            drawn[name] = torch.rand(n, device=device, generator=generator) < 0.5
        else:
            raise ValueError(f"unknown transform {name!r}")
    return drawn


def apply(x: torch.Tensor, drawn: Draws, strength: float) -> torch.Tensor:
    """x transformed example by example with the draws (in the order they were drawn)."""
    for name, values in drawn.items():
        if name == "shift":
            length = x.shape[-1]
            positions = (torch.arange(length, device=x.device) - values.unsqueeze(1)) % length
            x = x.gather(1, positions)
        elif name == "scale":
            x = x * values.view(-1, *[1] * (x.ndim - 1))
        elif name == "noise":
            x = x + strength * NOISE_SCALE * values
        elif name == "correlated_noise":
            x = x + smooth(strength * CORRELATED_NOISE_SCALE * values)
        elif name == "crop":
            x = crop(x, values, crop_padding(tuple(x.shape[1:]), strength))
        elif name == "flip":
            x = torch.where(values.view(-1, 1, 1, 1), x.flip(-1), x)
    return x


def crop_padding(shape: tuple[int, ...], strength: float) -> int:
    return round(strength * CROP_SHARE * shape[-1])


def crop(x: torch.Tensor, offsets: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image padded by `pad` on every side, then its own H×W window at (row, column) = offsets."""
    if pad == 0:
        return x
    n, _, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (offsets[:, 0:1] + torch.arange(height, device=x.device)).view(n, 1, height, 1)
    columns = (offsets[:, 1:2] + torch.arange(width, device=x.device)).view(n, 1, 1, width)
    examples = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[examples, channels, rows, columns]


def smooth(noise: torch.Tensor) -> torch.Tensor:
    """A Gaussian filter (σ = CORRELATION_SIGMA) along the last dimension, reflecting at the ends (scipy's
    gaussian_filter with its default mode "reflect" and truncate 4)."""
    radius = int(4 * CORRELATION_SIGMA + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=noise.dtype, device=noise.device)
    kernel = torch.exp(-0.5 * (offsets / CORRELATION_SIGMA) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    rows = noise.reshape(-1, 1, noise.shape[-1])
    # scipy's "reflect" repeats the edge value (d c b a | a b c d); torch's "reflect" does not: mirror by hand
    padded = torch.cat([rows[..., :radius].flip(-1), rows, rows[..., -radius:].flip(-1)], dim=-1)
    return F.conv1d(padded, kernel).view(noise.shape)


def seed_for(seed: int) -> int:
    """The augmentation generator's seed: the run's seed, moved off the global generator's own stream."""
    return (seed * 0x9E3779B1 + 0x5EED) % 2**63

