from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest
import yaml

from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.report import ReportError, build_report
from dropcli.run_files import METRIC_COLUMNS
from dropcli.runs import RunFolder
from dropcli.sweep import SweepSpec, open_sweep_dir, run_sweep
from dropcli.train import prepare, run_experiment


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, data_root):
    """Real tiny training: a sweep (p 0 and 0.5, two seeds), a lone L2 run; plus hand-broken folders."""
    root = tmp_path_factory.mktemp("runs")
    base = validate_config({"name": "tiny", "epochs": 3, "device": "cpu",
                            "dataset": {"root": str(data_root), "train_size": 256, "val_fraction": 0.1},
                            "model": {"hidden_sizes": [32]}, "optimizer": {"lr": 0.003}})
    spec = SweepSpec(base=base.to_dict(), axes={"regularizer.dropout": [0.0, 0.5]}, seeds=[0, 1])
    trials = spec.trials()
    open_sweep_dir(root / "sweep", spec, trials, "dropcli sweep ...")
    assert not run_sweep(trials, root / "sweep").failed
    lone = validate_config({**base.to_dict(), "name": "lone-l2", "regularizer": {"l2": 1e-3}})
    run_experiment(prepare(lone), RunFolder.create(root, lone))

    broken = root / "broken-run"  # a kill mid-write: half a summary, a truncated metrics row
    broken.mkdir()
    (broken / "config.yaml").write_text(yaml.safe_dump(base.to_dict()))
    (broken / "summary.json").write_text('{"status": "runn')
    (broken / "metrics.csv").write_text(",".join(METRIC_COLUMNS) + "\n1,2.0,0.1,2.1,0.1,0.1,0.0,0.001,0.2\n2,1.9,0.")
    killed = root / "killed-run"  # SIGKILL during training: status still "running"
    killed.mkdir()
    (killed / "config.yaml").write_text(yaml.safe_dump(base.to_dict()))
    (killed / "summary.json").write_text(json.dumps({"status": "running"}))
    failed = root / "failed-run"
    failed.mkdir()
    (failed / "config.yaml").write_text(yaml.safe_dump(base.to_dict()))
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: CUDA out of memory"}))
    return root


