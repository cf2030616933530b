"""regularizers/early_stopping.py: stopping on the validation metric, restoring the best weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropcli.regularizers.early_stopping import EarlyStopping, EarlyStoppingConfig
from dropcli.runs import RunFolder


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


def test_early_stopping_ends_real_training_early(tiny_raw, tmp_path, trained_weights):
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
