"""The experiment config: one typed schema, its defaults, and how YAML and --set overrides become it.

Merge order (documented in the README, the same for every command):

    schema defaults → `extends:` base file(s) → the YAML file → each `--set a.b=value` in order → validate

The result is a frozen `Config`; every run folder stores it resolved, so a run can always be repeated.
This module must stay torch-free: `dropcli --help` and config errors should be instant.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    Field,
    SerializeAsAny,
    StrictInt,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)

from dropcli import yamlsafe
from dropcli.datasets import DATASETS, DatasetSection, resolve_paths, section_for, validate_section
from dropcli.datasets.mnist1d import Mnist1dSection
from dropcli.models import ModelConfig
from dropcli.regularizers import RegularizerConfig, metric_columns
from dropcli.regularizers import check as check_regularizers
from dropcli.schema import MAX_TEXT_LENGTH, Fraction, NonNegative, Section  # noqa: F401 (used as config.*)
from dropcli.yamlsafe import brief

__all__ = ["MAX_TEXT_LENGTH", "ModelConfig", "Section"]  # re-exported: defined beside what they are about


class ConfigError(Exception):
    """A user's config or override is wrong. `problems` holds one line per problem, each naming the field."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# Names users write in YAML are not spelled here: the `dataset:` section is the one of the dataset it names,
# looked up in dropcli.datasets, and `model.name` one of dropcli.models.MODELS (torch-free registries; a
# dataset's loader and a model's builder are imported when a run starts).
OptimizerName = Literal["adam", "sgd"]
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d{1,3})?)$")  # cuda:N with N < 1000: no absurd indices
MAX_NAME_LENGTH = 100  # a run folder is <name>-<timestamp>[-N]; a sweep trial's folder adds its settings

# Short names for config keys in folder names, table headers and figure labels.
SHORT_NAMES = {"regularizer.dropout": "p", "model.name": "model", "dataset.name": "dataset"}


def short_name(dotted_key: str) -> str:
    """"regularizer.dropout" → "p", "dataset.train_size" → "train_size"."""
    return SHORT_NAMES.get(dotted_key, dotted_key.rsplit(".", 1)[-1])


if TYPE_CHECKING:
    DatasetSections = DatasetSection
else:  # every registered dataset's section, for the schema (and its reference); validate_section picks one
    DatasetSections = Union[tuple(kind.section for kind in DATASETS.values())]  # noqa: UP007


class OptimizerConfig(Section):
    """How the weights are trained: the optimizer, its learning rate and schedule, and the batch size."""

    name: OptimizerName = Field("adam", description="`adam` (torch.optim.Adam) or `sgd` (with `momentum`)")
    lr: Annotated[float, Field(gt=0.0)] = Field(1e-3, description="learning rate")
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(0.9, description="SGD's momentum; `sgd` only")
    batch_size: Annotated[int, Field(gt=0)] = Field(64, description="training examples per step")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="`constant` keeps `lr`; `cosine` decays it to 0 over `epochs`")


class EvaluationConfig(Section):
    """Extra scores of the test split, beyond the plain evaluation every run ends with."""

    mc_samples: Annotated[int, Field(ge=0, le=1000)] = Field(0, description=(
        "0: off. K > 0 also scores the test split with K Monte-Carlo dropout passes averaged, against weight "
        "scaling (the plain pass): accuracy, NLL and ECE (15 bins) in `summary.json` (`ws_test_*`, `mc_test_*`, "
        "and `mc_dropout` with K = 1, 2, 5, 10, 20, 50 …), in `runs.csv` and in a table of `report.md`"))


class ExecutorConfig(Section):
    """Where `sweep` runs its trials (`--executor` and the --slurm-* options override these)."""

    name: Literal["local", "slurm", "submitit-local"] = Field("local", description=(
        "`local`: in this process; `slurm`: one submitit job array on a Slurm cluster; `submitit-local`: "
        "submitit's local executor (real subprocesses, no cluster), for testing"))
    slurm_partition: str | None = Field(None, description=(
        "Slurm partition(s), comma-separated; letters, digits and `_ . , -` only. null: the cluster's default"))
    timeout_min: Annotated[int, Field(gt=0)] = Field(60, description=(
        "time limit of each array task in minutes; a task that reaches it is requeued and resumes its trials"))
    cpus_per_task: Annotated[int, Field(gt=0)] = Field(2, description=(
        "CPUs per array task; also the task's torch threads when `threads` is null"))
    gpus_per_task: Annotated[int, Field(ge=0)] = Field(0, description="GPUs per array task")
    array_parallelism: Annotated[int, Field(gt=0)] = Field(32, description="array tasks running at once")
    slurm_setup: list[str] = Field([], description=(
        "shell lines run before each task, e.g. `module load cuda`; one line each, no control characters"))

    @field_validator("slurm_partition")
    @classmethod
    def _partition_name(cls, value: str | None) -> str | None:
        # it becomes `#SBATCH --partition=...`: no spaces, quotes or other shell characters
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.,-]+", value):
            raise ValueError("a partition name is letters, digits and _ . , - (several: comma-separated)")
        return value


