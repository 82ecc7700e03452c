"""Inspect: a trained model's kernels, the feature maps of a test image, the confusion matrix and its mistakes."""

import streamlit as st

from cnn_core.data import DATASETS, DataError, load_splits
from ui.inspect_tabs import confusion_tab, feature_maps_tab, kernels_tab
from ui.model_picker import bring_a_model, pick_checkpoint
from ui.navigation import through_app

through_app()
st.title("🔬 Inspect a model")
ckpt = pick_checkpoint(epoch_slider=True)
bring_a_model()
tab_kernels, tab_maps, tab_confusion = st.tabs(["Kernels", "Feature maps", "Confusion matrix and mistakes"])
with tab_kernels:
    kernels_tab(ckpt)  # needs no data: shown even when the data set is missing
if ckpt.info.name not in DATASETS:  # classes of one's own (Your examples): no test set to read
    st.info(f"This model reads classes of your own ({', '.join(ckpt.info.classes)}): there is no test set for "
            "feature maps and mistakes. Its kernels are in the first tab; draw for it on the **Draw** page.")
    st.stop()
try:
    test = load_splits(ckpt.info.name)["test"]
except DataError as e:
    st.error(str(e))
    st.stop()
with tab_maps:
    feature_maps_tab(ckpt, test)
with tab_confusion:
    confusion_tab(ckpt, test)
