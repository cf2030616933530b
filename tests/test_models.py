from __future__ import annotations

import pytest
import torch
from torch import nn

from dropcli.config import ModelConfig
from dropcli.models.build import build_model
from dropcli.models.recurrent import RecurrentLayer
from dropcli.regularizers.dropout_layers import Dropout

SHAPES = {"mnist1d": (40,), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


@pytest.mark.parametrize("name", ["mlp", "cnn", "gru"])
@pytest.mark.parametrize("dataset", list(SHAPES))
def test_every_model_maps_every_input_shape_to_class_scores(name, dataset):
    config = ModelConfig(name=name, hidden_sizes=[16], channels=[4, 8], hidden_size=12, num_layers=2)
    model = build_model(config, SHAPES[dataset], num_classes=10, dropout=0.3)
    x = torch.randn(5, *SHAPES[dataset])
    logits = model(x)
    assert logits.shape == (5, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["mlp", "cnn", "gru"])
def test_dropout_is_never_applied_to_the_output_layer(name):
    model = build_model(ModelConfig(name=name), (40,), num_classes=10, dropout=0.5)
    modules = [m for m in model.modules() if not isinstance(m, (nn.Sequential, nn.ModuleList)) and m is not model]
    assert isinstance(modules[-1], nn.Linear), "the last layer is the plain output layer"
    assert sum(isinstance(m, Dropout) for m in modules) >= 1


def test_mlp_places_dropout_after_each_activation():
    model = build_model(ModelConfig(hidden_sizes=[8, 8]), (40,), 10, dropout=0.5)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_cnn_spatial_dropout_drops_whole_feature_maps():
    model = build_model(ModelConfig(name="cnn", channels=[4], spatial_dropout=True), (1, 8, 8), 10, dropout=0.5)
    [spatial] = [m for m in model.modules() if isinstance(m, Dropout) and m.per_channel]
    spatial.train()
    out = spatial(torch.ones(64, 4, 8, 8))
    per_map = out.flatten(2)
    # every feature map is either all zero or all scaled by 1/(1-p)
    assert torch.all((per_map == 0).all(dim=2) | (per_map == 2.0).all(dim=2))


@pytest.mark.parametrize("cell, reference_class", [("lstm", nn.LSTM), ("rnn", nn.RNN), ("gru", nn.GRU)])
def test_hand_written_recurrent_layers_match_torch(cell, reference_class):
    torch.manual_seed(0)
    layer, reference = RecurrentLayer(3, 5, cell), reference_class(3, 5, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(layer.input_weight)
        reference.weight_hh_l0.copy_(layer.hidden_weight)
        reference.bias_ih_l0.copy_(layer.input_bias)
        reference.bias_hh_l0.copy_(layer.hidden_bias)
    x = torch.randn(4, 7, 3)
    torch.testing.assert_close(layer(x), reference(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_variational_masks_are_constant_across_time_steps_in_every_recurrent_model(cell):
    from dropcli.regularizers.dropout_layers import DropoutOptions

    model = build_model(ModelConfig(name=cell, hidden_size=6), (40,), 10, DropoutOptions(p=0.5, per_sequence=True))
    model.train()
    [locked] = [m for m in model.modules() if isinstance(m, Dropout) and m.p > 0]  # the input dropout is off
    out = locked(torch.ones(8, 40, 6))  # [N, T, H]: one mask per sequence, the same at every step
    assert torch.equal(out[:, :1].expand_as(out), out) and (out == 0).any()
