"""Stacked models: T lone models of one architecture as one model, every parameter stacked on a leading trial
dimension, trained with autograd (batched.py). A model stacks when its registry entry says so
(dropcli.models.ModelEntry.stacked): its family module holds the stacked form (`STACKED`), this module
what they share; everything else trains one by one.

Each stacked model pairs its parameters, position by position, with a lone model's `parameters()` (its
`slots`): how one trial's slice maps to the lone parameter and back. Copying weights out, slicing the
optimizer state into a lone checkpoint and stacking it back for a resume are then one generic piece of code
for every model.

A stacked parameter is held as one row per trial, each row padded to a multiple of TRIAL_ALIGN floats
([T, width]); the models compute with its shaped view ([T, *shape], `shaped`). Elementwise kernels (Adam's
update above all) run vectorized over a whole tensor and finish its last few elements in scalar code, which
rounds differently: with 10-class output biases stacked end to end ([T, 10]), the last trial's last
elements fell in that tail in a group of 2 or 14 but not of 16, so a trial's numbers changed with the size
of the group it trained in (a sweep killed mid-group and resumed in other groups did not end with the
uninterrupted metrics). Rows of whole vectors leave no tail: every trial's elements take the same path in
any group.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Layout = Callable[[torch.Tensor], torch.Tensor]
SAME: Layout = lambda t: t  # noqa: E731
TRIAL_ALIGN = 16  # floats per trial row: a multiple of the widest SIMD vector (AVX-512: 16 float32)


class StackedModel(nn.Module):
    """Subclasses build their parameters with `stack` and implement forward(x [T, B, ...], masks) → logits
    [T, classes, B], `mask_shapes`, `weight_parameters`, `unit_weights` and `eval_width`."""

    # per lone parameter position: the stacked parameter ([T, width]), then how one trial's lone parameter
    # becomes its row and back
    slots: list[tuple[nn.Parameter, Layout, Layout]]
    shapes: dict[int, torch.Size]  # id of a stacked parameter → the shape of one trial's slice
    # CPU evaluation goes trial by trial (trial_logits) where a model has that path and it measured faster
    evaluates_by_trial = False

    def stack(self, models: list[nn.Module], layouts: list[tuple[Layout, Layout]]) -> list[nn.Parameter]:
        """One stacked parameter per lone parameter position, layouts[i] = (lone → one trial's slice, slice →
        lone); each trial's slice is a row padded with zeros to a multiple of TRIAL_ALIGN (never read: its
        gradient is 0, so Adam leaves it 0). Sets `slots` and `shapes`."""
        per_model = [list(model.parameters()) for model in models]
        assert all(len(parameters) == len(layouts) for parameters in per_model), "not the architecture expected"
        self.shapes, self.slots, stacked = {}, [], []
        for i, (to_stacked, to_lone) in enumerate(layouts):
            slices = torch.stack([to_stacked(parameters[i].detach()) for parameters in per_model])
            shape, count = slices.shape[1:], slices[0].numel()
            width = -(-count // TRIAL_ALIGN) * TRIAL_ALIGN
            parameter = nn.Parameter(F.pad(slices.flatten(1), (0, width - count)).contiguous())
            self.shapes[id(parameter)] = shape
            self.slots.append((parameter, padded_row(to_stacked, width - count), unpadded(to_lone, shape)))
            stacked.append(parameter)
        return stacked

    def shaped(self, parameter: torch.Tensor) -> torch.Tensor:
        """A stacked parameter as [T, *one trial's shape]: a view of its rows (differentiable, writable)."""
        shape = self.shapes[id(parameter)]
        return parameter[:, :shape.numel()].view(parameter.shape[0], *shape)

    @property
    def trials(self) -> int:
        """How many trials are stacked: penalties then sum per trial (regularizers.per_trial_sums)."""
        return self.slots[0][0].shape[0]

    @torch.no_grad()
    def copy_into(self, trial: int, model: nn.Module) -> None:
        """Write trial `trial`'s weights into a lone model of the same architecture."""
        for (stacked, _, to_lone), lone in zip(self.slots, model.parameters()):
            lone.copy_(to_lone(stacked[trial]))

    def mask_shapes(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        """For one trial, the shape of each dropout mask a lone model draws in one forward pass, in order."""
        raise NotImplementedError

    def eval_width(self, x: torch.Tensor) -> int:
        """Activations per example of the widest layer (sizes evaluation chunks to the CPU's cache)."""
        raise NotImplementedError

    def trial_logits(self, trial: int, x: torch.Tensor) -> torch.Tensor:
        """Eval mode, one trial's logits [B, classes] for its x [B, ...], from its slice of the weights alone
        (ordinary, unbatched products; models with `evaluates_by_trial`)."""
        raise NotImplementedError


def padded_row(to_stacked: Layout, padding: int) -> Layout:
    """A lone parameter → one trial's row of its stacked parameter (its slice, flat, padded with zeros)."""
    return lambda lone: F.pad(to_stacked(lone).flatten(), (0, padding))


def unpadded(to_lone: Layout, shape: torch.Size) -> Layout:
    """One trial's row (a stacked parameter's, or of a tensor laid out like it) → the lone parameter's layout."""
    return lambda row: to_lone(row[:shape.numel()].view(shape))
