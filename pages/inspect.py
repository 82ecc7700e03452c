"""Inspect: a trained model's kernels, the feature maps of a test image, the confusion matrix and its mistakes."""

import streamlit as st

from cnn_core.data import DataError, load_splits
from ui.inspect_tabs import confusion_tab, feature_maps_tab, kernels_tab
from ui.model_picker import pick_checkpoint
from ui.navigation import through_app

through_app()
st.title("🔬 Inspect a model")
ckpt = pick_checkpoint(epoch_slider=True)
tab_kernels, tab_maps, tab_confusion = st.tabs(["Kernels", "Feature maps", "Confusion matrix and mistakes"])
with tab_kernels:
    kernels_tab(ckpt)  # needs no data: shown even when the data set is missing
try:
    test = load_splits(ckpt.info.name)["test"]
except DataError as e:
    st.error(str(e))
    st.stop()
with tab_maps:
    feature_maps_tab(ckpt, test)
with tab_confusion:
    confusion_tab(ckpt, test)
