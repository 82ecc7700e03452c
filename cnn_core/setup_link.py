"""A Train page setup as a short text for a link (`/train?setup=v1.e2.b128.adamw.lr3e-3`), and back.

Short enough to read aloud or put on a slide: only what differs from version 1's defaults, as dot-separated
tokens a teacher can say:

    v1                     the format's version, always first
    e2  b128  lr3e-3 …     a number field: its short key, then the value (`NUMBER_KEYS`); numbers never hold a dot
                           (0.0005 is written 5e-4, 0.9 is 9e-1)
    adamw  onecycle  …     a model, data set, optimizer, schedule or device: its name alone
    aug  raw  softmax      augment on; normalize off; the model ends in a softmax (models that offer it)
    Lc8k3p1_relu_max2_fc64 a custom layer stack, `_` between layers (`layer_token`), model `custom`; in32: 32x32 input

`decode` never raises: what it cannot use (an unknown token, a value out of the form's range, a stack that does
not fit) is left out and named in one sentence each, and the rest is applied.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any

from cnn_core.config import BATCH_SIZES, DEVICES, FORM_RANGES, OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from cnn_core.data import DATASETS
from cnn_core.models import MODELS, ModelSpecError, count_parameters, create_model, takes
from cnn_core.models.custom import ACTIVATIONS, DEFAULT_LAYERS, LAYER_RANGES

VERSION = "v1"
PARAM = "setup"  # the query parameter
MAX_LENGTH = 1000  # characters: a longer text is not read at all
MAX_LAYERS = 32  # layers in a stack a link may hold …
MAX_PARAMETERS = 20_000_000  # … and parameters it may build to (counted on the meta device: nothing is allocated)
# Version 1's defaults, kept as written then: a v1 link means the same setup after TrainConfig's defaults change.
V1_DEFAULTS: dict[str, Any] = {
    "model": "lenet5_bn", "model_args": {}, "dataset": "mnist", "normalize": True, "epochs": 3, "batch_size": 64,
    "optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "schedule": "none", "augment": False,
    "patience": 0, "label_smoothing": 0.0, "seed": 0, "device": "auto", "val_size": 5000, "metrics_every": 50,
    "train_subset": 0,
}
NUMBER_KEYS = {  # short key → (field, its name in a sentence)
    "e": ("epochs", "Epochs"), "b": ("batch_size", "Batch size"), "lr": ("lr", "Learning rate"),
    "m": ("momentum", "Momentum"), "wd": ("weight_decay", "Weight decay"),
    "ls": ("label_smoothing", "Label smoothing"), "p": ("patience", "Early-stop patience"), "s": ("seed", "Seed"),
    "val": ("val_size", "Validation images"), "r": ("metrics_every", "Report every N steps"),
}
KEY_OF = {field: key for key, (field, _) in NUMBER_KEYS.items()}
WORD_FIELDS = {"model": lambda: list(MODELS), "dataset": lambda: list(DATASETS), "optimizer": lambda: OPTIMIZERS,
               "schedule": lambda: SCHEDULES, "device": lambda: DEVICES}
FLAGS = {"aug": ("augment", True), "raw": ("normalize", False)}  # the non-default value of a boolean field
_NUMBER = re.compile(r"^([a-z]+)(\d[0-9e+-]*)$")
_LAYER = {  # a layer token's pattern → its spec
    "conv": re.compile(r"^c(?P<channels>\d+)k(?P<kernel>\d+)(?:s(?P<stride>\d+))?(?:p(?P<padding>\d+))?$"),
    "pool": re.compile(r"^(?P<mode>max|avg)(?P<size>\d+)$"),
    "dropout": re.compile(r"^drop(?P<p>\d[0-9e+-]*)$"),  # p in percent
    "linear": re.compile(r"^fc(?P<width>\d+)$"),
}


def number_text(value: float) -> str:
    """A number without a dot: 2 → '2', 0.003 → '3e-3', 0.9 → '9e-1', 1.5 → '15e-1' (exact: float(text) == value)."""
    if float(value) == int(value) and abs(value) < 1e15:
        return str(int(value))
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    return f"{'-' if sign else ''}{''.join(map(str, digits))}e{exponent}"


def layer_token(spec: dict[str, Any]) -> str:
    """One custom layer spec → its token: 'c8k3p1', 'max2', 'relu', 'bn', 'drop25' (percent), 'fc64'."""
    kind = spec["type"]
    if kind == "conv":
        stride, padding = spec.get("stride", 1), spec.get("padding", 0)
        return (f"c{spec['channels']}k{spec.get('kernel', 3)}" + (f"s{stride}" if stride != 1 else "")
                + (f"p{padding}" if padding else ""))
    if kind == "pool":
        return f"{spec.get('mode', 'max')}{spec.get('size', 2)}"
    if kind == "act":
        return spec.get("fn", "relu")
    if kind == "batchnorm":
        return "bn"
    if kind == "dropout":
        return f"drop{number_text(round(float(spec.get('p', 0.5)) * 100, 9))}"
    return f"fc{spec['width']}"


def encode(config: TrainConfig) -> str:
    """The setup text of a config: the version, then a token per field that differs from version 1's defaults.

    What the Train form cannot set (model arguments other than a softmax flag or a custom stack, a train subset)
    raises ValueError."""
    tokens = [VERSION]
    if config.model == "custom":
        layers = config.model_args.get("layers", DEFAULT_LAYERS)
        tokens.append("L" + "_".join(layer_token(spec) for spec in layers))
        if config.model_args.get("input_size", 28) != 28:
            tokens.append(f"in{config.model_args['input_size']}")
        others = set(config.model_args) - {"layers", "input_size"}
    else:
        if config.model != V1_DEFAULTS["model"]:
            tokens.append(config.model)
        if config.model_args.get("softmax"):
            tokens.append("softmax")
        others = set(config.model_args) - {"softmax"}
    if others:
        raise ValueError(f"A setup link cannot hold the model arguments {sorted(others)}.")
    if config.train_subset != V1_DEFAULTS["train_subset"]:
        raise ValueError("A setup link cannot hold a train subset (the Train form has none).")
    for field in dataclasses.fields(TrainConfig):
        name, value = field.name, getattr(config, field.name)
        if name in ("model", "model_args") or value == V1_DEFAULTS[name]:
            continue
        if name in WORD_FIELDS:
            tokens.append(str(value))
        elif name in KEY_OF:
            tokens.append(KEY_OF[name] + number_text(value))
        else:
            tokens.append(next(flag for flag, (f, on) in FLAGS.items() if f == name and on == value))
    return ".".join(tokens)


def decode(text: str) -> tuple[TrainConfig, list[str]]:
    """A setup text → (the config, one sentence per thing left out and why). Never raises: an unreadable text
    gives version 1's defaults and says so; a token that does not fit is left out and the rest applied."""
    config = TrainConfig(**{**V1_DEFAULTS, "model_args": {}})
    text = (text or "").strip()
    if len(text) > MAX_LENGTH:
        return config, [f"The setup in this link is {len(text):,} characters long (at most {MAX_LENGTH:,} are read): "
                        "nothing of it was used."]
    version, *tokens = text.split(".")
    if version != VERSION:
        what = (f"version {version!r}" if re.fullmatch(r"v\d+", version) else "no version")
        return config, [f"This setup link has {what}; this CNN studio reads {VERSION} links only: nothing of it "
                        "was used."]
    ignored: list[str] = []
    model_args: dict[str, Any] = {}
    for token in tokens:
        try:
            change = _token_change(token, model_args)
            config = dataclasses.replace(config, **change).validate()
        except ConfigError as e:
            ignored.append(f"`{token}`: {e}")
    if config.model == "custom":
        return _with_stack(config, model_args, ignored), ignored
    for arg, token in (("layers", f"L{model_args.get('layers')}"), ("input_size", f"in{model_args.get('input_size')}")):
        if arg in model_args:
            ignored.append(f"`{token}`: only a custom model has a layer stack and an input size, and this link's "
                           f"model is {config.model}.")
    if model_args.get("softmax"):
        if takes(config.model, "softmax"):
            config = dataclasses.replace(config, model_args={"softmax": True})
        else:
            ignored.append(f"`softmax`: model {config.model} has no softmax option.")
    return config, ignored


