"""What the terminal shows: text from others' files made harmless, plain lines in a log, the summary table."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from dropcli.config import validate_config
from dropcli.display import EpochLog, SweepProgress, counted, epoch_progress, plain, summary_table
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
    assert buffer.getvalue().splitlines() == [
        "sweep: 2 trials, 1 already completed", "trial p-0.5_seed-[/x]: 2 epochs",
        "epoch 1/2 : train loss 0.500  val loss 0.750  val acc 0.625  gap +0.250",
        "trial p-0.5_seed-[/x]: failed: disk full while writing a/b"]


def test_the_summary_table_marks_the_best_setting_and_shows_settings_literally():
    summary = pd.DataFrame({"setting": ["p=0.5", "[red]no regularizer"], "best": [True, False], "runs": [2, 2],
                            "seeds": [2, 2], **{f"{m}_{s}": [0.5, 0.25] for m in ("val_acc", "test_acc", "gap_loss",
                                                                                  "gap_acc") for s in ("mean", "std")}})
    console, buffer = log_console()
    console.print(summary_table(summary, "sweep: mean ± std over seeds"))
    text = buffer.getvalue()
    assert "p=0.5 (best)" in text and "[red]no regularizer" in text and "0.500 ± 0.500" in text
    assert "highest mean validation accuracy" in text
