"""Regularizers behind one small interface (base.py), so the training loop never branches on a regularizer's
name: one module per regularizer, each holding everything about it (its keys of the `regularizer:` section
and their checks, its layers or the module that holds them, its stacked form, its search space for `tune`, its
words in reports). Registered explicitly below; the `regularizer:` section of the schema, tune's search spaces,
the report's labels and the stacking allow-list are derived from the registry.

Torch-free at import: config.py builds its `regularizer:` section from here, and `dropcli --help` must stay
instant. Each module imports torch only in what runs during training.
"""

from __future__ import annotations

from typing import Any

from pydantic import create_model, model_validator

# One line per regularizer: importing its module registers it. The registry's order is this order, the order
# their hooks act in (penalties are summed in it: changing it changes the last bits of every run's metrics).
# isort: off
from dropcli.regularizers import dropout  # noqa: F401
from dropcli.regularizers import concrete_dropout  # noqa: F401
from dropcli.regularizers import augmentation  # noqa: F401
from dropcli.regularizers import l2  # noqa: F401
from dropcli.regularizers import l1  # noqa: F401
from dropcli.regularizers import max_norm  # noqa: F401
from dropcli.regularizers import early_stopping  # noqa: F401
from dropcli.regularizers import label_smoothing  # noqa: F401
# isort: on
from dropcli.models import model_entry
from dropcli.regularizers.base import (
    REGULARIZERS,
    Regularizer,
    SearchSpace,
    Stackable,
    changes_weights_after_evaluation,
    per_trial_sums,
    weight_parameters,
)
from dropcli.schema import Section

__all__ = ["REGULARIZERS", "Regularizer", "RegularizerConfig", "Stackable", "build_regularizers",
           "changes_weights_after_evaluation", "per_trial_sums", "weight_parameters"]


class _Off(Section):
    """Every regularizer is off by default; `regularizer: none` in YAML means exactly this."""

    @model_validator(mode="before")
    @classmethod
    def _none_means_off(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return {}
        return value


# The `regularizer:` section: every registered regularizer's settings, in registry order (pydantic collects
# the fields of the bases from the last to the first, hence reversed), with their own validators
RegularizerConfig: Any = create_model(  # Any: its fields are the registry's, read by their own regularizers
    "RegularizerConfig", __base__=(*reversed([r.settings for r in REGULARIZERS.values()]), _Off),
    __module__=__name__, __doc__=_Off.__doc__)


def build_regularizers(config: Any) -> list[Regularizer]:
    """The regularizers the `regularizer:` section switches on, in registry order. Each class reads its
    own keys (`from_config`) and returns None when they leave it off."""
    built = (factory.from_config(config) for factory in REGULARIZERS.values())
    return [regularizer for regularizer in built if regularizer is not None]


def check(config: Any) -> None:
    """Each regularizer's cross-checks against the rest of the config (ValueError: the first problem). A model
    from code takes none of the keys that need dropcli's own layers (Regularizer.needs_own_layers)."""
    from_code = model_entry(config.model.name).from_code
    for regularizer in REGULARIZERS.values():
        for key, why in regularizer.needs_own_layers.items() if from_code else ():
            if getattr(config.regularizer, key) != regularizer.settings.model_fields[key].default:
                raise ValueError(f"regularizer.{key}: not for a model from code (model.name "
                                 f"{config.model.name}): {why}")
        regularizer.check(config)


def metric_columns(config: Any) -> list[str]:
    """metrics.csv's columns the regularizers of `config` add (Concrete dropout's learned rates)."""
    return [column for regularizer in REGULARIZERS.values() for column in regularizer.metric_columns(config)]


def labels() -> dict[str, str]:
    """"regularizer.l2" → "L2": every key that switches a regularizer on, with its name in reports."""
    return {f"regularizer.{name}": str(field.json_schema_extra["label"])  # type: ignore[index]
            for regularizer in REGULARIZERS.values() for name, field in regularizer.settings.model_fields.items()
            if isinstance(field.json_schema_extra, dict) and "label" in field.json_schema_extra}


def format_setting(key: str, value: Any) -> str | None:
    """Words for a regularizer key's value in reports, from the regularizer that owns it (None: generic)."""
    name = key.removeprefix("regularizer.")
    owner = next((r for r in REGULARIZERS.values() if name in r.settings.model_fields), None)
    return owner.format_setting(key, value) if owner is not None and key.startswith("regularizer.") else None


def search_spaces() -> dict[str, SearchSpace]:
    """What `dropcli tune` can search, by regularizer name: each tunable regularizer's own space."""
    return {name: regularizer.search_space for name, regularizer in REGULARIZERS.items() if regularizer.search_space}


def per_trial_keys() -> set[str]:
    """The `regularizer:` keys the trials of one stacked group may differ in, as the regularizers declare them."""
    return {key for regularizer in REGULARIZERS.values() for key in regularizer.per_trial_keys}