def test_report_writes_tables_figures_and_markdown(runs_root, tmp_path):
    report = build_report(runs_root, tmp_path / "report")
    out = tmp_path / "report"
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8  # 4 sweep trials + 1 lone run + 3 broken ones: one row per run folder
    assert set(runs["status"]) == {"completed", "broken", "running", "failed"}
    for column in ("regularizer.dropout", "regularizer.l2", "seed", "best_epoch", "test_acc", "val_acc",
                   "gap_loss", "final_gap_loss", "max_gap_loss"):
        assert column in runs
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["setting"]) == ["no regularizer", "l2=0.001", "p=0.5"]
    assert list(summary["seeds"]) == [2, 1, 2]
    assert summary["best"].sum() == 1
    assert summary.loc[summary["best"], "val_acc_mean"].item() == summary["val_acc_mean"].max()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["dropout_rate.png", "gap_curves.png", "overfitting_curves.png", "regularizer_comparison.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in out.glob("*.png"))
    markdown = (out / "report.md").read_text()
    assert "±" in markdown and "Best setting by validation accuracy" in markdown
    assert "![overfitting curves](overfitting_curves.png)" in markdown
    for name, reason in (("broken-run", "summary.json is corrupted"), ("killed-run", "never finished"),
                         ("failed-run", "CUDA out of memory")):
        assert name in markdown and reason in markdown
    assert len(report.problems) == 3


def test_a_broken_run_does_not_hide_its_readable_parts(runs_root, tmp_path):
    from dropcli.run_reading import load_run

    broken = load_run(runs_root / "broken-run")
    assert broken.status == "broken" and len(broken.metrics) == 1  # the truncated second row is dropped


def write_completed_run(path, dropout: float, seed: int, val_acc: float, test_acc: float, gap: float = 0.5,
                        epochs: int = 60):
    path.mkdir(parents=True)
    config = validate_config({"seed": seed, "epochs": epochs, "regularizer": {"dropout": dropout}}).to_dict()
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    row = dict(epoch=1, train_loss=0.5, train_acc=0.9, val_loss=1.0, val_acc=val_acc, gap_loss=0.5,
               gap_acc=0.9 - val_acc, lr=0.001, seconds=0.1)
    pd.DataFrame([row]).to_csv(path / "metrics.csv", index=False)
    summary = {"status": "completed", "best_epoch": 1, "epochs_run": 1, "val_acc": val_acc, "test_acc": test_acc,
               "val_loss": 1.0, "test_loss": 1.0, "train_loss": 0.5, "train_acc": 0.9, "gap_loss": gap,
               "gap_acc": 0.9 - val_acc, "final_gap_loss": gap, "final_gap_acc": 0.9 - val_acc, "max_gap_loss": gap,
               "max_gap_acc": 0.9 - val_acc}
    (path / "summary.json").write_text(json.dumps(summary))


def test_the_best_setting_is_chosen_by_validation_never_by_test(tmp_path):
    for seed in (0, 1):
        write_completed_run(tmp_path / f"a{seed}", 0.2, seed, val_acc=0.60, test_acc=0.40)
        write_completed_run(tmp_path / f"b{seed}", 0.5, seed, val_acc=0.50, test_acc=0.90)
    report = build_report(tmp_path, tmp_path / "report")
    assert report.summary.loc[report.summary["best"], "setting"].item() == "p=0.2"


def test_the_baseline_shares_the_best_settings_other_values(tmp_path):
    """A 3-epoch baseline must not be the yardstick of a 60-epoch dropout run."""
    write_completed_run(tmp_path / "short-baseline", 0.0, 0, val_acc=0.30, test_acc=0.30, gap=0.1, epochs=3)
    write_completed_run(tmp_path / "long-baseline", 0.0, 0, val_acc=0.45, test_acc=0.45, gap=2.0, epochs=60)
    write_completed_run(tmp_path / "long-dropout", 0.3, 0, val_acc=0.50, test_acc=0.50, gap=1.0, epochs=60)
    report = build_report(tmp_path, tmp_path / "report")
    [comparison] = report.comparisons.itertuples()
    assert "epochs=60" in comparison.baseline and comparison.test_acc_diff == pytest.approx(0.05)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "test accuracy +5.0 points with 1 seed: no interval" in markdown


def test_lone_runs_at_two_rates_with_other_differences_do_not_break_the_report(tmp_path):
    write_completed_run(tmp_path / "a", 0.5, 0, val_acc=0.5, test_acc=0.5, epochs=1)
    write_completed_run(tmp_path / "b", 0.0, 0, val_acc=0.4, test_acc=0.4, epochs=2)
    report = build_report(tmp_path, tmp_path / "report")
    assert "dropout_rate.png" not in {p.name for p in report.figures}


def test_the_same_seed_run_twice_is_counted_as_runs_not_seeds(tmp_path):
    write_completed_run(tmp_path / "a", 0.5, 0, val_acc=0.5, test_acc=0.5)
    write_completed_run(tmp_path / "b", 0.5, 0, val_acc=0.4, test_acc=0.4)
    build_report(tmp_path, tmp_path / "report")
    assert "2 (1 seed)" in (tmp_path / "report" / "report.md").read_text()


def test_a_completed_summary_without_results_is_listed_as_broken(tmp_path):
    write_completed_run(tmp_path / "good", 0.5, 0, val_acc=0.5, test_acc=0.5)
    write_completed_run(tmp_path / "empty", 0.5, 1, val_acc=0.5, test_acc=0.5)
    (tmp_path / "empty" / "summary.json").write_text('{"status": "completed"}')
    report = build_report(tmp_path, tmp_path / "report")
    assert list(report.problems["run"]) == ["empty"] and "lacks its results" in report.problems["reason"].item()


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_defused(tmp_path):
    """Folder names and summaries in a shared folder are anyone's: opened in a spreadsheet, runs.csv must not
    run `=HYPERLINK(...)` or a DDE command (CSV injection). Numbers stay numbers."""
    write_completed_run(tmp_path / "=HYPERLINK(\"http:evil\")", 0.5, 0, val_acc=0.5, test_acc=0.5)
    write_completed_run(tmp_path / "@SUM(A1)", 0.5, 1, val_acc=0.5, test_acc=0.5)
    write_completed_run(tmp_path / "failed", 0.5, 2, val_acc=0.5, test_acc=0.5)
    (tmp_path / "failed" / "summary.json").write_text(json.dumps({"status": "failed",
                                                                   "error": "-2+3+cmd|' /C calc'!A0"}))
    build_report(tmp_path, tmp_path / "report")
    runs = pd.read_csv(tmp_path / "report" / "runs.csv")
    cells = [value for value in runs.to_numpy().ravel() if isinstance(value, str)]
    assert not [cell for cell in cells if cell[0] in "=+-@\t\r"], cells
    assert {"'=HYPERLINK(\"http:evil\")", "'@SUM(A1)"} <= set(runs["run"])
    assert runs.loc[runs["run"] == "failed", "reason"].item() == "'-2+3+cmd|' /C calc'!A0"
    assert runs["gap_loss"].dtype.kind == "f"  # numbers untouched
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert not [value for value in summary.to_numpy().ravel() if isinstance(value, str) and value[0] in "=+-@"]


def test_an_mlflow_store_inside_the_reported_folder_is_not_taken_for_runs(tmp_path):
    """`export --mlflow sqlite:///runs/mlflow.db` keeps artifacts in runs/mlartifacts: copies of config.yaml
    and summary.json that would otherwise be counted as (broken) runs."""
    write_completed_run(tmp_path / "a", 0.5, 0, val_acc=0.5, test_acc=0.5)
    for store in ("mlartifacts", "mlruns"):
        artifacts = tmp_path / store / "1" / "0123456789abcdef0123456789abcdef" / "artifacts"
        artifacts.mkdir(parents=True)
        for name in ("config.yaml", "summary.json"):
            (artifacts / name).write_bytes((tmp_path / "a" / name).read_bytes())
    report = build_report(tmp_path, tmp_path / "report")
    assert list(report.table["run"]) == ["a"] and report.problems.empty


def test_a_folder_that_cannot_be_read_is_named_not_silently_skipped(tmp_path, monkeypatch, caplog):
    import os

    from dropcli.run_reading import discover_run_folders

    write_completed_run(tmp_path / "a", 0.5, 0, val_acc=0.5, test_acc=0.5)
    (tmp_path / "locked").mkdir()
    scandir = os.scandir

    def denied(path="."):  # what a folder without read permission gives (root reads them all)
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    assert discover_run_folders(tmp_path) == [tmp_path / "a"]
    assert f"{tmp_path / 'locked'}: cannot be read (Permission denied); any runs in it are left out" in caplog.text


def test_impossible_results_are_left_out_as_broken_never_averaged(tmp_path, runner):
    """A summary.json anyone may have written: numbers no run can have had make the run broken, with the reason."""
    for seed in (0, 1):
        write_completed_run(tmp_path / f"good{seed}", 0.5, seed, val_acc=0.5, test_acc=0.4 + 0.1 * seed)
    planted = {"huge": {"test_acc": 1e308}, "negative": {"test_acc": -5}, "late": {"best_epoch": 10**30},
               "text": {"val_loss": "low"}, "half-epoch": {"epochs_run": 1.5}}
    for seed, (name, change) in enumerate(planted.items(), start=2):
        write_completed_run(tmp_path / name, 0.5, seed, val_acc=0.5, test_acc=0.5)
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        (tmp_path / name / "summary.json").write_text(json.dumps({**summary, **change}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow in a square, among others
        report = build_report(tmp_path, tmp_path / "report")
    reasons = dict(zip(report.problems["run"], report.problems["reason"]))
    assert set(reasons) == set(planted) and set(report.problems["status"]) == {"broken"}
    assert reasons["huge"] == "completed, but summary.json says test_acc = 1e+308, outside [0, 1]"
    assert "test_acc = -5, outside [0, 1]" in reasons["negative"] and "best_epoch = 1e+30" in reasons["late"]
    assert "val_loss = 'low', not a number" in reasons["text"] and "epochs_run = 1.5" in reasons["half-epoch"]
    [row] = report.summary.itertuples()
    assert row.runs == 2 and row.test_acc_mean == pytest.approx(0.45)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0 and "left out huge: broken (completed, but summary.json says test_acc" in result.output
    assert not re.search(r"\d{12}", (tmp_path / "report" / "report.md").read_text())


def test_a_folder_without_runs_is_an_error(tmp_path, runner):
    with pytest.raises(ReportError, match="no run folders"):
        build_report(tmp_path, tmp_path / "report")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no run folders" in result.output
    assert not (tmp_path / "report").exists()


def test_the_report_may_go_into_dir_itself(tmp_path, runner):
    """Its own files are not run folders: written beside the runs, they hide none of them, now or next time."""
    (tmp_path / "config.yaml").write_text("epochs: 3\n")  # a user's config beside the runs makes no run folder
    for seed in (0, 1):
        write_completed_run(tmp_path / "runs" / f"a{seed}", 0.5, seed, val_acc=0.5, test_acc=0.5)
    for _ in range(2):
        result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "runs")])
        assert result.exit_code == 0 and "(2 runs," in result.output, result.output
    assert len(pd.read_csv(tmp_path / "runs" / "runs.csv")) == 2 and (tmp_path / "runs" / "report.md").is_file()


