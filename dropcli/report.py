"""Reports: run folders → pandas tables → figures → report.md. A report reads run folders only; it never trains.

    runs.csv      one row per run folder: its settings, status, best epoch, final metrics, gaps
    summary.csv   one row per setting (all settings but the seed): mean and std over seeds, best marked
    report.md     the table, the figures, and what the numbers say in plain words
    *.png         overfitting curves, gap curves, the "best p" curve, the regularizer comparison
    curves/       curves.png of the completed runs whose folder has none (the report never writes into a run folder)

The best setting is always the one with the highest mean *validation* accuracy; test accuracy is reported,
never used to choose.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dropcli import report_plots, run_plots, stats, verdicts
from dropcli.files import write_atomically
from dropcli.report_text import RUN_CURVES_LINK, Report, latex_table, report_markdown
from dropcli.results import (
    RESULT_COLUMNS,
    completed_runs,
    mc_by_passes,
    per_epoch_curves,
    run_name,
    runs_table,
    settings_summary,
    spreadsheet_csv,
    varying_settings,
)
from dropcli.run_reading import LoadedRun
from dropcli.selection import read_roots, select


class ReportError(Exception):
    """Nothing to report on, or no safe place to put it (exit code 2)."""


def build_report(root: Path | list[Path], out: Path, figure_format: str = "png", latex: bool = False,
                 selections: list[str] | None = None, reload_every: int | None = None) -> Report:
    """Every file of the report, written into `out` only: the run folders under `root` are read, never
    written (a run's missing curves.png is drawn into `out`/curves/, not into its folder). Several folders
    are read as one (selection.py), narrowed by `selections` (--select KEY=V1,V2); `reload_every`:
    report.html reloads itself (report --watch)."""
    runs, root = read_roots(root if isinstance(root, list) else [root])
    refuse_run_folder_as_out(root, out, runs)
    if not runs:
        raise ReportError(f"{root}: no run folders found (a run folder holds config.yaml, metrics.csv and "
                          f"summary.json; make some with `dropcli train` or `dropcli sweep`)")
    table = runs_table(runs, root)
    if selections:
        table = select(table, selections)
        runs, table = [runs[i] for i in table.index], table.reset_index(drop=True)
        if table.empty:
            raise ReportError(f"--select {' --select '.join(selections)}: no run matches")
    keys = varying_settings(table)
    refuse_mixed_data(runs, table, keys)
    problems = table[table["status"] != "completed"][["run", "status", "reason"]]
    out.mkdir(parents=True, exist_ok=True)
    leading = ["run", "status", "reason", "seed", *keys, *RESULT_COLUMNS]
    ordered = table[[c for c in leading if c in table] + [c for c in table if c not in leading]]
    # integers stay integers beside missing cells; every file replaced atomically, never left half-written
    write_atomically(out / "runs.csv", spreadsheet_csv(ordered.convert_dtypes()))
    report = Report(out, table, pd.DataFrame(), keys, problems=problems)
    report.run_curves = draw_missing_run_curves(runs, root, out)
    if (table["status"] == "completed").any():
        report.summary = settings_summary(table, keys)
        report.completed = completed_runs(table, keys)
        report.comparisons = stats.baseline_comparisons(report.completed, report.summary, keys)
        report.verdicts = verdicts.head_to_head(report.completed, report.summary, keys)
        if report.verdicts.contests:
            write_atomically(out / "verdicts.csv", spreadsheet_csv(verdicts.contests_table(report.verdicts)))
        written = report.summary.drop(columns=["best"]).assign(best=report.summary["best"])
        if not report.comparisons.empty:  # the interval against the baseline, for a paper's table
            written = written.merge(report.comparisons.drop(columns=["difference"]), on="setting", how="left")
        write_atomically(out / "summary.csv", spreadsheet_csv(written))
        if latex:
            write_atomically(out / "summary.tex", latex_table(report))
        report.curves = per_epoch_curves(runs, table, keys)
        report.figures = report_plots.report_figures(report.curves, report.summary, keys, out, figure_format,
                                                     mc_by_passes(runs, table, keys))
    write_atomically(out / "report.md", report_markdown(report, root))
    from dropcli.html_report import write_html  # plotly: loaded only when a report is written

    write_html(report, root, reload_every)
    return report


def refuse_mixed_data(runs: list[LoadedRun], table: pd.DataFrame, keys: list[str]) -> None:
    """Runs of one setting must have trained on the same data: a data file changed between them (its
    fingerprint, summary.json's data.fingerprint) would pool results of two datasets as seeds of one."""
    seen: dict[tuple[str, ...], tuple[str, str]] = {}  # setting → (fingerprint, first run with it)
    for run, (_, row) in zip(runs, table.iterrows(), strict=True):
        data = run.summary.get("data")
        fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
        if not isinstance(fingerprint, str):
            continue  # a built-in dataset: its name and settings say what it is
        setting = tuple(str(row.get(key)) for key in keys)
        first = seen.setdefault(setting, (fingerprint, str(row["run"])))
        if first[0] != fingerprint:
            raise ReportError(f"{first[1]} and {row['run']} trained on different data (the data files' "
                              f"fingerprints {first[0][:12]} and {fingerprint[:12]} differ) with the same "
                              f"settings: report them separately, or keep each dataset's runs in its own folder")


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


def draw_missing_run_curves(runs: list[LoadedRun], root: Path, out: Path) -> list[Path]:
    """The curves.png of each completed run whose folder has none (killed between completing and drawing its
    picture, or trained where none was drawn), drawn into `out`/curves/<run>.png (a run below a sweep:
    <sweep>__<run>.png): a report never writes into the run folders it reads. Drawn together, on shared axes."""
    missing = [run for run in runs if run.status == "completed" and not (run.path / "curves.png").is_file()]
    if not missing:
        return []
    folder = out / RUN_CURVES_LINK
    if folder.is_symlink():  # the report's own files go into a real folder, never through a planted link
        raise ReportError(f"{folder}: is a symbolic link; move it away (the report draws run curves there)")
    folder.mkdir(exist_ok=True)
    curves = [run_plots.run_curves(run, folder / f"{run_name(run, root).replace('/', '__')}.png") for run in missing]
    drawn = [c for c in curves if c is not None]
    run_plots.plot_run_curves(drawn)
    return [c.path for c in drawn]
