"""Model registry: adding a model is one decorated factory function; nothing else changes."""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class Net(nn.Sequential):
    """A model: named layers in order (conv1, bn1, act1, pool1, …, flatten, fc1, …) → logits (B, 10) (B, K after
    `with_classes`), or probabilities where a tutorial ends its model in a softmax (see `outputs_probabilities`).

    Input is a normalized (B, 1, S, S) batch with S = `input_size`."""

    def __init__(self, layers: list[tuple[str, nn.Module]], input_size: int = 28):
        super().__init__(OrderedDict(layers))
        self.input_size = input_size


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., Net]
    description: str
    source: str  # the tutorial / paper the model comes from


MODELS: dict[str, ModelSpec] = {}


def register(description: str, source: str) -> Callable[[Callable[..., Net]], Callable[..., Net]]:
    def wrap(factory: Callable[..., Net]) -> Callable[..., Net]:
        MODELS[factory.__name__] = ModelSpec(factory.__name__, factory, description, source)
        return factory

    return wrap


def list_models() -> list[str]:
    return list(MODELS)


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    return MODELS[name]


def takes(name: str, argument: str) -> bool:
    """Whether the registered model `name` has the keyword argument `argument` (e.g. "softmax", a tutorial's flaw)."""
    return argument in inspect.signature(model_spec(name).factory).parameters


def create_model(name: str, **kwargs: Any) -> Net:
    """Build the registered model `name` with its keyword arguments."""
    return model_spec(name).factory(**kwargs)


def head(model: nn.Sequential) -> str:
    """The name of the model's last Linear layer: the one that gives a score per class."""
    names = [name for name, layer in model.named_children() if isinstance(layer, nn.Linear)]
    if not names:
        raise ValueError("This model has no linear layer to give a score per class.")
    return names[-1]


def num_classes(model: nn.Sequential) -> int:
    """How many classes the model scores: its last Linear layer's outputs."""
    return getattr(model, head(model)).out_features


def with_classes(model: nn.Sequential, k: int) -> nn.Sequential:
    """The model (changed in place) with its last Linear layer (F → 10) replaced by a fresh one of k outputs (F → k),
    on the same device, when it has another number; returned for chaining."""
    name = head(model)
    old = getattr(model, name)
    if old.out_features != k:
        setattr(model, name, nn.Linear(old.in_features, k, device=old.weight.device))
    return model


def outputs_probabilities(model: nn.Module) -> bool:
    """True when the model's last layer is a softmax (as some tutorials write it): its output is already (B, 10)
    probabilities, and CrossEntropyLoss on it applies softmax a second time."""
    return isinstance(model, nn.Sequential) and len(model) > 0 and isinstance(model[-1], nn.Softmax)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_table(model: Net) -> list[dict[str, Any]]:
    """One row per layer: name, type, output shape (without batch) and parameter count.

    The shapes come from a forward through an eval-mode copy: the model itself (perhaps shared, perhaps
    training) is neither switched nor run."""
    x = torch.zeros(1, 1, model.input_size, model.input_size)
    rows = [{"layer": "input", "type": "", "output shape": tuple(x.shape[1:]), "parameters": 0}]
    with torch.no_grad():
        for name, layer in copy.deepcopy(model).eval().named_children():
            x = layer(x)
            rows.append({"layer": name, "type": type(layer).__name__, "output shape": tuple(x.shape[1:]),
                         "parameters": count_parameters(layer)})
    return rows
