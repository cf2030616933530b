"""Every figure the documentation shows, made by one script from dropcli's own commands.

    uv run python docs/make_figures.py                      # all of them (the claims' runs take hours)
    uv run python docs/make_figures.py quickstart_curves.png report_dropout_rate.png   # some
    uv run python docs/make_figures.py --list               # what each is made from

Each figure is a file that `dropcli train` or `dropcli report` writes, copied into docs/. The runs go into a
work folder (`--work`, default `figure-runs/`), named per workload, so a second call reuses what the first
trained (the sweeps resume; a trained `train` workload is not trained again). `--tiny` trains 2 epochs of 200
examples and 2 seeds instead, for checking this script (tests/test_docs.py), never for the docs.
Produced on the project's 2-core CPU with `--threads 1`; other machines give numbers within seed noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


@dataclass(frozen=True)
class Figure:
    workload: str  # a key of WORKLOADS: the runs it is drawn from
    source: str  # the file they leave, relative to the workload's folder (a glob, newest match)
    note: str = ""


# workload → the dropcli commands that make it, run in order inside WORK/<workload>/ (claims: docs/claims.md)
WORKLOADS: dict[str, list[str]] = {
    "quickstart": ["train configs/quickstart.yaml --runs-dir runs"],
    "claims_1": ["sweep configs/quickstart.yaml --p 0.1..0.7 --seeds 5 --out 1_rate", "report 1_rate"],
    "claims_2": ["sweep configs/quickstart.yaml --p 0.3 --l2 0,0.001 --seeds 5 --out runs/2_reg",
                 "sweep configs/quickstart.yaml --p 0.3 --l2 0,0.001 --seeds 5 "
                 "--set 'regularizer.early_stopping={patience: 10}' --set name=es --out runs/2_reg_es",
                 "report runs"],
    "claims_3": ["sweep configs/claims/dropout_style.yaml --grid regularizer.dropout_style=inverted,scale_at_test "
                 "--seeds 5 --out 3_style", "report 3_style"],
    "claims_4": ["sweep configs/claims/mc_dropout.yaml --p 0.2,0.5 --seeds 5 --out 4_mc", "report 4_mc"],
    "claims_6_size": ["sweep configs/quickstart.yaml --p 0.5 --grid dataset.train_size=250,1000,3000 --seeds 5 "
                      "--out 6_size", "report 6_size"],
    "claims_6_noise": ["sweep configs/quickstart.yaml --p 0.5 --grid dataset.label_noise=0.0,0.2,0.4 --seeds 5 "
                       "--out 6_noise", "report 6_noise"],
    "claims_7_gru": ["sweep configs/claims/gru_variational.yaml --grid regularizer.rnn_dropout=naive,variational "
                     "--seeds 5 --set epochs=60 --out 7_gru", "report 7_gru"],
    "claims_8": ["sweep configs/claims/augmentation.yaml --p 0.3 --grid regularizer.augmentation=0,1 "
                 "--grid dataset.train_size=3200 --seeds 5 --out 8_aug", "report 8_aug"],
    "claims_9": ["sweep configs/claims/gru_variational.yaml --grid model.name=gru,lstm "
                 "--grid regularizer.rnn_dropout=naive,variational --seeds 5 --set epochs=60 --out 9_lstm",
                 "report 9_lstm"],
    "claims_10": ["sweep configs/claims/concrete_dropout.yaml --set 'regularizer.concrete_dropout={}' --seeds 5 "
                  "--out 10_concrete", "report 10_concrete"],
    "benchmark": ["benchmark benchmarks/regularizers-small.yaml --threads 1 --out bench"],  # docs/benchmark.md
    "claims_11": ["tune configs/quickstart.yaml --regularizers dropout,l2,early_stopping,augmentation --trials 24 "
                  "--seeds 5 --metric val_acc --out 11_tune_val_acc", "report 11_tune_val_acc/best"],
}

# docs-relative path → how it is made
FIGURES: dict[str, Figure] = {
    "quickstart_curves.png": Figure("quickstart", "runs/quickstart-*/curves.png"),
    "report_dropout_rate.png": Figure("claims_1", "1_rate/report/dropout_rate.png"),
    "report_gap_curves.png": Figure("claims_1", "1_rate/report/gap_curves.png"),
    "claims/1_dropout_rate.png": Figure("claims_1", "1_rate/report/dropout_rate.png"),
    "claims/1_gap_curves.png": Figure("claims_1", "1_rate/report/gap_curves.png"),
    "claims/2_regularizers.png": Figure("claims_2", "runs/report/regularizer_comparison.png"),
    "claims/3_style_curves.png": Figure("claims_3", "3_style/report/overfitting_curves.png"),
    "claims/4_mc_dropout.png": Figure("claims_4", "4_mc/report/mc_dropout.png"),
    "claims/5_curves.png": Figure("claims_1", "1_rate/report/overfitting_curves.png"),
    "claims/6_size.png": Figure("claims_6_size", "6_size/report/dropout_rate.png"),
    "claims/6_noise.png": Figure("claims_6_noise", "6_noise/report/dropout_rate.png"),
    "claims/7_gru_curves.png": Figure("claims_7_gru", "7_gru/report/overfitting_curves.png"),
    "claims/8_augmentation.png": Figure("claims_8", "8_aug/report/regularizer_comparison.png",
                                        "the 3200-example runs of claim 8's first sweep"),
    "claims/9_lstm_gru_curves.png": Figure("claims_9", "9_lstm/report/overfitting_curves.png"),
    "claims/10_learned_rates.png": Figure("claims_10", "10_concrete/report/learned_rates.png"),
    "claims/11_tuned.png": Figure("claims_11", "11_tune_val_acc/best/report/regularizer_comparison.png"),
    **{f"benchmark/figures/{name}.png": Figure("benchmark", f"bench/figures/{name}.png", "the shipped suite, ~40 min")
       for name in ("aggregate", "improvement", "profiles", "forest")},
}

TINY = ["--set", "epochs=2", "--set", "dataset.train_size=200"]


def run_dropcli(words: list[str], folder: Path) -> None:
    """One dropcli command, in this process (torch is imported once for all of them), inside `folder`."""
    import typer

    from dropcli.cli import app

    here = Path.cwd()
    os.chdir(folder)
    try:
        code = typer.main.get_command(app).main(words, prog_name="dropcli", standalone_mode=False)
    except SystemExit as stop:
        code = stop.code
    finally:
        os.chdir(here)
    if code not in (0, None):
        raise SystemExit(f"make_figures: `dropcli {' '.join(words)}` exited {code}")


def command_words(command: str, tiny: bool, extra: list[str]) -> list[str]:
    import shlex

    words = shlex.split(command)
    if words[0] in ("train", "sweep", "tune"):
        words += ["--threads", "1", *(TINY if tiny else []), *extra]
        if tiny and "--seeds" in words:
            words += ["--seeds", "2"]
        if tiny and "--trials" in words:
            words += ["--trials", "2"]
    return words


def make_workload(name: str, work: Path, tiny: bool, extra: list[str]) -> Path:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    for shared in ("configs", "benchmarks"):  # the paths the commands and the suite name
        if not (folder / shared).exists():
            (folder / shared).symlink_to(ROOT / shared)
    for command in WORKLOADS[name]:
        if command.startswith("train ") and any((folder / "runs").glob("*/summary.json")):
            continue  # trained by an earlier call
        run_dropcli(command_words(command, tiny, extra), folder)
    return folder


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", nargs="*", help="docs-relative paths (default: all)")
    parser.add_argument("--list", action="store_true", help="print each figure's commands and exit")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the figures go (default: docs/)")
    parser.add_argument("--work", type=Path, default=Path("figure-runs"), help="where the runs go")
    parser.add_argument("--tiny", action="store_true", help="2 epochs, 200 examples, 2 seeds: a check, not figures")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="one more override for every run (e.g. dataset.root=...)")
    args = parser.parse_args(argv)
    chosen = args.figures or list(FIGURES)
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {unknown[0]}; known: {', '.join(FIGURES)}")
    if args.list:
        for name in chosen:
            figure = FIGURES[name]
            print(f"{name}: {figure.source} of", *(f"\n    dropcli {c}" for c in WORKLOADS[figure.workload]),
                  f"\n    ({figure.note})" if figure.note else "")
        return []
    extra = [word for value in args.set for word in ("--set", value)]
    made = []
    for name in chosen:
        figure = FIGURES[name]
        folder = make_workload(figure.workload, args.work.resolve(), args.tiny, extra)
        sources = sorted(folder.glob(figure.source), key=lambda path: path.stat().st_mtime)
        if not sources:
            raise SystemExit(f"make_figures: {figure.workload} left no {figure.source}")
        target = args.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[-1], target)
        print(f"{target}  ←  {sources[-1]}")
        made.append(target)
    return made


if __name__ == "__main__":
    main(sys.argv[1:])
