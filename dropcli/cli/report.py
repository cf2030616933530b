"""dropcli report: tables, figures and report.md for every run folder under a folder."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dropcli.cli.common import a_folder, console, errors, exit_bad_input, with_bad_input_handled
from dropcli.display import plain


def folders(values: list[Path]) -> list[Path]:
    for value in values:
        a_folder(value)
    return values


class FigureFormat(StrEnum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


def report(
    runs_dirs: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, callback=folders, metavar="DIR...",
                                                    help="Folders of run folders: a sweep, several sweeps, lone "
                                                         "runs; several folders are read as one.")],
    out: Annotated[Path | None, typer.Option("--out", file_okay=False,
                                                help="Where the report goes (default: DIR/report; needed with "
                                                     "several folders).")] = None,
    select: Annotated[list[str] | None, typer.Option("--select", metavar="KEY=V1,V2",
                                                        help="Only runs whose KEY has one of these values, e.g. "
                                                             "--select p=0,0.3 or --select model.name=mlp. "
                                                             "Repeatable (all must hold).")] = None,
    figure_format: Annotated[FigureFormat,
                             typer.Option("--format", help="File format of the figures.")] = FigureFormat.png,
    latex: Annotated[bool, typer.Option("--latex",
                                        help="Also write summary.tex: the summary as a booktabs LaTeX table "
                                             "(95 % CIs, differences to the baseline, Holm p).")] = False,
    watch: Annotated[bool, typer.Option("--watch",
                                        help="Keep going: rewrite the report whenever a trial starts or ends "
                                             "(report.html reloads itself) until Ctrl-C.")] = False,
    every: Annotated[int, typer.Option("--every", min=1, help="With --watch: seconds between looks.")] = 30,
) -> None:
    """Tables and overfitting curves for every run folder under DIR. Reads run folders only; never trains.

    Writes runs.csv (one row per run), summary.csv (per setting: mean, std and 95 % CI over seeds, and the
    difference to its baseline with a paired interval and Holm-adjusted p-value), figures (overfitting
    curves, gap per epoch, gap and accuracy against dropout rate, regularizers compared; bands are 95 % CIs)
    and report.md, which says in words what the intervals support: a winner only where the interval
    excludes zero. Head to head: each regularizer family's best setting by validation, every pair of them
    compared seed by seed (verdicts.csv). report.html: the same numbers as one interactive, self-contained
    page. Failed, interrupted or broken runs are listed with their reason and never stop the report.
    """
    from dropcli.display import summary_table
    from dropcli.report import ReportError, build_report

    if out is None and len(runs_dirs) > 1:
        exit_bad_input(f"{len(runs_dirs)} folders: say where their report goes with --out DIR")
    runs_dir = runs_dirs[0] if len(runs_dirs) == 1 else Path(", ".join(map(str, runs_dirs)))
    target = out or runs_dirs[0] / "report"
    roots = runs_dirs if len(runs_dirs) > 1 else runs_dirs[0]
    if watch:
        _watch(runs_dirs, target, figure_format.value, latex, select or [], every)
        return
    result = with_bad_input_handled(lambda: build_report(roots, target, figure_format.value, latex, select or []),
                                    ReportError)
    if not result.summary.empty:
        console.print(summary_table(result.summary, f"{runs_dir}: mean ± std over seeds"))
    for row in result.problems.itertuples():
        errors.print(f"[yellow]left out[/yellow] {plain(row.run)}: {plain(row.status)} ({plain(row.reason)})",
                     highlight=False)
    written = ["runs.csv"] + (["summary.csv"] + (["summary.tex"] if latex else []) if not result.summary.empty else [])
    written += (["verdicts.csv"] if result.verdicts.contests else []) + ["report.html"]
    console.print(f"report: {escape(str(target / 'report.md'))}  ({len(result.table)} runs, "
                  f"{len(result.figures)} figures, {', '.join(written)})")


def _watch(runs_dirs: list[Path], target: Path, figure_format: str, latex: bool, select: list[str],
           every: int) -> None:
    """Rebuild as trials start and end; a report that cannot be made yet (no run folder) is waited for."""
    import time

    from dropcli.report import ReportError, build_report
    from dropcli.watching import watch

    roots = runs_dirs if len(runs_dirs) > 1 else runs_dirs[0]

    def rebuild() -> None:
        try:
            result = build_report(roots, target, figure_format, latex, select, reload_every=every)
        except ReportError as error:
            console.print(f"{time.strftime('%H:%M:%S')} waiting: {plain(error)}", highlight=False)
            return
        done = int((result.table["status"] == "completed").sum())
        console.print(f"{time.strftime('%H:%M:%S')} report: {escape(str(target / 'report.html'))} ({done} of "
                      f"{len(result.table)} runs completed); watching every {every} s, Ctrl-C to stop",
                      highlight=False)

    try:  # a mistyped --select is one line and exit 2 at the first look
        with_bad_input_handled(lambda: watch(rebuild, runs_dirs, every))
    except KeyboardInterrupt:
        console.print("stopped watching")
