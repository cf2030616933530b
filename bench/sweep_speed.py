"""How fast is a sweep, one trial at a time vs batched, and what does dropcli add to a bare PyTorch loop?

    uv run python bench/sweep_speed.py              # 8 rates x 2 seeds, 20 epochs, + the epoch overhead
    uv run python bench/sweep_speed.py --quick      # 10 epochs: well under 2 minutes on 2 CPU cores
    uv run python bench/sweep_speed.py --epochs 60  # the quickstart's own length
    uv run python bench/sweep_speed.py --quick --model all   # mlp, cnn and gru in turn
    uv run python bench/sweep_speed.py --seeds 8 --batch 64  # 64 trials in one group (the GPU figure)

Everything runs in this one process, on the quickstart config (MLP on MNIST-1D), so the ratios compare
like with like on the same machine at the same moment:

1. the same 16-trial sweep (p = 0, 0.1, ..., 0.7 x seeds 0, 1; `--seeds N`: 8N trials) through `run_sweep`
   with batch=1 (one trial after another, the plain path) and batch=16 (`--batch`: stacked groups), each
   into a fresh folder, with everything a user gets (run folders, metrics, checkpoints, curves.png,
   model.pt): trials/s for each and `vs_sequential=<ratio>`; also the training loop's own ratio (epoch
   times from metrics.csv) and the largest metric difference between the two paths;
2. for the MLP, `vs_hand=<ratio>`: the whole batched dropcli sweep against a bare hand-written stacked
   loop over the same trials' data and epochs (stacked weights through `baddbmm`, autograd, one mask draw
   for all trials per layer, fused Adam, the same per-epoch train/val evaluation, nothing written): the
   floor dropcli's bookkeeping is measured against;
3. one quickstart epoch as dropcli runs it (train + per-epoch train/val metrics + logging + checkpoint
   policy) against a bare hand-written loop over the same tensors that computes the same metrics.

`--model cnn|gru|custom|all` runs part 1 for the other models (the CNN stacked as one grouped convolution, the
GRU as batched-matmul recurrences; custom: examples/own_data/mynet.py's MyNet, the quickstart MLP as a user
writes it, stacked through torch.func's vmap: dropcli/models/custom.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dropcli import train as training
from dropcli.config import load_config
from dropcli.runs import RunFolder
from dropcli.sweep import SweepSpec, open_sweep_dir, run_sweep

RATES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
SEEDS = [0, 1]  # --seeds N: 0 .. N-1


# --model custom: the quickstart's MLP written as a user would (examples/own_data/mynet.py, 40-256-256-10 with
# nn.Dropout), stacked through torch.func (dropcli/models/custom.py)
CUSTOM = ["model.class_path=mynet.MyNet", "model.code_dir=examples/own_data", "model.init_args={hidden: 256}",
          "model.dropout_arg=p"]


def sweep_trials(epochs: int, model: str = "mlp"):
    base = load_config("configs/quickstart.yaml", [f"epochs={epochs}", f"model.name={model}",
                                                   *(CUSTOM if model == "custom" else []),
                                                   "device=cpu" if not torch.cuda.is_available() else "device=auto"])
    spec = SweepSpec(base=base.to_dict(), axes={"regularizer.dropout": RATES}, seeds=SEEDS)
    return spec, spec.trials()


def timed_sweep(spec, trials, folder: Path, batch: int) -> float:
    open_sweep_dir(folder, SweepSpec(spec.base, spec.axes, spec.seeds), trials, f"bench batch={batch}")
    started = time.perf_counter()
    outcome = run_sweep(trials, folder, batch=batch)
    elapsed = time.perf_counter() - started
    assert not outcome.failed and len(outcome.trained) == len(trials), outcome
    return elapsed


def largest_difference(trials, first: Path, second: Path) -> float:
    worst = 0.0
    for trial in trials:
        a, b = RunFolder(first / trial.name).read_metrics(), RunFolder(second / trial.name).read_metrics()
        for row_a, row_b in zip(a, b):
            for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
                worst = max(worst, abs(row_a[key] - row_b[key]))
    return worst


def training_loop_seconds(trials, folder: Path) -> float:
    """Mean epoch time per trial: a metrics.csv row's `seconds` is the epoch's train + evaluation time;
    in a batched group it is the whole group's epoch, shared by its members."""
    total, epochs = 0.0, 0
    for trial in trials:
        run = RunFolder(folder / trial.name)
        share = run.read_summary().get("batched_with", 1)
        rows = run.read_metrics()
        total += sum(row["seconds"] for row in rows) / share
        epochs += len(rows)
    return total / epochs


