"""Test-time evaluation beyond accuracy: Monte-Carlo dropout against weight scaling, and calibration.

Weight scaling is the ordinary deterministic pass (dropout off; with inverted dropout the weights need no
rescaling). Monte-Carlo dropout keeps the dropout layers sampling at test time and averages the softmax
of K passes: an average over an ensemble of thinned networks, which weight scaling is said to approximate
(Srivastava et al. 2014; Gal & Ghahramani 2016). Both are scored by accuracy, negative log-likelihood
and expected calibration error (ECE: the gap between confidence and accuracy, averaged over 15
equal-width confidence bins, weighted by how many predictions fall in each).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dropcli.masks import from_global_generator
from dropcli.regularizers.dropout_layers import ConcreteDropout, DropBlock, DropConnectLinear, Dropout

# dropcli's dropout layers, and torch's (a model from code: nn.Dropout, Dropout1d/2d/3d, AlphaDropout)
STOCHASTIC_LAYERS = (Dropout, DropConnectLinear, DropBlock, ConcreteDropout, nn.modules.dropout._DropoutNd)

ECE_BINS = 15
MC_CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 200)  # K values at which the running MC average is scored
CHUNK = 4096


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Sum over the bins (low, high] of |confidences - corrects| summed in the bin, over all predictions:
    each bin's share times its |mean confidence - accuracy|, in a few whole-tensor ops and one sync."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == targets).double()
    edges = torch.linspace(0, 1, bins + 1, device=probabilities.device)
    index = torch.bucketize(confidence, edges) - 1  # edges[i] < confidence <= edges[i + 1]: bin i
    inside = (index >= 0) & (index < bins)  # 0, NaN (overflowed logits) and > 1 fall in no bin
    gaps = torch.zeros(bins, dtype=torch.float64, device=probabilities.device)
    gaps.index_add_(0, index[inside], confidence[inside].double() - correct[inside])
    return (gaps.abs().sum() / max(len(targets), 1)).item()


def score(probabilities: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Accuracy, NLL (mean -log p of the true class) and ECE of predicted class probabilities."""
    true_class = probabilities.gather(1, targets.unsqueeze(1)).squeeze(1).clamp_min(1e-12)
    return {"acc": (probabilities.argmax(dim=1) == targets).double().mean().item(),
            "nll": -true_class.double().log().mean().item(),
            "ece": expected_calibration_error(probabilities, targets)}


@torch.no_grad()
def class_probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.softmax(model(x[i:i + CHUNK]), dim=1) for i in range(0, len(x), CHUNK)])


def sampling_dropout(model: nn.Module, sampling: bool) -> None:
    """Eval mode everywhere (BatchNorm included), except the dropout-family layers when `sampling`."""
    model.eval()
    for module in model.modules():
        if isinstance(module, STOCHASTIC_LAYERS):
            module.train(sampling)


@torch.no_grad()
def mc_dropout_report(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int, seed: int) -> dict[str, Any]:
    """Weight scaling vs MC averages of K = 1, 2, 5, ... up to `samples` passes, on one split.
    The passes draw from a generator seeded with `seed` and the global generators are left as they were,
    so the numbers do not depend on what ran before (a batched group or a lone run)."""
    sampling_dropout(model, False)
    report: dict[str, Any] = {"weight_scaling": score(class_probabilities(model, x), y), "mc": {}}
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), from_global_generator(model):
        torch.manual_seed(seed)
        sampling_dropout(model, True)
        total = torch.zeros(len(y), class_probabilities(model, x[:1]).shape[1], device=x.device)
        for k in range(1, samples + 1):
            total += class_probabilities(model, x)
            if k in MC_CHECKPOINTS or k == samples:
                report["mc"][k] = score(total / k, y)
    sampling_dropout(model, False)
    return report


def flat_mc_summary(report: dict[str, Any]) -> dict[str, float]:
    """summary.json / runs.csv columns: ws_test_* (weight scaling) and mc_test_* (all K samples)."""
    samples = max(report["mc"])
    flat = {f"ws_test_{k}": v for k, v in report["weight_scaling"].items()}
    flat.update({f"mc_test_{k}": v for k, v in report["mc"][samples].items()})
    flat["mc_samples"] = samples
    return flat
