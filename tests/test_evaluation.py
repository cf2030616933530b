from __future__ import annotations

import pytest
import torch

from dropcli.config import ModelConfig, validate_config
from dropcli.evaluation import expected_calibration_error, mc_dropout_report, score
from dropcli.models.build import build_model


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    targets = torch.tensor([0, 0, 0, 1])  # 75% of predictions of class 0 are right...
    calibrated = torch.tensor([[0.75, 0.25]] * 4)  # ...and the model says 75%
    assert expected_calibration_error(calibrated, targets) == pytest.approx(0.0)
    overconfident = torch.tensor([[1.0, 0.0]] * 4)
    assert expected_calibration_error(overconfident, targets) == pytest.approx(0.25)


def test_ece_equals_the_per_bin_definition_with_confidences_on_the_bin_edges():
    """The whole-tensor ECE against the textbook loop over bins (low, high], edges included."""
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(3 * torch.randn(500, 4, generator=generator), dim=1)
    probabilities[:40] = torch.tensor([0.4, 0.2, 0.2, 0.2])  # a confidence exactly on an edge (6/15)
    probabilities[40:60] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # the top edge
    probabilities[60:70] = torch.tensor([float("nan")] * 4)  # overflowed logits: in no bin, as the loop has it
    probabilities[70:80] = torch.tensor([1 + 1e-6, 0.0, 0.0, 0.0])
    targets = torch.randint(0, 4, (500,), generator=generator)
    confidence, predicted = probabilities.max(dim=1)
    edges = torch.linspace(0, 1, 16)
    expected = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            accuracy = (predicted[in_bin] == targets[in_bin]).double().mean()
            expected += in_bin.double().mean().item() * abs(confidence[in_bin].double().mean() - accuracy).item()
    assert expected > 0.05
    assert expected_calibration_error(probabilities, targets) == pytest.approx(expected, rel=1e-12)
    assert expected_calibration_error(probabilities[:0], targets[:0]) == 0.0


def test_score_gives_accuracy_and_nll():
    probabilities = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4]])
    result = score(probabilities, torch.tensor([1, 0, 1]))
    assert result["acc"] == pytest.approx(2 / 3)
    assert result["nll"] == pytest.approx(-(torch.tensor([0.8, 0.9, 0.4]).log().mean()).item(), rel=1e-6)


def test_without_dropout_mc_averaging_equals_weight_scaling():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_sizes=[16]), (40,), 10, dropout=0.0)
    x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
    report = mc_dropout_report(model, x, y, samples=5, seed=0)
    assert report["mc"][5] == pytest.approx(report["weight_scaling"])


def test_mc_dropout_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_sizes=[64]), (40,), 10, dropout=0.5)
    x, y = torch.randn(128, 40), torch.randint(0, 10, (128,))
    state = torch.get_rng_state()
    first = mc_dropout_report(model, x, y, samples=10, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert mc_dropout_report(model, x, y, samples=10, seed=3) == first
    assert sorted(first["mc"]) == [1, 2, 5, 10]
    assert first["mc"][1] != first["weight_scaling"]  # a single thinned network is not the full one
    assert not model.training  # back in eval mode


def test_a_run_with_mc_samples_records_both_evaluations(tiny_raw, tmp_path):
    from dropcli import train as training
    from dropcli.report import build_report
    from dropcli.runs import RunFolder

    config = validate_config({**tiny_raw, "regularizer": {"dropout": 0.3}, "evaluation": {"mc_samples": 5}})
    summary = training.run_experiment(training.prepare(config), RunFolder.create(tmp_path / "runs", config))
    assert summary["mc_samples"] == 5
    assert summary["ws_test_acc"] == pytest.approx(summary["test_acc"])  # weight scaling is the plain pass
    for key in ("mc_test_acc", "mc_test_nll", "mc_test_ece", "ws_test_nll", "ws_test_ece"):
        assert 0 <= summary[key] < 10
    build_report(tmp_path / "runs", tmp_path / "report")
    assert "Monte-Carlo dropout vs weight scaling" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "mc_dropout.png").is_file()


def test_mc_dropout_samples_dropconnect_layers_too():
    from dropcli.regularizers.dropout_layers import DropoutOptions

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_sizes=[64]), (40,), 10, DropoutOptions(dropconnect_p=0.5))
    x, y = torch.randn(128, 40), torch.randint(0, 10, (128,))
    report = mc_dropout_report(model, x, y, samples=2, seed=0)
    assert report["mc"][1] != report["weight_scaling"]
