"""Reports: run folders → pandas tables → figures → report.md. A report reads run folders only; it never trains.

    runs.csv      one row per run folder: its settings, status, best epoch, final metrics, gaps
    summary.csv   one row per setting (all settings but the seed): mean and std over seeds, best marked
    report.md     the table, the figures, and what the numbers say in plain words
    *.png         overfitting curves, gap curves, the "best p" curve, the regularizer comparison

The best setting is always the one with the highest mean *validation* accuracy; test accuracy is reported,
never used to choose.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dropcli import stats
from dropcli.config import short_name
from dropcli.files import write_atomically
from dropcli.labels import REGULARIZER_NAMES, setting_label
from dropcli.runs import LoadedRun, is_number, reported_status

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


class ReportError(Exception):
    """Nothing to report on (exit code 2)."""


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
    from dropcli.results import run_name

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


def markdown_text(value: Any) -> str:
    """Text from a run folder, safe inside report.md (and a table cell): no HTML, links, emphasis or
    column breaks of its own."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return re.sub(r"([\\`*_\[\]{}()#+!|~])", r"\\\1", text)


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
    if keys:
        summary = summary.sort_values(keys, kind="stable").reset_index(drop=True)
    # never chosen by test accuracy; equal means summed in another order may differ in the last bit: a tie
    summary["best"] = (summary["val_acc_mean"].max() - summary["val_acc_mean"]).abs() <= 1e-12
    summary["regularizers"] = summary.apply(lambda row: active_regularizers(row, completed, keys), axis=1)
    return summary


def active_regularizers(summary_row: pd.Series, completed: pd.DataFrame, keys: list[str]) -> str:
    """"none", "dropout", "dropout + L2", ... for one setting (read from any of its runs)."""
    run = completed[completed["setting"] == summary_row["setting"]].iloc[0]
    active = [label for key, label in REGULARIZER_NAMES.items() if key in run and run[key] not in (0, 0.0, "off", None)]
    return " + ".join(active) or "none"


def mean_std(mean: float, std: float, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def per_epoch_curves(runs: list[LoadedRun], table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Long table: setting, seed, epoch and the per-epoch metrics of every completed run."""
    frames = []
    for run, (_, row) in zip(runs, table.iterrows()):  # runs_table keeps the order of `runs`
        if row["status"] == "completed":
            frames.append(pd.DataFrame(run.metrics).assign(setting=setting_label(row, keys), seed=row["seed"]))
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


# ---------------------------------------------------------------------------------------------------------
# The whole report


@dataclass
class Report:
    out: Path
    table: pd.DataFrame
    summary: pd.DataFrame
    keys: list[str]
    figures: list[Path] = field(default_factory=list)
    problems: pd.DataFrame = field(default_factory=pd.DataFrame)
    completed: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)  # each setting against its baseline


def build_report(root: Path, out: Path, figure_format: str = "png", latex: bool = False) -> Report:
    from dropcli import plots
    from dropcli.results import read_runs

    runs = read_runs(root)
    refuse_run_folder_as_out(root, out, runs)
    # a run killed between completing and drawing its picture, or trained where none was drawn, gets it now
    plots.draw_run_curves([run.path for run in runs if run.status == "completed"
                           and not (run.path / "curves.png").is_file()])
    if not runs:
        raise ReportError(f"{root}: no run folders found (a run folder holds config.yaml, metrics.csv and "
                          f"summary.json; make some with `dropcli train` or `dropcli sweep`)")
    table = runs_table(runs, root)
    keys = varying_settings(table)
    problems = table[table["status"] != "completed"][["run", "status", "reason"]]
    out.mkdir(parents=True, exist_ok=True)
    leading = ["run", "status", "reason", "seed", *keys, *RESULT_COLUMNS]
    ordered = table[[c for c in leading if c in table] + [c for c in table if c not in leading]]
    # integers stay integers beside missing cells; every file replaced atomically, never left half-written
    write_atomically(out / "runs.csv", spreadsheet_csv(ordered.convert_dtypes()))
    report = Report(out, table, pd.DataFrame(), keys, problems=problems)
    if (table["status"] == "completed").any():
        report.summary = settings_summary(table, keys)
        report.completed = completed_runs(table, keys)
        report.comparisons = stats.baseline_comparisons(report.completed, report.summary, keys)
        written = report.summary.drop(columns=["best"]).assign(best=report.summary["best"])
        if not report.comparisons.empty:  # the interval against the baseline, for a paper's table
            written = written.merge(report.comparisons.drop(columns=["difference"]), on="setting", how="left")
        write_atomically(out / "summary.csv", spreadsheet_csv(written))
        if latex:
            write_atomically(out / "summary.tex", latex_table(report))
        curves = per_epoch_curves(runs, table, keys)
        report.figures = plots.report_figures(curves, report.summary, keys, out, figure_format,
                                              mc_by_passes(runs, table, keys))
    write_atomically(out / "report.md", report_markdown(report, root))
    return report


def refuse_run_folder_as_out(root: Path, out: Path, runs: list[LoadedRun]) -> None:
    """The report may go anywhere, DIR itself included (its own files are not run folders, so it hides no run),
    but not into one of the run folders it reads nor below one: its files would mix with a run's. A lone run
    given as DIR keeps its documented default, DIR/report."""
    out, root = out.resolve(), root.resolve()
    for run in runs:
        folder = run.path.resolve()
        if folder == out or (folder in out.parents and folder != root):
            where = "a run folder" if folder == out else f"inside the run folder {folder}"
            raise ReportError(f"--out {out}: {where}; the report's files would mix with the run's: choose a "
                              f"folder outside the run folders (default: DIR/report)")


def report_markdown(report: Report, root: Path) -> str:
    lines = [f"# dropcli report: {markdown_text(root)}", ""]
    n_done = int((report.table["status"] == "completed").sum())
    lines += [f"{len(report.table)} run folders, {n_done} completed. "
              "Compared settings: "
              f"{', '.join(short_name(k) for k in report.keys) or 'none (all runs share one setting)'}.",
              ""]
    if not report.summary.empty:
        lines += findings(report.summary, report.keys, report.completed, report.comparisons) + [""]
        lines += summary_markdown_table(report.summary) + [""]
        lines += ["Mean ± standard deviation over runs (one per seed). Gaps: val loss − train loss and train "
                  "acc − val acc of the weights each run ends with (under early stopping, the restored best "
                  "epoch's), train metrics in eval mode; max gap: the largest over epochs. "
                  "Best (**bold**) = highest mean "
                  "validation accuracy; test accuracy is never used to choose.", ""]
        lines += mc_markdown_table(report.summary)
        lines += learned_rates_table(report.summary)
        for figure in report.figures:  # a PDF is shown by its PNG preview, and linked
            shown = figure.with_suffix(".png") if figure.suffix == ".pdf" else figure
            link = f" [PDF]({figure.name})" if figure.suffix == ".pdf" else ""
            lines += [f"![{figure.stem.replace('_', ' ')}]({shown.name})", "",
                      f"*{FIGURE_CAPTIONS.get(figure.stem, '')}{CI_CAPTION}*{link}", ""]
        shared = shared_settings(report.table)
        if shared:
            others = int((report.table["status"] != "completed").sum())
            heading = "What every completed run shares" if others else "What every run shares"
            note = [f"The {others} run(s) left out (below) are not counted here.", ""] if others else []
            lines += [f"## {heading}", "", *note, "| setting | value |", "| --- | --- |"]
            lines += [f"| {markdown_text(key)} | {markdown_text(value)} |" for key, value in shared.items()]
            lines.append("")
    if not report.problems.empty:
        lines += ["## Runs left out", "", "| run | status | reason |", "| --- | --- | --- |"]
        lines += [f"| {markdown_text(row.run)} | {markdown_text(row.status)} | {markdown_text(row.reason)} |"
                  for row in report.problems.itertuples()]
        lines.append("")
    return "\n".join(lines)


CI_CAPTION = ("Lines are means over seeds; bands and error bars are the 95 % confidence interval of the mean "
              "(t-interval over seeds); a setting with one seed has none.")
FIGURE_CAPTIONS = {
    "overfitting_curves": "Train and validation loss per epoch, one panel per setting. ",
    "gap_curves": "Generalization gap (validation − train loss) per epoch, one line per setting. ",
    "dropout_rate": "Final gap and accuracy against the dropout rate; the dotted line marks the best p by "
                    "validation accuracy. ",
    "regularizer_comparison": "Each kind of regularizer at its best setting by validation accuracy, among the "
                              "runs that share the best setting's epochs, data and model. ",
    "mc_dropout": "Monte-Carlo dropout against weight scaling (dashed) as the number of passes K grows. ",
    "learned_rates": "Each hidden layer's dropout rate as Concrete dropout learned it, epoch by epoch. ",
}


def summary_markdown_table(summary: pd.DataFrame) -> list[str]:
    headers = ["setting", "regularizers", "runs", *SUMMARY_METRICS.values()]
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for _, row in summary.iterrows():
        cells = [markdown_text(row["setting"]), row["regularizers"], runs_and_seeds(row)]
        cells += [mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in SUMMARY_METRICS]
        if row["best"]:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def mc_markdown_table(summary: pd.DataFrame) -> list[str]:
    """Monte-Carlo dropout vs weight scaling on the test split, for the settings that measured it."""
    if "mc_test_acc_mean" not in summary:
        return []
    measured = summary[summary["mc_test_acc_mean"].notna()]
    headers = ["setting", *MC_METRICS.values()]
    lines = ["### Monte-Carlo dropout vs weight scaling (test split)", "",
             "| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for _, row in measured.iterrows():
        cells = [markdown_text(row["setting"])] + [mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in MC_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "ECE: expected calibration error over 15 confidence bins; MC: the softmax of "
                    "`evaluation.mc_samples` stochastic passes averaged.", ""]


def learned_rates_table(summary: pd.DataFrame) -> list[str]:
    """Concrete dropout's learned rates per layer (and test ECE), for the settings that learned them."""
    layers = [str(c).removesuffix("_mean") for c in summary if re.fullmatch(r"learned_p\d+_mean", str(c))]
    if not layers:
        return []
    measured = summary[summary[f"{layers[0]}_mean"].notna()]
    headers = ["setting", *[f"learned p, layer {c.removeprefix('learned_p')}" for c in layers], "test ECE"]
    lines = ["### Dropout rates learned by Concrete dropout", "",
             "| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for _, row in measured.iterrows():
        cells = [markdown_text(row["setting"])] + [mean_std(row[f"{m}_mean"], row[f"{m}_std"])
                                                   for m in [*layers, "test_ece"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "Each hidden dropout layer's rate at the end of training (metrics.csv has it per epoch, "
                    "learned_p1...); layers in the model's order.", ""]


def latex_table(report: Report) -> str:
    """The summary as a booktabs table a paper can \\input (needs \\usepackage{booktabs}): per setting, the
    mean and 95 % CI half-width of each metric, and the difference in test accuracy to its baseline with its
    interval and Holm-adjusted p-value. Text from run folders is LaTeX-escaped."""
    def cell(mean: float, half: float, scale: float = 1.0, digits: int = 3) -> str:
        if pd.isna(mean):
            return "--"
        text = f"{scale * mean:.{digits}f}"
        return text if pd.isna(half) else f"{text} $\\pm$ {scale * half:.{digits}f}"

    comparisons = report.comparisons.set_index("setting") if not report.comparisons.empty else pd.DataFrame()
    rows = []
    for _, row in report.summary.iterrows():
        line = {"Setting": row["setting"], "$n$": str(row["seeds"]),
                "Val.\\ acc.": cell(row["val_acc_mean"], row["val_acc_ci95"]),
                "Test acc.": cell(row["test_acc_mean"], row["test_acc_ci95"]),
                "Gap (loss)": cell(row["gap_loss_mean"], row["gap_loss_ci95"])}
        if not comparisons.empty:
            c = comparisons.loc[row["setting"]] if row["setting"] in comparisons.index else None
            line["$\\Delta$ test (pts)"] = "--" if c is None else (
                f"{100 * c['test_acc_diff']:+.1f}" + (" (no spread)" if c.get("no_spread") else
                                                     "" if pd.isna(c["test_acc_diff_low"]) else
                                                     f" [{100 * c['test_acc_diff_low']:+.1f}, "
                                                     f"{100 * c['test_acc_diff_high']:+.1f}]"))
            line["$p_\\mathrm{Holm}$"] = "--" if c is None or pd.isna(c["p_holm"]) else f"{c['p_holm']:.2g}"
        rows.append(line)
    table = pd.DataFrame(rows)
    best = list(report.summary["best"])
    styler = (table.style.hide(axis="index").format(escape="latex", subset=["Setting"])
              .apply(lambda column: ["font-weight: bold" if b else "" for b in best], axis=0))
    caption = ("Mean $\\pm$ half-width of the 95\\,\\% confidence interval of the mean over $n$ seeds. "
               "Bold: the best setting by validation accuracy, several when tied (test accuracy is never used "
               "to choose).")
    if not comparisons.empty:
        caption += (" $\\Delta$ test: test accuracy minus that of the setting's baseline (no regularizer, "
                    "everything else equal), in points, with its 95\\,\\% CI (paired by seed) and the p-value "
                    "Holm-adjusted across settings.")
    return styler.to_latex(hrules=True, convert_css=True, caption=caption, label="tab:dropcli-summary",
                           position="t", position_float="centering", column_format="l" + "r" * (table.shape[1] - 1))


def runs_and_seeds(row: pd.Series) -> str:
    """"3" when every run has its own seed; "4 (2 seeds)" when some seed was run twice."""
    if row["runs"] == row["seeds"]:
        return str(row["runs"])
    return f"{row['runs']} ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''})"


def findings(summary: pd.DataFrame, keys: list[str], completed: pd.DataFrame | None = None,
             comparisons: pd.DataFrame | None = None) -> list[str]:
    """The plain-words paragraphs: which setting did best on validation (with its interval against the
    runner-up), how each regularized setting compares with its baseline on test accuracy (a winner only where
    the interval excludes zero), and what a careful reader should know."""
    tied = summary[summary["best"]]
    best = tied.iloc[0]
    if len(tied) > 1:  # the same mean validation accuracy: no one of them is the best
        names = ", ".join(markdown_text(setting) for setting in tied["setting"])
        text = [f"**Tied for the best mean validation accuracy ({best['val_acc_mean']:.4f}): {names}**; "
                f"validation does not tell them apart."]
    else:
        text = [f"**Best setting by validation accuracy: {markdown_text(best['setting'])}** "
                f"({best['regularizers']}): val acc {mean_std(best['val_acc_mean'], best['val_acc_std'])}, "
                f"test acc {mean_std(best['test_acc_mean'], best['test_acc_std'])} over {best['runs']} "
                f"run{'s' if best['runs'] != 1 else ''}."]
    if completed is not None and len(tied) == 1 and len(summary) > 1:
        runner_up = summary[~summary["best"]].sort_values("val_acc_mean", ascending=False).iloc[0]
        d = stats.compare(stats.values_by_seed(completed, best["setting"], "val_acc"),
                          stats.values_by_seed(completed, runner_up["setting"], "val_acc"))
        text.append("Against the runner-up: " + stats.sentence(markdown_text(best["setting"]),
                                                                markdown_text(runner_up["setting"]), d,
                                                                what="validation accuracy"))
    paragraphs = [" ".join(text)]
    if comparisons is not None and not comparisons.empty:
        paragraphs += ["", "Each regularized setting against its baseline (no regularizer, everything else equal), on "
                       "test accuracy; p-values Holm-adjusted across these comparisons:", ""]
        paragraphs += [f"- {stats.sentence(markdown_text(row.setting), markdown_text(row.baseline), row.difference)}"  # type: ignore[arg-type]
                       for row in comparisons.itertuples()]
    elif best["regularizers"] != "none":
        paragraphs.append("No run without any regularizer shares the best setting's other settings, so there is no "
                          "baseline to compare it with.")
    if completed is not None:
        warnings = stats.reading_warnings(completed, summary, keys)
        if warnings:
            paragraphs += ["", "**Before reading the numbers:**", ""] + [f"- {markdown_text(w)}" for w in warnings]
    return paragraphs
