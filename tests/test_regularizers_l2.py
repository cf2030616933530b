"""regularizers/l2.py: the L2 penalty."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropcli.regularizers.l1 import L1
from dropcli.regularizers.l2 import L2


def test_l2_and_l1_penalise_weights_not_biases():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.fill_(100.0)
    assert L2(0.1).penalty(model).item() == pytest.approx(0.5 * 0.1 * 6 * 4.0)
    assert L1(0.1).penalty(model).item() == pytest.approx(0.1 * 6 * 2.0)


def test_l2_shrinks_weights_against_no_regularizer(tiny_raw, tmp_path, trained_weights, total_norm):
    plain, _ = trained_weights(tiny_raw, tmp_path)
    decayed, _ = trained_weights(tiny_raw, tmp_path, l2=0.1)
    assert total_norm(decayed) < 0.9 * total_norm(plain)
