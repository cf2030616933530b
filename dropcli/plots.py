"""Figures. Lines differ by style as well as colour, so they read in grayscale and in print."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, none is assumed
import matplotlib.pyplot as plt  # noqa: E402

TRAIN_STYLE = {"color": "#1f4e79", "linestyle": "-", "linewidth": 1.8}
VAL_STYLE = {"color": "#c55a11", "linestyle": "--", "linewidth": 1.8}


def plot_run_curves(rows: Sequence[dict[str, float]], path: Path, title: str,
                    marked_epoch: int | None = None, marked_label: str = "best epoch") -> None:
    """Loss and accuracy per epoch, train vs validation, with one epoch marked (best / restored)."""
    epochs = [row["epoch"] for row in rows]
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, metric, label in ((loss_axis, "loss", "cross-entropy loss"), (acc_axis, "acc", "accuracy")):
        train = [row[f"train_{metric}"] for row in rows]
        val = [row[f"val_{metric}"] for row in rows]
        axis.fill_between(epochs, train, val, color="0.85", label="generalization gap")
        axis.plot(epochs, train, label="train (eval mode)", **TRAIN_STYLE)
        axis.plot(epochs, val, label="validation", **VAL_STYLE)
        if marked_epoch is not None:
            axis.axvline(marked_epoch, color="0.35", linestyle=":", linewidth=1.2, label=f"{marked_label} ({marked_epoch})")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    loss_axis.set_title("loss")
    acc_axis.set_title("accuracy")
    acc_axis.legend(loc="lower right")
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
