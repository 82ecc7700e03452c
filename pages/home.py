"""Home: what CNN studio is and where to start."""

import streamlit as st

from cnn_core.models import MODELS
from ui.navigation import through_app

through_app()
st.title("🧠 CNN studio")
st.markdown(
    "Learn and teach **convolutional neural networks** on handwritten digits. "
    "Pick an architecture, train it while you watch the curves, look inside at its kernels and feature maps, "
    "then draw a digit and see your own model read it."
)
cols = st.columns(3)
cols[0].markdown("#### 1 · Learn\nImages as tensors, convolution by hand, kernels, padding, stride and pooling.")
cols[1].markdown("#### 2 · Build\nTrain a classic model or your own layer stack, live curves, compare runs.")
cols[2].markdown("#### 3 · Explore\nKernels, feature maps, the confusion matrix, and real-time drawing.")
cols[0].page_link("pages/data.py", label="Start here: the data", icon="🔢")
cols[1].page_link("pages/train.py", label="Train a model", icon="🏋️")
cols[2].page_link("pages/draw.py", label="Draw a digit", icon="✏️")
st.subheader("Models you can train")
st.dataframe(
    [{"model": name, "from": spec.source, "what it is": spec.description} for name, spec in MODELS.items()],
    hide_index=True,
    width="stretch",
)