class Config(Section):
    """One experiment: what to train on, which model, which regularizers, how long and where."""

    name: str = Field("run", description=(
        "prefix of the run folder, `runs/<name>-<YYYYmmdd-HHMMSS>/`: letters, digits, `.`, `_`, `-`, "
        "at most 100 characters"))
    epochs: Annotated[int, Field(gt=0)] = Field(60, description=(
        "passes over the training set; early stopping may end sooner"))
    seed: Annotated[StrictInt, Field(ge=0, lt=2**32)] = Field(0, description=(
        "seeds the initial weights, the train/validation split, label noise, batch order and dropout masks"))
    device: str = Field("auto", description=(
        "`auto` (CUDA when present, else the CPU), `cpu`, `cuda` or `cuda:N`"))
    threads: Annotated[int, Field(gt=0, le=1024)] | None = Field(None, description=(
        "CPU threads torch may use (also `--threads N` on `train` and `sweep`). null: `OMP_NUM_THREADS` when "
        "set, else the CPUs this process may run on (its affinity, a cgroup quota, Slurm's "
        "`SLURM_CPUS_PER_TASK`). On a machine busy with other work 1 can be many times faster. Recorded per "
        "run as `torch_threads`"))
    # the section of the dataset `dataset.name` names: its keys are that dataset's (dropcli.datasets)
    dataset: Annotated[SerializeAsAny[DatasetSections], WrapValidator(validate_section)] = Field(
        Mnist1dSection(), description="the data: which dataset, how much, and its split")
    model: ModelConfig = Field(ModelConfig(), description="the network and its size")
    regularizer: RegularizerConfig = Field(RegularizerConfig(), description=(
        "every regularizer, all off by default; `regularizer: none` switches them all off"))
    optimizer: OptimizerConfig = Field(OptimizerConfig(), description="how the weights are trained")
    evaluation: EvaluationConfig = Field(EvaluationConfig(), description="extra scores of the test split")
    executor: ExecutorConfig = Field(ExecutorConfig(), description=(
        "where a sweep's trials run; not part of a sweep's fingerprint"))

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError("allowed values: auto, cpu, cuda, cuda:N")
        return value

    @field_validator("name")
    @classmethod
    def _folder_safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError("use letters, digits, '.', '_' and '-' only (it names the run folder)")
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"at most {MAX_NAME_LENGTH} characters (it names the run folder)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _regularizer_none(cls, value: Any) -> Any:
        # `regularizer: none` parses as the string "none" or as null; both mean "everything off".
        if isinstance(value, dict) and value.get("regularizer") is None and "regularizer" in value:
            value = {**value, "regularizer": {}}
        return value

    @model_validator(mode="after")
    def _regularizers_fit(self) -> Config:
        check_regularizers(self)  # each regularizer's cross-checks against the model and data sections
        return self

    def learned_rate_columns(self) -> list[str]:
        """metrics.csv's columns the regularizers add after the standard ones (Concrete dropout's learned rates)."""
        return metric_columns(self)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------------------
# Loading: YAML files (with `extends:`), --set overrides, validation errors as one line per field.


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults → YAML file (and the files it extends) → overrides → validated, frozen Config."""
    raw: dict[str, Any] = read_yaml_with_bases(Path(path)) if path is not None else {}
    several = []  # `--set a=0.1,0.3`: a Hydra multirun habit
    for override in overrides or []:
        key, value = parse_override(override)
        set_dotted(raw, key, value)
        if isinstance(value, str) and "," in value:
            several.append((key, value))
    if isinstance(raw.get("model"), dict):  # class_path given with --set: from the working directory
        raw["model"] = with_code_dir(raw["model"], Path(os.getcwd()))
    try:
        return validate_config(raw)
    except ConfigError as error:
        # the problem a Hydra habit caused is said as the habit, once: one line per mistake
        habits = {key: f"--set {key}={value}: --set takes one value; to train several, use `dropcli sweep "
                       f"{SWEEP_OPTIONS.get(key, f'--grid {key}=')}{value}`" for key, value in several}
        lists = {key: f"--set {key}={value}: a list is written in brackets: --set {key}=[{value}]"
                 if not value.lstrip().startswith("[") else
                 f"--set {key}={value}: its brackets do not close; a list is written --set {key}=[A,B]"
                 for key, value in several}

        def as_habit(problem: str) -> str:
            key = next((key for key in habits if problem.startswith(f"{key}:")), None)
            if key is None:
                return problem
            return lists[key] if "valid list" in problem else habits[key]

        problems = [as_habit(problem) for problem in error.problems]
        raise ConfigError(list(dict.fromkeys(problems))) from None


SWEEP_OPTIONS = {"regularizer.dropout": "--p ", "regularizer.l2": "--l2 "}  # sweep's own axes


def validate_config(raw: dict[str, Any]) -> Config:
    if isinstance(raw.get("dataset"), dict):
        # data paths still relative (--set, a sweep's --grid) are read from the working directory; those of
        # config files were made absolute from the file's folder when it was read
        raw = {**raw, "dataset": resolve_paths(raw["dataset"], Path(os.getcwd()))}
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError([describe_error(e, raw) for e in error.errors()]) from None


MAX_EXTENDS = 32  # files in one `extends:` chain (the presets use one)


def read_yaml_with_bases(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config; a top-level `extends: other.yaml` (relative to this file) is merged in first."""
    resolved = path.resolve()
    if resolved in _seen:
        raise ConfigError(f"{path}: `extends` forms a cycle through {' -> '.join(p.name for p in _seen)}")
    if len(_seen) >= MAX_EXTENDS:  # found before Python's recursion limit would be (as a misleading depth error)
        raise ConfigError(f"{_seen[0]}: its `extends` chain goes on past {MAX_EXTENDS} files (here at {path}); a "
                          f"config extends a handful at most")
    data = read_yaml_mapping(path)
    if "dataset" in data:  # data files named in a config are found beside it, wherever dropcli is started
        data["dataset"] = resolve_paths(data["dataset"], path.parent.absolute())
    if isinstance(data.get("model"), dict):  # a model's code is found beside the config that names it
        data["model"] = with_code_dir(data["model"], path.parent)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name.strip() or "\0" in base_name:
        raise ConfigError(f"{path}: extends: expected a file name, got {brief(base_name)}")
    base = read_yaml_with_bases(path.parent / base_name, (*_seen, resolved))
    return deep_merge(base, data)


