"""The benchmark's results as files: leaderboard.md (+ .tex), scores.csv (every retrained run and its
normalized score) and statistics.csv (every number the leaderboard and the figures show)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from dropcli import stats
from dropcli.benchmark.aggregate import REPS, Estimate, Statistics
from dropcli.display import counted
from dropcli.files import write_atomically
from dropcli.report_text import markdown_text
from dropcli.results import spreadsheet_csv

SCORE = ("score: the share of the baseline's test error a regularizer removes, paired by seed — (test acc − the "
         "baseline's test acc on the same seed) / the baseline's mean test error on that workload. 0: no better "
         "than no regularizer; 0.1: a tenth of the baseline's errors gone; negative: worse. Dividing by the "
         "baseline's error puts a hard workload and an easy one on one scale; pairing by seed (same split, "
         "initial weights and batch order) removes most of a seed's own luck.")


FEW_SEEDS = 5  # below this many seeds per workload the leaderboard warns that its intervals are too narrow


def interval(e: Estimate | None, digits: int = 3) -> str:
    return "—" if e is None else f"{e.value:+.{digits}f} [{e.low:+.{digits}f}, {e.high:+.{digits}f}]"


def probability(e: Estimate | None) -> str:
    return "—" if e is None else f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def statistics_table(result: Statistics) -> pd.DataFrame:
    """Every number, one row each: statistic, regularizer, against, workload, threshold, value, low, high,
    p_value, p_holm, n."""
    rows: list[dict[str, Any]] = []
    scores = result.scores
    for name, estimates in result.aggregates.items():
        runs = scores[(scores["regularizer"] == name) & scores["score"].notna()]
        for kind, e in estimates.items():
            rows.append({"statistic": kind, "regularizer": name, "value": e.value, "low": e.low, "high": e.high,
                         "n": len(runs), "workloads": runs["workload"].nunique()})
    for (x, y), e in result.improvement.items():
        rows.append({"statistic": "p_improvement", "regularizer": x, "against": y, "value": e.value, "low": e.low,
                     "high": e.high})
    for name, (above, low, high) in result.profiles.items():
        rows += [{"statistic": "profile", "regularizer": name, "threshold": float(t), "value": float(a),
                  "low": float(lo), "high": float(hi)} for t, a, lo, hi in zip(result.thresholds, above, low, high)]
    for row in result.comparisons.itertuples() if not result.comparisons.empty else []:
        rows.append({"statistic": "test_acc_diff", "regularizer": row.regularizer, "against": "none",
                     "workload": row.workload, "value": row.test_acc_diff, "low": row.test_acc_diff_low,
                     "high": row.test_acc_diff_high, "p_value": row.p_value, "p_holm": row.p_holm,
                     "n": row.n_pairs})
    columns = ["statistic", "regularizer", "against", "workload", "threshold", "value", "low", "high", "p_value",
               "p_holm", "n", "workloads"]
    return pd.DataFrame(rows, columns=columns)


def verdicts(result: Statistics) -> dict[str, tuple[int, int, int]]:
    """Per regularizer: workloads where it beats the baseline, where it is worse, where neither is shown."""
    out: dict[str, tuple[int, int, int]] = {}
    if result.comparisons.empty:
        return out
    for name, group in result.comparisons.groupby("regularizer"):
        better = int((group["decided"] & (group["test_acc_diff"] > 0)).sum())
        worse = int((group["decided"] & (group["test_acc_diff"] < 0)).sum())
        out[str(name)] = (better, worse, len(group) - better - worse)
    return out


def aggregate_sentence(name: str, result: Statistics, label: str | None = None) -> str:
    """What the intervals allow one to say of a regularizer across the workloads (`label`: its name as the
    text shows it)."""
    iqm = result.aggregates[name]["iqm"]
    beat = result.improvement.get((name, "none"))
    where = f"IQM score {interval(iqm)}"
    label = label or name
    if iqm.low > 0:
        claim = f"{label} removes part of the baseline's test error across the workloads ({where})"
    elif iqm.high < 0:
        claim = f"{label} adds test error across the workloads ({where})"
    else:
        claim = (f"{label} is not distinguishable from no regularizer across the workloads ({where}: the interval "
                 f"holds 0)")
    if beat is not None:
        side = ("more likely than not to beat" if beat.low > 0.5 else "more likely than not to lose to"
                if beat.high < 0.5 else "no more likely than not to beat")
        claim += f"; a run of it is {side} the baseline's run on the same workload (P = {probability(beat)})"
    seeds = fewest_seeds(result)
    if seeds < FEW_SEEDS:
        claim += f" (only {seeds} seeds per workload: too few for these intervals to be trusted)"
    return claim + "."


def fewest_seeds(result: Statistics) -> int:
    counts = result.scores.groupby(["workload", "regularizer"])["seed"].nunique()
    return int(counts.min()) if len(counts) else 0


def leaderboard_markdown(result: Statistics, suite_name: str, protocol: dict[str, Any], command: str,
                         settings: pd.DataFrame, figures: list[Path]) -> str:
    counts = verdicts(result)
    workloads = result.scores["workload"].nunique()
    as_set = set(result.scores.loc[result.scores["kind"] == "as set", "regularizer"]) \
        if "kind" in result.scores else set()
    lines = [f"# Benchmark: {markdown_text(suite_name)}", "", f"    {command}", "",
             f"Protocol: each regularizer tuned per workload with {counted(protocol['trials'], 'trial')} (Optuna "
             f"TPE, median pruning, chosen by {protocol['metric']}), its best retrained on {protocol['seeds']} fresh "
             f"seeds beside the baseline (no regularizer) on the same seeds; entries marked *as set* are trained as "
             f"given, not tuned. {counted(workloads, 'workload')}.", "", SCORE, "",
             "## Across workloads", "",
             "| rank | regularizer | workloads | runs | IQM score [95 % CI] | mean score [95 % CI] | "
             "P(beats none) [95 % CI] | per workload vs none: better / worse / not shown |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rank, name in enumerate(result.order):
        runs = result.scores[(result.scores["regularizer"] == name) & result.scores["score"].notna()]
        better, worse, open_ = counts.get(name, (0, 0, 0))
        label = markdown_text(name) + (" *(as set)*" if name in as_set else "")
        lines.append(f"| {rank or '—'} | {label} | {runs['workload'].nunique()} | {len(runs)} | "
                     f"{interval(result.aggregates[name]['iqm'])} | {interval(result.aggregates[name]['mean'])} | "
                     f"{probability(result.improvement.get((name, 'none')))} | "
                     f"{'—' if name == 'none' else f'{better} / {worse} / {open_}'} |")
    lines += ["", f"Intervals: 95 % percentile intervals of a stratified bootstrap ({REPS:,} replicates; the seeds "
                  f"resampled within each workload). IQM: the mean of the middle 50 % of the runs' scores. "
                  f"P(beats none): the probability that a run of the regularizer scores higher than a run of the "
                  f"baseline on the same workload (ties count half), averaged over workloads. Per workload: the "
                  f"paired difference in test accuracy over seeds (t-interval, Holm-adjusted across the "
                  f"workload's regularizers) decides better or worse; otherwise not shown.", ""]
    lines += [f"- {aggregate_sentence(name, result, markdown_text(name))}" for name in result.order if name != "none"]
    seeds = fewest_seeds(result)
    if seeds < FEW_SEEDS:
        lines += ["", f"Only {seeds} seeds per workload: a bootstrap interval cannot be wider than the spread of the "
                      f"runs it resamples, so with this few it understates the uncertainty; read a narrow interval "
                      f"with care ({FEW_SEEDS} or more seeds make these intervals worth reading)."]
    lines += ["", "## Probability of improvement", "",
              "P(row > column) [95 % CI], over the workloads both ran: 0.5 is a coin toss; an interval that "
              "excludes 0.5 says which is more likely to score higher on a run.", "",
              "| P(row > column) | " + " | ".join(markdown_text(n) for n in result.order) + " |",
              "| --- |" + " --- |" * len(result.order)]
    for x in result.order:
        cells = ["" if x == y else probability(result.improvement.get((x, y))) for y in result.order]
        lines.append(f"| {markdown_text(x)} | " + " | ".join(cells) + " |")
    lines += ["", "## Per workload", "",
              "Test accuracy over the seeds (mean) and each regularizer minus the baseline, paired by seed, with "
              "its 95 % CI and the Holm-adjusted p-value; the setting is the tuned best (or the entry's own).", "",
              "| workload | regularizer | setting | test acc | − none (points) [95 % CI] | p (Holm) |",
              "| --- | --- | --- | --- | --- | --- |"]
    comparisons = result.comparisons.set_index(["workload", "regularizer"]) if not result.comparisons.empty \
        else None
    for row in settings.to_dict("records"):
        key = (row["workload"], row["regularizer"])
        c = comparisons.loc[key] if comparisons is not None and key in comparisons.index else None
        diff = "—" if c is None else points(c["difference"])
        p = "—" if c is None or math.isnan(c["p_holm"]) else f"{c['p_holm']:.2g}"
        lines.append(f"| {markdown_text(row['workload'])} | {markdown_text(row['regularizer'])} | "
                     f"{markdown_text(row['setting'])} | {100 * row['test_acc']:.1f} % | {diff} | {p} |")
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures]
    return "\n".join(lines) + "\n"


def points(d: stats.Difference) -> str:
    if d.constant or math.isnan(d.low):
        return f"{100 * d.mean:+.1f} (no interval)"
    text = f"{100 * d.mean:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
    return f"**{text}**" if d.decided else text  # bold: the interval excludes 0 and the Holm p is below 0.05


def leaderboard_latex(result: Statistics) -> str:
    """The across-workload table as booktabs (\\usepackage{booktabs})."""
    def tex(e: Estimate | None, digits: int = 3, sign: str = "+") -> str:
        if e is None:
            return "--"
        return f"${e.value:{sign}.{digits}f}$ [${e.low:{sign}.{digits}f}$, ${e.high:{sign}.{digits}f}$]"

    rows = [{"Regularizer": name, "IQM score": tex(result.aggregates[name]["iqm"]),
             "Mean score": tex(result.aggregates[name]["mean"]),
             "$P(X > \\text{none})$": tex(result.improvement.get((name, "none")), 2, "")} for name in result.order]
    table = pd.DataFrame(rows)
    caption = ("Score: the share of the baseline's test error removed, paired by seed. 95\\,\\% stratified "
               "bootstrap intervals (seeds resampled within each workload). IQM: interquartile mean over "
               "workloads $\\times$ seeds.")
    return table.style.hide(axis="index").format(escape="latex", subset=["Regularizer"]).to_latex(
        hrules=True, caption=caption, label="tab:dropcli-benchmark", position="t", position_float="centering",
        column_format="l" + "r" * (table.shape[1] - 1))


def setting_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per workload and regularizer: its setting and mean test accuracy over the seeds."""
    if runs.empty:
        return pd.DataFrame(columns=["workload", "regularizer", "setting", "test_acc"])
    return (runs.groupby(["workload", "regularizer"], sort=False)
            .agg(setting=("setting", "first"), test_acc=("test_acc", "mean")).reset_index())


def write_outputs(out: Path, runs: pd.DataFrame, result: Statistics, suite_name: str, protocol: dict[str, Any],
                  command: str, figures: list[Path]) -> list[Path]:
    written = [out / "scores.csv", out / "statistics.csv", out / "leaderboard.md", out / "leaderboard.tex"]
    write_atomically(written[0], spreadsheet_csv(result.scores))
    write_atomically(written[1], spreadsheet_csv(statistics_table(result)))
    write_atomically(written[2], leaderboard_markdown(result, suite_name, protocol, command, setting_table(runs),
                                                      figures))
    write_atomically(written[3], leaderboard_latex(result))
    return written