def test_a_report_into_a_run_folder_is_refused_before_anything_is_written(tmp_path, runner):
    runs = tmp_path / "runs"
    for seed in (0, 1):  # no curves.png: a report would draw them first
        write_completed_run(runs / f"a{seed}", 0.5, seed, val_acc=0.5, test_acc=0.5)

    def files() -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    before = files()
    for folder, out in ((runs, runs / "a0"), (runs, runs / "a1" / "report"), (runs, runs / "x" / ".." / "a0"),
                        (runs / "a0", runs / "a0")):
        result = runner.invoke(app, ["report", str(folder), "--out", str(out)])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, (out, result.output)
        assert "run folder" in result.output and "choose a folder outside the run folders" in result.output
        assert files() == before, out
    result = runner.invoke(app, ["report", str(runs / "a0")])  # a lone run keeps its default, DIR/report
    assert result.exit_code == 0 and (runs / "a0" / "report" / "report.md").is_file(), result.output


def test_report_command_prints_a_table_and_honours_the_format(runs_root, tmp_path, runner):
    result = runner.invoke(app, ["report", str(runs_root), "--out", str(tmp_path / "r"), "--format", "svg"])
    assert result.exit_code == 0, result.output
    assert "p=0.5" in result.output and "left out" in result.output
    assert len(list((tmp_path / "r").glob("*.svg"))) == 4
    assert runner.invoke(app, ["report", str(runs_root), "--format", "gif"]).exit_code == 2


