"""The regularizer package: its registry, the schema derived from it, and what stays torch-free."""

from __future__ import annotations

from dropcli.regularizers import RegularizerConfig, build_regularizers


def test_none_builds_no_regularizer():
    assert build_regularizers(RegularizerConfig()) == []


def test_every_registered_regularizer_declares_its_keys_once_and_they_make_the_schema():
    """The `regularizer:` section is the registry's settings: each key belongs to one regularizer (a second
    would silently replace the first's field), per-trial keys are its own, and tune's spaces set its keys."""
    from dropcli.regularizers import REGULARIZERS, RegularizerConfig, labels, search_spaces

    owners: dict[str, list[str]] = {}
    for name, regularizer in REGULARIZERS.items():
        assert set(regularizer.per_trial_keys) <= set(regularizer.config_keys()), name
        for key in regularizer.config_keys():
            owners.setdefault(key, []).append(name)
        for dotted in regularizer.search_space:
            assert dotted.split(".")[1] in regularizer.config_keys(), (name, dotted)
    assert all(len(names) == 1 for names in owners.values()), owners
    assert list(RegularizerConfig.model_fields) == list(owners)
    assert {key.removeprefix("regularizer.") for key in labels()} <= set(owners)
    assert set(search_spaces()) <= set(REGULARIZERS)


def test_validating_a_config_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from dropcli.config import load_config; load_config('configs/quickstart.yaml', "
            "['regularizer.label_smoothing=0.1', 'regularizer.dropout=0.2']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
