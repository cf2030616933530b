"""Run folders as pandas tables, for notebooks and for `dropcli report` alike.

    import dropcli
    runs = dropcli.load_runs("runs/")        # one row per run folder: status, settings, seed, results
    curves = dropcli.load_metrics("runs/")   # one row per run and epoch (long format)

Both read every run folder under the path (itself included) the way `report` does: a broken, half-written
or foreign folder becomes a row with its status and reason (`load_runs`) or contributes no rows
(`load_metrics`), never an exception. The report's tables are built here too (`runs_table`,
`settings_summary`, ...): the report imports this module, never the other way. Nothing here writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from dropcli import stats
from dropcli.labels import REGULARIZER_NAMES, setting_label
from dropcli.run_reading import LoadedRun, discover_run_folders, is_number, load_run, reported_status

IGNORED_SETTINGS = {"name", "seed", "device", "threads", "dataset.root", "dataset.download"}  # never define a setting
IGNORED_SECTIONS = ("executor.",)  # where a run ran is not what it is
# gap_loss / gap_acc: the gap of the weights the run ends with (under early stopping, the restored ones);
# final_gap_*: the last epoch's row; max_gap_*: the largest over epochs
RESULT_COLUMNS = ["best_epoch", "epochs_run", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
                  "test_acc", "gap_loss", "gap_acc", "final_gap_loss", "final_gap_acc", "max_gap_loss", "max_gap_acc",
                  "stop_reason", "mc_samples", "ws_test_acc", "mc_test_acc", "ws_test_nll", "mc_test_nll",
                  "ws_test_ece", "mc_test_ece", "test_ece"]
SUMMARY_METRICS = {"test_acc": "test acc", "val_acc": "val acc", "gap_loss": "final gap (loss)",
                   "gap_acc": "final gap (acc)", "max_gap_loss": "max gap (loss)"}
MC_METRICS = {"ws_test_acc": "acc, weight scaling", "mc_test_acc": "acc, MC", "ws_test_nll": "NLL, weight scaling",
              "mc_test_nll": "NLL, MC", "ws_test_ece": "ECE, weight scaling", "mc_test_ece": "ECE, MC"}


def read_runs(root: str | Path) -> list[LoadedRun]:
    """Every run folder under `root`, itself included. FileNotFoundError when `root` is no folder at all (a
    mistyped path would otherwise read as "no runs")."""
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    return [load_run(path) for path in discover_run_folders(Path(root))]


def run_name(run: LoadedRun, root: Path) -> str:
    """A run's name in tables: its path under `root` (its folder name when it is `root` itself)."""
    return str(run.path.relative_to(root)) if run.path != root else run.path.name


def load_runs(root: str | Path) -> pd.DataFrame:
    """One row per run folder: run (its path under root), status, reason, every config key flattened
    (`regularizer.dropout`, ...; null → "off"), and the summary's results (test_acc, gap_loss, best_epoch,
    ...; missing where a run has none)."""
    runs = read_runs(root)
    return runs_table(runs, Path(root)) if runs else pd.DataFrame(columns=["run", "status", "reason"])


def load_metrics(root: str | Path) -> pd.DataFrame:
    """metrics.csv of every run folder in long format: run, seed, epoch, train/val loss and accuracy, the
    gaps, lr, seconds (and learned_p1... where Concrete dropout logged them). Torn last lines are dropped."""
    root = Path(root)
    frames = []
    for run in read_runs(root):
        if run.metrics:
            seed = (run.config or {}).get("seed")
            frames.append(pd.DataFrame(run.metrics).assign(run=run_name(run, root), seed=seed, status=run.status))
    if not frames:
        return pd.DataFrame(columns=["run", "seed", "status", "epoch"])
    table = pd.concat(frames, ignore_index=True)
    table["epoch"] = table["epoch"].astype(int)
    return table[["run", "seed", "status", *[c for c in table.columns if c not in ("run", "seed", "status")]]]


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """{"regularizer": {"dropout": 0.5}} → {"regularizer.dropout": 0.5}; lists and sub-sections become
    compact text and null becomes "off", so that every setting is one comparable cell."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub_key, sub_value in items:
            name = key if sub_key is None else f"{key}.{sub_key}"
            if sub_value is None:
                sub_value = "off"
            elif isinstance(sub_value, (list, dict)):
                sub_value = json.dumps(sub_value, separators=(",", ":"))
            flat[name] = sub_value
    return flat


# ---------------------------------------------------------------------------------------------------------
# Tables


def runs_table(runs: list[LoadedRun], root: Path) -> pd.DataFrame:
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run": run_name(run, root), "status": reported_status(run), "reason": run.reason}
        if row["status"] == "pruned":  # tune's pruner ended it: never averaged with the rest
            row["reason"] = str(run.summary["stop_reason"])[:500]
        if run.config is not None:
            row.update(flatten_config(run.config))
        row.update({key: result_value(key, run.summary.get(key)) for key in RESULT_COLUMNS})
        learned = run.summary.get("learned_p")  # Concrete dropout's rates, one per layer
        if isinstance(learned, list) and len(learned) <= 64:
            row.update({f"learned_p{i}": result_value("", value) for i, value in enumerate(learned, start=1)})
        rows.append(row)
    return pd.DataFrame(rows)


def result_value(key: str, value: Any) -> Any:
    """A summary.json value as the table takes it: numbers stay numbers, anything else (written by hand, by
    someone else, by an older dropcli) becomes missing, so no column mixes numbers and text."""
    if key == "stop_reason":
        return None if value is None else str(value)[:100]
    return value if is_number(value) else None


def setting_columns(completed: pd.DataFrame) -> list[str]:
    """The config keys that define a setting (not the seed, device, threads, data folder or executor)."""
    keys = [c for c in completed.columns if ("." in c or c == "epochs") and not c.startswith(IGNORED_SECTIONS)]
    return [k for k in keys if k not in IGNORED_SETTINGS]


def varying_settings(table: pd.DataFrame) -> list[str]:
    """The config keys whose value differs between completed runs (the seed aside): what was compared."""
    completed = table[table["status"] == "completed"]
    return [k for k in setting_columns(completed) if completed[k].astype(str).nunique() > 1]


def shared_settings(table: pd.DataFrame) -> dict[str, Any]:
    """The base config every completed run shares: each setting key with its one value."""
    completed = table[table["status"] == "completed"]
    return {k: completed[k].iloc[0] for k in setting_columns(completed)
            if completed[k].astype(str).nunique() == 1 and not pd.isna(completed[k].iloc[0])}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (OWASP's list)


def spreadsheet_csv(frame: pd.DataFrame) -> str:
    """frame as CSV that a spreadsheet opens without running anything: a text cell that starts like a
    formula (a run folder named `=HYPERLINK(...)` in a shared folder, an error message from a summary.json)
    gets a leading `'`, as OWASP advises against CSV injection. Numbers are left as they are (-0.5 stays a
    number)."""
    def defused(value: Any) -> Any:
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    text = frame.select_dtypes(include=["object", "string", "category"]).columns
    return frame.assign(**{column: frame[column].astype(object).map(defused) for column in text}).to_csv(index=False)

def completed_runs(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The completed runs, each with its setting's words (the seed aside)."""
    completed = table[table["status"] == "completed"].copy()
    completed["setting"] = completed.apply(lambda row: setting_label(row, keys), axis=1)
    return completed


