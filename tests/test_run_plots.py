"""curves.png: one run's picture, drawn from its folder; runs drawn together share their axes."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from dropcli.run_plots import RunCurves, RunCurvesFigure, draw_run_curves, plot_run_curves


def test_run_pictures_drawn_together_share_axes_but_show_their_own_curves(tmp_path):
    def rows(slope, epochs):
        return [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 + slope * e, "train_acc": 1 - 0.5 / e,
                 "val_acc": 0.5} for e in range(1, epochs + 1)]

    runs = [RunCurves(rows(0.1, 20), tmp_path / "a.png", "run a", 5),
            RunCurves(rows(0.0, 8), tmp_path / "b.png", "run b", 8)]
    plot_run_curves(runs)
    alone = RunCurves(rows(0.0, 8), tmp_path / "b_alone.png", "run b", 8)
    plot_run_curves([alone])
    a, b, b_alone = (np.asarray(Image.open(tmp_path / name).convert("RGB"))
                      for name in ("a.png", "b.png", "b_alone.png"))
    assert a.shape == b.shape == (462, 1100, 3)  # 10 x 4.2 inches at 110 dpi
    assert (a != b).any()  # each its own curves and title
    assert (b != b_alone).any()  # drawn with run a, b's axes span a's 20 epochs and higher losses


def test_a_run_picture_does_not_inherit_the_axes_of_the_picture_drawn_before_it(tmp_path):
    def rows(epochs, loss):
        return [{"epoch": e, "train_loss": loss / e, "val_loss": loss, "train_acc": 0.9, "val_acc": 0.5}
                for e in range(1, epochs + 1)]

    plot_run_curves([RunCurves(rows(200, 9.0), tmp_path / "long.png", "long run", 100)])
    plot_run_curves([RunCurves(rows(8, 1.0), tmp_path / "short.png", "short run", 4)])
    RunCurvesFigure().draw([RunCurves(rows(8, 1.0), tmp_path / "fresh.png", "short run", 4)])
    short, fresh = (np.asarray(Image.open(tmp_path / name).convert("RGB")) for name in ("short.png", "fresh.png"))
    assert (short == fresh).all()


def hand_written_run(path, status="completed", epochs=3):
    """A run folder as train leaves it, written by hand: config, metrics, summary."""
    import yaml

    from dropcli.config import validate_config
    from dropcli.run_files import METRIC_COLUMNS

    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(validate_config({"epochs": epochs}).to_dict()))
    rows = [[e, 1 / e, 0.5 + 0.1 * e, 1.0, 0.5, 0.5, 0.0, 0.001, 0.1] for e in range(1, epochs + 1)]
    (path / "metrics.csv").write_text(",".join(METRIC_COLUMNS) + "\n" +
                                      "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    summary = {"status": status, "best_epoch": 1, "epochs_run": epochs, "val_acc": 0.5, "test_acc": 0.5,
               "gap_loss": 0.5, "restored_epoch": 2, "title": "hand-written"}
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_only_completed_runs_get_a_picture_in_their_own_folder(tmp_path):
    done = hand_written_run(tmp_path / "done")
    running = hand_written_run(tmp_path / "running", status="running")
    assert draw_run_curves([done, running]) == [done / "curves.png"]
    assert Image.open(done / "curves.png").size == (1100, 462)
    assert not (running / "curves.png").exists()


def test_a_picture_that_cannot_be_written_never_fails_the_run(tmp_path, monkeypatch, caplog):
    import errno

    from dropcli import files

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "open_new", full)
    done = hand_written_run(tmp_path / "done")
    assert draw_run_curves([done]) == []
    assert "curves.png not drawn" in caplog.text and "No space left on device" in caplog.text
    assert sorted(p.name for p in done.iterdir()) == ["config.yaml", "metrics.csv", "summary.json"]


def test_the_marked_epoch_is_the_restored_one_when_weights_were_restored(tmp_path):
    from dropcli.run_plots import run_curves
    from dropcli.run_reading import load_run

    run = load_run(hand_written_run(tmp_path / "run"))
    curves = run_curves(run, tmp_path / "x.png")
    assert curves is not None and (curves.marked_epoch, curves.marked_label) == (2, "restored weights")
    assert curves.title == "hand-written" and curves.path == tmp_path / "x.png"
    run.summary.pop("restored_epoch")
    curves = run_curves(run, tmp_path / "x.png")
    assert curves is not None and (curves.marked_epoch, curves.marked_label) == (1, "lowest val loss")
