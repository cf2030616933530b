"""dropcli tune: Optuna studies over real (tiny) training, resumed after a kill without retraining finished
trials; pruned trials are marked in their run folders and never chosen or compared."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest.mock import patch

import optuna
import pytest

from dropcli import train as training
from dropcli import tune as tuning
from dropcli.cli import app
from dropcli.config import load_config, validate_config
from dropcli.results import read_runs, runs_table
from dropcli.runs import RunFolder


def spec_for(tiny_raw, regularizers="dropout,l2", trials=4, seeds=2, **changes):
    base = validate_config({**tiny_raw, "epochs": 3, **changes})
    return tuning.build_spec(base, regularizers, trials, seeds, "val_loss")


def study(tune_dir: Path, spec, name: str):
    return tuning.open_study(tune_dir, spec, name)


def trial_summaries(folder: Path) -> dict[str, dict]:
    return {p.name: RunFolder(p).read_summary() for p in sorted(folder.glob("trial-*"))}


def test_tune_trains_each_budget_retrains_the_best_and_compares_pairs(tiny_raw, tmp_path):
    spec = spec_for(tiny_raw)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    outcome = tuning.tune(spec, tune_dir, batch=2)
    for name in ("dropout", "l2"):
        trials = study(tune_dir, spec, name).get_trials()
        assert len(trials) == 4 and all(t.state.is_finished() for t in trials)
        summaries = trial_summaries(tune_dir / name)
        assert len(summaries) == 4 and all(s["status"] == "completed" for s in summaries.values())
        for trial in trials:  # the run folder trained what the study asked, and told the study its val loss
            folder = tune_dir / name / f"trial-{trial.number:04d}"
            config = load_config(folder / "config.yaml")
            key = next(iter(trial.params))
            assert config.seed == 0 and getattr(config.regularizer, key.split(".")[1]) == trial.params[key]
            if trial.state == optuna.trial.TrialState.COMPLETE:
                assert trial.value == summaries[folder.name]["val_loss"]
    best = {s.name: s for s in outcome.studies}
    assert set(best) == {"dropout", "l2"} and 0 <= best["dropout"].best_params["regularizer.dropout"] <= 0.8
    retrained = sorted(p.name for p in (tune_dir / "best").iterdir() if p.is_dir())
    assert retrained == ["dropout_seed-1", "dropout_seed-2", "l2_seed-1", "l2_seed-2", "none_seed-1", "none_seed-2"]
    dropout_run = RunFolder(tune_dir / "best" / "dropout_seed-1")
    assert dropout_run.config_path.read_text().count(f"dropout: {best['dropout'].best_params['regularizer.dropout']}")
    pairs = set(zip(outcome.comparison["setting"], outcome.comparison["against"]))
    assert pairs == {("dropout", "none"), ("l2", "none"), ("l2", "dropout")}
    assert outcome.comparison["n_pairs"].tolist() == [2, 2, 2] and outcome.comparison["p_holm"].notna().all()
    text = (tune_dir / "comparison.md").read_text()
    assert "l2 (tuned)" in text and "dropout (tuned)" in text and "4 / 0 / 0" in text


def test_tune_resumes_after_a_kill_without_repeating_finished_trials(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_INTERVAL_S", 0.0)  # a group checkpoints every epoch: resume from 1
    spec = spec_for(tiny_raw, regularizers="dropout", trials=4, seeds=2)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    trained = []
    real_run_sweep = tuning.run_sweep

    def counting(trials, folder, *args, **kwargs):
        outcome = real_run_sweep(trials, folder, *args, **kwargs)
        trained.extend(outcome.trained)
        return outcome


    with patch.object(tuning, "run_sweep", counting):
        # the first batch (2 trials) completes; the second is killed in its second epoch
        real_append = RunFolder.append_metrics

        def append(self, row):
            if self.path.name == "trial-0002" and row["epoch"] == 2:
                raise KeyboardInterrupt
            real_append(self, row)

        with patch.object(RunFolder, "append_metrics", append), pytest.raises(training.TrainingInterrupted):
            tuning.tune(spec, tune_dir, batch=2)
        states = [t.state for t in study(tune_dir, spec, "dropout").get_trials()]
        assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2 and len(states) == 4
        assert set(states[2:]) == {optuna.trial.TrialState.RUNNING}
        finished_before = {name: (tune_dir / "dropout" / name / "metrics.csv").read_bytes()
                           for name in ("trial-0000", "trial-0001")}
        trained.clear()
        tuning.tune(spec, tune_dir, batch=2)  # the same tune again: resumes
    assert sorted(t for t in trained if t.startswith("trial-")) == ["trial-0002", "trial-0003"]
    trials = study(tune_dir, spec, "dropout").get_trials()
    assert len(trials) == 4 and all(t.state.is_finished() for t in trials)
    for name, content in finished_before.items():  # never trained again
        assert (tune_dir / "dropout" / name / "metrics.csv").read_bytes() == content
    resumed = RunFolder(tune_dir / "dropout" / "trial-0002").read_summary()
    assert resumed["status"] == "completed" and resumed["resumed"] == 1 and resumed["epochs_run"] == 3


def test_pruned_trials_are_marked_and_never_chosen_or_compared(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "PRUNE_AFTER_TRIALS", 1)  # prune from the second trial on: a tiny study shows it
    spec = spec_for(tiny_raw, regularizers="dropout", trials=6, seeds=2, epochs=4)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    outcome = tuning.tune(spec, tune_dir, batch=1)
    trials = study(tune_dir, spec, "dropout").get_trials()
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "seeded TPE and deterministic training: this study prunes (it did when this test was written)"
    for trial in pruned:
        summary = RunFolder(tune_dir / "dropout" / f"trial-{trial.number:04d}").read_summary()
        assert summary["status"] == "completed" and summary["stop_reason"].startswith("pruned: val_loss")
        assert summary["epochs_run"] < 4 and len(trial.intermediate_values) == summary["epochs_run"]
    result = outcome.studies[0]
    assert result.pruned == len(pruned) and result.best_number not in {t.number for t in pruned}
    table = runs_table(read_runs(tune_dir / "dropout"), tune_dir / "dropout").set_index("run")
    assert set(table.loc[[f"trial-{t.number:04d}" for t in pruned], "status"]) == {"pruned"}
    completed = 6 - len(pruned)
    assert f"| dropout | {completed} / {len(pruned)} / 0 |" in (tune_dir / "comparison.md").read_text()


def test_a_journal_torn_by_a_kill_is_mended_and_the_tune_resumes(tiny_raw, tmp_path):
    """A kill mid-append leaves a last line without its newline: Optuna would append onto it and the journal
    would no longer load. The torn line is cut off; what it recorded is told again from the run folder."""
    spec = spec_for(tiny_raw, regularizers="dropout", trials=2, seeds=2)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    tuning.tune(spec, tune_dir, batch=2)
    journal = tune_dir / tuning.JOURNAL
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-40])  # the last entry, torn: a trial's result the study did not get
    finished = {name: (tune_dir / "dropout" / name / "metrics.csv").read_bytes()
                for name in ("trial-0000", "trial-0001")}
    outcome = tuning.tune(spec, tune_dir, batch=2)  # the same tune again
    trials = study(tune_dir, spec, "dropout").get_trials()
    assert len(trials) == 2 and all(t.state.is_finished() for t in trials) and outcome.studies[0].completed == 2
    assert journal.read_bytes().endswith(b"\n") and whole[:-40].rsplit(b"\n", 1)[0] in journal.read_bytes()
    for name, content in finished.items():  # nothing trained again
        assert (tune_dir / "dropout" / name / "metrics.csv").read_bytes() == content


def test_a_corrupted_journal_is_refused_in_one_line_and_left_as_it_is(tiny_raw, write_config, runner, tmp_path):
    config = write_config({**tiny_raw, "epochs": 2})
    command = ["tune", str(config), "--regularizers", "dropout", "--trials", "2", "--seeds", "2", "--batch", "2",
               "--quiet"]
    first = runner.invoke(app, [*command, "--out", str(tmp_path / "tune")])
    assert first.exit_code == 0, first.output
    outside = tmp_path / "precious.txt"
    outside.write_text("not a journal, and no newline at its end")

    # journal line (split at newlines: -1 is the empty rest after the last one) → what it becomes
    damages = {"cut-in-the-middle": (3, lambda line: line[:25]), "not-utf-8": (3, lambda line: b"\xff\xfe" + line),
               "last-whole-line-not-json": (-2, lambda line: line[:25]),
               "not-optunas": (3, lambda line: b'{"op_code": 42}'), "a-link": None}
    for case, damage in damages.items():
        tune_dir = tmp_path / case
        shutil.copytree(tmp_path / "tune", tune_dir)
        journal = tune_dir / tuning.JOURNAL
        if damage is None:  # planted by someone else: never cut, never followed
            journal.unlink()
            journal.symlink_to(outside)
        else:
            lines = journal.read_bytes().split(b"\n")
            lines[damage[0]] = damage[1](lines[damage[0]])
            journal.write_bytes(b"\n".join(lines))
        before = journal.read_bytes()
        result = runner.invoke(app, [*command, "--out", str(tune_dir)])
        assert result.exit_code == 2, (case, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output, (case, result.stderr)
        assert str(journal) in result.stderr and "choose another --out" in result.stderr, (case, result.stderr)
        # no lock of Optuna's left behind (the tune folder's own .lock stays, as a run folder's does)
        assert journal.read_bytes() == before and not list(tune_dir.glob("?*.lock")), case
    assert outside.read_text() == "not a journal, and no newline at its end"


def test_tune_refusals_are_one_line_and_exit_2(tiny_raw, write_config, runner, tmp_path):
    config = write_config({**tiny_raw, "epochs": 2})
    cases = [(["--regularizers", "dropout,bogus"], "'bogus' is not a regularizer tune knows"),
             (["--regularizers", "none"], "nothing to tune"),
             (["--seeds", "1"], "at least 2 seeds"),
             (["--trials", "99999999999"], "--trials 99,999,999,999: at most 10,000"),
             (["--seeds", "20000"], "--seeds 20,000: at most 10,000"),
             (["--metric", "test_acc"], "expected one of val_loss, val_acc"),
             (["--set", "regularizer.dropout=0.3"], "base config must have none")]
    for options, expected in cases:
        result = runner.invoke(app, ["tune", str(config), "--runs-dir", str(tmp_path / "runs"), *options])
        assert result.exit_code == 2 and expected in result.output, (options, result.output)
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_tune_folder_refuses_another_tune(tiny_raw, tmp_path):
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec_for(tiny_raw), "first")
    with pytest.raises(tuning.TuneError, match="holds a different tune"):
        tuning.open_tune_dir(tune_dir, spec_for(tiny_raw, trials=5), "second")


@pytest.mark.slow
def test_tune_trains_its_batches_as_job_arrays_through_submitit(tiny_raw, tmp_path):
    """The same engine through an executor: each batch one array (submitit's local executor: subprocesses),
    waited for before the sampler asks again; the pruner reaches the study from inside the tasks."""
    from dropcli.config import ExecutorConfig

    spec = spec_for(tiny_raw, regularizers="l2", trials=2, seeds=2, epochs=2)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    outcome = tuning.tune(spec, tune_dir, batch=2, executor=ExecutorConfig(name="submitit-local", timeout_min=10))
    trials = study(tune_dir, spec, "l2").get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(len(t.intermediate_values) == 2 for t in trials)  # reported per epoch from the array task
    assert list((tune_dir / "l2" / ".submitit").iterdir()) and list((tune_dir / "best" / ".submitit").iterdir())
    assert outcome.comparison["n_pairs"].tolist() == [2] and outcome.failed_retrains == {}


def test_a_second_tune_on_one_folder_exits_in_every_phase_even_retraining(tiny_raw, tmp_path, monkeypatch):
    from dropcli import locks

    spec = spec_for(tiny_raw, regularizers="dropout", trials=2)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    tuning.tune(spec, tune_dir, batch=2)  # every study done: a second tune would go straight to the retraining
    held = locks.acquire(tune_dir)  # the first tune, still retraining
    with pytest.raises(tuning.TuneError, match="another tune is running in this folder"):
        tuning.tune(spec, tune_dir, batch=2)
    held.release()


def test_an_edited_journal_is_checked_against_the_tunes_own_space_and_direction(tiny_raw, tmp_path):
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import create_trial

    spec = spec_for(tiny_raw, regularizers="dropout", trials=2)
    tune_dir = tmp_path / "tune"
    tuning.open_tune_dir(tune_dir, spec, "test")
    planted = study(tune_dir, spec, "dropout")
    # the "best" trial of a planted journal: a parameter the tune never searches, and a rate outside its range
    planted.add_trial(create_trial(params={"regularizer.dropout": 0.1, "epochs": 1}, value=-1.0, distributions={
        "regularizer.dropout": FloatDistribution(0.0, 0.8), "epochs": IntDistribution(1, 3)}))
    planted.add_trial(create_trial(params={"regularizer.dropout": 0.95}, value=-2.0,
                                   distributions={"regularizer.dropout": FloatDistribution(0.0, 1.0)}))
    planted.enqueue_trial({"regularizer.dropout": 0.3})
    outcome = tuning.tune(spec, tune_dir, batch=2)
    best = outcome.studies[0]
    assert best.best_number not in (0, 1) and 0 <= best.best_params["regularizer.dropout"] <= 0.8
    assert set(best.best_params) == {"regularizer.dropout"}
    for folder in (tune_dir / "best").glob("dropout_seed-*"):
        assert load_config(folder / "config.yaml").epochs == 3

    flipped = tmp_path / "flipped"
    tuning.open_tune_dir(flipped, spec, "test")
    optuna.create_study(study_name="dropout", storage=tuning.storage(flipped), direction="maximize")
    with pytest.raises(tuning.TuneError, match="is to maximize val_loss, this tune's to minimize"):
        tuning.tune(spec, flipped, batch=2)


def test_a_planted_tune_record_nested_deep_or_with_huge_numbers_is_another_tune(tiny_raw, tmp_path):
    spec = spec_for(tiny_raw)
    for content in ("[" * 100_000 + "]" * 100_000, '{"fingerprint": ' + "9" * 5_000 + "}"):
        tune_dir = tmp_path / str(len(content))
        tune_dir.mkdir()
        (tune_dir / tuning.RECORD).write_text(content)
        with pytest.raises(tuning.TuneError, match="holds a different tune"):
            tuning.open_tune_dir(tune_dir, spec, "test")


def test_a_seed_whose_retraining_seeds_pass_the_limit_is_refused_naming_the_users_seed(tiny_raw):
    with pytest.raises(tuning.TuneError, match=r"seed 4294967294: .* at most 4294967293") as refused:
        spec_for(tiny_raw, seeds=2, seed=4294967294)
    assert "4294967296" not in str(refused.value)


def test_a_full_disk_under_tune_is_one_line_naming_the_file(tiny_raw, write_config, runner, tmp_path,
                                                            fail_at_epoch):
    import errno
    import os

    fail_at_epoch(2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "metrics.csv"))
    result = runner.invoke(app, ["tune", str(write_config(tiny_raw)), "--regularizers", "dropout", "--trials", "2",
                                 "--seeds", "2", "--batch", "1", "--quiet", "--out", str(tmp_path / "tune")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert "metrics.csv" in line and "disk full" in line and "a file:" not in line
