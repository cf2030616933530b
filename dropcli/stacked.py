"""Stacked models: T lone models of one architecture as one model, every parameter stacked on a leading trial
dimension, trained with autograd (batched.py). A model name users write stacks only if it is registered
here (STACKED_MODELS); everything else trains one by one.

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

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dropcli.models import CELLS, as_sequence
from dropcli.registry import Registry

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


STACKED_MODELS: Registry[type[StackedModel]] = Registry("stacked model")  # model name → its stacked form


@STACKED_MODELS.register("mlp")
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


@STACKED_MODELS.register("cnn")
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


for _cell in CELLS:  # gru, lstm, rnn: one stacked form, as one lone form
    STACKED_MODELS.register(_cell)(StackedRecurrent)
