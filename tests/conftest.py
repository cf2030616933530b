"""Shared fixtures: MNIST-1D generated once per session, tiny configs, a wide CliRunner."""

from __future__ import annotations

import os

# Pinned before torch is imported (by the imports below), and inherited by the subprocesses tests start: on a
# busy 2-core machine torch's default thread count made epochs 100-200x slower. The value itself is
# recorded in each summary.json (torch_threads): CPU metrics may differ in the last bits with it.
os.environ["OMP_NUM_THREADS"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from dropcli.datasets.load_mnist1d import generate_mnist1d  # noqa: E402


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset root holding the real MNIST-1D cache, generated once (about 4 s) for the whole session."""
    root = tmp_path_factory.mktemp("data")
    generate_mnist1d(root / "mnist1d" / "mnist1d_default_seed42.npz")
    return root


@pytest.fixture
def tiny_raw(data_root: Path) -> dict:
    """A config that trains for real in well under a second: 2 epochs of 256 MNIST-1D examples."""
    return {
        "name": "tiny",
        "epochs": 2,
        "device": "cpu",
        "dataset": {"root": str(data_root), "train_size": 256, "val_fraction": 0.1},
        "model": {"hidden_sizes": [32], "channels": [4, 8], "hidden_size": 16},
        "optimizer": {"batch_size": 32, "lr": 0.003},
    }


@pytest.fixture
def write_config(tmp_path: Path):
    def write(raw: dict | str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
        return path

    return write


@pytest.fixture
def runner() -> CliRunner:
    # wide terminal: rich must not wrap the messages the tests look for
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture
def fail_at_epoch(monkeypatch):
    """fail_at_epoch(n, error): recording epoch n's metrics row raises `error` (KeyboardInterrupt: a kill;
    OSError(ENOSPC): a full disk). Returns a function that puts things back."""
    from dropcli.runs import RunFolder

    real = RunFolder.append_metrics

    def arm(epoch: int, error: BaseException):
        def append(self, row):
            if row["epoch"] == epoch:
                raise error
            real(self, row)

        monkeypatch.setattr(RunFolder, "append_metrics", append)
        return lambda: monkeypatch.setattr(RunFolder, "append_metrics", real)

    return arm


# pytest runs in two xdist workers (`-n 2`, pyproject.toml). The real-cluster tests share one cluster, so they
# go to one worker together and first: most of their time is spent waiting on Slurm, which the other worker
# fills with the rest of the suite (the tests marked slow last), one test at a time. (xdist's own
# `--dist loadgroup` does this with marks, but it silently stopped grouping with pytest 9.2:
# pytest-dev/pytest-xdist#1386.)
SLURM_TESTS = "tests/test_slurm.py::"


def pytest_collection_modifyitems(config, items):
    # the Slurm tests first, the slow ones last: they start processes of their own, which would compete with
    # the Slurm jobs' for the two cores
    items.sort(key=lambda item: (not item.nodeid.startswith(SLURM_TESTS), item.get_closest_marker("slow") is not None))


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SlurmTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "slurm" if nodeid.startswith(SLURM_TESTS) else nodeid

    return SlurmTestsTogether(config, log)


@pytest.fixture
def trained_weights():
    """trained_weights(raw, tmp_path, **regularizer): train the tiny config for real with the given regularizer
    settings; its weights (not biases) and summary."""
    import torch

    from dropcli.config import validate_config
    from dropcli.regularizers import weight_parameters
    from dropcli.runs import RunFolder
    from dropcli.train import prepare, train

    def trained(raw: dict, tmp_path: Path, **regularizer) -> tuple[list[torch.Tensor], dict]:
        config = validate_config({**raw, "regularizer": regularizer})
        exp = prepare(config)
        summary = train(exp, RunFolder.create(tmp_path / "runs", config))
        return [w.detach().clone() for w in weight_parameters(exp.model)], summary

    return trained


@pytest.fixture
def total_norm():
    """total_norm(weights, p=2): the p-norm of all the weights together."""
    return lambda weights, p=2: sum(w.norm(p=p).item() ** p for w in weights) ** (1 / p)


@pytest.fixture
def disk_fills_up(monkeypatch):
    """`disk_fills_up(names=lambda path: True)`: every file dropcli.files opens for writing (those `names` picks)
    fails as a disk with 4 KB left does: the write that crosses 4 KB raises ENOSPC, as the kernel's does."""
    import errno

    from dropcli import files

    real_open = files.open_new

    class FillsUp:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fill(names=lambda path: True):
        monkeypatch.setattr(files, "open_new", lambda path: FillsUp(real_open(path)) if names(path)
                            else real_open(path))

    return fill
