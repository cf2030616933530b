"""regularizers/max_norm.py: the max-norm constraint."""

from __future__ import annotations

import torch
from torch import nn

from dropcli.regularizers.max_norm import MaxNorm


def test_max_norm_clips_every_unit_after_training(tiny_raw, tmp_path, trained_weights):
    weights, _ = trained_weights(tiny_raw, tmp_path, max_norm=0.5)
    for w in weights:
        assert w.flatten(1).norm(dim=1).max().item() <= 0.5 + 1e-5


def test_max_norm_leaves_small_units_alone():
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
    MaxNorm(1.0).after_step(layer)
    torch.testing.assert_close(layer.weight, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