def test_a_pdf_report_shows_png_previews_and_links_the_pdfs(runs_root, tmp_path):
    report = build_report(runs_root, tmp_path / "r", figure_format="pdf")
    markdown = (tmp_path / "r" / "report.md").read_text()
    for figure in report.figures:
        assert figure.suffix == ".pdf" and figure.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
        assert f"]({figure.stem}.png)" in markdown and f"[PDF]({figure.name})" in markdown


def test_settings_tied_on_validation_are_called_tied_not_best(runner, tiny_raw, write_config, tmp_path):
    """L2 of 1e-12 changes no float32 weight here: both settings end with the very same validation accuracy."""
    out = tmp_path / "sweep"
    sweep = ["sweep", str(write_config(tiny_raw)), "--l2", "1e-12", "--seeds", "2", "--out", str(out), "--quiet"]
    assert runner.invoke(app, sweep).exit_code == 0
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "Tied for the best mean validation accuracy" in markdown and "Best setting by" not in markdown


# --- reading is read-only ---------------------------------------------------------------------------------------

def folder_state(root, skip) -> dict[str, tuple]:
    """Everything under `root` but `skip` (a report's own folder) and root itself (whose mtime a report folder
    created in it changes): kind and mode, size, modification time (folders too: a file added or removed
    changes it), and the content's hash or a link's target."""
    import hashlib
    import os

    state = {}
    for path in sorted(root.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        info = path.lstat()
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = sorted(child.name for child in path.iterdir()) if path.is_dir() else None
        state[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns, content)
    return state


def test_readers_leave_every_run_folder_byte_for_byte_unchanged(runner, tiny_raw, write_config, tmp_path):
    """report, status, load_runs, load_metrics and export read run folders and write only where they are told:
    a completed run without curves.png gets its picture in the report's folder, never in its own."""
    pytest.importorskip("tensorboard")
    import dropcli

    out = tmp_path / "sweep"
    sweep = ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2", "--out", str(out), "--quiet"]
    assert runner.invoke(app, sweep).exit_code == 0
    (out / "p-0.5_seed-1" / "curves.png").unlink()  # killed before its picture was drawn
    killed = out / "killed"
    killed.mkdir()
    (killed / "config.yaml").write_bytes((out / "p-0.0_seed-0" / "config.yaml").read_bytes())
    (killed / "summary.json").write_text(json.dumps({"status": "running"}))
    report = out / "report"  # the default: inside the sweep folder, beside the run folders
    before = folder_state(out, skip=report)
    readers = {
        "report": lambda: runner.invoke(app, ["report", str(out)]),
        "report again, as PDF": lambda: runner.invoke(app, ["report", str(out), "--format", "pdf"]),
        "status": lambda: runner.invoke(app, ["status", str(out)]),
        "export": lambda: runner.invoke(app, ["export", str(out), "--tensorboard", str(tmp_path / "tb")]),
        "load_runs": lambda: dropcli.load_runs(out),
        "load_metrics": lambda: dropcli.load_metrics(out),
    }
    for name, read in readers.items():
        result = read()
        if hasattr(result, "exit_code"):
            assert result.exit_code == 0, (name, result.output)
        after = folder_state(out, skip=report)
        changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
        assert not changed, f"{name} changed {changed}"
    assert not (out / "p-0.5_seed-1" / "curves.png").exists()
    drawn = report / "curves" / "p-0.5_seed-1.png"
    assert drawn.read_bytes()[:4] == b"\x89PNG"
    assert "(curves/p-0.5_seed-1.png)" in (report / "report.md").read_text()


# --- what a hostile or damaged run folder makes of a report (moved here from test_hardening.py) --------------------

def sweep_args(config, out, *extra: str) -> list[str]:
    return ["sweep", str(config), "--out", str(out), "--quiet", "--batch", "1", *extra]


def test_report_and_status_render_hostile_text_literally(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    assert runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "2")).exit_code == 0
    (out / "p-0.5_seed-1" / "summary.json").write_text(json.dumps(
        {"status": "failed", "error": "[/] [bold red]boom[/bold red] <script>alert(1)</script> | x"}))
    (out / "p-0.0_seed-1" / "summary.json").write_text(json.dumps({"status": "[/]"}))
    # a config value that reads as mathtext, an older schema (no evaluation/executor sections), a wrong type
    older = yaml.safe_load((out / "p-0.5_seed-0" / "config.yaml").read_text())
    older.pop("evaluation"), older.pop("executor")
    older["dataset"]["root"] = "$\\frac{1}{0"
    (out / "p-0.5_seed-0" / "config.yaml").write_text(yaml.safe_dump(older))
    wrong = yaml.safe_load((out / "p-0.0_seed-0" / "config.yaml").read_text())
    wrong["regularizer"]["dropout"] = "abc"
    extra = tmp_path / "sweep" / "wrong-type"
    extra.mkdir()
    for name in ("metrics.csv", "summary.json"):
        (extra / name).write_bytes((out / "p-0.0_seed-0" / name).read_bytes())
    (extra / "config.yaml").write_text(yaml.safe_dump(wrong))
    (extra / "summary.json").write_text(json.dumps({**json.loads((extra / "summary.json").read_text()),
                                                    "best_epoch": "two", "test_acc": [1]}))
    result = runner.invoke(app, ["status", str(out)])
    assert result.exit_code == 0 and "[/]" not in result.output and "unknown" in result.output
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "[bold red]boom[/bold red]" in result.output  # shown as text, not as markup
    assert "does not fit this dropcli's config schema" in result.output
    report = (out / "report" / "report.md").read_text()
    assert "<script>" not in report and "&lt;script&gt;" in report and "\\| x" in report


