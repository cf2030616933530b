"""Checkpoints: everything needed to continue a run exactly where it stopped.

Written atomically at the end of an epoch (temporary file, fsync, rename) at most once a second (see
train.CHECKPOINT_INTERVAL_S), so a SIGKILL at any point leaves either the previous checkpoint or this one. Restoring model, optimizer, scheduler,
regularizer state (early stopping's best weights and patience), every random generator (torch, CUDA,
Python, NumPy, the batch-order generator) and the epoch makes a resumed run produce the same metrics as
one that was never interrupted.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dropcli.runs import RunFolder


def capture(exp, epoch: int, stop_reason: str | None, elapsed: float) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "device": str(exp.device),
        "stop_reason": stop_reason,  # set when training already decided to stop: resume goes straight to finishing
        "elapsed_s": elapsed,
        "model": exp.model.state_dict(),
        "optimizer": exp.optimizer.state_dict(),
        "scheduler": exp.scheduler.state_dict(),
        "regularizers": [regularizer.state_dict() for regularizer in exp.regularizers],
        "rng": {
            "torch": torch.get_rng_state(),
            # only for CUDA runs: asking a CPU run's process for CUDA states would start CUDA there
            "cuda": torch.cuda.get_rng_state_all() if exp.device.type == "cuda" else None,
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "batch_order": exp.batch_order.get_state(),
        },
    }


def save_checkpoint(run: RunFolder, state: dict[str, Any]) -> None:
    save_atomically(state, run.checkpoint_path)


def save_atomically(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, fsync, rename: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    # our own file, holding Python and NumPy generator states that weights_only cannot represent
    return torch.load(path, map_location="cpu", weights_only=False)


def restore(exp, state: dict[str, Any]) -> None:
    exp.model.load_state_dict(state["model"])
    exp.optimizer.load_state_dict(state["optimizer"])
    exp.scheduler.load_state_dict(state["scheduler"])
    for regularizer, regularizer_state in zip(exp.regularizers, state["regularizers"]):
        regularizer.load_state_dict(regularizer_state)
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    exp.batch_order.set_state(rng["batch_order"])