def settings_summary(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Completed runs grouped by setting: mean and std of each metric over seeds; `best` by val acc."""
    completed = completed_runs(table, keys)
    aggregations: dict[str, tuple[str, Any]] = {"seeds": ("seed", "nunique"), "runs": ("run", "size")}
    learned = [c for c in completed.columns if re.fullmatch(r"learned_p\d+", c)]
    for metric in [*SUMMARY_METRICS, *[m for m in MC_METRICS if completed[m].notna().any()], "test_ece", *learned]:
        aggregations[f"{metric}_mean"] = (metric, "mean")
        aggregations[f"{metric}_std"] = (metric, "std")
        aggregations[f"{metric}_ci95"] = (metric, stats.half_width)  # ± this: the 95 % CI of the mean
    summary = completed.groupby(["setting", *keys], sort=False, dropna=False).agg(**aggregations).reset_index()
    if keys:  # numbers in order, also inside a setting's text: patience 5, 10, 20 (not 10, 20, 5)
        order = sorted(range(len(summary)), key=lambda i: [natural_order(summary[k].iloc[i]) for k in keys])
        summary = summary.iloc[order].reset_index(drop=True)
    # never chosen by test accuracy; equal means summed in another order may differ in the last bit: a tie
    summary["best"] = (summary["val_acc_mean"].max() - summary["val_acc_mean"]).abs() <= 1e-12
    summary["regularizers"] = summary.apply(lambda row: active_regularizers(row, completed, keys), axis=1)
    return summary


NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def natural_order(value: Any) -> tuple:
    """A sort key for one setting's value: off (or missing) first, then numbers by value, also where they stand
    in text ('{"patience":5,...}' before '{"patience":10,...}'); text between them in alphabetical order."""
    if value == "off" if isinstance(value, str) else value is None or pd.isna(value):
        return ()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("", float(value), "")
    parts = NUMBER.split(str(value))  # text, number, text, number, ..., text
    return tuple(float(part) if i % 2 else part for i, part in enumerate(parts))


def active_regularizers(summary_row: pd.Series, completed: pd.DataFrame, keys: list[str]) -> str:
    """"none", "dropout", "dropout + L2", ... for one setting (read from any of its runs)."""
    run = completed[completed["setting"] == summary_row["setting"]].iloc[0]
    active = [label for key, label in REGULARIZER_NAMES.items() if key in run and run[key] not in (0, 0.0, "off", None)]
    return " + ".join(active) or "none"


def per_epoch_curves(runs: list[LoadedRun], table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Long table: setting, seed, epoch and the per-epoch metrics of every completed run."""
    frames = []
    for run, (_, row) in zip(runs, table.iterrows()):  # runs_table keeps the order of `runs`
        if row["status"] == "completed":
            frames.append(pd.DataFrame(run.metrics).assign(setting=setting_label(row, keys), seed=row["seed"],
                                                           run=row["run"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def mc_by_passes(runs: list[LoadedRun], table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Long table of the runs that measured MC dropout: setting, K (0 = weight scaling), acc, nll, ece."""
    rows = []
    for run, (_, row) in zip(runs, table.iterrows()):
        measured = run.summary.get("mc_dropout") if row["status"] == "completed" else None
        if not isinstance(measured, dict) or not measured.get("mc"):
            continue
        label = setting_label(row, keys)
        try:  # a summary.json anyone may have written: only the shape dropcli writes is read
            measured_rows = [{"setting": label, "K": 0, **measured["weight_scaling"]}]
            measured_rows += [{"setting": label, "K": int(k), **scores} for k, scores in measured["mc"].items()]
            if not all(is_number(r.get(m)) for r in measured_rows for m in ("acc", "nll", "ece")):
                continue
        except (TypeError, ValueError, AttributeError, KeyError):
            continue
        rows += measured_rows
    return pd.DataFrame(rows)
