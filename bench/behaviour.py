"""Behaviour check for refactors: a fixed set of runs whose every metric must stay bit for bit the same.

    OMP_NUM_THREADS=1 uv run python bench/behaviour.py --out before.json     # on the commit before a change
    OMP_NUM_THREADS=1 uv run python bench/behaviour.py --compare before.json # after it: exit 1 on any difference

The set covers each path a refactor of the engine can disturb: a lone MLP with dropout + L2 + max-norm +
early stopping + MC-dropout evaluation, a stacked sweep (p x seeds), a CNN with spatial dropout, a GRU with
variational dropout, Concrete dropout and data augmentation; 5 epochs each, one thread. Only times differ
between two runs of the same code (they are left out).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

EPOCHS = 5
TIMING = {"seconds", "wall_time_s", "train_time_s", "time_s", "started", "finished", "elapsed_s"}

RUNS = {  # name → (command, config, --set overrides)
    "mlp-combined": ("train", "configs/quickstart.yaml",
                     ["regularizer.dropout=0.3", "regularizer.l2=0.0001", "regularizer.max_norm=3.0",
                      "regularizer.early_stopping={patience: 2}", "evaluation.mc_samples=4"]),
    "cnn-spatial": ("train", "configs/cnn.yaml", []),
    "gru-variational": ("train", "configs/gru.yaml", ["regularizer.rnn_dropout=variational"]),
    "concrete": ("train", "configs/quickstart.yaml", ["regularizer.concrete_dropout={}"]),
    "augmentation": ("train", "configs/quickstart.yaml", ["regularizer.augmentation=1.0"]),
    "sweep": ("sweep", "configs/quickstart.yaml", []),
}


def numbers(folder: Path) -> dict:
    """Every metric a run folder holds, times left out: metrics.csv cell by cell and summary.json's numbers."""
    lines = (folder / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    out: dict = {}
    for row_number, line in enumerate(lines[1:]):
        for key, cell in zip(header, line.split(","), strict=True):
            if key not in TIMING:
                out[f"metrics[{row_number}].{key}"] = cell
    summary = json.loads((folder / "summary.json").read_text())

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in TIMING and "time" not in key:
                    walk(f"{prefix}.{key}", item)
        elif isinstance(value, float | int) and not isinstance(value, bool):
            out[prefix] = repr(value) if not (isinstance(value, float) and math.isnan(value)) else "nan"

    walk("summary", summary)
    return out


def run_all(workdir: Path) -> dict:
    results: dict = {}
    for name, (command, config, overrides) in RUNS.items():
        sets = [arg for item in [f"epochs={EPOCHS}", "dataset.train_size=500", *overrides] for arg in ("--set", item)]
        args = [sys.executable, "-m", "dropcli.cli", command, config, *sets, "--threads", "1", "--quiet",
                "--runs-dir", str(workdir / name)]
        if command == "sweep":
            args += ["--p", "0.1,0.3", "--seeds", "2", "--out", str(workdir / name / "sweep")]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        for summary in sorted((workdir / name).rglob("summary.json")):
            folder = summary.parent
            results[f"{name}/{folder.relative_to(workdir / name).as_posix()}" if command == "sweep" else name] = \
                numbers(folder)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the metrics here")
    parser.add_argument("--compare", type=Path, help="compare with metrics written earlier; exit 1 on a difference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_all(Path(tmp))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True))
    if args.compare:
        before = json.loads(args.compare.read_text())
        differences = [f"{run} {key}: {value} → {results.get(run, {}).get(key)}"
                       for run, metrics in before.items() for key, value in metrics.items()
                       if results.get(run, {}).get(key) != value]
        missing = sorted(set(results) ^ set(before))
        for line in differences[:40] + [f"run only on one side: {run}" for run in missing]:
            print(line)
        count = sum(len(metrics) for metrics in before.values())
        print(f"{len(before)} runs, {count} numbers compared: {len(differences)} differ, {len(missing)} runs unmatched")
        return 1 if differences or missing else 0
    print(f"{len(results)} runs, {sum(len(m) for m in results.values())} numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
