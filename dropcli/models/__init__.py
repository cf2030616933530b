"""The model registry: the names users write as `model.name`, each with what the rest of dropcli may ask of it,
and the `model:` section of a config (ModelConfig).

Light on purpose (no torch): the config schema takes its model names and cross-checks from here, and
validating a config must stay instant. Each entry names the module that builds it (`module`, imported when a
run starts: `dropcli.models.build`), one module per family:

    mlp.py        mlp            the quickstart's network
    cnn.py        cnn            conv blocks on 1-D signals or images
    recurrent.py  gru lstm rnn   recurrent layers written with plain matmuls (they stack)
    custom.py     custom         a model from code: `class_path` + `init_args` (LightningCLI's style), and
                                 every class added with `register_model` or a `dropcli.plugins` entry point

A family module has `build(config, input_shape, num_classes, dropout)` and, when its entry says `stacked`,
its stacked form for batched sweeps (`STACKED`, a stacked.StackedModel).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, TypeVar

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from dropcli.plugins import PluginError, load_plugins
from dropcli.registry import Registry
from dropcli.schema import Section

C = TypeVar("C")


@dataclass(frozen=True)
class ModelEntry:
    """A model name and its capabilities, declared once (everything else derives from them)."""

    name: str
    module: str  # the family module that builds it (torch): imported when a run starts
    # recurrent: reads its input as a sequence (regularizer.rnn_dropout applies)
    recurrent: bool = False
    # stacked: trials of it train as one stacked model in a batched sweep ("probed": a class model, whose
    # stacked form (torch.func) is checked on the first batch of each group's data before it is trusted)
    stacked: bool | str = True
    # own_layers: built from dropcli's dropout layers (DropoutOptions), so the regularizers that need those
    # layers (input/gaussian/scheduled dropout, DropConnect, DropBlock, Concrete dropout, variational RNN
    # dropout, scale-at-test) can act on it. A model from code has torch's layers only.
    own_layers: bool = True
    hidden_linear: bool = False  # has hidden linear layers (DropConnect's place)
    feature_maps: bool = False  # has conv feature maps (DropBlock, spatial dropout)
    learns_rates: bool = False  # its hidden dropout layers can learn their rates (Concrete dropout)
    inputs: tuple[str, ...] = ("signal", "image")  # input kinds it takes: 1-D signals [L], images [C, H, W]
    model_class: Any = None  # a class registered by code (register_model): built like `custom`, no class_path

    def load(self) -> ModuleType:
        """The family module (torch), imported by the name the entry records, as an entry point is loaded: the
        registry itself stays free of torch."""
        return importlib.import_module(self.module)

    @property
    def from_code(self) -> bool:
        """Built from a user's nn.Module class (class_path, register_model), not one of dropcli's families."""
        return not self.own_layers


MODELS: Registry[ModelEntry] = Registry("model")


def add(entry: ModelEntry) -> ModelEntry:
    return MODELS.register(entry.name)(entry)


add(ModelEntry("mlp", "dropcli.models.mlp", hidden_linear=True, learns_rates=True))
add(ModelEntry("cnn", "dropcli.models.cnn", hidden_linear=True, feature_maps=True, learns_rates=True))
for _cell in ("gru", "lstm", "rnn"):  # one family, three cells (recurrent.CELLS)
    add(ModelEntry(_cell, "dropcli.models.recurrent", recurrent=True))
CUSTOM = "custom"
add(ModelEntry(CUSTOM, "dropcli.models.custom", stacked="probed", own_layers=False, inputs=("any",)))


def register_model(name: str) -> Callable[[C], C]:
    """Add an nn.Module class to the registry under `name`, for configs to use as `model.name: NAME` with
    `model.init_args` (and `model.dropout_arg`), exactly like a `custom` model's class_path:

        @dropcli.register_model("mynet")
        class MyNet(nn.Module):
            def __init__(self, in_features: int, num_classes: int, p: float = 0.0): ...

    A registered name is known in this process only (a notebook); a package makes it known to every process
    through the `dropcli.plugins` entry point group (dropcli.plugins)."""

    def register(model_class: C) -> C:
        add(ModelEntry(name, "dropcli.models.custom", stacked="probed", own_layers=False, inputs=("any",),
                       model_class=model_class))
        return model_class

    return register


def names_with(capability: Callable[[ModelEntry], bool]) -> str:
    """The registered model names that have a capability, as a sentence lists them ("mlp or cnn")."""
    names = [entry.name for entry in MODELS.values() if capability(entry)]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def model_entry(name: str) -> ModelEntry:
    """The entry of `name`; installed plugins are loaded first when the name is not known yet. KeyError (the
    allowed names listed) when it is unknown."""
    if name not in MODELS:
        load_plugins()  # a plugin's module imports torch: only for a name dropcli does not know
    return MODELS.lookup(name)


# ---------------------------------------------------------------------------------------------------------
# The `model:` section


CLASS_KEYS = ("class_path", "init_args", "dropout_arg", "code_dir")  # a model from code's keys (ModelConfig)


class ModelConfig(Section):
    """The network: one of dropcli's models and its size (each takes the dropout settings of the `regularizer:`
    section), or a model from code (`custom` with a `class_path`, or a registered class). A config records the
    keys of its kind only."""

    name: str = Field("mlp", description=(
        "`mlp`, `cnn` (Conv1d blocks on MNIST-1D, Conv2d on images), `gru`, `lstm` or `rnn` (a plain tanh RNN; "
        "the recurrent models read MNIST-1D's 40 values as a sequence), `custom` (a class of your own: "
        "`class_path`), or a name added by `dropcli.register_model` or a `dropcli.plugins` entry point"))
    hidden_sizes: list[Annotated[int, Field(gt=0)]] = Field([256, 256], description=(
        "mlp: width of each hidden layer (dropout after each ReLU)"))
    channels: list[Annotated[int, Field(gt=0)]] = Field([32, 64], description=(
        "cnn: output channels of each conv block (conv → ReLU → dropout → max-pool)"))
    spatial_dropout: bool = Field(False, description=(
        "cnn: drop whole feature maps in the conv blocks instead of single activations"))
    hidden_size: Annotated[int, Field(gt=0)] = Field(64, description=(
        "gru, lstm, rnn: recurrent units; cnn: width of the dense layer before the output"))
    num_layers: Annotated[int, Field(gt=0)] = Field(1, description=(
        "gru, lstm, rnn: stacked recurrent layers (dropout between layers and before the output)"))
    batchnorm: bool = Field(False, description=(
        "mlp, cnn: BatchNorm after each hidden linear or conv layer, then ReLU, then dropout"))
    class_path: str | None = Field(None, description=(
        "custom: the nn.Module class, `module.Class` or `module:Class`, imported from `code_dir` first. This "
        "imports and runs that code, as a Hydra config's `_target_` does: only your own configs should"))
    init_args: dict[str, Any] = Field({}, description=(
        "custom and registered classes: the constructor's keyword arguments (`input_shape`, `in_features` and "
        "`num_classes` are passed where it has parameters of those names)"))
    dropout_arg: str | None = Field(None, description=(
        "custom and registered classes: the constructor argument that receives `regularizer.dropout`; null: "
        "the rate is set as `p` of every nn.Dropout in the model"))
    code_dir: str | None = Field(None, description=(
        "custom: the folder `class_path` is imported from; null: the folder of the config file that names it "
        "(recorded absolute)"))

    @field_validator("hidden_sizes", "channels")
    @classmethod
    def _not_empty(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("needs at least one size")
        return value

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        try:
            model_entry(value)
        except KeyError:
            raise ValueError(f"unknown model {value!r}; allowed: {', '.join(MODELS)}") from None
        except PluginError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("class_path")
    @classmethod
    def _module_and_class(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*[.:][A-Za-z_]\w*", value):
            raise ValueError("expected module.Class or module:Class (e.g. mynet.MyNet), names of letters, digits "
                             "and _")
        return value

    @model_validator(mode="after")
    def _keys_of_its_kind(self) -> ModelConfig:
        entry = model_entry(self.name)
        if not entry.from_code:
            given = [key for key in CLASS_KEYS if getattr(self, key) not in (None, {})]
            if given:
                raise ValueError(f"model.{given[0]}: only a model from code takes it (model.name: custom); "
                                 f"{self.name} is one of dropcli's own")
            return self
        defaults = ModelConfig.model_fields
        layered = [key for key in defaults if key not in (*CLASS_KEYS, "name")
                   and getattr(self, key) != defaults[key].default]
        if layered:  # the defaults pass: a config that extends the quickstart inherits them all
            raise ValueError(f"model.{layered[0]}: a model from code takes its settings in model.init_args")
        if entry.model_class is None and self.class_path is None:
            raise ValueError("model.class_path: model.name custom needs the class to build, e.g. mynet.MyNet")
        if entry.model_class is not None and (self.class_path or self.code_dir):
            raise ValueError(f"model.class_path: {self.name} is a registered class; give class_path with "
                             f"model.name custom only")
        return self

    def describe(self) -> str:
        """The model in a few words for titles and logs: its name, or a class's name ("MyNet (custom)")."""
        if self.class_path is None:
            return self.name
        return f"{re.split(r'[.:]', self.class_path)[-1]} ({self.name})"

    @model_serializer(mode="wrap")
    def _keys_of_its_kind_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a config records what builds its model, nothing else: an mlp's config.yaml (and a sweep's fingerprint)
        # is as it was before models from code existed, and a custom model's names no layer sizes it ignores
        data = handler(self)
        if model_entry(self.name).from_code:
            return {key: value for key, value in data.items() if key == "name" or key in CLASS_KEYS}
        return {key: value for key, value in data.items() if key not in CLASS_KEYS}
