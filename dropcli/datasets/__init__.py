"""Datasets by name. One module per dataset declares its config section and capabilities (a DatasetKind,
datasets/base.py); its loader, a module of its own, is imported only when a run starts. Every dataset
becomes in-memory tensors (dropcli/data.py: splits and batches). This module holds the registry.

Registration is explicit: the built-in datasets are registered here, in the order messages list them;
others come from register_dataset (a notebook) or a plugin (entry point group dropcli.plugins, see
dropcli/plugins.py), loaded the first time a name is not known.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError, create_model
from pydantic_core import PydanticCustomError

from dropcli.datasets import image_folder, mnist1d, npz, table, vision_sets
from dropcli.datasets.base import (
    DEFAULT_DATASET,
    TRANSFORM_USES,
    DatasetError,
    DatasetKind,
    DatasetSection,
    FileSection,
    HeldOutSection,
    InputKind,
    NotDownloaded,
)
from dropcli.plugins import PluginError, load_plugins
from dropcli.registry import Registry

__all__ = ["DATASETS", "DatasetError", "DatasetKind", "DatasetSection", "FileSection", "HeldOutSection",
           "NotDownloaded", "augmentations", "find", "register_dataset", "resolve_paths", "section_for",
           "validate_section", "why_not"]

DATASETS: Registry[DatasetKind] = Registry("dataset")
for module in (mnist1d, vision_sets, npz, table, image_folder):
    for built_in in module.KINDS:
        DATASETS.register(built_in.name)(built_in)


def find(name: str) -> DatasetKind | None:
    """The dataset of that name; the installed plugins are loaded the first time a name is not known."""
    if name not in DATASETS:
        load_plugins()
    return DATASETS.get(name)


def augmentations(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the transforms that make sense on dataset `name`, those used when none are named)."""
    kind = DATASETS.lookup(name)
    return kind.transforms, kind.default_transforms


def why_not(name: str, transform: str) -> str:
    """Why `transform` does not apply to dataset `name`, in a few words."""
    return DATASETS.lookup(name).why_not.get(transform) or TRANSFORM_USES.get(transform, "it is not declared there")


def section_for(raw: Any) -> type[DatasetSection]:
    """The section of the dataset `raw` (a `dataset:` mapping from YAML) names; the shared keys' section
    when it names none we know."""
    kind = DATASETS.get(raw.get("name", DEFAULT_DATASET)) if isinstance(raw, Mapping) else None
    return kind.section if kind is not None else DatasetSection


def validate_section(value: Any, handler: Callable[[Any], Any]) -> Any:
    """The `dataset:` section, validated by the section of the dataset it names (a pydantic wrap validator:
    errors keep their place, e.g. dataset.path)."""
    if isinstance(value, DatasetSection) or not isinstance(value, Mapping):
        return handler(value)  # a section already built, or not a mapping: the shared keys' section says what
    name = value.get("name", DEFAULT_DATASET)
    try:
        kind = find(name) if isinstance(name, str) else None
    except PluginError as error:
        raise ValueError(str(error)) from None
    if kind is None:
        quoted = [repr(n) for n in DATASETS]
        allowed = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise ValidationError.from_exception_data("dataset", [{
            "type": PydanticCustomError("unknown_dataset", "Input should be {allowed}", {"allowed": allowed}),
            "loc": ("name",), "input": name}])
    return kind.section.model_validate(dict(value))


def resolve_paths(section: Any, folder: Path) -> Any:
    """A raw `dataset:` mapping whose relative data paths are made absolute from `folder` (a config file's
    folder, or the working directory for --set values). dataset.root is not one of them: it has always been
    read from the working directory."""
    if not isinstance(section, dict):
        return section
    keys = {key for kind in DATASETS.values() for key in kind.section.path_keys}
    resolved = dict(section)
    for key in keys & set(section):
        value = section[key]
        if isinstance(value, str) and value and "\0" not in value:
            path = Path(value).expanduser()
            resolved[key] = os.path.normpath(path if path.is_absolute() else folder.absolute() / path)
    return resolved


LoaderT = TypeVar("LoaderT", bound=Callable[..., Any])


def register_dataset(name: str, *, section: type[HeldOutSection] | None = None, input_kind: InputKind = "array",
                     transforms: tuple[str, ...] = ("noise",),
                     default_transforms: tuple[str, ...] = ("noise",)) -> Callable[[LoaderT], LoaderT]:
    """Register a dataset under `name` (for notebooks and plugins):

        @dropcli.register_dataset("digits")
        def digits(section):               # the validated `dataset:` section
            return x, y                    # or x, y, x_test, y_test: numpy arrays or tensors

    The arrays are checked and converted as a `.npz` file's are (labels 0..K-1, or class names mapped in
    sorted order; without test arrays, dataset.test_fraction of the examples is held out with
    dataset.test_split_seed). `section`: a subclass of HeldOutSection with keys of its own, whose `name` is
    Literal[name]. A dataset registered in a notebook exists in that process only: a sweep whose trials run
    in other processes needs it in a plugin (entry point group dropcli.plugins).
    """

    def add(loader: LoaderT) -> LoaderT:
        own = section or create_model(f"{name.title()}Section", __base__=HeldOutSection,
                                      name=(Literal[name], name))  # type: ignore[arg-type]
        DATASETS.register(name)(DatasetKind(name, own, "dropcli.datasets.arrays:load_registered", input_kind,
                                            tuple(transforms), tuple(default_transforms), make_arrays=loader))
        return loader

    return add
