"""The Draw page's "How robust is it?": sliders that shift, rotate, scale, thicken or thin and noise the drawing with
the model's reading of the result, and the class probabilities as one transform sweeps its range
(cnn_core/robustness.py). Computed only while the panel is open: a stroke with it closed costs nothing more."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st
from torch import nn

from cnn_core.data import DatasetInfo
from cnn_core.plots.inspect import image_strip, sweep_figure
from cnn_core.robustness import SWEEPS, Perturbation, probabilities, sweep
from ui.viewport import plotly_chart

OPEN = "robust_open"  # the panel's open state
SLIDERS = {  # Perturbation field → (the slider's label, its SWEEPS entry)
    "shift_x": ("Shift right (px)", "shift right"),
    "shift_y": ("Shift down (px)", "shift down"),
    "rotate": ("Rotate (degrees, counter-clockwise)", "rotate"),
    "scale": ("Scale (×)", "scale"),
    "thickness": ("Thicker (+) or thinner (−), 3x3 steps", "thickness"),
    "noise": ("Noise (σ)", "noise"),
}
SWEEP_IMAGES = 7  # the sweep's drawings shown under its chart


def _slider(where, field: str) -> float:
    label, name = SLIDERS[field]
    spec = SWEEPS[name]
    default = getattr(Perturbation(), field)
    kind = type(default)
    return where.slider(label, kind(spec.low), kind(spec.high), default, kind(spec.step), key=f"robust_{field}")


def robustness_panel(model: nn.Module, info: DatasetInfo, centered: np.ndarray, classes: Sequence[str],
                     phone: bool) -> None:
    """The panel for the drawing as centred in 28x28 (`DrawingSteps.centered`)."""
    panel = st.expander("How robust is it?", icon="🧪", key=OPEN, on_change="rerun")
    if not panel.open:
        return
    with panel:
        st.caption("Change your drawing the way a camera, a pen or a hand would, and see whether the model still "
                   "reads it. Pixels are MNIST's (the digit fills about 20 of its 28).")
        cols = st.columns(3)  # shifts · rotate and scale · thickness and noise (a phone stacks them in this order)
        values = {field: _slider(cols[i // 2], field) for i, field in enumerate(SLIDERS)}
        changed = Perturbation(**values)
        images, probs = probabilities(model, info, centered, [Perturbation(), changed])  # as drawn, changed
        before, after = int(probs[0].argmax()), int(probs[1].argmax())
        shown, reading = st.columns([1, 2], vertical_alignment="center")
        with shown:
            plotly_chart(image_strip(list(images), ["as drawn", "changed"], ncols=2, cell=110), key="robust_images")
        with reading:
            st.metric("The model reads", str(classes[after]),
                      delta=None if after == before else f"was {classes[before]}", delta_color="inverse")
            st.caption(f"{probs[1, after]:.0%} sure (as drawn: {probs[0, before]:.0%})" if after == before else
                       f"{probs[1, after]:.0%} sure; {classes[before]}, read as drawn at {probs[0, before]:.0%}, "
                       f"is now {probs[1, before]:.0%}")
        name = st.selectbox("Sweep one change over its whole range", list(SWEEPS), key="robust_sweep")
        spec = SWEEPS[name]
        xs, swept, sweep_probs = sweep(model, info, centered, name)
        label = f"{name} ({spec.unit})"
        plotly_chart(sweep_figure(xs, sweep_probs, classes, label, at=values[spec.field], height=280 if phone else 320),
                     key="robust_sweep_chart")
        picks = np.linspace(0, len(xs) - 1, SWEEP_IMAGES).round().astype(int)
        titles = [f"{xs[i]:g} → {classes[int(sweep_probs[i].argmax())]}" for i in picks]
        plotly_chart(image_strip([swept[i] for i in picks], titles, ncols=4 if phone else SWEEP_IMAGES, cell=90),
                     key="robust_sweep_images")
