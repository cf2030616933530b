"""custom: a model from code, `class_path` + `init_args` (LightningCLI's style), and every class registered with
`dropcli.register_model` or a `dropcli.plugins` entry point.

The constructor gets `init_args`, plus `input_shape`, `in_features` and `num_classes` where it has parameters
of those names, and the rate `regularizer.dropout` through `dropout_arg` when the config names one; without
it, that rate is set as the p of every nn.Dropout in the model. Each way a class can be wrong is one line
(ConfigError) before training starts: its module does not import, the name is no nn.Module class, init_args
do not fit the signature, the output for one batch is not [batch, num_classes].

Stacked form (batched sweeps): the trials' models through torch.func (`functional_call` over weights stacked
on a trial dimension, `vmap(randomness="different")`), each nn.Dropout swapped for a dropout whose rate is a
per-trial buffer. A probe (`stacking_refusal`) first compares the stacked forward and gradients with each
lone model's; a model that differs or cannot be vmapped trains its trials one by one.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
import sys
import traceback
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from dropcli.config import Config, ConfigError, ModelConfig
from dropcli.experiment import prepare
from dropcli.models import model_entry
from dropcli.models.code import locate, split_class_path
from dropcli.regularizers.dropout_layers import DropoutOptions
from dropcli.stacked import SAME, StackedModel


def last_line(error: BaseException) -> str:
    """An exception as the last line Python would print for it."""
    return traceback.format_exception_only(type(error), error)[-1].strip()[:300]


def import_class(config: ModelConfig) -> Any:
    """class_path's object, its module imported with code_dir first on the path."""
    assert config.class_path is not None
    module_name, name = split_class_path(config.class_path)
    found = locate(config)
    cached = sys.modules.get(module_name)
    if cached is not None and found is not None and getattr(cached, "__file__", None) \
            and str(found) != str(getattr(cached, "__file__", "")):
        del sys.modules[module_name]  # another folder's module of that name was imported before: this one's
    sys.path.insert(0, config.code_dir or ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # anything the user's module raises while it runs: one line, not a traceback
        raise ConfigError(f"model.class_path: {module_name} does not import: {last_line(error)}") from None
    finally:
        sys.path.remove(config.code_dir or ".")
    if not hasattr(module, name):
        raise ConfigError(f"model.class_path: module {module_name} ({getattr(module, '__file__', '?')}) has no "
                          f"{name}")
    return getattr(module, name)


def model_class(config: ModelConfig) -> type[nn.Module]:
    """The class to build: the registered one, or class_path's (which must be an nn.Module class)."""
    found = model_entry(config.name).model_class or import_class(config)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        what = f"a {type(found).__name__}" if not isinstance(found, type) else \
            f"the class {found.__name__}, no nn.Module"
        raise ConfigError(f"model.class_path: {config.class_path or config.name} is {what}; it must name an "
                          f"nn.Module class")
    return found


def constructor_args(model_class: type[nn.Module], config: ModelConfig, input_shape: tuple[int, ...],
                     num_classes: int, p: float) -> dict[str, Any]:
    """init_args, the data's shapes where the constructor asks for them, and the rate through dropout_arg;
    ConfigError when they do not fit its signature (checked without building anything)."""
    signature = inspect.signature(model_class)
    parameters = signature.parameters
    arguments = dict(config.init_args)
    given = {"input_shape": tuple(input_shape), "in_features": math.prod(input_shape), "num_classes": num_classes}
    arguments.update({key: value for key, value in given.items() if key in parameters and key not in arguments})
    if config.dropout_arg is not None:
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        if config.dropout_arg not in parameters and not takes_any:
            raise ConfigError(f"model.dropout_arg: {model_class.__name__}{signature} has no argument "
                              f"{config.dropout_arg!r} to take regularizer.dropout")
        if config.dropout_arg in config.init_args:
            raise ConfigError(f"model.init_args.{config.dropout_arg}: the rate comes from regularizer.dropout "
                              f"(model.dropout_arg names {config.dropout_arg}); leave it out of init_args")
        arguments[config.dropout_arg] = p
    try:
        signature.bind(**arguments)
    except TypeError as error:
        raise ConfigError(f"model.init_args: {sorted(config.init_args)} do not fit {model_class.__name__}"
                          f"{signature}: {error}") from None
    return arguments


def build(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int, dropout: DropoutOptions) -> nn.Module:
    model_type = model_class(config)
    arguments = constructor_args(model_type, config, input_shape, num_classes, dropout.p)
    try:
        model = model_type(**arguments)
    except Exception as error:  # the user's constructor: one line, naming the class
        raise ConfigError(f"model: {model_type.__name__}(...) failed: {last_line(error)}") from None
    if config.dropout_arg is None:
        set_dropout(model, dropout.p)
    return model


def dropout_layers(model: nn.Module) -> list[_DropoutNd]:
    return [module for module in model.modules() if isinstance(module, _DropoutNd)]


def set_dropout(model: nn.Module, p: float) -> None:
    """regularizer.dropout as the p of every nn.Dropout (0 switches them off: dropcli decides the rate)."""
    layers = dropout_layers(model)
    if p and not layers:
        raise ConfigError(f"regularizer.dropout: {type(model).__name__} has no nn.Dropout whose p it could set; "
                          f"name the constructor argument that takes the rate in model.dropout_arg")
    for layer in layers:
        layer.p = p


def verify(model: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    """ConfigError unless the model maps one batch `x` to logits [batch, num_classes] (eval mode, no gradient,
    the global generators left as they were)."""
    name = type(model).__name__
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            model.eval()
            output = model(x)
    except Exception as error:
        raise ConfigError(f"model: {name} failed on a batch of shape {list(x.shape)}: {last_line(error)}") from None
    finally:
        model.train()
    shape = list(output.shape) if torch.is_tensor(output) else type(output).__name__
    if shape != [len(x), num_classes]:
        raise ConfigError(f"model: {name} returned {shape} for a batch of shape {list(x.shape)}; a classifier "
                          f"returns logits [batch, num_classes] = {[len(x), num_classes]}")


# ---------------------------------------------------------------------------------------------------------
# Stacked: torch.func over the trials' weights


class RateDropout(nn.Module):
    """nn.Dropout with its rate in a buffer, so that a stacked group holds one rate per trial (inverted dropout,
    masks from torch's generator: under vmap(randomness="different") every trial draws its own)."""

    def __init__(self, p: float):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = 1.0 - self.p
        return x * (torch.rand_like(x) < keep) / keep


class StackedLinear(torch.autograd.Function):
    """T linear layers at once, x [T, B, in] by weights [T, out, in] (+ biases [T, out]), computed as each lone
    F.linear computes its own, forward and backward (addmm's products and their layout; vmap's own rule for
    F.linear sums in another order): so a stacked trial's numbers are its lone run's."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        product = weight.transpose(1, 2)
        return torch.bmm(x, product) if bias is None else torch.baddbmm(bias.unsqueeze(1), x, product)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # a lone layer's gradient arrives contiguous: sums over it in its order
        return (torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None,
                torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None,
                grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None)


class LoneLinear(torch.autograd.Function):
    """F.linear, whose vmap over trials is StackedLinear (torch.func calls `vmap` with the stacked tensors)."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.has_bias = inputs[2] is not None

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        return grad @ weight, grad.t() @ x, grad.sum(0) if ctx.has_bias else None

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], x: torch.Tensor, weight: torch.Tensor,
             bias: torch.Tensor | None) -> tuple[torch.Tensor, int]:
        trials = info.batch_size
        x, weight, bias = (None if t is None else t.movedim(dim, 0) if dim is not None else t.expand(trials, *t.shape)
                           for t, dim in zip((x, weight, bias), in_dims))
        assert x is not None and weight is not None
        flat = StackedLinear.apply(x.reshape(trials, -1, x.shape[-1]), weight, bias)
        return flat.reshape(*x.shape[:-1], weight.shape[1]), 0


