"""Data: MNIST and Fashion-MNIST up close: samples, class counts, pixel statistics, one image as a tensor."""

from pathlib import Path

import streamlit as st

from cnn_core import explore
from cnn_core.data import DATASETS, DataError, data_dir, load_splits
from cnn_core.plots import lessons
from cnn_core.plots.common import image_figure
from ui.navigation import through_app
from ui.viewport import plotly_chart

through_app()
TITLES = {"mnist": "MNIST (handwritten digits)", "fashion-mnist": "Fashion-MNIST (clothing)"}


@st.cache_data(show_spinner="Counting pixels …")
def overview(name: str, folder: str) -> explore.DataOverview:
    """Statistics of one data set; `folder` is part of the cache key, so another data dir is recomputed."""
    return explore.data_overview(load_splits(name, Path(folder)), len(DATASETS[name].classes))


st.title("🔢 Data")
name = st.radio("Data set", list(DATASETS), format_func=TITLES.get, horizontal=True)
info = DATASETS[name]
st.caption("Classes: " + " · ".join(f"**{k}** {c}" if c != str(k) else f"**{k}**" for k, c in enumerate(info.classes)))
try:
    train = load_splits(name)["train"]
except DataError as e:
    st.error(str(e))
    st.stop()
stats = overview(name, str(data_dir()))  # the same folder string as load_splits: one copy in memory

st.subheader("Samples of each class")
per_class = st.slider("Samples per class", 1, 16, 8)
samples = explore.samples_per_class(train.images, train.labels, len(info.classes), per_class) / 255.0
plotly_chart(lessons.mosaic(samples, row_labels=info.classes))

left, right = st.columns(2)
left.subheader("Images per class")
with left:
    plotly_chart(lessons.class_count_bars(stats.counts, info.classes))
right.subheader("Pixel intensities (training set)")
log_y = right.toggle("Log scale", value=True, help="Most pixels are background (0); a log scale shows the rest.")
with right:
    plotly_chart(lessons.pixel_histogram_figure(stats.histogram, log_y=log_y))

st.subheader("The mean image of each class")
plotly_chart(lessons.mosaic(stats.mean_images[None], col_labels=info.classes, cell=110))

st.subheader("Normalization constants")
cols = st.columns(3)
cols[0].metric("Mean of all training pixels / 255", f"{stats.stats.mean:.4f}")
cols[1].metric("Std of all training pixels / 255", f"{stats.stats.std:.4f}")
cols[2].metric("Constants the models use (mean / std)", f"{info.mean:.4f} / {info.std:.4f}")
st.markdown(
    f"Computed live from {stats.stats.n_pixels:,} pixels. Training feeds each pixel to the model as "
    f"`(x / 255 − {info.mean}) / {info.std}`, so inputs are centred on 0 with a spread of about 1. "
    "Freshly initialized weights then give activations and gradients of a sensible size, every input is on the "
    "same scale, and one learning rate suits all layers, so training converges faster and more reliably. "
    "The constants come from the training set only, and are stored in every checkpoint so that drawing and "
    "evaluation normalize exactly as training did."
)

st.subheader("One image as a tensor")
index = st.number_input(f"Image index (0 – {len(train) - 1})", 0, len(train) - 1, 0)
x = train.images[index].float()[None] / 255.0  # (1, 28, 28): one channel of 28 rows and 28 columns
label = info.classes[int(train.labels[index])]
st.markdown(f"`x = images[{index}].float()[None] / 255` has shape **{tuple(x.shape)}** "
            f"(channels, rows, columns), dtype `{str(x.dtype).removeprefix('torch.')}`, label **{label}**. "
            "A batch of B images adds a first dimension: (B, 1, 28, 28).")
plotly_chart(image_figure(x[0].numpy(), title=f"{label}: hover for the value of each pixel", height=420))
if st.toggle("Show the raw numbers (0–255)"):
    st.dataframe(train.images[index].numpy())

st.page_link("pages/conv_lab.py", label="Next: slide a kernel over an image in the Convolution lab", icon="🧮")
