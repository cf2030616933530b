"""An experiment: everything one trial trains with, built from its config (device, data, model,
regularizers, optimizer, schedule, batch order).

`prepare` builds everything that can fail because of the user's input (device, dataset, model size) before
a run folder exists, so bad input leaves nothing behind.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dropcli.config import Config, ConfigError, OptimizerConfig
from dropcli.data import Splits, load_splits
from dropcli.masks import MaskStream, attach
from dropcli.models.build import build_model, count_parameters, verify_model
from dropcli.regularizers import Regularizer, build_regularizers


@dataclass
class Experiment:
    config: Config
    device: torch.device
    splits: Splits
    model: nn.Module
    regularizers: list[Regularizer]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    batch_order: torch.Generator
    masks: MaskStream  # the run's dropout-mask stream (masks.py): its position is checkpointed


OPTIMIZERS: dict[str, Callable[[list[Any], OptimizerConfig], torch.optim.Optimizer]] = {
    # No weight_decay here: L2 is a regularizer (a loss penalty), so it is switched on in one place only.
    # fused: one kernel for the whole update (CPU and CUDA); 20-25% of a batched sweep's step otherwise
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr, fused=True),
    "sgd": lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum),
}


def build_optimizer(model: nn.Module, regularizers: list[Regularizer], config: Config,
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimizer and learning-rate schedule of a lone model or a stacked group alike. Parameters a
    regularizer trains with settings of its own (Concrete dropout's rates) get their own group."""
    own = [group for regularizer in regularizers for group in regularizer.parameter_groups(model)]
    taken = {id(p) for group in own for p in group["params"]}
    rest = [p for p in model.parameters() if id(p) not in taken]
    optimizer = OPTIMIZERS[config.optimizer.name]([{"params": rest}, *own] if own else rest, config.optimizer)
    if config.optimizer.schedule == "cosine":
        scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    return optimizer, scheduler


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} was asked for but CUDA is not available here; allowed: auto, cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: {name!r} does not exist; this machine has "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return device


def default_threads() -> int:
    """The threads torch should use when the config does not say: OMP_NUM_THREADS when the environment sets
    it, else the CPUs this process may actually run on. torch's own default is the machine's cores, which on
    a cluster node shared by many jobs (or a 2-core machine with other work on it) oversubscribes the CPU:
    epochs ran 100-200x slower."""
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    limits = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1]
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        limits.append(int(slurm))
    try:  # cgroup v2 quota: "200000 100000" means 2 CPUs, "max 100000" no limit
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            limits.append(max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, min(limits))


# Bytes per parameter while training: float32 weights, gradients, Adam's two moments, early stopping's copy
TRAINING_BYTES_PER_PARAMETER = 5 * 4


PARAMETER_COUNTS: dict[tuple, int] = {}  # check_model_fits' shapes already built, by model, data and options


def check_model_fits(config: Config, splits: Splits, model_options: dict[str, Any], device: torch.device) -> None:
    """Build the model on the meta device (shapes only, no memory) and refuse, before anything is allocated,
    one that cannot take the inputs or whose training state would not fit in the device's free memory."""
    # a sweep's trials share a few shapes: each is built once per process (options whose repr says what they
    # are — dataclasses, numbers, strings — make the key; anything else is built every time)
    key = (config.model.model_dump_json(), tuple(splits.input_shape), splits.num_classes, repr(model_options)) \
        if all(is_dataclass(v) or isinstance(v, int | float | str | bool | None) for v in model_options.values()) \
        else None
    count = PARAMETER_COUNTS.get(key) if key is not None else None
    if count is None:
        try:
            with torch.device("meta"):
                shadow = build_model(config.model, splits.input_shape, splits.num_classes, **model_options)
        except RuntimeError as error:  # e.g. more pooling blocks than the input has positions
            raise ConfigError(f"model: a {config.model.name} with these settings cannot take inputs of shape "
                              f"{list(splits.input_shape)}: {' '.join(str(error).split())}") from None
        count = count_parameters(shadow)
        if key is not None:
            PARAMETER_COUNTS[key] = count
    need, free = count * TRAINING_BYTES_PER_PARAMETER, free_memory(device)
    if free is not None and need > free:
        raise ConfigError(f"model: {count:,} parameters need about {need / 2**30:,.1f} GiB to train (weights, "
                          f"gradients, optimizer state); {device} has {free / 2**30:,.1f} GiB free. Use smaller "
                          f"model sizes (model.hidden_sizes, channels, hidden_size, num_layers)")


def free_memory(device: torch.device) -> int | None:
    """Bytes free for a new model on `device` (None: unknown). On CUDA, what torch's caching allocator holds
    unused (earlier groups' freed tensors) counts as free: the driver sees it as taken."""
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + cached
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def prepare(config: Config, shared_splits: dict[tuple[str, int, str], Splits] | None = None) -> Experiment:
    """Data, regularizers, seeded model, optimizer, generators: everything a run trains with. `shared_splits`:
    the splits already made for the trials of a group, by (dataset settings, seed, device); trials of the
    same seed then share one (never modified: as if each had made its own), made and moved to the device once."""
    torch.set_num_threads(config.threads or default_threads())
    device = resolve_device(config.device)
    key = (config.dataset.model_dump_json(), config.seed, str(device))
    splits = shared_splits.get(key) if shared_splits is not None else None
    if splits is None:
        # Load (and maybe generate) data before seeding: mnist1d's generator reseeds the global RNGs.
        splits = load_splits(config.dataset, config.seed).to(device)
        if shared_splits is not None:
            shared_splits[key] = splits
    regularizers = build_regularizers(config.regularizer)
    for regularizer in regularizers:
        regularizer.start(config, splits, device)
    model_options: dict[str, Any] = {}
    for regularizer in regularizers:
        model_options.update(regularizer.model_options())
    check_model_fits(config, splits, model_options, device)
    seed_everything(config.seed)
    model = build_model(config.model, splits.input_shape, splits.num_classes, **model_options).to(device)
    verify_model(config.model, model, splits.x_train[:config.optimizer.batch_size], splits.num_classes)
    optimizer, scheduler = build_optimizer(model, regularizers, config)
    batch_order = torch.Generator().manual_seed(config.seed)
    masks = MaskStream([config.seed], device)
    attach(model, masks)
    return Experiment(config, device, splits, model, regularizers, optimizer, scheduler, batch_order, masks)