class StackableLinear(nn.Linear):
    """nn.Linear, its parameters where they were, computed through LoneLinear."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LoneLinear.apply(x, self.weight, self.bias)


def stackable_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose nn.Dropout layers are RateDropout layers of the same rate and whose nn.Linear
    layers compute as a lone layer does when vmapped over trials (the same names and parameters)."""
    copied = copy.deepcopy(model)
    for module in list(copied.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, child_name, RateDropout(child.p))
            elif type(child) is nn.Linear:
                child.__class__ = StackableLinear
    return copied


class StackedCustom(StackedModel):
    """T trials of one model from code: weights stacked (StackedModel.stack, each trial's row as its lone
    parameter, flat), the lone forward mapped over them with vmap; logits class-major [T, classes, B]."""

    evaluates_by_trial = True  # CPU: each trial's lone forward on its slice of the weights

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        template = stackable_copy(models[0])
        self.names = [name for name, _ in template.named_parameters()]
        stacked = self.stack(models, [(SAME, SAME)] * len(self.names))
        self.weights = nn.ParameterList(stacked)
        copies = [stackable_copy(model) for model in models]
        self.buffer_names = [name for name, _ in template.named_buffers()]
        for index, name in enumerate(self.buffer_names):  # the rates, one per trial (and any other buffer)
            self.register_buffer(f"stacked_buffer_{index}",
                                 torch.stack([dict(m.named_buffers())[name].detach().clone() for m in copies]))
        self.template = [template.to("meta")]  # a list: not a submodule, its (meta) weights are never used

    def state(self, trial: int | None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(parameters, buffers) by name for functional_call: every trial's ([T, ...]) or one trial's."""
        weights = [self.shaped(w) for w in self.weights]
        buffers = [getattr(self, f"stacked_buffer_{i}") for i in range(len(self.buffer_names))]
        if trial is not None:
            weights, buffers = [w[trial] for w in weights], [b[trial] for b in buffers]
        return dict(zip(self.names, weights)), dict(zip(self.buffer_names, buffers))

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """x [T, B, ...] → logits [T, classes, B]. `masks` is not used: its dropout draws from torch's generator.
        Training mode where autograd records (a step), eval mode where it does not (batched.evaluate_stacked)."""
        template = self.template[0]
        template.train(torch.is_grad_enabled())
        weights, buffers = self.state(None)

        def lone(weights: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (weights, buffers), (x,))

        return vmap(lone, randomness="different")(weights, buffers, x).transpose(1, 2)

    def trial_logits(self, trial: int, x: torch.Tensor) -> torch.Tensor:
        template = self.template[0]
        template.eval()
        return functional_call(template, self.state(trial), (x,))

    def mask_shapes(self, x: torch.Tensor) -> list[tuple[int, ...]]:
        return []  # its masks come from torch's generator, inside the forward

    def eval_width(self, x: torch.Tensor) -> int:
        return max([self.shapes[id(w)][0] for w in self.weights if len(self.shapes[id(w)]) >= 2] + [x[0, 0].numel()])

    def weight_parameters(self) -> list[torch.Tensor]:
        return [self.shaped(w) for w in self.weights if len(self.shapes[id(w)]) >= 2]

    def unit_weights(self) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
        return [(w, tuple(range(2, w.ndim))) for w in self.weight_parameters()]  # lone: a unit is a slice of dim 0


STACKED = StackedCustom


def structure(model: nn.Module) -> str:
    """What must be equal for two trials' models to stack: module types, weight and buffer shapes."""
    modules = [(name, type(module).__name__) for name, module in model.named_modules()]
    shapes = [(name, tuple(t.shape)) for name, t in [*model.named_parameters(), *model.named_buffers()]]
    return repr((modules, shapes))


def stacking_refusal(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor) -> str | None:
    """Why these trials' models cannot train stacked (None: they can): a layer vmap cannot map per trial, or
    a stacked forward or gradient on the batch (x, y) that differs from each lone model's. Dropout is
    switched off for the comparison (p = 0: no random numbers in nn.Dropout); anything random elsewhere shows
    as a difference. Nothing of `models` changes; the global generators are left as they were."""
    for module in models[0].modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            return f"{type(module).__name__}'s running statistics are updated in place, which vmap cannot do per trial"
        if isinstance(module, nn.RNNBase):
            return f"nn.{type(module).__name__} has no vmap batching rule"
        if isinstance(module, _DropoutNd) and type(module) is not nn.Dropout:
            return f"{type(module).__name__} has no stacked form (only nn.Dropout's rate becomes a per-trial one)"
    if len({structure(model) for model in models}) > 1:
        return "its trials' models differ in structure (layers or shapes)"
    lone = [copy.deepcopy(model) for model in models]
    for model in lone:
        set_dropout(model, 0.0)
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            stacked = StackedCustom(lone)
            logits = stacked(x.expand(len(lone), *x.shape), [])
            F.cross_entropy(logits, y.expand(len(lone), *y.shape), reduction="none").mean(1).sum().backward()
            for index, model in enumerate(lone):
                model.train()
                output = model(x)
                F.cross_entropy(output, y).backward()
                if not close(output, logits[index].T):
                    return "its stacked forward differs from the lone model's (random numbers outside nn.Dropout?)"
                for (weight, _, to_lone), parameter in zip(stacked.slots, model.parameters()):
                    if parameter.grad is None or weight.grad is None \
                            or not close(parameter.grad, to_lone(weight.grad[index])):
                        return "its stacked gradients differ from the lone model's"
                buffers = stacked.state(index)[1]
                if any(not close(t, buffers[name]) for name, t in model.named_buffers() if name in buffers):
                    return "its forward updates buffers in place, which the stacked model cannot follow per trial"
    except Exception as error:  # whatever vmap or the model raise: the reason to train one by one
        return f"it cannot be vmapped: {last_line(error)}"
    return None


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float rounding (batched products sum in another order)."""
    return a.shape == b.shape and bool(torch.allclose(a.detach().float(), b.detach().float(), rtol=1e-4, atol=1e-6))


PROBED: dict[str, tuple[str | None, str]] = {}  # a model from code's config (seed aside) → what its probe said


def probe(config: Config) -> tuple[str | None, str]:
    """A model from code (ModelEntry.stacked "probed"): why it cannot train stacked (None: it can), from two
    seeds' models on the first batch of the data (stacking_refusal), and its structure (trials whose
    models differ in it never share a group). Once per config and process; the global generators, the
    thread count and everything else are left as they were."""
    key = json.dumps({**config.to_dict(), "seed": None, "name": None, "threads": None}, sort_keys=True)
    if key not in PROBED:
        threads = torch.get_num_threads()
        with torch.random.fork_rng():
            experiment = prepare(config)  # also the checks of a lone run: the class, its output's shape
            torch.manual_seed(config.seed + 1)
            second = copy.deepcopy(experiment.model)
            for parameter in second.parameters():  # other weights, as another seed's trial has
                parameter.data.normal_(0.0, 0.1)
            batch = config.optimizer.batch_size
            splits = experiment.splits
            refusal = stacking_refusal([experiment.model, second], splits.x_train[:batch],
                                              splits.y_train[:batch])
        torch.set_num_threads(threads)
        PROBED[key] = (refusal, structure(experiment.model))
    return PROBED[key]