def test_executor_settings_are_never_compared(runner, tiny_raw, write_config, tmp_path):
    for cpus in (1, 2):
        raw = {**tiny_raw, "executor": {"cpus_per_task": cpus}}
        assert runner.invoke(app, ["train", str(write_config(raw)), "--runs-dir", str(tmp_path)]).exit_code == 0
    report = runner.invoke(app, ["report", str(tmp_path)])
    assert report.exit_code == 0
    assert "Compared settings: none" in (tmp_path / "report" / "report.md").read_text()


def test_crafted_summaries_and_huge_csv_fields_are_left_out_of_reports(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    assert runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "2")).exit_code == 0
    summary = json.loads((out / "p-0.5_seed-0" / "summary.json").read_text())
    (out / "p-0.5_seed-0" / "summary.json").write_text(json.dumps({**summary, "val_acc": float("nan")}))
    (out / "p-0.5_seed-1" / "summary.json").write_text(json.dumps({**summary, "mc_dropout": {"mc": [1, 2]}}))
    with open(out / "p-0.0_seed-0" / "metrics.csv", "a") as handle:
        handle.write("x" * 200_000 + "\n")
    failed = json.loads((out / "p-0.0_seed-1" / "summary.json").read_text())
    (out / "p-0.0_seed-1" / "summary.json").write_text(json.dumps(
        {**failed, "status": "failed", "error": "\x1b]0;owned\x07\x1b[2J gone"}))
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "\x1b" not in result.output and "?]0;owned" in result.output  # shown, but defused
    assert runner.invoke(app, ["status", str(out)]).exit_code == 0


