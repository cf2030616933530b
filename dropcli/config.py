"""The experiment config: one typed schema, its defaults, and how YAML and --set overrides become it.

Merge order (documented in the README, the same for every command):

    schema defaults → `extends:` base file(s) → the YAML file → each `--set a.b=value` in order → validate

The result is a frozen `Config`; every run folder stores it resolved, so a run can always be repeated.
This module must stay torch-free: `dropcli --help` and config errors should be instant.
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dropcli import yamlsafe
from dropcli.yamlsafe import brief


class ConfigError(Exception):
    """A user's config or override is wrong. `problems` holds one line per problem, each naming the field."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# Names users write in YAML. Each is also a key of the matching registry (data.DATASETS, models.MODELS);
# they are spelled here so that validating a config never needs to import torch. A test checks the two agree.
DatasetName = Literal["mnist1d", "mnist", "fashion_mnist", "cifar10"]
ModelName = Literal["mlp", "cnn", "gru", "lstm", "rnn"]
RECURRENT_MODELS = ("gru", "lstm", "rnn")
OptimizerName = Literal["adam", "sgd"]
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d{1,3})?)$")  # cuda:N with N < 1000: no absurd indices
MAX_NAME_LENGTH = 100  # a run folder is <name>-<timestamp>[-N]; a sweep trial's folder adds its settings
MAX_TEXT_LENGTH = 4096  # any text value (a path is at most 4096 bytes on Linux)

# Short names for config keys in folder names, table headers and figure labels.
SHORT_NAMES = {"regularizer.dropout": "p", "model.name": "model", "dataset.name": "dataset"}


def short_name(dotted_key: str) -> str:
    """"regularizer.dropout" → "p", "dataset.train_size" → "train_size"."""
    return SHORT_NAMES.get(dotted_key, dotted_key.rsplit(".", 1)[-1])


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class Section(BaseModel):
    # extra="forbid": a typo is an error naming the key, not a silently ignored setting.
    # allow_inf_nan=False: lr=.inf or l2=.nan cannot train; refused here rather than diverging at epoch 1.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=MAX_TEXT_LENGTH)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # a NUL breaks every path; a newline would become a shell line in an sbatch script; escapes reach terminals
        texts = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
            if isinstance(value, list) else []
        if any(ord(char) < 32 or ord(char) == 127 for text in texts for char in text):
            raise ValueError("must be one line: no newlines or other control characters")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML's `true` would otherwise pass as 1 (epochs: true → one epoch; hidden_sizes: [yes] → [1])
        if isinstance(value, bool) and cls.model_fields[str(info.field_name)].annotation is not bool:
            raise ValueError("expected a number or text, not true/false")
        if isinstance(value, list) and any(isinstance(item, bool) for item in value):
            raise ValueError("expected numbers or text in the list, not true/false")
        return value


class DatasetConfig(Section):
    name: DatasetName = "mnist1d"
    root: str = "data"  # where datasets are cached / downloaded; relative paths are from the working directory
    train_size: Annotated[int, Field(gt=0)] | None = None  # None: the whole training pool left after validation
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2  # of the training pool; the test split is separate
    label_noise: Fraction = 0.0  # fraction of training labels replaced by a different, random class
    download: bool = True  # torchvision datasets only; mnist1d is always generated offline


