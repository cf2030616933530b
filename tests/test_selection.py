"""`report DIR [DIR ...]` and `--select KEY=V1,V2` (dropcli/selection.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from dropcli.cli import app
from dropcli.selection import SelectError, select


@pytest.fixture
def two_sweeps(runner, tiny_raw, write_config, tmp_path):
    config = str(write_config(tiny_raw))
    for folder, rates in (("a", "0.5"), ("b", "0.3")):
        result = runner.invoke(app, ["sweep", config, "--p", rates, "--seeds", "2", "--quiet",
                                     "--out", str(tmp_path / folder)])
        assert result.exit_code == 0, result.output
    return tmp_path / "a", tmp_path / "b"


def test_a_report_over_two_folders_reads_both_and_select_narrows_it(runner, two_sweeps, tmp_path):
    a, b = two_sweeps
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(tmp_path / "both")])
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(tmp_path / "both" / "runs.csv")
    assert len(runs) == 8 and {name.split("/")[0] for name in runs["run"]} == {"a", "b"}
    verdicts = pd.read_csv(tmp_path / "both" / "verdicts.csv")
    assert set(verdicts["first_family"]) | set(verdicts["second_family"]) == {"dropout", "none"}
    assert (tmp_path / "both" / "report.html").is_file()
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(tmp_path / "some"), "--select", "p=0,0.3"])
    assert result.exit_code == 0, result.output
    runs = pd.read_csv(tmp_path / "some" / "runs.csv")
    assert sorted(set(runs["regularizer.dropout"])) == [0.0, 0.3] and len(runs) == 6  # both sweeps' baselines


def test_bad_selections_and_several_folders_without_out_exit_2(runner, two_sweeps, tmp_path):
    a, b = two_sweeps
    result = runner.invoke(app, ["report", str(a), str(b)])
    assert result.exit_code == 2 and "--out" in result.output
    result = runner.invoke(app, ["report", str(a), "--select", "dropout_rate=0.5"])
    assert result.exit_code == 2 and "no setting 'dropout_rate'" in result.output and "known keys" in result.output
    result = runner.invoke(app, ["report", str(a), "--select", "p=0.9"])
    assert result.exit_code == 2 and "no run matches" in result.output
    assert not (a / "report").exists()


def test_select_matches_numbers_as_numbers_and_text_as_text():
    table = pd.DataFrame({"regularizer.dropout": [0.0, 0.3, 0.5], "model.name": ["mlp", "cnn", "mlp"]})
    assert list(select(table, ["p=0,0.5"]).index) == [0, 2]
    assert list(select(table, ["model.name=cnn", "p=0.3"]).index) == [1]
    with pytest.raises(SelectError, match="KEY=V1,V2"):
        select(table, ["p"])
