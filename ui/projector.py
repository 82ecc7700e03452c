"""The projector view of a class (the Class board with ?view=projector): big type for the back of the room, no
sidebar, the run the teacher put on the projector (live curves while it trains, its kernels forming epoch by
epoch, its confusion matrix once it ended), then the class board. It follows the teacher's pick within a second or
two (the board's stream says when the projected run changed: ui/class_board.js)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn_core.classroom import Classroom
from cnn_core.data import data_dir
from cnn_core.inspect import confusion_matrix, conv_layers, kernels
from cnn_core.plots.inspect import confusion_figure, kernel_figure
from cnn_core.plots.training import curves_figure
from ui.inspect_tabs import test_predictions
from ui.jobs import job_manager
from ui.live_chart import live_curves
from ui.model_picker import cached_checkpoint

CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"] {display: none;}
.block-container {max-width: 100% !important; padding-top: 1rem !important;}
h1 {font-size: 3.2rem !important;} h2, h3 {font-size: 2.4rem !important;}
.stMarkdown p, .stCaption p, [data-testid="stDataFrame"] {font-size: 1.6rem !important;}
</style>
"""


def enter() -> None:
    """Big type, no sidebar."""
    st.html(CSS)


def projected_run(room: Classroom) -> None:
    run_id = room.projected
    if run_id is None:
        return
    try:
        run = job_manager().store.read(run_id)
    except (KeyError, OSError, ValueError):
        return
    c = run.config
    st.header(f"📽️ {run.name or '?'} · {c.model} · lr {c.lr:g} · batch {c.batch_size}")
    if run.state.is_active:
        live_curves([run_id], key=f"projector_{run_id}", epochs=c.epochs)
    elif run.history:
        st.plotly_chart(curves_figure(run.history, height=560), key=f"projector_curves_{run_id}")
    forming(run_id)


@st.fragment(run_every=2.0)
def forming(run_id: str) -> None:
    """The first conv layer's kernels of the latest checkpoint (they form epoch by epoch); once the run has
    ended, its confusion matrix beside them."""
    try:
        run = job_manager().store.read(run_id)
    except (KeyError, OSError, ValueError):
        return
    path = run.checkpoint
    if path is None:
        return
    ckpt = cached_checkpoint(path)
    left, right = st.columns(2)
    layers = conv_layers(ckpt.model)
    if layers:
        left.plotly_chart(kernel_figure(kernels(ckpt.model, layers[0]), layers[0], pixel=26),
                          key=f"projector_kernels_{run_id}")
    if not run.state.is_active:
        labels, preds, _ = test_predictions(str(path), Path(path).stat().st_mtime_ns, str(data_dir()))
        classes = list(ckpt.info.classes)
        right.plotly_chart(confusion_figure(confusion_matrix(labels, preds, len(classes)), classes),
                           key=f"projector_confusion_{run_id}")
