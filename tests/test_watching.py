"""`dropcli status` on a running sweep (each running trial's epoch) and on a tune folder (dropcli/watching.py)."""

from __future__ import annotations

import json
import shutil

from dropcli import locks
from dropcli.cli import app


def test_status_shows_a_running_trials_epoch_and_works_on_a_tune_folder(runner, tiny_raw, write_config, tmp_path):
    sweep = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "1", "--quiet",
                                 "--out", str(sweep)])
    assert result.exit_code == 0, result.output
    trial = sweep / "p-0.5_seed-0"
    summary = json.loads((trial / "summary.json").read_text())
    (trial / "summary.json").write_text(json.dumps({**summary, "status": "running"}))  # as while it trains
    with locks.acquire(trial):  # a live process owns it
        result = runner.invoke(app, ["status", str(sweep)])
    assert result.exit_code == 0, result.output
    assert "1 completed, 1 running" in result.output
    line = next(line for line in result.output.splitlines() if "p-0.5_seed-0" in line)
    assert "running" in line and "epoch 2/2" in line and "val acc 0." in line and "val loss" in line

    tune = tmp_path / "tune"
    (tune / "dropout").mkdir(parents=True)
    (tune / "tune.json").write_text("{}")
    shutil.copytree(sweep / "p-0.0_seed-0", tune / "dropout" / "trial-0000")
    shutil.copytree(trial, tune / "dropout" / "trial-0001")
    result = runner.invoke(app, ["status", str(tune)])
    assert result.exit_code == 0, result.output
    assert "(tune): 2 trials — 1 completed, 1 running (stale)" in result.output
    assert "dropout/trial-0001" in result.output and "epoch 2/2" in result.output

    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["status", str(empty)])
    assert result.exit_code == 2 and "not a sweep folder (no sweep.json) nor a tune folder" in result.output


def test_watch_rebuilds_when_a_trial_ends_and_the_page_reloads_itself(tmp_path):
    from dropcli.watching import watch

    run = tmp_path / "sweep" / "p-0.5_seed-0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("epochs: 2\n")
    (run / "summary.json").write_text('{"status": "running"}')
    rebuilt = []

    def a_trial_ends(seconds: float) -> None:  # instead of waiting: the trial completes meanwhile
        if len(rebuilt) == 1:
            (run / "summary.json").write_text('{"status": "completed", "val_acc": 0.5}')

    assert watch(lambda: rebuilt.append(1), [tmp_path / "sweep"], every=1, rounds=4, sleep=a_trial_ends) == 2


def test_report_html_written_for_watching_reloads_itself(runner, tiny_raw, write_config, tmp_path):
    from dropcli.report import build_report

    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "1", "--quiet",
                                 "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    build_report(tmp_path / "sweep", tmp_path / "report", reload_every=7)
    assert "<meta http-equiv='refresh' content='7'>" in (tmp_path / "report" / "report.html").read_text()
    build_report(tmp_path / "sweep", tmp_path / "report")
    assert "http-equiv" not in (tmp_path / "report" / "report.html").read_text()
