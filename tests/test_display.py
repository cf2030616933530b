"""What the terminal shows: text from others' files made harmless, plain lines in a log, the summary table."""

from __future__ import annotations

import io
import re

import pandas as pd
from rich.console import Console

from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.display import (
    EpochLog,
    SweepProgress,
    TimedLines,
    counted,
    epoch_progress,
    plain,
    print_table,
    summary_table,
)
from dropcli.sweep import Trial

ROW = {"epoch": 1, "train_loss": 0.5, "val_loss": 0.75, "val_acc": 0.625, "gap_loss": 0.25}


def log_console() -> tuple[Console, io.StringIO]:
    """A console writing to a file, as a Slurm log or `| tee` sees it."""
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=200, no_color=True), buffer


def test_text_from_files_cannot_carry_markup_or_escape_sequences():
    console, buffer = log_console()
    console.print(plain("[bold red]boom[/bold red] \x1b]0;owned\x07\x1b[2J run"))
    assert buffer.getvalue() == "[bold red]boom[/bold red] ?]0;owned??[2J run\n"


def test_counts_are_spelled_with_their_noun():
    assert [counted(1, "trial"), counted(16, "trial"), counted(12_000, "run")] == ["1 trial", "16 trials",
                                                                                  "12,000 runs"]


def test_a_log_shows_the_first_the_last_and_every_nth_epoch():
    pacing = EpochLog(1000)
    shown = [epoch for epoch in range(1, 1001) if pacing.due(epoch)]
    assert shown[:3] == [1, 10, 20] and shown[-1] == 1000 and len(shown) == 101  # the first, then every 10th
    assert all(EpochLog(5).due(epoch) for epoch in range(1, 6))  # a short run: every epoch


def test_epochs_in_a_log_are_plain_lines_with_the_run_and_the_gap():
    console, buffer = log_console()
    with epoch_progress(console, "tiny", 2) as on_epoch:
        on_epoch(ROW)
        on_epoch({**ROW, "epoch": 2})
    lines = buffer.getvalue().splitlines()
    assert lines == ["tiny epoch 1/2: train loss 0.500  val loss 0.750  val acc 0.625  gap +0.250",
                     "tiny epoch 2/2: train loss 0.500  val loss 0.750  val acc 0.625  gap +0.250"]


def test_a_sweep_in_a_log_says_each_trial_and_how_it_ended():
    console, buffer = log_console()
    trial = Trial("p-0.5_seed-[/x]", {}, validate_config({"epochs": 2}))
    with SweepProgress(console) as progress:
        progress.start(total=2, already_done=1)
        progress.trial_started(trial)
        progress.epoch(ROW)
        progress.trial_ended(trial, "failed", "disk full while writing a/b")
    lines = buffer.getvalue().splitlines()
    assert lines[:3] == [
        "sweep: 2 trials, 1 already completed", "trial p-0.5_seed-[/x]: 2 epochs",
        "epoch 1/2 : train loss 0.500  val loss 0.750  val acc 0.625  gap +0.250"]
    assert re.fullmatch(r"\[2/2\] p-0\.5_seed-\[/x\]  failed in \d+\.\d s: disk full while writing a/b", lines[3])


def test_the_summary_table_marks_the_best_setting_and_shows_settings_literally():
    summary = pd.DataFrame({"setting": ["p=0.5", "[red]no regularizer"], "best": [True, False], "runs": [2, 2],
                            "seeds": [2, 2], **{f"{m}_{s}": [0.5, 0.25] for m in ("val_acc", "test_acc", "gap_loss",
                                                                                  "gap_acc") for s in ("mean", "std")}})
    console, buffer = log_console()
    console.print(summary_table(summary, "sweep: mean ± std over seeds"))
    text = buffer.getvalue()
    assert "p=0.5 (best)" in text and "[red]no regularizer" in text and "0.500 ± 0.500" in text
    assert "highest mean validation accuracy" in text


TIME = r"\d\d:\d\d:\d\d "


def test_a_piped_sweep_logs_times_counters_durations_and_group_ranges(runner, tiny_raw, write_config, tmp_path):
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2", "--batch", "4",
                                 "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(re.match(TIME, line) for line in lines), [line for line in lines if not re.match(TIME, line)]
    finished = [line for line in lines if re.search(r"\[\d/4\]", line)]
    assert len(finished) == 4
    for line in finished:
        assert re.search(TIME + r"\[\d/4\] p-0\.\d_seed-\d  completed in \d+\.\d s \(its stacked group of 4\)"
                                r"  val_acc 0\.\d{3}  test_acc 0\.\d{3}$", line), line
    assert sorted(int(re.search(r"\[(\d)/4\]", line).group(1)) for line in finished) == [1, 2, 3, 4]
    group = [line for line in lines if "stacked trials running" in line]
    assert group and all("min / median / max" in line and "val acc" in line for line in group)


def test_tables_in_a_file_never_wrap():
    summary = pd.DataFrame([{"setting": "early stopping (patience 10, val_loss), train_size=1000, l2=0.0001",
                             "best": True, "runs": 3, "seeds": 3, **{f"{m}_{s}": 0.5 for m in
                                                                    ("val_acc", "test_acc", "gap_loss", "gap_acc")
                                                                    for s in ("mean", "std")}}])
    out = io.StringIO()
    console = Console(file=out, width=80)  # a file: rich would fold the table at 80 columns
    print_table(console, summary_table(summary, "a long title for a sweep: mean ± std over seeds"))
    rows = [line for line in out.getvalue().splitlines() if "early stopping" in line]
    assert len(rows) == 1 and "train_size=1000, l2=0.0001 (best)" in rows[0]


def test_timed_lines_start_every_line_with_the_time_once():
    out = io.StringIO()
    lines = TimedLines(lambda: out)
    lines.write("one\ntw")
    lines.write("o\nthree\n")
    assert [re.sub(TIME, "", line) for line in out.getvalue().splitlines()] == ["one", "two", "three"]
    assert all(re.match(TIME, line) for line in out.getvalue().splitlines())
