"""The Convolution lab's pieces: the image, kernel and geometry pickers, and one function per lesson tab."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import streamlit as st
import torch

from cnn_core import conv, explore
from cnn_core.data import DATASETS, DataError, load_splits
from cnn_core.plots import lessons
from cnn_core.plots.common import DIVERGING, image_grid
from ui.viewport import plotly_chart

KERNEL_LABELS = {"identity": "identity", "edge": "edge [1, −1]", "sobel_x": "Sobel x", "sobel_y": "Sobel y",
                 "laplacian": "Laplacian", "box_blur": "box blur", "sharpen": "sharpen", "gaussian": "Gaussian (σ)",
                 "custom": "custom (type it)"}
SOURCES = {"mnist": "MNIST digit", "fashion-mnist": "Fashion-MNIST item", "photo": "photo"}


class Convolution(NamedTuple):
    """What the pickers chose and its convolution, shared by the tabs."""

    image: torch.Tensor  # (H, W) in [0, 1]
    kernel: torch.Tensor  # (kH, kW)
    padding: int
    stride: int
    dilation: int
    lesson: explore.ConvolutionLesson


def sentence(error: Exception) -> str:
    """An error message as a sentence: capital first, full stop last."""
    text = str(error).rstrip(".")
    return f"{text[:1].upper()}{text[1:]}."


@st.cache_data(show_spinner="Gradient descent …")
def learn(hidden: str, steps: int, lr: float) -> explore.KernelLearning:
    return explore.learn_hidden_kernel(conv.make_kernel(hidden), steps=steps, lr=lr)


def pick_image() -> torch.Tensor:
    """A test digit, a Fashion-MNIST item or a photo → (H, W) in [0, 1]; stops the page if the data is missing."""
    source = st.radio("Image", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="source")
    if source == "photo":
        return conv.sample_image(st.selectbox("Photo", conv.SAMPLE_IMAGES, key="photo"))
    try:
        test = load_splits(source)["test"]
    except DataError as e:
        st.error(f"{e} Or pick a photo.")
        st.stop()
    index = st.number_input(f"Index in the test set (0 – {len(test) - 1})", 0, len(test) - 1, 0, key="index")
    st.caption(f"Label: {DATASETS[source].classes[int(test.labels[index])]}")
    return test.images[index].float() / 255.0  # (28, 28)


def pick_kernel() -> torch.Tensor:
    """A named kernel, a Gaussian with its σ, or a typed grid → (kH, kW); stops the page on a bad grid."""
    name = st.selectbox("Kernel", list(KERNEL_LABELS), index=2, format_func=KERNEL_LABELS.get, key="kernel")
    if name == "gaussian":
        return conv.make_kernel(name, size=st.select_slider("Size", [3, 5, 7], 5, key="gauss_size"),
                                sigma=st.slider("σ (blur radius)", 0.2, 3.0, 1.0, 0.1, key="sigma"))
    if name != "custom":
        return conv.make_kernel(name)
    size = st.radio("Size", [3, 5], format_func=lambda n: f"{n}×{n}", horizontal=True, key="custom_size")
    start = [["1" if i == j == size // 2 else "0" for j in range(size)] for i in range(size)]
    cells = st.data_editor(pd.DataFrame(start, columns=[str(j) for j in range(size)]), key=f"custom_{size}")
    st.caption("Numbers or fractions such as -1, 0.5 or 1/9.")
    try:
        return explore.parse_kernel(cells.values.tolist())
    except ValueError as e:
        st.error(str(e))
        st.stop()


def pick_geometry() -> tuple[int, int, int]:
    """Padding, stride and dilation sliders."""
    padding = st.slider("Padding", 0, 4, 0, help="Zeros added around the border.", key="padding")
    stride = st.slider("Stride", 1, 4, 1, help="How far the kernel moves between outputs.", key="stride")
    dilation = st.slider("Dilation", 1, 6, 1, help="Spacing between the pixels the kernel sees.", key="dilation")
    return padding, stride, dilation


def convolve_tab(c: Convolution) -> None:
    """Input, kernel and output side by side; the output-size formula against the real shape."""
    plotly_chart(lessons.convolution_figure(c.image.numpy(), c.kernel.numpy(), c.lesson.output.numpy()))
    st.markdown(f"Output size, rows: `{c.lesson.rows_formula}`  \ncolumns: `{c.lesson.cols_formula}`")
    (h, w), (kh, kw), (oh, ow) = c.image.shape, c.kernel.shape, c.lesson.output.shape
    check = "✓ as the formula says" if (oh, ow) == c.lesson.predicted else "✗ not what the formula says"
    st.markdown(f"F.conv2d: input (1, 1, {h}, {w}) ⋆ weight (1, 1, {kh}, {kw}) → "
                f"output **(1, 1, {oh}, {ow})**, {check}.")


def hand_vs_torch_tab(c: Convolution) -> None:
    """The plain-loop cross-correlation next to F.conv2d, their difference and timings."""
    st.markdown("`cross_correlate_by_hand` visits every output position and adds up kernel × patch, as "
                "`F.conv2d` does, with the padding, stride and dilation above. The loop is slow, so the image "
                "is shrunk first.")
    side = st.slider("Longest side of the image (pixels)", 8, 48, 28, key="side")
    try:
        with st.spinner("Looping over every output position …"):
            run = explore.hand_vs_conv2d(c.image, c.kernel, c.padding, c.stride, c.dilation,
                                             max_side=side)
    except ValueError as e:
        st.error(sentence(e))
    else:
        cols = st.columns(3)
        cols[0].metric("Max |by hand − F.conv2d|", f"{run.max_abs_diff:.2e}")
        cols[1].metric(f"By hand, {tuple(run.image.shape)} input", f"{run.hand_seconds * 1e3:.1f} ms")
        cols[2].metric("F.conv2d (best of 5)", f"{run.torch_seconds * 1e3:.3f} ms")
        plotly_chart(lessons.hand_vs_torch_figure(run.by_hand.numpy(), run.by_torch.numpy()))


def many_channels_tab() -> None:
    """A colour photo (3 channels) through K kernels: every tensor's shape, one output taken apart."""
    cols = st.columns(3)
    photo = explore.sample_rgb(cols[0].selectbox("Colour photo", explore.RGB_SAMPLES, key="rgb"))  # (3, H, W)
    if cols[1].radio("Kernels", ["chosen", "random"], horizontal=True, key="bank") == "chosen":
        picked = cols[2].multiselect("One output channel per kernel", explore.SQUARE_KERNELS,
                                     ["sobel_x", "sobel_y", "laplacian"], format_func=KERNEL_LABELS.get,
                                     key="picked")
        if not picked:
            st.error("Pick at least one kernel: each one makes an output channel.")
            return
        weight = explore.kernel_bank(picked, in_channels=3)  # (K, 3, 3, 3)
    else:
        weight = explore.random_kernels(cols[2].slider("Output channels K", 1, 8, 4, key="k_random"), 3)
    many = explore.multi_channel_conv(photo, weight, padding=1)
    st.markdown("Each output channel k adds up **all** input channels: out[k] = Σ_c x[c] ⋆ w[k, c] + b[k].  \n"
                + " · ".join(f"{n} **{s}**" for n, s in many.shapes().items()))
    plotly_chart(image_grid(list(photo.numpy()), ["R", "G", "B"], ncols=3, cell=180))
    plotly_chart(image_grid(list(weight.flatten(0, 1).numpy()),
                            [f"w[{k},{c}]" for k in range(len(weight)) for c in "RGB"], ncols=3,
                            colorscale=DIVERGING, zmid=0.0, cell=130))
    k = st.slider("Output channel to take apart", 0, len(weight) - 1, 0, key="take_apart") if len(weight) > 1 else 0
    parts = [*many.contributions[k].numpy(), many.output[0, k].numpy()]
    plotly_chart(image_grid(parts, [f"{c} ⋆ w[{k},{c}]" for c in "RGB"] + [f"sum + b = out[{k}]"],
                            ncols=4, colorscale=DIVERGING, zmid=0.0, cell=180))


