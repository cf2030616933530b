"""Checkpoints: everything needed to continue a run exactly where it stopped.

Written atomically at the end of an epoch (temporary file, fsync, rename) at most once a second (see
train.CHECKPOINT_INTERVAL_S), so a SIGKILL at any point leaves either the previous checkpoint or this one.
Restoring model, optimizer, scheduler,
regularizer state (early stopping's best weights and patience), every random generator (torch, CUDA,
Python, NumPy, the batch-order generator), the dropout-mask stream's position and the epoch makes a
resumed run produce the same metrics as one that was never interrupted.

A checkpoint may come from anyone who can write to a shared sweep folder, so it is read with
`torch.load(weights_only=True)`: tensors, numbers, strings and containers only, never code. Everything in
it is stored as such types (NumPy's generator state as a list of ints). The one before the newest is
kept as checkpoint.prev.pt: a damaged newest checkpoint falls back to it, and with neither readable the run
restarts from its first epoch; both with a warning. A file that asks to run code is refused outright.
Checkpoint files are never group- or world-writable (whatever the umask) unless DROPCLI_SHARED_CHECKPOINTS=1.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dropcli.config import Config, validate_config
from dropcli.files import write_atomically
from dropcli.masks import StreamedDropout
from dropcli.runs import RunFolder

log = logging.getLogger("dropcli")
REQUIRED_KEYS = ("epoch", "device", "stop_reason", "elapsed_s", "model", "optimizer", "scheduler",
                 "regularizers", "rng")


# Checkpoints written before dropcli stored NumPy's generator state as ints hold it as an ndarray. Rebuilding
# an array (its dtype and raw bytes) runs no code of the file's choosing; anything else stays refused.
NUMPY_CORE: Any = getattr(np, "_core", None) or np.core  # NumPy 2 renamed core to _core
NUMPY_ARRAY_GLOBALS = [np.ndarray, np.dtype, np.dtypes.UInt32DType, NUMPY_CORE.multiarray._reconstruct]


class UnsafeCheckpoint(Exception):
    """A checkpoint holds objects other than tensors and plain data: loading it could run code."""


# config keys a resumed run may differ in: where and how fast it runs, not what it computes
RESUME_MAY_CHANGE = ("name", "device", "threads", "executor", "dataset.root", "dataset.download")


def continued_settings(config: Config) -> dict[str, Any]:
    """The config a checkpoint continues, as dotted keys (`model.hidden_sizes`), less RESUME_MAY_CHANGE."""
    flat: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        for sub_key, item in value.items() if isinstance(value, dict) else [(None, value)]:
            name = key if sub_key is None else f"{key}.{sub_key}"
            if key not in RESUME_MAY_CHANGE and name not in RESUME_MAY_CHANGE:
                flat[name] = item
    return flat


def changed_settings(state: dict[str, Any], config: Config) -> list[str]:
    """`key: checkpoint's → config's` for each setting the run's config no longer shares with its checkpoint
    (config.yaml edited after it was written). Keys only one side knows (another dropcli version) and
    checkpoints that predate this record are not compared."""
    try:
        saved = json.loads(state.get("settings") or "{}")
    except (TypeError, ValueError, RecursionError):  # a checkpoint may have been written by anyone
        saved = {}
    if not isinstance(saved, dict):
        saved = {}
    now = continued_settings(config)
    return [f"{key}: {shown(saved[key])} → {shown(now[key])}" for key in saved
            if key in now and saved[key] != now[key]]


def edited_since_completion(model_path: Path, config: Config) -> list[str] | None:
    """For a completed run: `key: then → now` for each setting config.yaml no longer shares with the config its
    model.pt was trained with; None when model.pt cannot say (missing, unreadable, another version's)."""
    if not model_path.is_file():  # a pipe would block the read; a link to a device, read it whole
        return None
    try:
        saved = torch.load(model_path, map_location="cpu", weights_only=True, mmap=True)
        recorded = validate_config(saved["config"])
    except Exception:  # damaged, refused or from another version: nothing to compare with
        return None
    return changed_settings({"settings": json.dumps(continued_settings(recorded))}, config)


def shown(value: Any) -> str:
    """A setting as JSON, cut to 60 characters (a planted checkpoint's value may be any size)."""
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def capture(exp, epoch: int, stop_reason: str | None, elapsed: float) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "epoch": epoch,
        "settings": json.dumps(continued_settings(exp.config), sort_keys=True),  # text: plain data to load
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
            # plain ints, not an ndarray: weights_only loading accepts no NumPy objects
            "numpy": [kind, keys.tolist(), position, has_gauss, cached_gaussian],  # type: ignore[union-attr]
            "batch_order": exp.batch_order.get_state(),
            "masks": exp.masks.position,  # words of its dropout-mask stream drawn so far (masks.py)
        },
    }


def save_checkpoint(run: RunFolder, state: dict[str, Any]) -> None:
    """The new checkpoint replaces the newest, which becomes the previous one."""
    run.sync_metrics()  # the rows up to its epoch, which a resume keeps, are on disk before it is
    save_atomically(state, run.checkpoint_path, keep_previous=run.previous_checkpoint_path)


