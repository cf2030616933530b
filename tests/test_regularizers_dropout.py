"""regularizers/dropout.py and dropout_layers.py: dropout and its variants, their layers and checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropcli.config import ModelConfig
from dropcli.models.build import build_model
from dropcli.regularizers import RegularizerConfig, build_regularizers
from dropcli.regularizers.dropout_layers import Dropout, DropoutOptions


def test_dropout_masks_in_training_with_inverted_scaling_and_is_identity_in_eval():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_sizes=[8]), (40,), 10, dropout=0.4)
    [dropout] = [m for m in model.modules() if isinstance(m, Dropout)]
    x = torch.ones(200_000)
    dropout.train()
    out = dropout(x)
    kept = out[out != 0]
    # survivors scaled by 1/(1-p), p realized to 1/65536
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.6), rtol=1e-4)
    assert abs((out == 0).float().mean().item() - 0.4) < 0.01  # each unit dropped with probability p
    assert abs(out.mean().item() - 1.0) < 0.01  # expected activation unchanged
    dropout.eval()
    assert torch.equal(dropout(x), x)


def test_dropout_makes_training_passes_random_and_eval_passes_deterministic():
    model = build_model(ModelConfig(hidden_sizes=[64]), (40,), 10, dropout=0.5)
    x = torch.randn(16, 40)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_dropout_regularizer_hands_its_rate_to_the_model():
    [dropout] = build_regularizers(RegularizerConfig(dropout=0.3))
    assert dropout.model_options() == {"dropout": DropoutOptions(p=0.3)}


def test_scale_at_test_drops_without_scaling_and_scales_at_evaluation():
    torch.manual_seed(0)
    layer = Dropout(0.4, style="scale_at_test")
    x = torch.full((200_000,), 2.0)
    layer.train()
    out = layer(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # survivors are not scaled up
    layer.eval()
    assert torch.allclose(layer(x), x * 0.6)  # ...the correction happens at test time instead
    # the claim: both styles give the same expected activation, relative to their own evaluation pass
    inverted = Dropout(0.4)
    inverted.train()
    assert inverted(x).mean().item() / x.mean().item() == pytest.approx(1.0, abs=0.01)
    assert out.mean().item() / (x * 0.6).mean().item() == pytest.approx(1.0, abs=0.01)


def test_gaussian_dropout_multiplies_by_unit_mean_noise_of_variance_p_over_1_minus_p():
    torch.manual_seed(0)
    layer = Dropout(0.5, noise="gaussian")
    x = torch.ones(200_000)
    layer.train()
    out = layer(x)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)
    assert out.var().item() == pytest.approx(0.5 / 0.5, rel=0.02)
    layer.eval()
    assert torch.equal(layer(x), x)


@pytest.mark.parametrize("name", ["mlp", "cnn", "gru"])
def test_input_dropout_acts_on_the_inputs(name):
    options = DropoutOptions(p=0.5, input_p=0.2)
    model = build_model(ModelConfig(name=name, hidden_sizes=[8], channels=[4], hidden_size=8), (40,), 10, options)
    rates = [m.p for m in model.modules() if isinstance(m, Dropout)]
    assert 0.2 in rates and 0.5 in rates
    first = next(m for m in model.modules() if isinstance(m, Dropout))
    assert first.p == 0.2  # the first dropout layer met is the input's


def test_variants_train_end_to_end(tiny_raw, tmp_path, trained_weights):
    for regularizer in ({"dropout": 0.3, "dropout_style": "scale_at_test", "input_dropout": 0.2},
                        {"gaussian_dropout": 0.3}):
        _, summary = trained_weights(tiny_raw, tmp_path, **regularizer)
        assert summary["status"] == "completed" and summary["test_acc"] > 0.1


def test_variational_dropout_reuses_one_mask_at_every_time_step():
    torch.manual_seed(0)
    sequence = torch.ones(8, 40, 16)  # [N, T, H]
    naive, locked = Dropout(0.5), Dropout(0.5, per_sequence=True)
    naive.train()
    locked.train()
    same_over_time = lambda out: bool((out == out[:, :1]).all())  # noqa: E731
    assert same_over_time(locked(sequence)) and not same_over_time(naive(sequence))


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("variational", [False, True])
def test_each_recurrent_model_locks_its_masks_over_time_only_under_variational_dropout(cell, variational):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=cell, hidden_size=8, num_layers=2), (40,), 10,
                        DropoutOptions(p=0.5, per_sequence=variational))
    model.train()
    kept = []  # which units survived, per dropout layer: [N, T, H]
    for module in model.modules():
        if isinstance(module, Dropout) and module.p:
            module.register_forward_hook(lambda m, inputs, out: kept.append((out != 0) | (inputs[0] == 0)))
    model(torch.randn(4, 40))
    assert len(kept) == 2
    for mask in kept:
        assert bool((mask == mask[:, :1]).all()) == variational


def test_dropout_schedules_ramp_p_over_the_given_epochs():
    from dropcli.regularizers import RegularizerConfig

    warmup = build_regularizers(RegularizerConfig(dropout=0.4, dropout_schedule="linear_warmup",
                                                  dropout_schedule_epochs=4))[0]
    model = build_model(ModelConfig(hidden_sizes=[8, 8]), (40,), 10, warmup.options)
    rates = []
    for epoch in range(1, 7):
        warmup.start_of_epoch(epoch, model)
        rates.append([m.p for m in model.modules() if isinstance(m, Dropout)][0])
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4])
    decay = build_regularizers(RegularizerConfig(dropout=0.4, dropout_schedule="linear_decay",
                                                 dropout_schedule_epochs=2))[0]
    assert [decay.schedule_factor(e) for e in (1, 2, 3, 4)] == [1.0, 0.5, 0.0, 0.0]


def test_batchnorm_sits_before_the_activation_and_dropout_after_it():
    model = build_model(ModelConfig(hidden_sizes=[8], batchnorm=True), (40,), 10, 0.5)
    assert [type(m).__name__ for m in model] == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    cnn = build_model(ModelConfig(name="cnn", channels=[4], batchnorm=True), (1, 8, 8), 10, 0.5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in cnn.modules())


def test_more_variants_train_end_to_end(tiny_raw, tmp_path, trained_weights):
    gru = {**tiny_raw, "model": {**tiny_raw["model"], "name": "gru"}}
    _, summary = trained_weights(gru, tmp_path, dropout=0.3, rnn_dropout="variational")
    assert summary["status"] == "completed"
    bn = {**tiny_raw, "model": {**tiny_raw["model"], "batchnorm": True}}
    _, summary = trained_weights(bn, tmp_path, dropout=0.3, dropout_schedule="linear_warmup", dropout_schedule_epochs=2)
    assert summary["status"] == "completed"


def test_dropconnect_masks_weights_in_training_and_uses_them_whole_in_eval():
    from dropcli.regularizers.dropout_layers import DropConnectLinear

    torch.manual_seed(0)
    layer = DropConnectLinear(64, 32, p=0.5)
    x = torch.eye(64)  # row j reads column j of W: each output is b, or b + W/(1-p)
    layer.train()
    out = layer(x)
    expected_kept = (layer.weight.T / 0.5 + layer.bias).detach()
    dropped = torch.isclose(out, layer.bias.expand_as(out))
    kept = torch.isclose(out, expected_kept)
    assert bool((dropped | kept).all())
    assert abs(dropped.float().mean().item() - 0.5) < 0.05
    layer.eval()
    assert torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_dropblock_drops_about_p_in_contiguous_blocks():
    from dropcli.regularizers.dropout_layers import DropBlock

    torch.manual_seed(0)
    layer = DropBlock(p=0.2, block_size=5)
    x = torch.ones(64, 8, 200)
    layer.train()
    out = layer(x)
    zero = (out == 0)
    assert abs(zero.float().mean().item() - 0.2) < 0.05
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)  # survivors scaled back up
    # a run of zeros that touches neither edge is at least one block long
    lengths = []
    for row in zero.flatten(0, 1)[:200].tolist():
        start = None
        for position, value in enumerate(row):
            if value and start is None:
                start = position
            if not value and start is not None:
                if start > 0:
                    lengths.append(position - start)
                start = None
    assert lengths and min(lengths) >= 5
    layer.eval()
    assert torch.equal(layer(x), x)


def test_dropblock_needs_a_cnn():
    from dropcli.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="needs feature maps"):
        load_config(None, ["regularizer.dropblock={p: 0.1}"])


def test_dropconnect_and_dropblock_train_end_to_end(tiny_raw, tmp_path, trained_weights):
    _, summary = trained_weights(tiny_raw, tmp_path, dropconnect=0.3)
    assert summary["status"] == "completed"
    cnn = {**tiny_raw, "model": {**tiny_raw["model"], "name": "cnn"}}
    _, summary = trained_weights(cnn, tmp_path, dropblock={"p": 0.1, "block_size": 3})
    assert summary["status"] == "completed"


def test_variational_dropout_touches_only_the_gru():
    options = DropoutOptions(p=0.5, per_sequence=True)
    cnn = build_model(ModelConfig(name="cnn", channels=[4]), (40,), 10, options)
    gru = build_model(ModelConfig(name="gru", hidden_size=8), (40,), 10, options)
    assert not any(m.per_sequence for m in cnn.modules() if isinstance(m, Dropout))
    assert all(m.per_sequence for m in gru.modules() if isinstance(m, Dropout))


def test_dropconnect_needs_hidden_linear_layers():
    from dropcli.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="dropconnect"):
        load_config(None, ["model.name=gru", "regularizer.dropconnect=0.3"])
