"""The Draw page's places (a desktop's two columns, or a phone's one column with the reading right under the
canvas) and its reading of a drawing."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cnn_core.live import DrawingAnalysis


class DrawLayout(NamedTuple):
    """Where each part of the Draw page goes."""

    pen: DeltaGenerator  # the stroke width
    clear: DeltaGenerator  # "Clear the canvas"
    canvas: DeltaGenerator
    reading: DeltaGenerator  # the prediction (or the hint to draw)
    probs: DeltaGenerator  # all the probabilities
    share: DeltaGenerator  # "Share with the class"
    steps: DeltaGenerator  # what the model sees
    layer: DeltaGenerator  # the layer picker …
    maps: DeltaGenerator  # … and that layer's feature maps
    method: DeltaGenerator  # the saliency picker …
    saliency: DeltaGenerator  # … and the saliency map
    web: DeltaGenerator  # the model as a stand-alone web page
    robust: DeltaGenerator  # how robust the prediction is (ui/robustness_view.py)


def draw_layout(phone: bool) -> DrawLayout:
    """A desktop: the pen, the canvas and the pickers on the left, the reading and probabilities on the right,
    then the model's view, feature maps and saliency side by side. A phone: the canvas, right under it the
    reading, Clear and Share in reach of a thumb, then the rest, each picker right above the chart it sets; the
    model as a web page last (on a desktop, under the pickers). How robust the prediction is comes after the
    saliency map, across the whole width on a desktop."""
    if not phone:
        left, right = st.columns([2, 3])
        pen, clear, canvas, layer, method, web = (left.container() for _ in range(6))
        reading, probs, share = (right.container() for _ in range(3))
        steps = st.container()
        maps, saliency = st.columns(2)
        robust = st.container()
        return DrawLayout(pen, clear, canvas, reading, probs, share, steps, layer, maps, method, saliency, web, robust)
    canvas, reading = st.container(), st.container()
    actions = st.container(horizontal=True, gap="small")
    pen, probs, steps, layer, maps, method, saliency, robust, web = (st.container() for _ in range(9))
    return DrawLayout(pen, actions, canvas, reading, probs, actions, steps, layer, maps, method, saliency, web, robust)


def show_reading(result: DrawingAnalysis, classes: list[str], phone: bool) -> None:
    """The prediction with how sure the model is; on a phone, beside it the three most probable classes as bars,
    so that the reading fits in the few lines under the canvas."""
    if not phone:
        timing = " · ".join(f"{stage} {ms:.1f}" for stage, ms in result.timings.items())
        st.metric("Prediction", classes[result.prediction], help="the class with the highest probability")
        st.caption(f"{result.confidence:.0%} sure · computed in {result.total_ms:.1f} ms ({timing})")
        return
    row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
    row.metric("Prediction", classes[result.prediction], width="content")
    bars = row.container(gap=None)
    for index, p in result.top(3):
        bars.progress(p, text=f"**{classes[index]}** · {p:.0%}")
    st.caption(f"computed in {result.total_ms:.1f} ms")
