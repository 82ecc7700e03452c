"""`custom`: a model built from a list of layer specs, with a shape check that names the layer that breaks.

A spec is a plain dict (JSON in checkpoints and on the CLI), for example:
    {"type": "conv", "channels": 8, "kernel": 3, "stride": 1, "padding": 1}
    {"type": "pool", "mode": "max", "size": 2}        {"type": "act", "fn": "relu"}
    {"type": "batchnorm"}   {"type": "dropout", "p": 0.5}   {"type": "linear", "width": 128}
A flatten is inserted before the first linear layer; the final Linear(…, 10) is always appended.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cnn_core.models.registry import Net, register

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
LAYER_TYPES = ("conv", "pool", "act", "batchnorm", "dropout", "linear")
DEFAULT_LAYERS: list[dict[str, Any]] = [
    {"type": "conv", "channels": 8, "kernel": 3, "stride": 1, "padding": 1},
    {"type": "act", "fn": "relu"},
    {"type": "pool", "mode": "max", "size": 2},
    {"type": "conv", "channels": 16, "kernel": 3, "stride": 1, "padding": 1},
    {"type": "act", "fn": "relu"},
    {"type": "pool", "mode": "max", "size": 2},
    {"type": "linear", "width": 64},
    {"type": "act", "fn": "relu"},
]
LAYER_RANGES: dict[str, dict[str, tuple[float, float]]] = {  # the Train form's bounds per layer field
    "conv": {"channels": (1, 256), "kernel": (1, 11), "stride": (1, 4), "padding": (0, 5)},
    "pool": {"size": (1, 4)},
    "dropout": {"p": (0.0, 0.9)},
    "linear": {"width": (1, 4096)},
}


class ModelSpecError(ValueError):
    """A layer stack that cannot work; `index` is the 0-based layer that breaks it."""

    def __init__(self, index: int, message: str):
        super().__init__(f"Layer {index + 1}: {message}")
        self.index = index


def describe(spec: dict[str, Any]) -> str:
    """A short human name for a spec, e.g. 'conv 8@3x3 s1 p1'."""
    kind = spec.get("type")
    if kind == "conv":
        return f"conv {spec.get('channels')}@{spec.get('kernel')}x{spec.get('kernel')} s{spec.get('stride', 1)} p{spec.get('padding', 0)}"
    if kind == "pool":
        return f"{spec.get('mode', 'max')} pool {spec.get('size', 2)}"
    if kind == "act":
        return spec.get("fn", "relu")
    if kind == "dropout":
        return f"dropout {spec.get('p', 0.5)}"
    if kind == "linear":
        return f"linear {spec.get('width')}"
    return str(kind)


def _int(spec: dict[str, Any], key: str, default: int | None, index: int, minimum: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ModelSpecError(index, f"{describe(spec)}: '{key}' must be a whole number ≥ {minimum}, got {value!r}.")
    return value


@register("Your own layer stack: conv, pool, activation, batchnorm, dropout and linear layers", "custom")
def custom(layers: list[dict[str, Any]] | None = None, input_size: int = 28) -> Net:
    """Build a Net from specs, checking shapes as it goes: (C, H, W) before flatten, (F,) after."""
    specs = DEFAULT_LAYERS if layers is None else layers
    if input_size not in (28, 32):
        raise ValueError("input_size must be 28 or 32.")
    shape: tuple[int, ...] = (1, input_size, input_size)
    modules: list[tuple[str, nn.Module]] = []
    counts: dict[str, int] = {}

    def add(prefix: str, module: nn.Module) -> None:
        counts[prefix] = counts.get(prefix, 0) + 1
        modules.append((f"{prefix}{counts[prefix]}", module))

    for i, spec in enumerate(specs):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in LAYER_TYPES:
            raise ModelSpecError(i, f"unknown layer type {kind!r}; choose one of {', '.join(LAYER_TYPES)}.")
        flat = len(shape) == 1
        if kind in ("conv", "pool") and flat:
            raise ModelSpecError(i, f"{describe(spec)} needs an image, but a linear layer came before it; "
                                    "put convolutions and pooling before the linear layers.")
        if kind == "conv":
            c_out = _int(spec, "channels", None, i, 1)
            k = _int(spec, "kernel", 3, i, 1)
            s = _int(spec, "stride", 1, i, 1)
            p = _int(spec, "padding", 0, i, 0)
            h = (shape[1] + 2 * p - k) // s + 1
            if h < 1:
                raise ModelSpecError(i, f"{describe(spec)} does not fit its {shape[1]}x{shape[2]} input: "
                                        "use a smaller kernel, more padding, or fewer pooling layers before it.")
            add("conv", nn.Conv2d(shape[0], c_out, k, s, p))
            shape = (c_out, h, h)
        elif kind == "pool":
            size = _int(spec, "size", 2, i, 1)
            mode = spec.get("mode", "max")
            if mode not in ("max", "avg"):
                raise ModelSpecError(i, f"pool mode must be 'max' or 'avg', got {mode!r}.")
            if shape[1] < size:
                raise ModelSpecError(i, f"{describe(spec)} needs at least {size}x{size} but gets {shape[1]}x{shape[2]}: "
                                        "remove a pooling layer or use padding in the convolutions.")
            add("pool", nn.MaxPool2d(size) if mode == "max" else nn.AvgPool2d(size))
            shape = (shape[0], shape[1] // size, shape[2] // size)
        elif kind == "act":
            fn = spec.get("fn", "relu")
            if fn not in ACTIVATIONS:
                raise ModelSpecError(i, f"activation must be one of {', '.join(ACTIVATIONS)}, got {fn!r}.")
            add("act", ACTIVATIONS[fn]())
        elif kind == "batchnorm":
            add("bn", nn.BatchNorm1d(shape[0]) if flat else nn.BatchNorm2d(shape[0]))
        elif kind == "dropout":
            p = spec.get("p", 0.5)
            if not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise ModelSpecError(i, f"dropout p must be in [0, 1), got {p!r}.")
            add("drop", nn.Dropout(p) if flat else nn.Dropout2d(p))
        else:  # linear
            width = _int(spec, "width", None, i, 1)
            if not flat:
                modules.append(("flatten", nn.Flatten()))
                shape = (shape[0] * shape[1] * shape[2],)
            add("fc", nn.Linear(shape[0], width))
            shape = (width,)
    if len(shape) == 3:
        modules.append(("flatten", nn.Flatten()))
        shape = (shape[0] * shape[1] * shape[2],)
    add("fc", nn.Linear(shape[0], 10))
    return Net(modules, input_size=input_size)
