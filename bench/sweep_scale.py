"""How does a sweep scale to a thousand trials? Bookkeeping per trial, and `status` / `report` on the folder.

    uv run python bench/sweep_scale.py                     # 16, 256 and 1,024 quickstart trials, 2 epochs
    uv run python bench/sweep_scale.py --sizes 16,256      # quicker
    uv run python bench/sweep_scale.py --epochs 5 --batch 64

For each size N, in this one process and on this machine: the quickstart config (MLP on MNIST-1D) swept over
16 dropout rates (0, 0.05, ..., 0.75) x N/16 seeds, trained with `run_sweep` in stacked groups (`--batch`,
default 16 on CPU and 64 on CUDA) into a fresh folder, with everything a user gets (run folders, metrics,
checkpoints, summaries, model.pt, curves.png). It prints

    wall         the whole sweep, seconds
    training     the training loop's own time: each epoch's `seconds` in metrics.csv (train + evaluation of
                 the whole group), summed over the groups
    test         each trial's one evaluation on the test split when it finishes (loss, accuracy,
                 calibration: a forward pass over the split, model compute like an epoch's evaluation),
                 summed (timed around train.evaluated_metrics)
    bookkeeping  wall - training - test: preparing trials, writing folders, checkpoints, summaries and
                 pictures; its share of the wall time and milliseconds per trial (the ratio against the
                 training measured in the same run is the figure to read)
    status       `dropcli status` on the sweep folder (dropcli.sweep.sweep_statuses), seconds
    report       `dropcli report` on the sweep folder (tables, statistics, figures), seconds

Threads are pinned (OMP_NUM_THREADS, default 1) so that the figures do not depend on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from dropcli import train as training  # noqa: E402
from dropcli.config import load_config  # noqa: E402
from dropcli.report import build_report  # noqa: E402
from dropcli.runs import RunFolder  # noqa: E402
from dropcli.sweep import SweepSpec, open_sweep_dir, run_sweep, sweep_statuses  # noqa: E402

RATES = [round(0.05 * i, 2) for i in range(16)]


def measure(size: int, epochs: int, batch: int, folder: Path) -> dict[str, float]:
    base = load_config("configs/quickstart.yaml", [f"epochs={epochs}", f"threads={torch.get_num_threads()}",
                                                   "device=cuda" if torch.cuda.is_available() else "device=cpu"])
    spec = SweepSpec(base=base.to_dict(), axes={"regularizer.dropout": RATES}, seeds=list(range(size // len(RATES))))
    trials = spec.trials()
    test = timed(training, "evaluated_metrics")
    started = time.perf_counter()
    open_sweep_dir(folder, spec, trials, f"bench/sweep_scale.py size={size}")
    try:
        outcome = run_sweep(trials, folder, batch=batch)
    finally:
        training.evaluated_metrics = test.function
    wall = time.perf_counter() - started
    assert not outcome.failed and len(outcome.trained) == len(trials), outcome
    # a stacked group's rows carry the group's epoch time in every member: count it once per group
    members = {}
    for trial in trials:
        rows = RunFolder(folder / trial.name).read_metrics()
        members.setdefault(tuple(row["seconds"] for row in rows), []).append(trial.name)
    training_time = sum(sum(seconds) for seconds in members)
    started = time.perf_counter()
    statuses = sweep_statuses(folder)
    status = time.perf_counter() - started
    assert set(statuses.values()) == {"completed"}, set(statuses.values())
    started = time.perf_counter()
    build_report(folder, folder / "report")
    report = time.perf_counter() - started
    return {"trials": len(trials), "wall": wall, "training": training_time, "test": test.seconds, "status": status,
            "report": report, "groups": len(members)}


class timed:
    """module.name replaced by a wrapper that sums the seconds spent in it (`.function`: the original)."""

    def __init__(self, module, name: str):
        self.function, self.seconds = getattr(module, name), 0.0

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="16,256,1024", help="trial counts, multiples of 16")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64 if torch.cuda.is_available() else 16)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(size % len(RATES) for size in sizes):
        parser.error(f"--sizes: multiples of {len(RATES)} (the rates) only")
    print(f"device {'cuda: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, {args.epochs} epochs, batch {args.batch}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            m = measure(size, args.epochs, args.batch, Path(tmp) / "sweep")
        bookkeeping = m["wall"] - m["training"] - m["test"]
        print(f"trials={m['trials']:>5}  groups={m['groups']:>3}  wall={m['wall']:7.1f}s  "
              f"training={m['training']:6.1f}s  "
              f"test={m['test']:5.1f}s ({1000 * m['test'] / m['trials']:.1f} ms/trial)  "
              f"bookkeeping={bookkeeping:6.1f}s ({100 * bookkeeping / m['wall']:.0f}% of wall, "
              f"{1000 * bookkeeping / m['trials']:.0f} ms/trial, {bookkeeping / m['training']:.1f}x training)  "
              f"status={m['status']:.2f}s  report={m['report']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
