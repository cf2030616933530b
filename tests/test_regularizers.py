from __future__ import annotations

import pytest
import torch
from torch import nn

from dropcli.config import ModelConfig, validate_config
from dropcli.models import build_model
from dropcli.regularizers import RegularizerConfig, build_regularizers, weight_parameters
from dropcli.regularizers.dropout_layers import Dropout, DropoutOptions
from dropcli.regularizers.early_stopping import EarlyStopping, EarlyStoppingConfig
from dropcli.regularizers.l1 import L1
from dropcli.regularizers.l2 import L2
from dropcli.regularizers.max_norm import MaxNorm
from dropcli.runs import RunFolder
from dropcli.train import prepare, train


def trained_weights(raw: dict, tmp_path, **regularizer) -> tuple[list[torch.Tensor], dict]:
    """Train the tiny config for real with the given regularizer; return its weights and summary."""
    config = validate_config({**raw, "regularizer": regularizer})
    exp = prepare(config)
    summary = train(exp, RunFolder.create(tmp_path / "runs", config))
    return [w.detach().clone() for w in weight_parameters(exp.model)], summary


def total_norm(weights: list[torch.Tensor], p: int = 2) -> float:
    return sum(w.norm(p=p).item() ** p for w in weights) ** (1 / p)


def test_none_builds_no_regularizer():
    assert build_regularizers(RegularizerConfig()) == []


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


def test_l2_and_l1_penalise_weights_not_biases():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.fill_(100.0)
    assert L2(0.1).penalty(model).item() == pytest.approx(0.5 * 0.1 * 6 * 4.0)
    assert L1(0.1).penalty(model).item() == pytest.approx(0.1 * 6 * 2.0)


def test_l2_shrinks_weights_against_no_regularizer(tiny_raw, tmp_path):
    plain, _ = trained_weights(tiny_raw, tmp_path)
    decayed, _ = trained_weights(tiny_raw, tmp_path, l2=0.1)
    assert total_norm(decayed) < 0.9 * total_norm(plain)


def test_l1_shrinks_the_l1_norm_against_no_regularizer(tiny_raw, tmp_path):
    plain, _ = trained_weights(tiny_raw, tmp_path)
    sparse, _ = trained_weights(tiny_raw, tmp_path, l1=0.01)
    assert total_norm(sparse, p=1) < 0.9 * total_norm(plain, p=1)


def test_max_norm_clips_every_unit_after_training(tiny_raw, tmp_path):
    weights, _ = trained_weights(tiny_raw, tmp_path, max_norm=0.5)
    for w in weights:
        assert w.flatten(1).norm(dim=1).max().item() <= 0.5 + 1e-5


def test_max_norm_leaves_small_units_alone():
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
    MaxNorm(1.0).after_step(layer)
    torch.testing.assert_close(layer.weight, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model = nn.Linear(1, 1)
    stopper = EarlyStopping(EarlyStoppingConfig(patience=2, metric="val_loss"))
    reasons = []
    for epoch, val_loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.4], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        reasons.append(stopper.end_of_epoch(epoch, {"val_loss": val_loss}, model))
        if reasons[-1]:
            break
    assert reasons == [None, None, None, reasons[-1]] and "did not improve" in reasons[-1]
    facts = stopper.finish(model)
    assert facts == {"restored_epoch": 2, "early_stopping_epoch": 4}
    assert model.weight.item() == 2.0


def test_early_stopping_on_accuracy_treats_higher_as_better():
    stopper = EarlyStopping(EarlyStoppingConfig(patience=1, metric="val_acc", min_delta=0.05))
    model = nn.Linear(1, 1)
    assert stopper.end_of_epoch(1, {"val_acc": 0.5}, model) is None
    assert stopper.end_of_epoch(2, {"val_acc": 0.52}, model) is not None  # below min_delta: no improvement
    assert stopper.best_epoch == 1


def test_early_stopping_ends_real_training_early(tiny_raw, tmp_path):
    raw = {**tiny_raw, "epochs": 40, "optimizer": {"lr": 0.01, "batch_size": 32}}
    _, summary = trained_weights(raw, tmp_path, early_stopping={"patience": 2})
    assert summary["epochs_run"] < 40
    assert summary["stop_reason"].startswith("early_stopping")
    assert summary["best_epoch"] == summary["restored_epoch"] == summary["epochs_run"] - 2
    # the reported val metrics are those of the restored weights, not of the last epoch
    rows = RunFolder(next((tmp_path / "runs").iterdir())).read_metrics()
    restored = rows[summary["restored_epoch"] - 1]
    assert summary["val_loss"] == pytest.approx(restored["val_loss"])
    assert summary["gap_loss"] == pytest.approx(restored["gap_loss"])  # the gap of the weights kept, not the last


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


def test_variants_train_end_to_end(tiny_raw, tmp_path):
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


def test_more_variants_train_end_to_end(tiny_raw, tmp_path):
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


def test_dropconnect_and_dropblock_train_end_to_end(tiny_raw, tmp_path):
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


def test_every_registered_regularizer_declares_its_keys_once_and_they_make_the_schema():
    """The `regularizer:` section is the registry's settings: each key belongs to one regularizer (a second
    would silently replace the first's field), per-trial keys are its own, and tune's spaces set its keys."""
    from dropcli.regularizers import REGULARIZERS, RegularizerConfig, labels, search_spaces

    owners: dict[str, list[str]] = {}
    for name, regularizer in REGULARIZERS.items():
        assert set(regularizer.per_trial_keys) <= set(regularizer.config_keys()), name
        for key in regularizer.config_keys():
            owners.setdefault(key, []).append(name)
        for dotted in regularizer.search_space:
            assert dotted.split(".")[1] in regularizer.config_keys(), (name, dotted)
    assert all(len(names) == 1 for names in owners.values()), owners
    assert list(RegularizerConfig.model_fields) == list(owners)
    assert {key.removeprefix("regularizer.") for key in labels()} <= set(owners)
    assert set(search_spaces()) <= set(REGULARIZERS)


def test_validating_a_config_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from dropcli.config import load_config; load_config('configs/quickstart.yaml', "
            "['regularizer.label_smoothing=0.1', 'regularizer.dropout=0.2']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
