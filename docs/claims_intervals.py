"""The intervals behind docs/claims.md: each claim's comparison, paired by seed, read from the run folders.

    uv run python docs/claims_intervals.py RUNS > intervals.md

RUNS holds the sweep folders made by the commands in docs/claims.md, under these names: 1_rate, 2_reg,
2_reg_es, 3_style, 4_mc, 6_size, 6_noise, 7_cnn, 7_cnn_dropblock, 7_gru, 8_aug, 8_aug_half, 9_lstm,
9_gru_150, 9_lstm_150, 10_rate, 10_concrete (`--out RUNS/<name>`). Every
number comes from dropcli.stats (scipy's paired t-interval and test, Holm across one claim's family of
comparisons), the same code `dropcli report` uses; a verdict of "held" in claims.md rests on an interval
printed here that excludes zero after the correction.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dropcli import stats
from dropcli.results import runs_table
from dropcli.run_reading import discover_run_folders, load_run


def completed(*folders: Path) -> pd.DataFrame:
    """One row per completed run of the folders, with the per-run epochs at which train acc first reached 0.9."""
    frames = []
    for folder in folders:
        runs = [load_run(path) for path in discover_run_folders(folder)]
        runs = [run for run in runs if run.status == "completed"]
        table = runs_table(runs, folder)
        table["epoch_train_acc_090"] = [next((row["epoch"] for row in run.metrics if row["train_acc"] >= 0.9), None)
                                        for run in runs]
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def by_seed(table: pd.DataFrame, metric: str, **where) -> dict[int, float]:
    rows = table
    for key, value in where.items():
        rows = rows[rows[key.replace("__", ".")].astype(str) == str(value)]
    if rows.empty or rows["seed"].duplicated().any():
        raise SystemExit(f"{metric} {where}: {len(rows)} completed runs, not one per seed")
    return {int(seed): float(value) for seed, value in zip(rows["seed"], rows[metric])}


def family(title: str, comparisons: list[tuple[str, str, dict, dict, dict]]) -> None:
    """Print one claim's comparisons, Holm-adjusted together: (name, baseline, setting, base, wording)."""
    differences = stats.holm([stats.compare(a, b) for _, _, a, b, _ in comparisons])
    print(f"### {title}\n")
    for (name, base, _, _, wording), d in zip(comparisons, differences):
        print(f"- {stats.sentence(name, base, d, **wording)}")
    print()


ACC = {"what": "test accuracy"}
GAP = {"what": "the final gap (val − train loss)", "scale": 1.0, "unit": "", "digits": 3, "better": "neither"}
EPOCHS = {"what": "the best epoch", "scale": 1.0, "unit": " epochs", "better": "neither"}
WORDING = {"acc": ACC, "nll": {"what": "test NLL", "scale": 1.0, "unit": "", "digits": 3, "better": "lower"},
           "ece": {"what": "test ECE", "scale": 1.0, "unit": "", "digits": 3, "better": "lower"}}


