from __future__ import annotations

import pytest

from dropcli.config import Config, ConfigError, load_config, parse_override


def problems_of(path=None, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return caught.value.problems


def test_defaults_validate_without_a_file():
    config = load_config()
    assert config.dataset.name == "mnist1d" and config.regularizer.dropout == 0.0
    assert config.regularizer.early_stopping is None


def test_merge_order_defaults_then_yaml_then_overrides_in_order(write_config):
    path = write_config({"epochs": 7, "regularizer": {"dropout": 0.2}})
    config = load_config(path, ["regularizer.dropout=0.4", "regularizer.dropout=0.5", "model.hidden_sizes=[8, 4]"])
    assert config.epochs == 7
    assert config.regularizer.dropout == 0.5
    assert config.model.hidden_sizes == [8, 4]
    assert config.optimizer.lr == Config().optimizer.lr  # untouched default


def test_extends_merges_the_base_first(write_config):
    write_config({"epochs": 9, "model": {"hidden_sizes": [16]}}, "base.yaml")
    child = write_config({"extends": "base.yaml", "model": {"name": "mlp"}}, "child.yaml")
    config = load_config(child)
    assert config.epochs == 9 and config.model.hidden_sizes == [16]


def test_regularizer_none_switches_everything_off_and_set_can_turn_one_on(write_config):
    path = write_config("regularizer: none\n")
    assert load_config(path).regularizer == Config().regularizer
    assert load_config(path, ["regularizer.dropout=0.3"]).regularizer.dropout == 0.3


def test_unknown_key_names_the_closest_valid_key(write_config):
    [problem] = problems_of(write_config({"regularizer": {"dropuot": 0.5}}))
    assert problem.startswith("regularizer.dropuot: unknown key")
    assert "did you mean 'dropout'" in problem and "l2" in problem


@pytest.mark.parametrize("override, field", [
    ("regularizer.dropout=1.0", "regularizer.dropout"),
    ("regularizer.dropout=-0.1", "regularizer.dropout"),
    ("epochs=0", "epochs"),
    ("optimizer.batch_size=-4", "optimizer.batch_size"),
    ("optimizer.lr=0", "optimizer.lr"),
    ("model.hidden_sizes=[64, 0]", "model.hidden_sizes.1"),
    ("regularizer.early_stopping={patience: 0}", "regularizer.early_stopping.patience"),
    ("dataset.val_fraction=1.0", "dataset.val_fraction"),
    ("dataset.label_noise=1.5", "dataset.label_noise"),
    ("regularizer.l2=-1e-4", "regularizer.l2"),
    ("regularizer.l1=-1", "regularizer.l1"),
    ("regularizer.max_norm=-3", "regularizer.max_norm"),
    ("seed=1.5", "seed"),
    ("seed=-1", "seed"),
    ("seed=99999999999", "seed"),
    ("epochs=true", "epochs"),
    ("regularizer.l2=true", "regularizer.l2"),
    ("epochs=many", "epochs"),
])
def test_out_of_range_or_wrong_type_names_the_field(override, field):
    [problem] = problems_of(overrides=[override])
    assert problem.startswith(f"{field}: ")


@pytest.mark.parametrize("override, allowed", [
    ("dataset.name=imagenet", "'mnist1d', 'mnist', 'fashion_mnist', 'cifar10', "),
    ("model.name=resnet", "unknown model 'resnet'; allowed: mlp, cnn, gru, lstm, rnn, custom"),
    ("device=tpu", "auto, cpu, cuda, cuda:N"),
])
def test_unknown_names_list_the_allowed_values(override, allowed):
    [problem] = problems_of(overrides=[override])
    assert allowed in problem


def test_dropout_and_gaussian_dropout_exclude_each_other():
    [problem] = problems_of(overrides=["regularizer.dropout=0.5", "regularizer.gaussian_dropout=0.5"])
    assert problem.startswith("regularizer: ") and "set one of them to 0" in problem


def test_every_problem_is_reported_once_per_line():
    problems = problems_of(overrides=["epochs=0", "regularizer.dropout=2"])
    assert len(problems) == 2


def test_malformed_yaml_gives_the_line(write_config):
    path = write_config("epochs: 3\nmodel:\n  name: mlp\n   hidden_sizes: [1\n")
    [problem] = problems_of(path)
    assert "line 4" in problem and "malformed YAML" in problem


def test_top_level_must_be_a_mapping(write_config):
    [problem] = problems_of(write_config("- just\n- a list\n"))
    assert "top level must be a mapping" in problem


def test_a_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    [problem] = problems_of(path)
    assert "not UTF-8" in problem


def test_missing_file(tmp_path):
    [problem] = problems_of(tmp_path / "nope.yaml")
    assert "not found" in problem


def test_set_without_equals_sign():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("regularizer.dropout")


def test_every_preset_validates():
    from pathlib import Path

    presets = sorted(Path(__file__).parents[1].joinpath("configs").rglob("*.yaml"))
    assert presets, "configs/ holds presets"
    for preset in presets:
        load_config(preset)


def test_the_fast_yaml_parser_reads_every_preset_as_the_pure_python_one_does():
    """yamlsafe parses with libyaml where PyYAML has it; the pure-Python loader is the fallback. Both must
    read the same values (1e-3 as a number included), or a machine without libyaml would train differently."""
    from pathlib import Path

    from dropcli import yamlsafe

    configs = Path(__file__).resolve().parents[1] / "configs"
    texts = [path.read_text() for path in sorted(configs.rglob("*.yaml"))] + ["lr: 1e-3\nepochs: 1e3\n"]
    for text in texts:
        expected = yamlsafe._Loader(text).get_single_data()
        assert yamlsafe.load(text) == expected


def test_a_check_across_sections_is_one_line_that_names_the_fields_without_echoing_the_config():
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["model.name=lstm", "regularizer.dropconnect=0.2"])
    [problem] = caught.value.problems
    assert problem.startswith("regularizer.dropconnect acts on hidden linear layers") and "lstm" in problem
    assert "got {" not in problem and not problem.startswith(":")


def test_a_number_of_thousands_of_digits_is_one_line_in_a_file_or_a_set(runner, write_config, tiny_raw):
    from dropcli.cli import app

    huge = "9" * 5_000
    config = write_config(f"name: tiny\nseed: {huge}\n")
    result = runner.invoke(app, ["config", str(config)])
    assert result.exit_code == 2 and "a number of 5,000 characters" in result.output, result.output
    result = runner.invoke(app, ["config", str(write_config(tiny_raw)), "--set", f"seed={huge}"])
    assert result.exit_code == 2 and "a number of 5,000 characters" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_long_extends_chain_is_reported_as_a_chain_in_one_line(tmp_path):
    for index in range(972):
        (tmp_path / f"c{index}.yaml").write_text(f"extends: c{index + 1}.yaml\n")
    (tmp_path / "c972.yaml").write_text("epochs: 2\n")
    with pytest.raises(ConfigError, match=r"c0.yaml: its `extends` chain goes on past 32 files"):
        load_config(tmp_path / "c0.yaml")
