"""Output a person can use anywhere: a log (stdout not a terminal, a narrow width) gets plain lines as they
happen, important lines are never wrapped, and the best row is marked in words, not only in colour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from dropcli.cli import app

NARROW = CliRunner(env={"COLUMNS": "40", "NO_COLOR": "1"})  # CliRunner's stdout is not a terminal


def lines_with(output: str, text: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


def test_a_logged_run_prints_each_epoch_and_its_folder_whole_on_one_line(tiny_raw, write_config, tmp_path):
    runs = tmp_path / "a-rather-long-folder-name-for-runs-that-will-not-fit-in-forty-columns"
    result = NARROW.invoke(app, ["train", str(write_config({**tiny_raw, "epochs": 3})), "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in lines_with(result.output, " epoch ") if line.startswith("tiny")] == \
        ["tiny epoch 1/3", "tiny epoch 2/3", "tiny epoch 3/3"]
    [folder] = list(runs.iterdir())
    assert lines_with(result.output, str(folder)), result.output  # the path never split at 40 columns
    assert "…" not in result.output and "\x1b[" not in result.output


def test_the_resume_command_after_an_interruption_is_whole_on_one_line(tiny_raw, write_config, tmp_path,
                                                                      fail_at_epoch):
    runs = tmp_path / "a-rather-long-folder-name-for-runs-that-will-not-fit-in-forty-columns"
    fail_at_epoch(2, KeyboardInterrupt())
    result = NARROW.invoke(app, ["train", str(write_config({**tiny_raw, "epochs": 3})), "--runs-dir", str(runs)])
    assert result.exit_code == 130
    [folder] = list(runs.iterdir())
    assert lines_with(result.output, f"dropcli train --resume {folder}"), result.output


def test_a_logged_sweep_names_its_groups_and_trials_and_marks_the_best_in_words(tiny_raw, write_config, tmp_path):
    result = NARROW.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2",
                                 "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    assert lines_with(result.output,
                      "group of 4 trials stacked: p-0.0_seed-0, p-0.0_seed-1, p-0.5_seed-0, p-0.5_seed-1")
    # a group's epoch: the range of its trials' metrics (test_display.py has the format)
    assert lines_with(result.output, "epoch 2/2 (4 stacked trials running): val loss")
    assert len(lines_with(result.output, "  completed in ")) == 4
    # marked in words: NO_COLOR here, and a log has no colour anyway (each log line starts with the time)
    assert len([line for line in lines_with(result.output, "(best)") if line[9:].startswith("│")]) == 1
    assert lines_with(result.output, f"run folders in {tmp_path / 'sweep'}/")


@pytest.mark.slow
def test_epoch_lines_reach_a_pipe_while_the_run_is_still_training(tiny_raw, write_config, tmp_path):
    """What `nohup dropcli train ... > log` or a Slurm log sees: lines as they happen, not at the end."""
    config = write_config({**tiny_raw, "epochs": 99, "dataset": {**tiny_raw["dataset"], "train_size": 2000}})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "40"}
    process = subprocess.Popen([sys.executable, "-m", "dropcli.cli", "train", str(config), "--runs-dir",
                                str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            seen.append(line)
            if "epoch 2/99" in line or not line:
                break
        assert "tiny epoch 2/99: train loss" in seen[-1], seen
        assert process.poll() is None  # still training: the line came as it happened
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143
    [folder] = list((tmp_path / "runs").iterdir())
    assert f"dropcli train --resume {folder}" in stderr.splitlines()[-1]
