"""dropcli: regularization experiments on the command line, and their run folders as pandas tables.

    import dropcli
    runs = dropcli.load_runs("runs/")        # one row per run folder (dropcli.results)
    curves = dropcli.load_metrics("runs/")   # one row per run and epoch

    @dropcli.register_model("mynet")         # a class configs name as model.name: mynet (dropcli.models)
    class MyNet(nn.Module): ...

Importing dropcli stays light (no torch, no pandas): the loaders import what they need when called.
"""

from __future__ import annotations

from typing import Any

from dropcli.models import register_model

__all__ = ["load_metrics", "load_runs", "register_model"]

__version__ = "0.1.0"


def load_runs(root: Any) -> Any:
    """One row per run folder under `root` (see dropcli.results.load_runs)."""
    from dropcli.results import load_runs as load

    return load(root)


def register_dataset(name: str, **declared: Any) -> Any:
    """A decorator that adds a dataset by name, for notebooks (see dropcli.datasets.register_dataset)."""
    from dropcli.datasets import register_dataset as register  # pydantic: only when used

    return register(name, **declared)


def load_metrics(root: Any) -> Any:
    """Every run's metrics.csv under `root`, one row per run and epoch (see dropcli.results.load_metrics)."""
    from dropcli.results import load_metrics as load

    return load(root)
