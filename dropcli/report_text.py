"""The report in words: report.md (tables, figures, findings in plain words) and summary.tex (a booktabs
table for a paper), from the tables results.py builds. Text that comes from run folders is escaped."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from dropcli import stats, verdicts
from dropcli.config import short_name
from dropcli.labels import mean_std, runs_and_seeds
from dropcli.results import MC_METRICS, SUMMARY_METRICS, shared_settings

RUN_CURVES_LINK = "curves"  # report.py draws them there


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
    run_curves: list[Path] = field(default_factory=list)  # curves.png drawn here for run folders that had none
    verdicts: verdicts.Verdicts = field(default_factory=lambda: verdicts.Verdicts(pd.DataFrame(), []))
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # per run and epoch, with its setting and run


# what would make Markdown of text: code spans, emphasis (an underscore inside a word, as in val_loss, never is),
# links and images ([ ] are enough: "(" only matters after "]"), strikethrough and table column breaks
MARKDOWN_INLINE = re.compile(r"[\\`*\[\]~|]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# and at the start of a cell or a list item: a heading or a nested list (an ordered list's number: below; a quote
# cannot start: html.escape made its ">" an entity)
MARKDOWN_BLOCK_START = re.compile(r"^(?:#{1,6}|[+-])(?=\s|$)")


def markdown_text(value: Any) -> str:
    """Text from a run folder, safe inside report.md (and a table cell): no HTML, links, emphasis, blocks or
    column breaks of its own. Only what Markdown would read is escaped, so that the text reads as written
    ("early stopping (patience 10, val_loss)", not "\\(patience 10, val\\_loss\\)")."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    text = MARKDOWN_INLINE.sub(lambda found: "\\" + found.group(0), text)
    number = re.match(r"\d{1,9}(?=[.)](?:\s|$))", text)
    if number:  # "1. x" would start an ordered list: escape the dot, not the digits
        return f"{number.group(0)}\\{text[number.end():]}"
    return MARKDOWN_BLOCK_START.sub(lambda found: "\\" + found.group(0), text)




def report_markdown(report: Report, root: Path) -> str:
    lines = [f"# dropcli report: {markdown_text(root)}", ""]
    n_done = int((report.table["status"] == "completed").sum())
    lines += [f"{len(report.table)} run folders, {n_done} completed. "
              "Compared settings: "
              f"{', '.join(short_name(k) for k in report.keys) or 'none (all runs share one setting)'}.",
              ""]
    if not report.summary.empty:
        lines += findings(report.summary, report.keys, report.completed, report.comparisons) + [""]
        lines += verdicts.markdown(report.verdicts, markdown_text)
        lines += summary_markdown_table(report.summary) + [""]
        lines += [f"{PLUS_MINUS} Gaps: val loss − train loss and train "
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
    if report.run_curves:
        lines += ["## Curves of runs whose folder has none", "",
                  f"{len(report.run_curves)} completed run folder(s) had no curves.png (killed between completing "
                  "and drawing it, or trained without pictures); they are drawn here instead, on shared axes (a "
                  "report never writes into the run folders it reads):", ""]
        lines += [f"- [{markdown_text(path.stem)}]({RUN_CURVES_LINK}/{quote(path.name)})" for path in report.run_curves]
        lines.append("")
    if not report.problems.empty:
        lines += ["## Runs left out", "", "| run | status | reason |", "| --- | --- | --- |"]
        lines += [f"| {markdown_text(row.run)} | {markdown_text(row.status)} | {markdown_text(row.reason)} |"
                  for row in report.problems.itertuples()]
        lines.append("")
    return "\n".join(lines)


# "±" means one thing in report.md: the standard deviation over runs. Intervals are written [low, high] and
# always named "95 % CI" (summary.tex, the findings), or drawn as bands and error bars (the figures).
PLUS_MINUS = "Mean ± standard deviation over runs (one per seed)."
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
    return lines + ["", f"{PLUS_MINUS} ECE: expected calibration error over 15 confidence bins; MC: the softmax "
                    "of `evaluation.mc_samples` stochastic passes averaged.", ""]


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
    return lines + ["", f"{PLUS_MINUS} Each hidden dropout layer's rate at the end of training (metrics.csv has "
                    "it per epoch, learned_p1...); layers in the model's order.", ""]


def latex_table(report: Report) -> str:
    """The summary as a booktabs table a paper can \\input (needs \\usepackage{booktabs}): per setting, the
    mean and the 95 % CI [low, high] of each metric, and the difference in test accuracy to its baseline with
    its interval and Holm-adjusted p-value. Text from run folders is LaTeX-escaped. No "±": in report.md it
    means the standard deviation, and an interval written as one would read as that."""
    def cell(mean: float, half: float, digits: int = 3) -> str:
        if pd.isna(mean):
            return "--"
        text = f"{mean:.{digits}f}"
        return text if pd.isna(half) else f"{text} [{mean - half:.{digits}f}, {mean + half:.{digits}f}]"

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
    caption = ("Mean and, in brackets, the 95\\,\\% confidence interval of the mean over $n$ seeds. "
               "Bold: the best setting by validation accuracy, several when tied (test accuracy is never used "
               "to choose).")
    if not comparisons.empty:
        caption += (" $\\Delta$ test: test accuracy minus that of the setting's baseline (no regularizer, "
                    "everything else equal), in points, with its 95\\,\\% CI (paired by seed) and the p-value "
                    "Holm-adjusted within the setting's regularizer family.")
    return styler.to_latex(hrules=True, convert_css=True, caption=caption, label="tab:dropcli-summary",
                           position="t", position_float="centering", column_format="l" + "r" * (table.shape[1] - 1))




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
                f"test acc {mean_std(best['test_acc_mean'], best['test_acc_std'])} (mean ± standard deviation "
                f"over {best['runs']} run{'s' if best['runs'] != 1 else ''})."]
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
                       "test accuracy; p-values Holm-adjusted within each regularizer family (its settings against "
                       "the same baseline):", ""]
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