def pooling_tab(c: Convolution) -> None:
    """Max and average pooling of the ReLU'd convolution, each checked against torch."""
    st.markdown("The feature map is ReLU of the convolution above. Pooling shrinks it window by window.")
    window = st.slider("Window", 2, 4, 2, key="window")
    pool_stride = st.slider("Pooling stride", 1, 4, window, key="pool_stride")
    try:
        pooled = explore.compare_pooling(c.lesson.output.clamp(min=0), window, pool_stride)
    except ValueError as e:
        st.error(sentence(e))
    else:
        plotly_chart(lessons.pooling_figure(pooled.feature_map.numpy(), pooled.max_pooled.numpy(),
                                            pooled.avg_pooled.numpy()))
        st.markdown(f"By hand vs `nn.MaxPool2d`: max difference **{pooled.max_diff:.1e}**; "
                    f"vs `nn.AvgPool2d`: **{pooled.avg_diff:.1e}**. Max pooling keeps the strongest response "
                    "in each window, so it survives small shifts; average pooling smooths it.")


def learn_kernel_tab() -> None:
    """Gradient descent recovers a hidden kernel: loss curve, values converging, learned vs hidden."""
    cols = st.columns(3)
    hidden = cols[0].selectbox("Hidden kernel", list(conv.KERNELS), index=1, format_func=KERNEL_LABELS.get,
                               key="hidden")
    steps = cols[1].slider("Steps", 50, 1000, 300, 50, key="steps")
    lr = cols[2].select_slider("Learning rate", [0.005, 0.01, 0.02, 0.05, 0.1], 0.02, key="lr")
    result = learn(hidden, steps, lr)
    verdict = "✓" if result.max_error < 1e-2 else "(try more steps or a larger learning rate)"
    st.markdown("Random images go through the hidden kernel; a random kernel is nudged downhill on the mean "
                f"squared error until it makes the same outputs. After {steps} steps: loss "
                f"**{result.losses[-1]:.2e}**, max |learned − hidden| = **{result.max_error:.4f}** {verdict}")
    last = len(result.losses) - 1
    step = st.slider("Step to look at: drag it to watch the kernel converge", 0, last, last, key="learn_step")
    curves = st.columns(2)
    with curves[0]:
        plotly_chart(lessons.loss_curve(result.losses, step))
    with curves[1]:
        plotly_chart(lessons.kernel_convergence(result.kernels, result.target, step))
    plotly_chart(lessons.learned_vs_hidden_figure(result.kernels[step], result.target, step))