class ModelConfig(Section):
    name: ModelName = "mlp"
    hidden_sizes: list[Annotated[int, Field(gt=0)]] = [256, 256]  # mlp: width of each hidden layer
    channels: list[Annotated[int, Field(gt=0)]] = [32, 64]  # cnn: output channels of each conv block
    spatial_dropout: bool = False  # cnn: drop whole feature maps instead of single activations
    hidden_size: Annotated[int, Field(gt=0)] = 64  # gru, lstm, rnn (and cnn's dense layer): hidden units
    num_layers: Annotated[int, Field(gt=0)] = 1  # gru, lstm, rnn: stacked recurrent layers
    batchnorm: bool = False  # mlp, cnn: BatchNorm after each hidden linear/conv layer, before ReLU and dropout

    @field_validator("hidden_sizes", "channels")
    @classmethod
    def _not_empty(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("needs at least one size")
        return value


class EarlyStoppingConfig(Section):
    patience: Annotated[int, Field(gt=0)] = 10  # epochs without improvement before stopping
    min_delta: NonNegative = 0.0  # an improvement smaller than this does not count
    metric: Literal["val_loss", "val_acc"] = "val_loss"


class DropBlockConfig(Section):
    p: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1  # share of feature-map positions dropped, in contiguous blocks
    block_size: Annotated[int, Field(gt=0)] = 3  # side of each square (2-D) or length of each run (1-D) dropped


class ConcreteDropoutConfig(Section):
    """Concrete dropout (Gal, Hron & Kendall 2017): each hidden dropout layer learns its own rate."""

    init_p: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1  # every layer's rate before training
    temperature: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1  # of the relaxed Bernoulli (the paper's 0.1)
    # prior length scale l: the weight term is l^2/N * |W|^2 / (1-p) (N training examples); the rate's own
    # term is 2/N * units * (p log p + (1-p) log(1-p)), which pulls p towards 0.5 against the data's pull
    length_scale: NonNegative = 1e-4
    # Adam moves a parameter by about its lr per step: at the weights' 1e-3 a rate's logit would need
    # thousands of steps to travel, so the rates train at their own learning rate
    rate_lr: Annotated[float, Field(gt=0.0)] = 0.01


# Data augmentation: what each transform does and where it applies (regularizer.augmentation_transforms).
SIGNAL_TRANSFORMS = ("shift", "scale", "noise", "correlated_noise")  # MNIST-1D: its own generator's transforms
IMAGE_TRANSFORMS = ("crop", "flip")
AugmentName = Literal["shift", "scale", "noise", "correlated_noise", "crop", "flip"]
AUGMENTATIONS = {  # dataset → (the transforms that make sense on it, those used when none are named)
    "mnist1d": (SIGNAL_TRANSFORMS, SIGNAL_TRANSFORMS),
    "mnist": (("crop",), ("crop",)),  # digits are not mirror images of each other: a mirrored 2 is no 2
    "fashion_mnist": (IMAGE_TRANSFORMS, IMAGE_TRANSFORMS),
    "cifar10": (IMAGE_TRANSFORMS, IMAGE_TRANSFORMS),
}
WHY_NOT = {"flip": "a mirrored digit is not the same digit", "crop": "it is for images",
           **{name: "it is one of MNIST-1D's transforms of 1-D signals" for name in SIGNAL_TRANSFORMS}}


class RegularizerConfig(Section):
    """Every regularizer is off by default; `regularizer: none` in YAML means exactly this."""

    # label=: the regularizer's name in reports. A labelled key switches a regularizer on when it is not 0/null,
    # and belongs to exactly one registered regularizer (tests/test_regularizers.py checks both ways)
    # rate p: each hidden activation is zeroed with probability p while training
    dropout: Fraction = Field(0.0, json_schema_extra={"label": "dropout"})
    # where the correction for dropped units goes: ×1/(1-p) while training (inverted) or ×(1-p) at test
    # time (scale_at_test, the original 2012/2014 formulation); the expected activations are the same
    dropout_style: Literal["inverted", "scale_at_test"] = "inverted"
    # rate on the inputs (the 2014 paper used 0.2 there, 0.5 on hidden units)
    input_dropout: Fraction = Field(0.0, json_schema_extra={"label": "input dropout"})
    # hidden units multiplied by N(1, p/(1-p)) noise instead of 0/1 masks
    gaussian_dropout: Fraction = Field(0.0, json_schema_extra={"label": "gaussian dropout"})
    # rate on the weights of hidden linear layers: y = f((W ⊙ M) x + b), M per batch
    dropconnect: Fraction = Field(0.0, json_schema_extra={"label": "DropConnect"})
    # cnn: drop contiguous blocks of feature maps in the conv blocks
    dropblock: DropBlockConfig | None = Field(None, json_schema_extra={"label": "DropBlock"})
    # gru, lstm, rnn: naive draws a new mask at every time step; variational (locked) one per sequence, reused
    rnn_dropout: Literal["naive", "variational"] = "naive"
    # the simplest "adaptive" dropout: p ramps up from 0 (linear_warmup) or down to 0 (linear_decay)
    # over the first `dropout_schedule_epochs` epochs, then stays put
    dropout_schedule: Literal["constant", "linear_warmup", "linear_decay"] = "constant"
    dropout_schedule_epochs: Annotated[int, Field(gt=0)] = 10
    # adaptive dropout: the hidden layers learn their rates (mlp, cnn); replaces `dropout` on hidden units
    concrete_dropout: ConcreteDropoutConfig | None = Field(None, json_schema_extra={"label": "Concrete dropout"})
    # data augmentation of training batches (never validation or test), on the device, deterministic per seed.
    # Strength: 0 off, 1 the standard magnitudes (MNIST-1D: its generator's own; images: crop padding 1/8 of
    # the side, i.e. 4 px on CIFAR-10), scaled in between and beyond (at most 4)
    augmentation: Annotated[float, Field(ge=0.0, le=4.0)] = Field(0.0, json_schema_extra={"label": "augmentation"})
    # which transforms; null: the dataset's (mnist1d: shift, scale, noise, correlated_noise; mnist: crop;
    # fashion_mnist, cifar10: crop, flip)
    augmentation_transforms: list[AugmentName] | None = None
    # penalty l2/2 * sum(w^2) over weights (not biases): gradient l2*w, like weight decay
    l2: NonNegative = Field(0.0, json_schema_extra={"label": "L2"})
    l1: NonNegative = Field(0.0, json_schema_extra={"label": "L1"})  # penalty l1 * sum(|w|) over weights (not biases)
    # each unit's incoming weight vector clipped to this norm
    max_norm: Annotated[float, Field(gt=0.0)] | None = Field(None, json_schema_extra={"label": "max-norm"})
    # None: train for all epochs
    early_stopping: EarlyStoppingConfig | None = Field(None, json_schema_extra={"label": "early stopping"})

    @field_validator("dropout", "input_dropout", "dropconnect")
    @classmethod
    def _resolvable_rate(cls, value: float) -> float:
        if round(value * 65536) >= 65536:  # masks resolve p to 1/65536 (masks.MASK_LEVELS)
            raise ValueError("must be at most 0.9999923 (masks resolve p to 1/65536): nothing would be left to "
                             "train")
        return value

    @model_validator(mode="after")
    def _one_noise_for_hidden_units(self) -> RegularizerConfig:
        if self.dropout and self.gaussian_dropout:
            raise ValueError("dropout and gaussian_dropout both act on the hidden units: set one of them to 0")
        if self.concrete_dropout is not None:
            fixed = [key for key in ("dropout", "gaussian_dropout", "dropblock") if getattr(self, key)]
            if fixed:
                raise ValueError(f"regularizer.concrete_dropout learns the hidden units' rate: set "
                                 f"regularizer.{fixed[0]} to 0 (or null)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _none_means_off(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return {}
        return value


def regularizer_labels() -> dict[str, str]:
    """"regularizer.l2" → "L2": every key that switches a regularizer on, with its name in reports."""
    return {f"regularizer.{name}": str(field.json_schema_extra["label"])  # type: ignore[index]
            for name, field in RegularizerConfig.model_fields.items()
            if isinstance(field.json_schema_extra, dict) and "label" in field.json_schema_extra}


class OptimizerConfig(Section):
    name: OptimizerName = "adam"
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9  # sgd only
    batch_size: Annotated[int, Field(gt=0)] = 64
    schedule: Literal["constant", "cosine"] = "constant"  # cosine decays lr to 0 over `epochs`


class EvaluationConfig(Section):
    # > 0: also score the test split with K Monte-Carlo dropout passes averaged, against weight scaling
    mc_samples: Annotated[int, Field(ge=0, le=1000)] = 0


class ExecutorConfig(Section):
    """Where `sweep` runs its trials (`--executor` and the --slurm-* options override these)."""

    name: Literal["local", "slurm", "submitit-local"] = "local"
    slurm_partition: str | None = None
    timeout_min: Annotated[int, Field(gt=0)] = 60  # per array task; a task that hits it is requeued
    cpus_per_task: Annotated[int, Field(gt=0)] = 2
    gpus_per_task: Annotated[int, Field(ge=0)] = 0
    array_parallelism: Annotated[int, Field(gt=0)] = 32  # array tasks running at once
    slurm_setup: list[str] = []  # shell lines run before each task, e.g. "module load cuda"

    @field_validator("slurm_partition")
    @classmethod
    def _partition_name(cls, value: str | None) -> str | None:
        # it becomes `#SBATCH --partition=...`: no spaces, quotes or other shell characters
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.,-]+", value):
            raise ValueError("a partition name is letters, digits and _ . , - (several: comma-separated)")
        return value


class Config(Section):
    name: str = "run"  # prefix of the run folder: runs/<name>-<timestamp>/
    epochs: Annotated[int, Field(gt=0)] = 60
    seed: Annotated[StrictInt, Field(ge=0, lt=2**32)] = 0  # weights, split, label noise, batch order, dropout masks
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # CPU threads torch may use. null: OMP_NUM_THREADS when set, else the CPUs this process may run on
    # (affinity, cgroup quota, Slurm's SLURM_CPUS_PER_TASK). On a busy machine 1 can be far faster.
    threads: Annotated[int, Field(gt=0, le=1024)] | None = None
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    regularizer: RegularizerConfig = RegularizerConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    executor: ExecutorConfig = ExecutorConfig()  # sweeps only; not part of a sweep's fingerprint

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
    def _variants_the_model_has(self) -> Config:
        if self.regularizer.dropblock is not None and self.model.name != "cnn":
            raise ValueError(f"regularizer.dropblock needs feature maps: only model.name cnn has them "
                             f"(got {self.model.name})")
        if self.regularizer.dropconnect and self.model.name in RECURRENT_MODELS:
            raise ValueError("regularizer.dropconnect acts on hidden linear layers: model.name mlp or cnn "
                             f"(the {self.model.name} has none)")
        if self.regularizer.concrete_dropout is not None and self.model.name not in ("mlp", "cnn"):
            raise ValueError(f"regularizer.concrete_dropout: model.name mlp or cnn (not {self.model.name}; "
                             f"recurrent models take regularizer.dropout)")
        allowed = AUGMENTATIONS[self.dataset.name][0]
        wrong = [t for t in self.regularizer.augmentation_transforms or () if t not in allowed]
        if wrong:
            raise ValueError(f"regularizer.augmentation_transforms: {wrong[0]} does not apply to "
                             f"{self.dataset.name} ({WHY_NOT[wrong[0]]}); allowed there: {', '.join(allowed)}")
        return self

    def learned_rate_columns(self) -> list[str]:
        """metrics.csv's columns for Concrete dropout's learned rates, one per hidden dropout layer."""
        if self.regularizer.concrete_dropout is None:
            return []
        layers = len(self.model.hidden_sizes) if self.model.name == "mlp" else len(self.model.channels) + 1
        return [f"learned_p{i}" for i in range(1, layers + 1)]

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
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError([describe_error(e) for e in error.errors()]) from None


def read_yaml_with_bases(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config; a top-level `extends: other.yaml` (relative to this file) is merged in first."""
    resolved = path.resolve()
    if resolved in _seen:
        raise ConfigError(f"{path}: `extends` forms a cycle through {' -> '.join(p.name for p in _seen)}")
    data = read_yaml_mapping(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name.strip() or "\0" in base_name:
        raise ConfigError(f"{path}: extends: expected a file name, got {brief(base_name)}")
    base = read_yaml_with_bases(path.parent / base_name, (*_seen, resolved))
    return deep_merge(base, data)


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


def describe_error(error: Any) -> str:  # a pydantic ErrorDetails
    """One line per problem: the dotted field, what is wrong, and the allowed values or closest key."""
    location = ".".join(str(part)[:80] for part in error["loc"])  # a key may be anything a user typed
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key{suggest_key(error['loc'])}"
    message = error["msg"].removeprefix("Value error, ")
    if not location:  # a check across sections (the model and its regularizers): the message names the fields
        return message
    return f"{location}: {message} (got {brief(error['input'])})"


def suggest_key(loc: tuple[Any, ...]) -> str:
    section = section_model_at(loc[:-1])
    if section is None:
        return ""
    valid = list(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint or ';'} valid keys: {', '.join(valid)}"


def section_model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        candidates = [t for t in getattr(field.annotation, "__args__", (field.annotation,))
                      if isinstance(t, type) and issubclass(t, BaseModel)]
        if not candidates:
            return None
        model = candidates[0]
    return model


def dump_yaml(config: Config) -> str:
    # libyaml's emitter where PyYAML has it: the pure-Python one took 7 ms a run folder
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(config.to_dict(), Dumper=dumper, sort_keys=False)
