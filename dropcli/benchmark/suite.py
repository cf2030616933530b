"""The suite file: which workloads, which regularizers, and the protocol every one of them follows.

    name: regularizers-small           # optional; the default folder is runs/benchmark-<name> (else the file's stem)
    set: {epochs: 20}                  # optional; dotted config keys applied to every workload, before its own
    workloads:
      - {name: mlp-500, config: configs/quickstart.yaml, set: {dataset.train_size: 500}}
      - {name: cnn-500, config: configs/cnn.yaml, set: {regularizer: none}}
    regularizers:
      - dropout                        # a name tune knows (or a combination, dropout+l2): tuned per workload
      - {name: early_stopping, workloads: [mlp-500]}         # tuned, on these workloads only
      - {name: concrete, set: {regularizer.concrete_dropout: {}}, workloads: [mlp-500, cnn-500]}
                                       # with `set`: trained as set, not tuned (Concrete dropout learns its rate)
    protocol: {trials: 8, seeds: 5, metric: val_loss}

Config paths are relative to the current folder, like every path dropcli is given. Validating a suite is
torch-free; whether a regularizer's name is one tune knows is checked when the plan is made (run.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dropcli.config import (
    Config,
    ConfigError,
    describe_error,
    parse_override,
    read_yaml_mapping,
    read_yaml_with_bases,
    set_dotted,
    validate_config,
)
from dropcli.yamlsafe import brief

BASELINE = "none"  # tune's name for the no-regularizer runs; no entry may take it
NAME = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,59}$"  # a folder name part: letters, digits, . _ - (and + joining studies)
Name = Annotated[str, Field(pattern=NAME)]
Settings = dict[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*$")], Any]


class BenchmarkError(ConfigError):
    """The suite file or the benchmark folder is wrong (exit code 2)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workload(Strict):
    name: Name
    config: str = Field(min_length=1)  # a YAML config, relative to the current folder
    set: Settings = Field(default_factory=dict)  # dotted key → value, after the suite's own `set`


class Entry(Strict):
    name: Name
    set: Settings | None = None  # given: trained as set on the seeds (not tuned); absent: a study tune knows
    workloads: list[Name] | None = None  # None: every workload

    @property
    def tuned(self) -> bool:
        return self.set is None


class Protocol(Strict):
    trials: int = Field(ge=1)  # tuning budget per regularizer and workload (pruned and failed trials count)
    seeds: int = Field(ge=2)  # the fresh seeds every chosen setting and the baseline are retrained on
    metric: str = "val_loss"  # what the studies optimize: tune's metrics (checked by run.py)


class Suite(Strict):
    name: Name | None = None
    set: Settings = Field(default_factory=dict)
    workloads: list[Workload] = Field(min_length=1)
    regularizers: list[Name | Entry] = Field(min_length=1)
    protocol: Protocol

    @field_validator("regularizers")
    @classmethod
    def distinct_entries(cls, value: list[str | Entry]) -> list[str | Entry]:
        names = [item if isinstance(item, str) else item.name for item in value]
        if BASELINE in names:
            raise ValueError(f"{BASELINE!r} is the baseline, always trained beside the others; it is no entry")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is listed twice")
        return value

    @model_validator(mode="after")
    def workload_names(self) -> Suite:
        names = [w.name for w in self.workloads]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"workloads: {twice[0]!r} is listed twice")
        for entry in self.entries:
            unknown = [n for n in entry.workloads or [] if n not in names]
            if unknown:
                raise ValueError(f"regularizers: {entry.name}: workload {unknown[0]!r} is not in the suite; "
                                 f"expected some of {', '.join(names)}")
        for workload in names:
            if not any(entry.tuned for entry in self.entries_on(workload)):
                raise ValueError(f"workload {workload}: no tuned regularizer runs on it (an entry without `set:`); "
                                 f"the protocol tunes at least one per workload")
        return self

    @property
    def entries(self) -> list[Entry]:
        return [Entry(name=item) if isinstance(item, str) else item for item in self.regularizers]

    def entries_on(self, workload: str) -> list[Entry]:
        return [e for e in self.entries if e.workloads is None or workload in e.workloads]


def load_suite(path: Path) -> Suite:
    """The suite file, validated: one line per problem, each naming the field."""
    raw = read_yaml_mapping(path)
    try:
        return Suite.model_validate(raw)
    except ValidationError as error:
        raise BenchmarkError([f"{path}: {describe_error(e)}" for e in error.errors()]) from None


def default_name(suite: Suite, path: Path) -> str:
    return suite.name or path.stem


def resolve_workload(suite: Suite, workload: Workload, overrides: list[str]) -> Config:
    """The workload's config: its YAML (and what it extends) → the suite's `set` → its own `set` → the
    command line's overrides (--threads, --executor) → validated."""
    try:
        raw = read_yaml_with_bases(Path(workload.config))
        for key, value in [*suite.set.items(), *workload.set.items(), *map(parse_override, overrides)]:
            set_dotted(raw, key, value)
        return validate_config(raw)
    except ConfigError as error:
        raise BenchmarkError([f"workload {workload.name}: {problem}" for problem in error.problems]) from None


def describe_settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key}={brief(value)}" for key, value in settings.items()) or "—"
