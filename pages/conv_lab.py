"""Convolution lab: pick an image and a kernel; convolve, check by hand, use many channels, pool, learn a kernel."""

import streamlit as st

from cnn_core import explore
from ui.conv_lab import (Convolution, convolve_tab, hand_vs_torch_tab, learn_kernel_tab, many_channels_tab,
                         pick_geometry, pick_image, pick_kernel, pooling_tab, sentence)
from ui.navigation import through_app

through_app()
st.title("🧮 Convolution lab")
image_col, kernel_col, geometry_col = st.columns(3)
with image_col:
    image = pick_image()
with kernel_col:
    kernel = pick_kernel()
with geometry_col:
    padding, stride, dilation = pick_geometry()
try:
    lesson = explore.convolve_with_formula(image, kernel, padding, stride, dilation)
except ValueError as e:
    st.error(sentence(e))
    st.stop()
chosen = Convolution(image, kernel, padding, stride, dilation, lesson)

TABS = {"Convolve": lambda: convolve_tab(chosen), "By hand vs F.conv2d": lambda: hand_vs_torch_tab(chosen),
        "Many channels": many_channels_tab, "Pooling": lambda: pooling_tab(chosen), "Learn a kernel": learn_kernel_tab}
for tab, show in zip(st.tabs(list(TABS), key="lesson", on_change="rerun"), TABS.values(), strict=True):
    if tab.open:  # only the open tab computes
        with tab:
            show()

st.page_link("pages/train.py", label="Next: train a CNN that learns its own kernels (pick a lesson recipe)",
             icon="🏋️")