def main(root: Path) -> None:
    rate = completed(root / "1_rate")
    ps = sorted(float(p) for p in rate["regularizer.dropout"].unique() if float(p) > 0)
    none = {"regularizer__dropout": 0.0}
    family("1. test accuracy, each p against no dropout",
           [(f"p={p:g}", "no dropout", by_seed(rate, "test_acc", regularizer__dropout=p),
             by_seed(rate, "test_acc", **none), ACC) for p in ps])
    family("1. final gap, each p against no dropout",
           [(f"p={p:g}", "no dropout", by_seed(rate, "gap_loss", regularizer__dropout=p),
             by_seed(rate, "gap_loss", **none), GAP) for p in ps])
    family("1. the fall: p=0.7 against the best p by validation (0.4) and against p=0.6",
           [("p=0.7", "p=0.4", by_seed(rate, "test_acc", regularizer__dropout=0.7),
             by_seed(rate, "test_acc", regularizer__dropout=0.4), ACC),
            ("p=0.7", "p=0.6", by_seed(rate, "test_acc", regularizer__dropout=0.7),
             by_seed(rate, "test_acc", regularizer__dropout=0.6), ACC)])

    reg = completed(root / "2_reg", root / "2_reg_es")
    reg["es"] = (reg["regularizer.early_stopping"].astype(str) != "off").astype(str)
    settings = [("L2 1e-3", 0.0, 0.001, "False"), ("early stopping", 0.0, 0.0, "True"),
                ("L2 + early stopping", 0.0, 0.001, "True"), ("dropout 0.3", 0.3, 0.0, "False"),
                ("dropout + early stopping", 0.3, 0.0, "True"), ("dropout + L2", 0.3, 0.001, "False"),
                ("dropout + L2 + early stopping", 0.3, 0.001, "True")]
    base = by_seed(reg, "test_acc", regularizer__dropout=0.0, regularizer__l2=0.0, es="False")
    family("2. test accuracy, each regularizer against none",
           [(name, "none", by_seed(reg, "test_acc", regularizer__dropout=p, regularizer__l2=l2, es=es), base, ACC)
            for name, p, l2, es in settings])
    family("2. dropout + L2 against dropout alone; early stopping added to dropout",
           [("dropout + L2", "dropout 0.3", by_seed(reg, "test_acc", regularizer__dropout=0.3, regularizer__l2=0.001,
                                                   es="False"),
             by_seed(reg, "test_acc", regularizer__dropout=0.3, regularizer__l2=0.0, es="False"), ACC),
            ("dropout + early stopping", "dropout 0.3",
             by_seed(reg, "test_acc", regularizer__dropout=0.3, regularizer__l2=0.0, es="True"),
             by_seed(reg, "test_acc", regularizer__dropout=0.3, regularizer__l2=0.0, es="False"), ACC)])

    style = completed(root / "3_style")
    family("3. scale-at-test against inverted dropout (p = 0.5)",
           [("scale_at_test", "inverted", by_seed(style, metric, regularizer__dropout_style="scale_at_test"),
             by_seed(style, metric, regularizer__dropout_style="inverted"), wording)
            for metric, wording in (("test_acc", ACC), ("gap_loss", GAP))])

    mc = completed(root / "4_mc")
    rows = []
    for p in (0.2, 0.5):
        for metric, wording in WORDING.items():
            rows.append((f"MC (K=50), p={p:g}", "weight scaling",
                         by_seed(mc, f"mc_test_{metric}", regularizer__dropout=p),
                         by_seed(mc, f"ws_test_{metric}", regularizer__dropout=p), wording))
    family("4. MC dropout (K = 50) against weight scaling, same runs", rows)

    family("5. epoch of the lowest validation loss, each p against no dropout",
           [(f"p={p:g}", "no dropout", by_seed(rate, "best_epoch", regularizer__dropout=p),
             by_seed(rate, "best_epoch", **none), EPOCHS) for p in ps])

    for name, key, values in (("6_size", "dataset.train_size", (250, 1000, 3000)),
                              ("6_noise", "dataset.label_noise", (0.0, 0.2, 0.4))):
        table = completed(root / name)
        k = key.replace(".", "__")
        gains = {v: {s: by_seed(table, "test_acc", regularizer__dropout=0.5, **{k: v})[s]
                     - by_seed(table, "test_acc", regularizer__dropout=0.0, **{k: v})[s]
                     for s in by_seed(table, "test_acc", regularizer__dropout=0.0, **{k: v})} for v in values}
        family(f"6. dropout's gain (p = 0.5 − p = 0, test accuracy) at each {key}",
               [(f"p=0.5 at {key}={v:g}", "p=0", by_seed(table, "test_acc", regularizer__dropout=0.5, **{k: v}),
                 by_seed(table, "test_acc", regularizer__dropout=0.0, **{k: v}), ACC) for v in values])
        reference = values[1] if name == "6_size" else values[0]
        family(f"6. does the gain grow? the gain at each {key} against the gain at {reference:g}",
               [(f"the gain at {v:g}", f"the gain at {reference:g}", gains[v], gains[reference], ACC)
                for v in values if v != reference])

    cnn = completed(root / "7_cnn", root / "7_cnn_dropblock")
    plain = by_seed(cnn, "test_acc", model__spatial_dropout=False, regularizer__dropout=0.2)
    family("7. CNN: spatial dropout and DropBlock against plain dropout 0.2",
           [("spatial dropout", "plain dropout",
             by_seed(cnn, "test_acc", model__spatial_dropout=True, regularizer__dropout=0.2), plain,
             ACC),
            ("DropBlock", "plain dropout", by_seed(cnn, "test_acc", regularizer__dropout=0.0), plain, ACC)])
    gru = completed(root / "7_gru")
    family("7. GRU: variational against naive dropout",
           [("variational", "naive", by_seed(gru, metric, regularizer__rnn_dropout="variational"),
             by_seed(gru, metric, regularizer__rnn_dropout="naive"), wording)
            for metric, wording in (("test_acc", ACC), ("gap_loss", GAP))])

    # strength 1 in 8_aug (with its no-regularizer and dropout-only runs), strength 0.5 in 8_aug_half
    aug = completed(root / "8_aug", root / "8_aug_half").drop_duplicates("run")
    for size in (250, 1000, 3200):
        at = lambda p, a, size=size: by_seed(aug, "test_acc", regularizer__dropout=p,  # noqa: E731
                                             regularizer__augmentation=a, dataset__train_size=size)
        family(f"8. test accuracy at {size} training examples, each against no regularizer",
               [("augmentation 1", "none", at(0.0, 1.0), at(0.0, 0.0), ACC),
                ("augmentation 0.5", "none", at(0.0, 0.5), at(0.0, 0.0), ACC),
                ("dropout 0.3", "none", at(0.3, 0.0), at(0.0, 0.0), ACC),
                ("dropout 0.3 + augmentation 0.5", "none", at(0.3, 0.5), at(0.0, 0.0), ACC),
                ("dropout 0.3 + augmentation 1", "none", at(0.3, 1.0), at(0.0, 0.0), ACC)])
        family(f"8. at {size} training examples: augmentation 0.5 against dropout, and both against each alone",
               [("augmentation 0.5", "dropout 0.3", at(0.0, 0.5), at(0.3, 0.0), ACC),
                ("both", "augmentation 0.5 alone", at(0.3, 0.5), at(0.0, 0.5), ACC),
                ("both", "dropout 0.3 alone", at(0.3, 0.5), at(0.3, 0.0), ACC)])

    lstm = completed(root / "9_gru_150", root / "9_lstm_150")
    for style in ("naive", "variational"):
        family(f"9. LSTM against GRU, {style} dropout, 150 epochs",
               [("LSTM", "GRU", by_seed(lstm, metric, model__name="lstm", regularizer__rnn_dropout=style),
                 by_seed(lstm, metric, model__name="gru", regularizer__rnn_dropout=style), wording)
                for metric, wording in (("test_acc", ACC), ("gap_loss", GAP))])
    family("9. variational against naive dropout, in each (150 epochs)",
           [(f"variational {cell}", f"naive {cell}",
             by_seed(lstm, metric, model__name=cell, regularizer__rnn_dropout="variational"),
             by_seed(lstm, metric, model__name=cell, regularizer__rnn_dropout="naive"), wording)
            for cell in ("gru", "lstm") for metric, wording in (("test_acc", ACC), ("gap_loss", GAP))])
    short = completed(root / "9_lstm")
    family("9. LSTM against GRU after 60 epochs",
           [(f"LSTM, {style}", f"GRU, {style}",
             by_seed(short, "test_acc", model__name="lstm", regularizer__rnn_dropout=style),
             by_seed(short, "test_acc", model__name="gru", regularizer__rnn_dropout=style), ACC)
            for style in ("naive", "variational")])

    swept = completed(root / "10_rate")
    concrete = completed(root / "10_concrete")
    means = swept.groupby("regularizer.dropout")["val_acc"].mean()
    best = float(means.idxmax())
    print(f"### 10. the best swept p by mean validation accuracy: {best:g}; the rates Concrete dropout learned: "
          + ", ".join(f"layer {i}: {concrete[f'learned_p{i}'].mean():.3f} ± {concrete[f'learned_p{i}'].std():.3f}"
                      for i in (1, 2)) + "\n")
    learned = lambda metric: by_seed(concrete, metric)  # noqa: E731
    family(f"10. Concrete dropout against the best swept p ({best:g}) and against no dropout",
           [("Concrete dropout", f"p={best:g}", learned(metric), by_seed(swept, metric, regularizer__dropout=best),
             wording) for metric, wording in (("test_acc", ACC), ("test_ece", WORDING["ece"]),
                                              ("test_loss", WORDING["nll"]))]
           + [("Concrete dropout", "no dropout", learned(metric), by_seed(swept, metric, regularizer__dropout=0.0),
               wording) for metric, wording in (("test_acc", ACC), ("test_ece", WORDING["ece"]))])


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