def with_code_dir(model: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`model` with an absolute `code_dir` where it names a class_path: the folder given (relative to `folder`),
    else `folder`, the config file's (a run folder's config.yaml keeps the one it was made with)."""
    if not isinstance(model.get("class_path"), str):
        return model
    given = model.get("code_dir")
    if given is not None and not isinstance(given, str):
        return model  # the schema says what is wrong with it
    return {**model, "code_dir": str((folder / (given or ".")).absolute())}


def read_yaml_file(path: Path) -> Any:
    """A YAML file through yamlsafe (size, aliases, duplicate keys); any problem is a one-line ConfigError."""
    try:
        if path.stat().st_size > yamlsafe.MAX_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,} bytes; a config may have at most "
                              f"{yamlsafe.MAX_BYTES:,}")
        return yamlsafe.load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config is a YAML text file") from None
    except yamlsafe.YamlError as error:
        raise ConfigError(f"{path}: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found" if not path.exists() else
                          f"{path}: not a regular file (a folder, a device, a pipe?); a config is a YAML text file")
    data = read_yaml_file(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (dataset:, model:, ...), "
                          f"got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` → ("a.b", parsed value). Values are read as YAML: 0.5, true, [128, 64], null."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {brief(text)}: expected KEY=VALUE, e.g. --set regularizer.dropout=0.5")
    try:
        return key, yamlsafe.load(value)
    except yamlsafe.MalformedYaml:
        return key, value  # plain text, e.g. a name with a colon in it
    except yamlsafe.YamlError as error:
        raise ConfigError(f"--set {brief(key)}: {error}") from None


def set_dotted(raw: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = raw
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}  # e.g. `regularizer: none` followed by --set regularizer.dropout=0.5
        node = node[part]
    node[leaf] = value


def describe_error(error: Any, raw: Any = None) -> str:  # a pydantic ErrorDetails; raw: what was validated
    """One line per problem: the dotted field, what is wrong, and the allowed values or closest key."""
    location = ".".join(str(part)[:80] for part in error["loc"])  # a key may be anything a user typed
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key{suggest_key(error['loc'], raw)}"
    if error["type"] == "missing":
        return f"{location}: required; it has no default"
    message = error["msg"].removeprefix("Value error, ")
    if not location:  # a check across sections (the model and its regularizers): the message names the fields
        return message
    return f"{location}: {message} (got {brief(error['input'])})"


def suggest_key(loc: tuple[Any, ...], raw: Any = None) -> str:
    section = section_model_at(loc[:-1], raw)
    if section is None:
        return ""
    valid = list(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint or ';'} valid keys: {', '.join(valid)}"


def section_model_at(loc: tuple[Any, ...], raw: Any = None) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        raw = raw.get(part) if isinstance(raw, dict) else None
        candidates = [t for t in getattr(field.annotation, "__args__", (field.annotation,))
                      if isinstance(t, type) and issubclass(t, BaseModel)]
        if not candidates:
            return None
        model = candidates[0]
        if issubclass(model, DatasetSection):  # the section of the dataset it names
            model = section_for(raw)
    return model


def dump_yaml(config: Config) -> str:
    # libyaml's emitter where PyYAML has it: the pure-Python one took 7 ms a run folder
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(config.to_dict(), Dumper=dumper, sort_keys=False)