def _token_change(token: str, model_args: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig fields one token sets (a stack or softmax goes into `model_args` instead); ConfigError with
    the reason when it sets nothing."""
    for field, names in WORD_FIELDS.items():
        if token in names():
            return {field: token}
    if token in FLAGS:
        field, value = FLAGS[token]
        return {field: value}
    if token == "softmax":
        model_args["softmax"] = True
        return {}
    if token.startswith("L"):
        model_args["layers"] = token[1:]
        return {"model": "custom"}
    if token in ("in28", "in32"):
        model_args["input_size"] = int(token[2:])
        return {}
    match = _NUMBER.match(token)
    if not match or match.group(1) not in NUMBER_KEYS:
        raise ConfigError("not a setting this version of CNN studio knows.")
    field, label = NUMBER_KEYS[match.group(1)]
    kind = type(V1_DEFAULTS[field])
    try:
        value = kind(match.group(2)) if kind is int else float(match.group(2))
    except ValueError:
        raise ConfigError(f"{label} must be a {'whole ' if kind is int else ''}number.") from None
    if field == "batch_size" and value not in BATCH_SIZES:
        raise ConfigError(f"{label} must be one of {', '.join(map(str, BATCH_SIZES))}.")
    if field in FORM_RANGES:
        low, high = FORM_RANGES[field]
        if not low <= value <= high:
            raise ConfigError(f"{label} must be between {low:g} and {high:g}.")
    return {field: value}


def _with_stack(config: TrainConfig, model_args: dict[str, Any], ignored: list[str]) -> TrainConfig:
    """The custom model with the link's stack and input size; the default stack, saying why, when it does not
    parse, is out of the form's ranges or does not fit its input."""
    text = model_args.get("layers")
    input_size = model_args.get("input_size", 28)
    layers = [dict(spec) for spec in DEFAULT_LAYERS]
    if text is not None:
        try:
            layers = parse_stack(text)
            stack_size(layers, input_size)
        except (ModelSpecError, ConfigError) as e:
            ignored.append(f"the layer stack `L{text}`: {e} The default stack is used instead.")
            layers = [dict(spec) for spec in DEFAULT_LAYERS]
    return dataclasses.replace(config, model_args={"layers": layers, "input_size": input_size})


def parse_stack(text: str) -> list[dict[str, Any]]:
    """'c8k3p1_relu_max2_fc64' → layer specs (the Train form's, every field written); ConfigError naming the first
    layer that is unknown or out of the form's range."""
    parts = text.split("_") if text else []
    if len(parts) > MAX_LAYERS:
        raise ConfigError(f"it has {len(parts)} layers; a link holds at most {MAX_LAYERS}.")
    layers = []
    for i, part in enumerate(parts, 1):
        spec = _layer_spec(part)
        if spec is None:
            raise ConfigError(f"layer {i}, `{part}`, is not a layer this version knows.")
        for field, (low, high) in LAYER_RANGES.get(spec["type"], {}).items():
            if not low <= spec[field] <= high:
                unit, scale = ("%", 100) if spec["type"] == "dropout" else ("", 1)  # a dropout token is in percent
                raise ConfigError(f"layer {i}, `{part}`: its {field} must be between {low * scale:g}{unit} and "
                                  f"{high * scale:g}{unit}.")
        layers.append(spec)
    return layers


def _layer_spec(part: str) -> dict[str, Any] | None:
    if part in ACTIVATIONS:
        return {"type": "act", "fn": part}
    if part == "bn":
        return {"type": "batchnorm"}
    for kind, pattern in _LAYER.items():
        match = pattern.match(part)
        if match is None:
            continue
        if kind == "conv":
            g = match.groupdict()
            return {"type": "conv", "channels": int(g["channels"]), "kernel": int(g["kernel"]),
                    "stride": int(g["stride"] or 1), "padding": int(g["padding"] or 0)}
        if kind == "pool":
            return {"type": "pool", "mode": match["mode"], "size": int(match["size"])}
        if kind == "dropout":
            try:
                return {"type": "dropout", "p": round(float(match["p"]) / 100, 9)}
            except ValueError:
                return None
        return {"type": "linear", "width": int(match["width"])}
    return None


def stack_size(layers: list[dict[str, Any]], input_size: int = 28) -> int:
    """The parameter count of a custom stack, built on the meta device (no memory is allocated): ModelSpecError
    when it does not fit its input, ConfigError above MAX_PARAMETERS."""
    import torch

    with torch.device("meta"):
        parameters = count_parameters(create_model("custom", layers=layers, input_size=input_size))
    if parameters > MAX_PARAMETERS:
        raise ConfigError(f"it has {parameters:,} parameters; a link builds at most {MAX_PARAMETERS:,}.")
    return parameters
