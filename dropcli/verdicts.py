"""Head-to-head verdicts: each regularizer family at its best setting, and every pair of bests compared.

The question: "on my model and data, does dropout beat L2 and early stopping, and at which setting of each?"

- A **family** is what a setting switches on: "dropout", "L2", "early stopping", "dropout + L2" ...; "none" is
  the baseline. Settings are compared only within one **context**: the same values of every compared key
  that is not a regularizer (epochs, data, model ...), so runs of another sweep in the folder that differ in
  those never enter this context's comparisons.
- A family's **best setting** is the one with the highest mean validation accuracy (never test accuracy).
- Every pair of families' bests (the baseline included) is compared seed by seed (stats.compare: paired
  t-interval when both have the same seeds) on test accuracy and on the final loss gap.
- **Holm families are defined by the question**, not by what the folder holds: the pairs of bests of one
  context are one family per metric; each family's settings against its baseline are another
  (stats.baseline_comparisons). A sentence names a winner only where the 95 % interval excludes zero and
  the Holm-adjusted p-value is below 0.05 (stats.Difference.decided).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from dropcli import stats
from dropcli.config import short_name
from dropcli.labels import REGULARIZER_NAMES

# metric → (words, better, scale, unit, digits) for stats.sentence
METRICS = {"test_acc": ("test accuracy", "higher", 100.0, " points", 1),
           "gap_loss": ("final loss gap", "lower", 1.0, "", 3)}


@dataclass(frozen=True)
class Contest:
    """One pair of families' bests compared on one metric."""

    context: str
    first: str  # setting names
    second: str
    first_family: str
    second_family: str
    metric: str
    difference: stats.Difference

    @property
    def words(self) -> str:
        return METRICS[self.metric][0]

    @property
    def scale_and_unit(self) -> tuple[float, str]:
        return METRICS[self.metric][2], METRICS[self.metric][3]

    def sentence(self, quote=str) -> str:
        words, better, scale, unit, digits = METRICS[self.metric]
        return stats.sentence(quote(named(self.first_family, self.first)),
                              quote(named(self.second_family, self.second)), self.difference, what=words,
                              scale=scale, unit=unit, digits=digits, better=better)


def named(family: str, setting: str) -> str:
    """"dropout (p=0.3)", "L2 (l2=0.001)"; a setting whose words already name its family stands alone
    ("early stopping (patience 5, val_loss)", "no regularizer")."""
    words = setting.lower()
    return setting if family == "none" or words == family.lower() or words.startswith(f"{family.lower()} (") \
        else f"{family} ({setting})"


@dataclass
class Verdicts:
    bests: pd.DataFrame  # one row per context and family: the best setting's summary row, and the context
    contests: list[Contest]

    @property
    def empty(self) -> bool:
        return self.bests.empty


def contexts(summary: pd.DataFrame, keys: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """The summary's settings split by the values of the compared keys that are not regularizers."""
    structural = [k for k in keys if k not in REGULARIZER_NAMES]
    if not structural:
        return [("", summary)]
    out = []
    for values, group in summary.groupby([summary[k].astype(str) for k in structural], sort=False):
        values = values if isinstance(values, tuple) else (values,)
        out.append((", ".join(f"{short_name(k)}={v}" for k, v in zip(structural, values)), group))
    return out


def head_to_head(completed: pd.DataFrame, summary: pd.DataFrame, keys: list[str]) -> Verdicts:
    """Each family's best setting per context, and every pair of them compared on each of METRICS (Holm
    within the pairs of one context and metric)."""
    bests, contests = [], []
    for context, group in contexts(summary, keys):
        ranked = group.sort_values("val_acc_mean", ascending=False, kind="stable")
        best = ranked.drop_duplicates("regularizers").assign(context=context)
        if len(best) < 2:
            continue
        # the baseline last: "dropout vs none" reads as a regularizer against doing nothing
        best = pd.concat([best[best["regularizers"] != "none"], best[best["regularizers"] == "none"]])
        bests.append(best)
        pairs = list(itertools.combinations(best.to_dict("records"), 2))
        for metric in METRICS:
            differences = stats.holm([stats.compare(stats.values_by_seed(completed, a["setting"], metric),
                                                    stats.values_by_seed(completed, b["setting"], metric))
                                      for a, b in pairs])
            contests += [Contest(context, a["setting"], b["setting"], a["regularizers"], b["regularizers"], metric, d)
                         for (a, b), d in zip(pairs, differences)]
    return Verdicts(pd.concat(bests, ignore_index=True) if bests else pd.DataFrame(), contests)


def contests_table(verdicts: Verdicts) -> pd.DataFrame:
    """The contests as rows (for verdicts.csv and the HTML page): the same numbers as report.md."""
    return pd.DataFrame([{"context": c.context, "first": c.first, "first_family": c.first_family,
                          "second": c.second, "second_family": c.second_family, "metric": c.metric,
                          "difference": c.difference.mean, "low": c.difference.low, "high": c.difference.high,
                          "p_value": c.difference.p_value, "p_holm": c.difference.p_adjusted, "n": c.difference.n,
                          "paired": c.difference.paired, "decided": c.difference.decided,
                          "sentence": c.sentence()} for c in verdicts.contests])


def ci(mean: float, half: float, digits: int = 3) -> str:
    """"0.512 [0.499, 0.525]": the mean and its 95 % confidence interval ("±" is kept for the standard
    deviation, everywhere in the report)."""
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" if pd.isna(half) else \
        f"{mean:.{digits}f} [{mean - half:.{digits}f}, {mean + half:.{digits}f}]"


def markdown(verdicts: Verdicts, quote=str) -> list[str]:
    """The head-to-head section of report.md; `quote` makes text from run folders safe for markdown."""
    if verdicts.empty:
        return []
    lines = ["## Head to head: each regularizer at its best setting", "",
             "Each family's best setting by mean validation accuracy, then every pair of those bests compared "
             "seed by seed. The p-values are Holm-adjusted across the pairs of bests (per metric and context): the "
             "family of comparisons this question makes, whatever else the folder holds.", ""]
    for context, best in verdicts.bests.groupby("context", sort=False):
        if context:
            lines += [f"### {quote(context)}", ""]
        lines += ["| regularizer | best setting | seeds | val acc | test acc | final gap (loss) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {quote(row['regularizers'])} | {quote(row['setting'])} | {row['seeds']} | "
                  + " | ".join(ci(row[f"{m}_mean"], row[f"{m}_ci95"]) for m in ("val_acc", "test_acc", "gap_loss"))
                  + " |" for row in best.to_dict("records")]
        lines += ["", "Mean and, in brackets, its 95 % confidence interval over seeds.", ""]
        for metric in METRICS:
            lines += [f"- {c.sentence(quote)}" for c in verdicts.contests
                      if c.context == context and c.metric == metric]
        lines.append("")
    return lines