def bare_epoch_seconds(config, epochs: int) -> list[float]:
    """The loop one would write by hand: same data, same MLP, Adam, and the same per-epoch metrics."""
    exp = training.prepare(config)
    x, y, xv, yv = exp.splits.x_train, exp.splits.y_train, exp.splits.x_val, exp.splits.y_val
    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)).to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr, fused=True)  # as dropcli's
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=generator).to(x.device)  # one copy an epoch, as dropcli's
        for i in range(0, len(y), config.optimizer.batch_size):
            idx = order[i:i + config.optimizer.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            numbers = []
            for a, b in ((x, y), (xv, yv)):
                logits = model(a)
                numbers += [F.cross_entropy(logits, b), (logits.argmax(1) == b).float().mean()]
            metrics = torch.stack(numbers).tolist()  # one sync an epoch, as dropcli's
        seconds.append(time.perf_counter() - started)
    assert metrics
    return seconds


def hand_stacked_seconds(trials) -> float:
    """The floor: the trials' MLPs stacked by hand and trained with autograd, nothing else."""
    experiments = [training.prepare(trial.config) for trial in trials]
    config = trials[0].config
    device = experiments[0].device
    x = torch.stack([e.splits.x_train for e in experiments])
    y = torch.stack([e.splits.y_train for e in experiments])
    xv, yv = torch.stack([e.splits.x_val for e in experiments]), torch.stack([e.splits.y_val for e in experiments])
    count, sizes = len(trials), [x.shape[-1], *config.model.hidden_sizes, 10]
    weights = [torch.nn.Parameter(torch.randn(count, a, b, device=device) / a ** 0.5) for a, b in zip(sizes, sizes[1:])]
    biases = [torch.nn.Parameter(torch.zeros(count, 1, b, device=device)) for b in sizes[1:]]
    keep = 1 - torch.tensor([t.config.regularizer.dropout for t in trials], device=device).view(-1, 1, 1)
    optimizer = torch.optim.Adam([*weights, *biases], lr=config.optimizer.lr, fused=True)

    def forward(inputs, train):
        h = inputs
        for layer, (w, b) in enumerate(zip(weights, biases)):
            h = torch.baddbmm(b, h, w)
            if layer < len(weights) - 1:
                h = h.relu()
                if train:  # one draw for every trial of the layer
                    h = h * (torch.rand_like(h) < keep) / keep
        return h

    started = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.stack([torch.randperm(y.shape[1], device=device) for _ in range(count)])
        index = torch.arange(count, device=device).unsqueeze(1)
        for i in range(0, y.shape[1], config.optimizer.batch_size):
            batch = order[:, i:i + config.optimizer.batch_size]
            logits = forward(x[index, batch], True)
            loss = F.cross_entropy(logits.transpose(1, 2), y[index, batch], reduction="none").mean(1).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            numbers = []
            for inputs, targets in ((x, y), (xv, yv)):
                logits = forward(inputs, False).transpose(1, 2)
                numbers += [F.cross_entropy(logits, targets, reduction="none").mean(1),
                            (logits.argmax(1) == targets).double().mean(1)]
            torch.stack(numbers).tolist()  # the per-epoch sync a real loop has
    return time.perf_counter() - started


def dropcli_epoch_seconds(config, folder: Path) -> list[float]:
    run = RunFolder.create(folder, config)
    training.run_experiment(training.prepare(config), run)
    return [row["seconds"] for row in run.read_metrics()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 epochs per trial instead of 20")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (overrides --quick)")
    parser.add_argument("--batch", type=int, default=16, help="group size of the batched path (default 16)")
    parser.add_argument("--seeds", type=int, default=len(SEEDS),
                        help=f"seeds per rate (default {len(SEEDS)}: {len(RATES) * len(SEEDS)} trials)")
    parser.add_argument("--model", choices=["mlp", "cnn", "gru", "custom", "all"], default="mlp",
                        help="which model's sweep to time (default mlp; custom: mynet.MyNet through torch.func; "
                             "all: each in turn)")
    args = parser.parse_args()
    epochs = args.epochs or (10 if args.quick else 20)
    if args.seeds < 1:
        parser.error("--seeds: at least 1")
    SEEDS[:] = range(args.seeds)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; sweep: {len(RATES)} rates x {len(SEEDS)} seeds, {epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for model in ["mlp", "cnn", "gru", "custom"] if args.model == "all" else [args.model]:
            time_model(model, epochs, args.batch, tmp / model)
        if args.model not in ("mlp", "all"):
            return

        config = load_config("configs/quickstart.yaml", ["epochs=30", f"device={device}"])
        print("quickstart epoch overhead (mlp):")
        bare, ours = [], []
        for _ in range(3):  # interleaved, so drifting machine load hits both alike
            bare += bare_epoch_seconds(config, 30)[1:]
            ours += dropcli_epoch_seconds(config, tmp / "epochs")[1:]
        bare_median, ours_median = statistics.median(bare), statistics.median(ours)
        print(f"quickstart epoch: bare loop {1000 * bare_median:.1f} ms, dropcli {1000 * ours_median:.1f} ms "
              f"(median of {len(ours)}): overhead {100 * (ours_median / bare_median - 1):+.1f}%")


def time_model(model: str, epochs: int, batch: int, tmp: Path) -> None:
    spec, trials = sweep_trials(epochs, model)
    # warm-up: the data cache and the first calls of both paths (imports, allocator) are not timed
    warm_spec, warm_trials = sweep_trials(1, model)
    # two trials with p > 0, so that the mask kernels' first calls are warmed up too
    warm = [trial for trial in warm_trials if trial.config.regularizer.dropout > 0][:2]
    timed_sweep(warm_spec, warm, tmp / "warm-sequential", batch=1)
    timed_sweep(warm_spec, warm, tmp / "warm-batched", batch=2)
    sequential = timed_sweep(spec, trials, tmp / "sequential", batch=1)
    batched = timed_sweep(spec, trials, tmp / "batched", batch=batch)
    print(f"[{model}] sequential: {len(trials) / sequential:.2f} trials/s ({sequential:.1f} s)")
    print(f"[{model}] batched   : {len(trials) / batched:.2f} trials/s ({batched:.1f} s, groups of {batch})")
    print(f"[{model}] vs_sequential={sequential / batched:.2f}")
    if model == "mlp":
        hand = hand_stacked_seconds(trials)
        print(f"[{model}] hand-written stacked loop: {hand:.1f} s; vs_hand={batched / hand:.2f}")
    loop_sequential = training_loop_seconds(trials, tmp / "sequential")
    loop_batched = training_loop_seconds(trials, tmp / "batched")
    print(f"[{model}] training loop alone (steps + per-epoch evaluation, from metrics.csv): sequential "
          f"{1000 * loop_sequential:.1f} ms, batched {1000 * loop_batched:.1f} ms per trial-epoch: "
          f"{loop_sequential / loop_batched:.2f}x (the rest of a trial: setup, test evaluation, model.pt, "
          f"curves.png, summary)")
    print(f"[{model}] largest metric difference batched vs sequential: "
          f"{largest_difference(trials, tmp / 'sequential', tmp / 'batched'):.2e}")


if __name__ == "__main__":
    sys.exit(main())
