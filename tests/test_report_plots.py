"""The report's figures: which are drawn, what they show, and that each is written safely (rendered in memory,
then replaced atomically: never through a planted link, never left empty by a full disk)."""

from __future__ import annotations

import errno
import json
import os

import pandas as pd
import pytest
import yaml

from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.report import build_report
from dropcli.report_plots import OVERFITTING_PANELS, shown_settings

HEADERS = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}


def hand_written_runs(root, **regularizers: list[float]):
    """Completed runs without training: each value of each regularizer (and none), seeds 0 and 1."""
    settings = [{}] + [{key: value} for key, values in regularizers.items() for value in values]
    for setting in settings:
        for seed in (0, 1):
            name = "_".join(f"{k}-{v}" for k, v in setting.items()) or "none"
            path = root / f"{name}_seed-{seed}"
            path.mkdir(parents=True)
            config = validate_config({"seed": seed, "epochs": 3, "regularizer": setting}).to_dict()
            (path / "config.yaml").write_text(yaml.safe_dump(config))
            gap = 0.5 - sum(setting.values()) / 2 + 0.01 * seed
            rows = [dict(epoch=e, train_loss=1 / e, train_acc=0.9, val_loss=1 / e + gap * e / 3,
                         val_acc=0.6 + seed / 100, gap_loss=gap * e / 3, gap_acc=0.3, lr=0.001, seconds=0.1)
                    for e in (1, 2, 3)]
            pd.DataFrame(rows).to_csv(path / "metrics.csv", index=False)
            summary = {"status": "completed", "best_epoch": 1, "epochs_run": 3, "val_acc": 0.6 + seed / 100,
                       "test_acc": 0.6, "val_loss": 1.0, "test_loss": 1.0, "train_loss": 0.3, "train_acc": 0.9,
                       "gap_loss": gap, "gap_acc": 0.3, "final_gap_loss": gap, "final_gap_acc": 0.3,
                       "max_gap_loss": gap, "max_gap_acc": 0.3}
            (path / "summary.json").write_text(json.dumps(summary))
            (path / "curves.png").write_bytes(b"\x89PNG drawn by train")  # the report draws none of its own
    return root


def test_the_figures_drawn_follow_what_was_compared(tmp_path):
    dropout = build_report(hand_written_runs(tmp_path / "p", **{"dropout": [0.3, 0.5]}), tmp_path / "rp")
    assert sorted(f.name for f in dropout.figures) == ["dropout_rate.png", "gap_curves.png", "overfitting_curves.png",
                                                       "regularizer_comparison.png"]
    l2 = build_report(hand_written_runs(tmp_path / "l2", l2=[1e-4]), tmp_path / "rl2")
    assert sorted(f.name for f in l2.figures) == ["gap_curves.png", "overfitting_curves.png",
                                                  "regularizer_comparison.png"]  # no rate was varied: no "best p"
    for figure in [*dropout.figures, *l2.figures]:
        assert figure.read_bytes()[:4] == HEADERS["png"] and figure.stat().st_size > 10_000


@pytest.mark.parametrize("figure_format", ["png", "svg", "pdf"])
def test_a_link_planted_where_a_figure_goes_is_replaced_never_written_through(runner, tmp_path, figure_format):
    runs, out = hand_written_runs(tmp_path / "runs", dropout=[0.5]), tmp_path / "report"
    out.mkdir()
    victims = {}
    previews = ["overfitting_curves.png"] if figure_format == "pdf" else []  # a PDF's PNG preview too
    for name in (f"gap_curves.{figure_format}", f"overfitting_curves.{figure_format}", *previews):
        victims[name] = tmp_path / f"victim-{name}"
        victims[name].write_text("months of work")
        (out / name).symlink_to(victims[name])
    result = runner.invoke(app, ["report", str(runs), "--out", str(out), "--format", figure_format])
    assert result.exit_code == 0, result.output
    for name, victim in victims.items():
        assert victim.read_text() == "months of work"
        assert not (out / name).is_symlink() and (out / name).read_bytes()[:5].startswith(HEADERS[name[-3:]])
    assert not list(out.glob(".*.partial"))


def test_a_full_disk_while_a_figure_is_written_names_it_and_leaves_no_empty_figure(runner, tmp_path, disk_fills_up):
    runs, out = hand_written_runs(tmp_path / "runs", dropout=[0.5]), tmp_path / "report"
    assert runner.invoke(app, ["report", str(runs), "--out", str(out)]).exit_code == 0
    before = {path.name: path.read_bytes() for path in out.glob("*.png")}
    disk_fills_up(lambda path: ".png" in path.name)
    (tmp_path / "fresh").mkdir()
    for target in (out, tmp_path / "fresh"):  # over an earlier report's figures, and into an empty folder
        result = runner.invoke(app, ["report", str(runs), "--out", str(target)])
        figure = target / "overfitting_curves.png"  # the first figure the report draws
        assert result.exit_code == 2 and result.output == f"error: {figure}: {os.strerror(errno.ENOSPC)}\n", \
            result.output
        assert not [p.name for p in target.iterdir() if p.stat().st_size == 0 or p.name.endswith(".partial")]
    assert {path.name: path.read_bytes() for path in out.glob("*.png")} == before  # the old figures, whole
    assert not list((tmp_path / "fresh").glob("*.png"))


def test_figures_with_many_settings_show_the_best_and_the_baselines():
    summary = pd.DataFrame({"setting": [f"s{i}" for i in range(40)],
                            "regularizers": ["none" if i in (3, 30) else "dropout" for i in range(40)],
                            "val_acc_mean": [i / 100 for i in range(40)]})
    shown = shown_settings(summary, OVERFITTING_PANELS)
    assert len(shown) == OVERFITTING_PANELS and {"s3", "s30"} <= set(shown)  # the baselines, whatever their rank
    assert shown == ["s3", *[f"s{i}" for i in range(25, 40)]]  # and the 14 best by validation, in table order
    assert shown_settings(summary.head(5), OVERFITTING_PANELS) == [f"s{i}" for i in range(5)]
