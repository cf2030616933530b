"""Words for settings and numbers: what a reader sees in report tables, figures and the terminal."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from dropcli.labels import (
    REGULARIZER_NAMES,
    comparable_settings,
    format_setting,
    mean_std,
    runs_and_seeds,
    setting_label,
)


def test_every_regularizer_of_the_schema_has_a_name():
    assert {"regularizer.dropout", "regularizer.l2", "regularizer.early_stopping"} <= set(REGULARIZER_NAMES)
    assert all(isinstance(name, str) and name for name in REGULARIZER_NAMES.values())


@pytest.mark.parametrize("row, label", [
    ({"regularizer.dropout": 0.3, "regularizer.l2": 0.0}, "p=0.3"),
    ({"regularizer.dropout": 0.3, "regularizer.l2": 1e-4}, "p=0.3, l2=0.0001"),
    ({"regularizer.dropout": 0.0, "regularizer.l2": 0.0}, "no regularizer"),
    ({"regularizer.dropout": "off", "regularizer.l2": None}, "no regularizer"),
])
def test_a_setting_is_named_by_the_regularizers_that_are_on(row, label):
    assert setting_label(row, ["regularizer.dropout", "regularizer.l2"]) == label


def test_settings_that_are_not_regularizers_are_always_named():
    row = {"dataset.train_size": 250, "regularizer.dropout": 0.0}
    assert setting_label(row, ["dataset.train_size", "regularizer.dropout"]) == "train_size=250, no regularizer"
    assert setting_label(row, ["dataset.train_size"]) == "train_size=250"  # no regularizer compared: not said
    assert setting_label(row, []) == "all runs"


def test_structured_regularizers_are_named_in_words():
    stopping = json.dumps({"patience": 10, "metric": "val_loss", "min_delta": 0.0})
    assert format_setting("regularizer.early_stopping", stopping) == "early stopping (patience 10, val_loss)"
    assert format_setting("regularizer.early_stopping", "off") == ""
    block = {"p": 0.1, "block_size": 5}
    assert format_setting("regularizer.dropblock", block) == "DropBlock (p=0.1, block 5)"


def test_only_settings_that_share_the_non_regularizer_keys_are_comparable():
    summary = pd.DataFrame({"setting": ["a", "b", "c"], "epochs": [10, 10, 20], "regularizer.dropout": [0.0, 0.5, 0.5]})
    comparable = comparable_settings(summary, summary.iloc[1], ["epochs", "regularizer.dropout"])
    assert list(comparable["setting"]) == ["a", "b"]  # c trained twice as long: never set beside them


def test_numbers_with_their_spread():
    assert mean_std(0.51234, 0.0123) == "0.512 ± 0.012"
    assert mean_std(0.51234, math.nan) == "0.512"  # one seed: no spread to show
    assert mean_std(math.nan, 0.1) == "–"
    assert mean_std(1.0, 0.0, digits=1) == "1.0 ± 0.0"


def test_runs_and_seeds_are_told_apart_only_when_they_differ():
    assert runs_and_seeds({"runs": 3, "seeds": 3}) == "3"
    assert runs_and_seeds({"runs": 4, "seeds": 2}) == "4 (2 seeds)"
    assert runs_and_seeds({"runs": 2, "seeds": 1}) == "2 (1 seed)"
