"""The training form: preset, model (or a custom layer stack), hyperparameters → a TrainConfig; and where the Train
page puts it."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cnn_core.config import BATCH_SIZES, DEVICES, OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from cnn_core.data import DATASETS
from cnn_core.models import MODELS, ModelSpecError, count_parameters, create_model, layer_table, takes
from cnn_core.models.custom import ACTIVATIONS, DEFAULT_LAYERS, LAYER_TYPES, describe
from cnn_core.presets import DEFAULT_PRESET, PRESETS

TRAIN_BUTTON = "train_start"  # the Train button's key
SETTINGS = "train_settings"  # the key of the expander a phone folds the form into
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
    cfg = PRESETS[st.session_state["preset"]].config
    for f in dataclasses.fields(TrainConfig):
        st.session_state[_key(f.name)] = getattr(cfg, f.name)
    st.session_state[_key("softmax")] = bool(cfg.model_args.get("softmax"))


def _init_state() -> None:
    if "preset" not in st.session_state:
        st.session_state["preset"] = DEFAULT_PRESET
        apply_preset()
    st.session_state.setdefault("layers", [dict(layer) for layer in DEFAULT_LAYERS])


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
    if kind == "conv":
        layer["channels"] = cols[0].number_input("channels", 1, 256, layer["channels"], key=f"l{i}_ch")
        layer["kernel"] = cols[1].number_input("kernel", 1, 11, layer["kernel"], key=f"l{i}_k")
        layer["stride"] = cols[2].number_input("stride", 1, 4, layer["stride"], key=f"l{i}_s")
        layer["padding"] = cols[3].number_input("padding", 0, 5, layer["padding"], key=f"l{i}_p")
    elif kind == "pool":
        layer["mode"] = cols[0].selectbox("mode", ("max", "avg"), ("max", "avg").index(layer["mode"]), key=f"l{i}_m")
        layer["size"] = cols[1].number_input("size", 1, 4, layer["size"], key=f"l{i}_sz")
    elif kind == "act":
        names = list(ACTIVATIONS)
        layer["fn"] = cols[0].selectbox("function", names, names.index(layer["fn"]), key=f"l{i}_fn")
    elif kind == "dropout":
        layer["p"] = cols[0].number_input("p", 0.0, 0.9, float(layer["p"]), 0.05, key=f"l{i}_dp")
    elif kind == "linear":
        layer["width"] = cols[0].number_input("width", 1, 4096, layer["width"], key=f"l{i}_w")


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
    epochs = c2.number_input("Epochs", 1, 100, key=_key("epochs"))
    c1, c2, c3 = st.columns(3)
    batch_size = c1.selectbox("Batch size", BATCH_SIZES, key=_key("batch_size"))
    optimizer = c2.selectbox("Optimizer", OPTIMIZERS, key=_key("optimizer"))
    lr = c3.number_input("Learning rate", min_value=0.0, max_value=10.0, step=1e-4, format="%.5f", key=_key("lr"))
    c1, c2 = st.columns(2)
    schedule = c1.selectbox("LR schedule", SCHEDULES, key=_key("schedule"))
    augment = c2.checkbox("Augment (shift, rotate, scale)", key=_key("augment"))
    normalize = c1.checkbox("Normalize inputs (the data set's mean and std)", key=_key("normalize"),
                            help="Off: pixels reach the model in [0, 1], as transforms.ToTensor() alone gives them.")
    with st.expander("More settings"):
        c1, c2, c3 = st.columns(3)
        weight_decay = c1.number_input("Weight decay", 0.0, 1.0, format="%.5f", key=_key("weight_decay"))
        momentum = c2.number_input("Momentum", 0.0, 0.99, key=_key("momentum"))
        label_smoothing = c3.number_input("Label smoothing", 0.0, 0.5, key=_key("label_smoothing"))
        patience = c1.number_input("Early-stop patience", 0, 50, key=_key("patience"), help="0 turns it off")
        seed = c2.number_input("Seed", 0, 2**31 - 1, key=_key("seed"))
        device = c3.selectbox("Device", DEVICES, key=_key("device"))
        val_size = c1.number_input("Validation images", 0, 30000, step=500, key=_key("val_size"))
        metrics_every = c2.number_input("Report every N steps", 1, 1000, key=_key("metrics_every"))
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