def save_atomically(obj: Any, path: Path, keep_previous: Path | None = None) -> None:
    """torch.save to a temporary file, fsync, rename: a reader never sees half a file. With `keep_previous`,
    the file already at `path` becomes that one first (a crash in between leaves it to fall back to). On
    any error (a full disk) the temporary file is removed."""
    # serialized in memory first: torch.save writing to a full disk raises a RuntimeError from its zip
    # writer, while a plain write raises OSError(ENOSPC), which the run reports as a full disk
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    if keep_previous is not None and path.exists():
        path.replace(keep_previous)
    shared = os.environ.get("DROPCLI_SHARED_CHECKPOINTS") == "1"
    write_atomically(path, buffer.getvalue(), mode=None if shared else 0o755)  # others may read, not rewrite


def remove_checkpoints(run: RunFolder) -> None:
    for path in (run.checkpoint_path, run.previous_checkpoint_path):
        path.unlink(missing_ok=True)


def load_checkpoint(run: RunFolder) -> dict[str, Any] | None:
    """The newest readable checkpoint (newest, else the previous one), or None: nothing to continue from.
    A damaged file is named in a warning; a file that would run code raises UnsafeCheckpoint."""
    damaged = []
    for path in (run.checkpoint_path, run.previous_checkpoint_path):
        if not path.is_file():
            continue
        try:
            state = read_checkpoint(path)
        except UnsafeCheckpoint:
            raise
        except Exception as error:  # truncated, not a zip, wrong layout ...: unusable, not dangerous
            damaged.append(f"{path.name} ({type(error).__name__})")
            continue
        if damaged:
            log.warning(f"{run.path}: {', '.join(damaged)} is damaged; continuing from {path.name} "
                        f"(epoch {state['epoch']})")
        return state
    if damaged:
        log.warning(f"{run.path}: {', '.join(damaged)} is damaged and there is no earlier checkpoint; "
                    f"the run restarts from its first epoch")
    return None


def peek(run: RunFolder) -> tuple[int, str | None] | None:
    """(epoch, stop reason) of the checkpoint a resume would start from, or None: none readable. For
    grouping trials that can resume stacked."""
    state = peek_state(run)
    return (int(state["epoch"]), state["stop_reason"]) if state is not None else None


def peek_state(run: RunFolder) -> dict[str, Any] | None:
    """The checkpoint a resume would start from, read cheaply (tensors memory-mapped, not loaded), or None:
    none readable."""
    for path in (run.checkpoint_path, run.previous_checkpoint_path):
        if not path.is_file():  # a pipe would block the read for ever; a link to a device, read it whole
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            if isinstance(state, dict) and "epoch" in state and "stop_reason" in state:  # what a peek reads
                return state
        except Exception:  # missing, damaged or refused: whoever resumes it will say so
            continue
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        with torch.serialization.safe_globals(NUMPY_ARRAY_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # an object to build from a named function or class: what a code-running payload needs. Anything
        # else the restricted unpickler stops at (an unknown opcode: a torn file) is damage, not danger.
        if "GLOBAL" in str(error) or "Unsupported global" in str(error):
            raise UnsafeCheckpoint(f"{path}: holds objects other than tensors and numbers; refusing to load it, "
                                   f"since loading could run code. dropcli never writes such a file: delete "
                                   f"it if you trust nothing in it, and the run restarts") from None
        raise
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise ValueError("not a dropcli checkpoint")
    return state


def cuda_index(device: torch.device) -> int:
    """The index of a CUDA device ("cuda" alone: the current one), as torch.cuda's generator calls read it."""
    return device.index if device.index is not None else torch.cuda.current_device()


def restore(exp, state: dict[str, Any]) -> None:
    exp.model.load_state_dict(state["model"])
    exp.optimizer.load_state_dict(state["optimizer"])
    exp.scheduler.load_state_dict(state["scheduler"])
    for regularizer, regularizer_state in zip(exp.regularizers, state["regularizers"]):
        regularizer.load_state_dict(regularizer_state)
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and exp.device.type == "cuda":
        # the run's own device only: a requeued task may see fewer GPUs than the one that wrote the checkpoint
        index = cuda_index(exp.device)
        if index < len(rng["cuda"]):
            torch.cuda.set_rng_state(rng["cuda"][index], index)
        else:
            log.warning(f"the checkpoint holds no generator state for cuda:{index} (it was written where "
                        f"{len(rng['cuda'])} GPU(s) were visible): that GPU's generator is not restored")
    python_version, python_words, gauss = rng["python"]
    random.setstate((python_version, tuple(python_words), gauss))
    kind, keys, position, has_gauss, cached_gaussian = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    exp.batch_order.set_state(rng["batch_order"])
    streamed = any(isinstance(m, StreamedDropout) and m.draws_from_stream() for m in exp.model.modules())
    if "masks" not in rng and streamed:
        log.warning("the checkpoint was written by a dropcli that drew dropout masks from torch's generator: the "
                    "resumed epochs draw them from the run's mask stream, so they will not repeat an "
                    "uninterrupted run of that version exactly")
    exp.masks.position = int(rng.get("masks", 0))