def test_a_400_digit_number_in_a_summary_is_no_result_and_no_traceback(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    assert runner.invoke(app, sweep_args(write_config(tiny_raw), out, "--p", "0.5", "--seeds", "1")).exit_code == 0
    victim = out / "p-0.5_seed-0" / "summary.json"
    victim.write_text(victim.read_text().replace('"test_acc": ', '"test_acc": 1' + "0" * 400 + ', "was": ', 1))
    for command in (["report", str(out), "--out", str(tmp_path / "r")], ["status", str(out)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "| p-0.5_seed-0 | broken |" in (tmp_path / "r" / "report.md").read_text()


# --- report.md reads as written ---------------------------------------------------------------------------------

def test_report_text_is_escaped_only_where_markdown_would_read_it():
    from dropcli.report_text import markdown_text

    readable = ["early stopping (patience 10, val_loss)", "p-0.5_seed-0", "0.2", "-0.5", "+1", "#tag", "x = y!"]
    assert [markdown_text(text) for text in readable] == readable
    assert markdown_text("<script>[link](http://x) *b* _i_ `c` ~~s~~ a|b \\") == \
        "&lt;script&gt;\\[link\\](http://x) \\*b\\* \\_i\\_ \\`c\\` \\~\\~s\\~\\~ a\\|b \\\\"
    assert [markdown_text(text) for text in ("# h", "- x", "+ x", "1. x", "2) x")] == \
        ["\\# h", "\\- x", "\\+ x", "1\\. x", "2\\) x"]


def test_settings_are_sorted_by_their_numbers_and_plus_minus_means_one_thing(tmp_path):
    for patience in (20, 5, 10, None):
        for seed in (0, 1):
            path = tmp_path / f"patience-{patience}_seed-{seed}"
            write_completed_run(path, 0.0, seed, val_acc=0.5 + seed / 10, test_acc=0.5)
            config = yaml.safe_load((path / "config.yaml").read_text())
            config["regularizer"]["early_stopping"] = None if patience is None else {"patience": patience}
            (path / "config.yaml").write_text(yaml.safe_dump(validate_config(config).to_dict()))
            (path / "curves.png").write_bytes(b"\x89PNG")  # drawn by train
    report = build_report(tmp_path, tmp_path / "report", latex=True)
    assert list(report.summary["setting"]) == ["no regularizer", *[f"early stopping (patience {p}, val_loss)"
                                                                   for p in (5, 10, 20)]]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| **early stopping (patience 5, val_loss)** | **early stopping** |" in markdown  # all tied: all bold
    assert "\\(" not in markdown and "val\\_loss" not in markdown
    captions = [line for line in markdown.splitlines() if "±" in line and not line.startswith("|")]
    assert captions and all("standard deviation" in line for line in captions), captions
    tex = (tmp_path / "report" / "summary.tex").read_text()
    assert "\\pm" not in tex and "in brackets, the 95\\,\\% confidence interval" in tex
    assert "0.550 [-0.085, 1.185]" in tex  # mean 0.55 of 0.5 and 0.6; t(1) 95 % half-width 12.706 * 0.05


def test_run_curves_are_never_drawn_through_a_link_planted_in_the_report_folder(tmp_path, runner):
    runs, victim = tmp_path / "runs", tmp_path / "victim"
    write_completed_run(runs / "a0", 0.5, 0, val_acc=0.5, test_acc=0.5)  # no curves.png: the report draws one
    victim.mkdir()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "curves").symlink_to(victim)
    result = runner.invoke(app, ["report", str(runs), "--out", str(tmp_path / "report")])
    assert result.exit_code == 2 and "curves: is a symbolic link" in result.output, result.output
    assert not list(victim.iterdir()) and sorted(p.name for p in (runs / "a0").iterdir()) == [
        "config.yaml", "metrics.csv", "summary.json"]
