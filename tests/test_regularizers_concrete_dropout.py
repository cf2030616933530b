"""Concrete dropout: a rate per layer learned through the relaxed Bernoulli, with its regularization term."""

from __future__ import annotations

import math

import pytest
import torch

from dropcli import train as training
from dropcli.cli import app
from dropcli.config import ConfigError, validate_config
from dropcli.regularizers.concrete_dropout import ConcreteDropout, concrete_layers
from dropcli.regularizers.dropout_layers import ConcreteDropout as ConcreteLayer
from dropcli.runs import RunFolder


def test_the_layer_keeps_the_mean_in_training_is_the_identity_in_eval_and_passes_gradients_to_p():
    torch.manual_seed(0)
    layer = ConcreteLayer(init_p=0.3, temperature=0.1)
    assert layer.p.item() == pytest.approx(0.3)
    x = torch.ones(20000, 50)
    out = layer(x)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)  # ×(1 - z)/(1 - p), E[z] ≈ p
    dropped = (out < 0.5 / 0.7).float().mean().item()  # z > 1/2 exactly when logit p + logistic noise > 0
    assert dropped == pytest.approx(0.3, abs=0.03) and layer.units == 50
    out.sum().backward()
    assert layer.p_logit.grad is not None and layer.p_logit.grad != 0
    layer.eval()
    assert torch.equal(layer(x), x)


def test_the_penalty_is_the_papers_weight_and_rate_terms():
    config = validate_config({"regularizer": {"concrete_dropout": {"init_p": 0.2, "length_scale": 0.1}},
                              "model": {"hidden_sizes": [8]}})
    from dropcli.models.build import build_model
    from dropcli.regularizers import build_regularizers

    regularizers = build_regularizers(config.regularizer)
    model = build_model(config.model, (5,), 3, **regularizers[0].model_options())
    concrete = next(r for r in regularizers if isinstance(r, ConcreteDropout))
    concrete.train_examples = 100
    model.train()
    model(torch.randn(4, 5))
    [(layer, weight)] = concrete_layers(model)
    assert weight.shape == (3, 8)  # the output layer reads the dropped hidden units
    p = 0.2
    want = (0.1 ** 2 / 100 * weight.square().sum().item() / (1 - p)
            + 2 / 100 * 8 * (p * math.log(p) + (1 - p) * math.log(1 - p)))
    assert concrete.penalty(model).item() == pytest.approx(want, rel=1e-5)


def test_a_learned_rate_moves_away_from_its_start_on_a_model_that_overfits(tiny_raw, tmp_path):
    raw = {**tiny_raw, "epochs": 6, "model": {"hidden_sizes": [64, 64]},
           "regularizer": {"concrete_dropout": {"init_p": 0.05, "rate_lr": 0.05}}}
    config = validate_config(raw)
    run = RunFolder.create(tmp_path, config)
    summary = training.run_experiment(training.prepare(config), run)
    rows = run.read_metrics()
    assert config.learned_rate_columns() == ["learned_p1", "learned_p2"]
    assert [list(row)[-2:] for row in rows[:1]] == [["learned_p1", "learned_p2"]]
    assert all(rate > 0.1 for rate in summary["learned_p"])  # from 0.05: the prior pulls towards 0.5
    assert summary["learned_p"] == [rows[-1]["learned_p1"], rows[-1]["learned_p2"]]
    assert rows[-1]["learned_p1"] > rows[0]["learned_p1"] > 0.05
    assert "Concrete dropout (from p=0.05)" in summary["title"] and 0 <= summary["test_ece"] <= 1


def test_a_cnn_learns_a_rate_per_conv_block_and_one_for_its_dense_layer(tiny_raw, tmp_path):
    config = validate_config({**tiny_raw, "model": {"name": "cnn", "channels": [4, 8], "hidden_size": 16},
                              "regularizer": {"concrete_dropout": {}}})
    experiment = training.prepare(config)
    assert len(concrete_layers(experiment.model)) == len(config.learned_rate_columns()) == 3
    summary = training.run_experiment(experiment, RunFolder.create(tmp_path, config))
    assert len(summary["learned_p"]) == 3


@pytest.mark.parametrize("raw, message", [
    ({"regularizer": {"concrete_dropout": {}, "dropout": 0.3}},
     "regularizer.concrete_dropout learns the hidden units' rate: set regularizer.dropout to 0"),
    ({"model": {"name": "gru"}, "regularizer": {"concrete_dropout": {}}},
     "regularizer.concrete_dropout: model.name mlp or cnn"),
    ({"regularizer": {"concrete_dropout": {"init_p": 1.0}}}, "regularizer.concrete_dropout.init_p"),
])
def test_combinations_that_make_no_sense_are_refused(raw, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(raw)


def test_a_bad_concrete_setting_exits_2_on_one_line(runner, tiny_raw, write_config, tmp_path):
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--set",
                                 "regularizer.concrete_dropout={temperature: 0}", "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "regularizer.concrete_dropout.temperature" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_the_report_tables_and_draws_the_learned_rates(tiny_raw, tmp_path):
    from dropcli.report import build_report

    for seed in (0, 1):
        config = validate_config({**tiny_raw, "seed": seed, "epochs": 3, "model": {"hidden_sizes": [16, 8]},
                                  "regularizer": {"concrete_dropout": {}}})
        training.run_experiment(training.prepare(config), RunFolder.create(tmp_path / "runs", config))
    report = build_report(tmp_path / "runs", tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| setting | learned p, layer 1 | learned p, layer 2 | test ECE |" in text
    assert (tmp_path / "report" / "learned_rates.png").is_file()
    assert {"learned_p1", "learned_p2", "test_ece"} <= set(report.table.columns)
