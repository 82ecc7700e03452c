"""The Draw page's latency floor: the same canvas, the pretrained LeNet, the prediction, and nothing else.

Served by tests/e2e (fixture `floor_app`): what one canvas update costs before any of the Draw page's views.
"""

import os
from pathlib import Path

import streamlit as st
import torch
from streamlit_drawable_canvas import st_canvas

from cnn_core.checkpoints import Checkpoint, load_checkpoint
from cnn_core.drawing import preprocess

torch.set_num_threads(1)  # one 28x28 image: extra threads only wait for a core


@st.cache_resource
def pretrained() -> Checkpoint:
    return load_checkpoint(Path(os.environ.get("CNN_CHECKPOINTS_DIR", "checkpoints")) / "lenet5_bn-mnist.safetensors")


ckpt = pretrained()
version = st.session_state.setdefault("canvas_version", 0) + st.button("Clear the canvas")
st.session_state["canvas_version"] = version
canvas = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", width=280, height=280,
                   update_streamlit=True, return_image_data=True, key=f"canvas-{version}")
try:
    if canvas.image_data is None:
        raise ValueError("nothing drawn yet")
    x = preprocess(canvas.image_data, ckpt.model.input_size, ckpt.info.mean, ckpt.info.std).tensor  # (1, 1, S, S)
except ValueError:
    st.info("Draw a digit")
    st.stop()
with torch.inference_mode():
    st.metric("Prediction", ckpt.info.classes[int(ckpt.model(x).argmax())])
