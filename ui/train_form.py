"""The training form: preset, model (or a custom layer stack), hyperparameters → a TrainConfig; and where the Train
page puts it."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cnn_core.config import BATCH_SIZES, DEVICES, FORM_RANGES, OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from cnn_core.data import DATASETS
from cnn_core.models import MODELS, ModelSpecError, count_parameters, create_model, layer_table, takes
from cnn_core.models.custom import ACTIVATIONS, DEFAULT_LAYERS, LAYER_RANGES, LAYER_TYPES, describe
from cnn_core.presets import DEFAULT_PRESET, PRESETS, recipe_of
from cnn_core.setup_link import PARAM, decode, encode

TRAIN_BUTTON = "train_start"  # the Train button's key
SETTINGS = "train_settings"  # the key of the expander a phone folds the form into
LINK = "setup_link"  # st.session_state: (the ?setup= text applied to the form, what of it was left out)
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "conv": {"channels": 8, "kernel": 3, "stride": 1, "padding": 1},
    "pool": {"mode": "max", "size": 2},
    "act": {"fn": "relu"},
    "batchnorm": {},
    "dropout": {"p": 0.25},
    "linear": {"width": 64},
}


def _key(name: str) -> str:
    return f"cfg_{name}"


def apply_preset() -> None:
    """Copy the chosen preset's config into the form's widgets (an on_change callback)."""
    _fill(PRESETS[st.session_state["preset"]].config)


def _fill(cfg: TrainConfig) -> None:
    """Write a config into the form's widgets; a custom model's stack and input size into the layer editor."""
    for f in dataclasses.fields(TrainConfig):
        st.session_state[_key(f.name)] = getattr(cfg, f.name)
    st.session_state[_key("softmax")] = bool(cfg.model_args.get("softmax"))
    if cfg.model == "custom":
        st.session_state["layers"] = [dict(layer) for layer in cfg.model_args.get("layers", DEFAULT_LAYERS)]
        st.session_state["custom_input_size"] = cfg.model_args.get("input_size", 28)
        for key in [k for k in st.session_state if re.fullmatch(r"l\d+_[a-z]+", str(k))]:
            del st.session_state[key]  # the layer widgets show the new stack's values


def _init_state() -> None:
    if "preset" not in st.session_state:
        st.session_state["preset"] = DEFAULT_PRESET
        apply_preset()
    st.session_state.setdefault("layers", [dict(layer) for layer in DEFAULT_LAYERS])
    text = st.query_params.get(PARAM)
    if text is not None and st.session_state.get(LINK, (None,))[0] != text:  # a link's setup, applied once
        config, ignored = decode(text)
        _fill(config)
        st.session_state["preset"] = recipe_of(config) or st.session_state["preset"]
        st.session_state[LINK] = (text, ignored)


def _link_notice() -> None:
    """What the form took from the link it was opened with, and what it left out."""
    text, ignored = st.session_state.get(LINK, (None, []))
    if text is None or st.query_params.get(PARAM) != text:
        return
    if ignored:
        st.warning("The form holds this link's setup, except what it could not use: " + " ".join(
            item if item.endswith(".") else item + "." for item in ignored), icon="⚠️")
    else:
        st.caption("🔗 The form holds the setup from the link.")


def setup_url(config: TrainConfig) -> str:
    """The link that opens the Train page with this config in the form (this server's address when known)."""
    base = st.context.url or ""
    return f"{base if base.endswith('/train') else '/train'}?{PARAM}={encode(config)}"


def share_setup(config: TrainConfig) -> None:
    """'Copy this setup': the link to this form, short enough to read aloud or put on a slide."""
    st.caption("🔗 **Copy this setup**: the link opens the Train page with this form filled in (model, every "
               "setting, data set).")
    st.code(setup_url(config), language=None, wrap_lines=True)


def _move(i: int, delta: int) -> None:
    layers = st.session_state["layers"]
    j = i + delta
    if 0 <= j < len(layers):
        layers[i], layers[j] = layers[j], layers[i]


def _remove(i: int) -> None:
    st.session_state["layers"].pop(i)


def _add(kind: str) -> None:
    st.session_state["layers"].append({"type": kind, **LAYER_DEFAULTS[kind]})


def _layer_fields(i: int, layer: dict[str, Any], cols) -> None:
    """The widgets for one layer's parameters, written back into the layer dict."""
    kind = layer["type"]
    bounds = LAYER_RANGES.get(kind, {})
    if kind == "conv":
        layer["channels"] = cols[0].number_input("channels", *bounds["channels"], layer["channels"], key=f"l{i}_ch")
        layer["kernel"] = cols[1].number_input("kernel", *bounds["kernel"], layer["kernel"], key=f"l{i}_k")
        layer["stride"] = cols[2].number_input("stride", *bounds["stride"], layer["stride"], key=f"l{i}_s")
        layer["padding"] = cols[3].number_input("padding", *bounds["padding"], layer["padding"], key=f"l{i}_p")
    elif kind == "pool":
        layer["mode"] = cols[0].selectbox("mode", ("max", "avg"), ("max", "avg").index(layer["mode"]), key=f"l{i}_m")
        layer["size"] = cols[1].number_input("size", *bounds["size"], layer["size"], key=f"l{i}_sz")
    elif kind == "act":
        names = list(ACTIVATIONS)
        layer["fn"] = cols[0].selectbox("function", names, names.index(layer["fn"]), key=f"l{i}_fn")
    elif kind == "dropout":
        layer["p"] = cols[0].number_input("p", *bounds["p"], float(layer["p"]), 0.05, key=f"l{i}_dp")
    elif kind == "linear":
        layer["width"] = cols[0].number_input("width", *bounds["width"], layer["width"], key=f"l{i}_w")


def layer_editor() -> dict[str, Any] | None:
    """Edit st.session_state['layers']; return the custom model's args, or None when the stack is broken."""
    layers = st.session_state["layers"]
    input_size = st.radio("input size", (28, 32), horizontal=True, key="custom_input_size")
    slots = []
    for i, layer in enumerate(layers):
        with st.container(border=True):
            head = st.columns([3, 1, 1, 1])
            title = head[0].empty()
            head[1].button("↑", key=f"l{i}_up", on_click=_move, args=(i, -1), disabled=i == 0, help="move up")
            head[2].button("↓", key=f"l{i}_down", on_click=_move, args=(i, 1), disabled=i == len(layers) - 1,
                           help="move down")
            head[3].button("✕", key=f"l{i}_del", on_click=_remove, args=(i,), help="remove")
            _layer_fields(i, layer, st.columns(4))
            title.markdown(f"**{i + 1}. {describe(layer)}**")
            slots.append(st.empty())
    try:  # checked after the widgets wrote their values, shown next to the layer that breaks
        create_model("custom", layers=layers, input_size=input_size)
        error = None
    except ModelSpecError as e:
        error = e
        slots[e.index].error(str(e), icon="⚠️")
    add = st.columns([2, 1])
    kind = add[0].selectbox("new layer", LAYER_TYPES, key="new_layer_type", label_visibility="collapsed")
    add[1].button("Add layer", on_click=_add, args=(kind,))
    st.caption("A flatten is inserted before the first linear layer; the final linear layer to 10 classes is added "
               "for you.")
    return None if error else {"layers": [dict(layer) for layer in layers], "input_size": input_size}


def model_summary(name: str, args: dict[str, Any]) -> None:
    """Description, parameter count and per-layer output shapes of the chosen model."""
    model = create_model(name, **args)
    st.caption(f"{MODELS[name].description} · from: {MODELS[name].source}")
    st.markdown(f"**{count_parameters(model):,} parameters** · input {model.input_size}x{model.input_size}")
    with st.expander("Layers and output shapes"):
        rows = [{**r, "output shape": " x ".join(map(str, r["output shape"]))} for r in layer_table(model)]
        st.dataframe(rows, hide_index=True, width="stretch")


def train_form() -> TrainConfig | None:
    """All inputs of a run; returns a valid TrainConfig, or None after showing what is wrong."""
    _init_state()
    _link_notice()
    st.selectbox("Recipe", list(PRESETS), key="preset", on_change=apply_preset,
                 help="Each tutorial's recipe; its reported accuracy appears next to your run.")
    st.caption(PRESETS[st.session_state["preset"]].note)
    model = st.selectbox("Model", list(MODELS), key=_key("model"))
    model_args: dict[str, Any] | None = {}
    if model == "custom":
        model_args = layer_editor()
    elif takes(model, "softmax") and st.checkbox(
            "End the model in a softmax (as the course notebook does)", key=_key("softmax"),
            help="CrossEntropyLoss applies softmax itself: a softmax layer before it applies it twice, which "
                 "shrinks the gradients. Kept to show the notebook's flaw."):
        model_args = {"softmax": True}
    if model_args is not None:
        model_summary(model, model_args)
    c1, c2 = st.columns(2)
    dataset = c1.selectbox("Dataset", list(DATASETS), key=_key("dataset"))
    epochs = c2.number_input("Epochs", *FORM_RANGES["epochs"], key=_key("epochs"))
    c1, c2, c3 = st.columns(3)
    batch_size = c1.selectbox("Batch size", BATCH_SIZES, key=_key("batch_size"))
    optimizer = c2.selectbox("Optimizer", OPTIMIZERS, key=_key("optimizer"))
    lr = c3.number_input("Learning rate", *FORM_RANGES["lr"], step=1e-4, format="%.5f", key=_key("lr"))
    c1, c2 = st.columns(2)
    schedule = c1.selectbox("LR schedule", SCHEDULES, key=_key("schedule"))
    augment = c2.checkbox("Augment (shift, rotate, scale)", key=_key("augment"))
    normalize = c1.checkbox("Normalize inputs (the data set's mean and std)", key=_key("normalize"),
                            help="Off: pixels reach the model in [0, 1], as transforms.ToTensor() alone gives them.")
    with st.expander("More settings"):
        c1, c2, c3 = st.columns(3)
        weight_decay = c1.number_input("Weight decay", *FORM_RANGES["weight_decay"], format="%.5f", key=_key("weight_decay"))
        momentum = c2.number_input("Momentum", *FORM_RANGES["momentum"], key=_key("momentum"))
        label_smoothing = c3.number_input("Label smoothing", *FORM_RANGES["label_smoothing"], key=_key("label_smoothing"))
        patience = c1.number_input("Early-stop patience", *FORM_RANGES["patience"], key=_key("patience"), help="0 turns it off")
        seed = c2.number_input("Seed", *FORM_RANGES["seed"], key=_key("seed"))
        device = c3.selectbox("Device", DEVICES, key=_key("device"))
        val_size = c1.number_input("Validation images", *FORM_RANGES["val_size"], step=500, key=_key("val_size"))
        metrics_every = c2.number_input("Report every N steps", *FORM_RANGES["metrics_every"], key=_key("metrics_every"))
    if model_args is None:
        return None
    config = TrainConfig(model=model, model_args=model_args, dataset=dataset, normalize=bool(normalize),
                         epochs=int(epochs),
                         batch_size=int(batch_size), optimizer=optimizer, lr=float(lr), momentum=float(momentum),
                         weight_decay=float(weight_decay), schedule=schedule, augment=bool(augment),
                         patience=int(patience), label_smoothing=float(label_smoothing), seed=int(seed),
                         device=device, val_size=int(val_size), metrics_every=int(metrics_every))
    try:
        return config.validate()
    except ConfigError as e:
        st.error(str(e))
        return None


def train_layout(phone: bool, run_shown: bool) -> tuple[DeltaGenerator, DeltaGenerator]:
    """(form, run): a desktop's two columns, the form on the left; a phone's one column, the run first and, once
    there is one, the form folded away under it. Pressing Train folds it (a click is known before its button is
    drawn), and folds it again when the student opened it for another run."""
    if not phone:
        form, run = st.columns([1, 1.5], gap="large")
        return form, run
    run = st.container()
    started = bool(st.session_state.get(TRAIN_BUTTON))
    if started:
        st.session_state[SETTINGS] = False
    if started or run_shown:
        return st.expander("Train settings", icon="⚙️", key=SETTINGS, on_change="rerun"), run
    return st.container(), run
