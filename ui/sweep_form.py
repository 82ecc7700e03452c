"""The sweep form: a grid of learning rates × batch sizes × models over the training form's config."""

from __future__ import annotations

import streamlit as st

from cnn_core.config import BATCH_SIZES, ConfigError, TrainConfig
from cnn_core.models import MODELS
from cnn_core.runs.sweep import grid, label, new_group, parse_axis, varying


def sweep_form(base: TrainConfig) -> tuple[list[TrainConfig], str] | None:
    """The runs of a grid over `base` and a new group name for them; None after showing what is wrong."""
    st.caption("Every combination of the values below, with the rest of the form as it is, trains as one group; "
               "the Runs page compares the group in one chart and ranks it by test accuracy.")
    lrs = st.text_input("Learning rates", f"{base.lr:g}, {base.lr * 3:g}", key="sweep_lr",
                        help="Comma-separated, e.g. 0.001, 0.003, 0.01")
    c1, c2 = st.columns(2)
    batches = c1.multiselect("Batch sizes", BATCH_SIZES, default=[base.batch_size], key="sweep_batch")
    models = c2.multiselect("Models", [m for m in MODELS if m != "custom"] + (["custom"] if base.model == "custom"
                                                                             else []),
                            default=[base.model], key="sweep_model")
    try:
        configs = grid(base, {"lr": parse_axis(f"lr={lrs}")[1], "batch_size": batches, "model": models})
    except ConfigError as e:
        st.error(str(e))
        return None
    fields = varying(configs) or ["lr"]
    st.caption(f"**{len(configs)} runs**: " + "; ".join(label(c, fields) for c in configs[:8])
               + (" …" if len(configs) > 8 else ""))
    return configs, new_group()
