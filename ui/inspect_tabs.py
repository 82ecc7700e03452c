"""The Inspect page's tabs: kernels (or an MLP's first layer), feature maps of a test image, confusion and mistakes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st

from cnn_core.checkpoints import Checkpoint
from cnn_core.data import Split, data_dir, load_splits, normalize
from cnn_core.inspect import (confusion_matrix, conv_layers, feature_maps, input_templates, kernels, mistakes,
                              per_class_accuracy, predict, split_predictions)
from cnn_core.plots.inspect import (class_accuracy_figure, confusion_figure, feature_map_figure, image_strip,
                                    kernel_figure)
from ui.model_picker import cached_checkpoint, picked_is_yours
from ui.viewport import is_phone, plotly_chart


@st.cache_data(max_entries=8, show_spinner=False)
def test_predictions(path: str, mtime_ns: int, data_root: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One checkpoint file on its test set → labels (N,), predictions (N,), probabilities (N, K)."""
    ckpt = cached_checkpoint(Path(path))
    return split_predictions(ckpt.model, ckpt.info, load_splits(ckpt.info.name, Path(data_root))["test"])


def predictions(ckpt: Checkpoint, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The checkpoint on its test set (labels, predictions, probabilities), computed once: per file version for
    every session; for a model this session brought or made, once in this session (no other holds it)."""
    if not picked_is_yours():
        return test_predictions(str(ckpt.path), ckpt.path.stat().st_mtime_ns, str(data_dir()))
    memo = st.session_state.setdefault("your_model_predictions", {})
    if memo.get("model") is not ckpt.model:
        memo.clear()
        memo.update(model=ckpt.model, result=split_predictions(ckpt.model, ckpt.info, test))
    return memo["result"]


def select_cell(num_classes: int) -> None:
    """A click on the confusion matrix sets the true/predicted selectboxes below it."""
    points = [p for p in st.session_state["confusion"]["selection"]["points"] if p.get("curve_number") == 1]
    if points:  # the cell markers, row by row: marker i is cell (i // K, i % K)
        st.session_state["cm_true"], st.session_state["cm_pred"] = divmod(int(points[0]["point_index"]), num_classes)


def strip(images: np.ndarray, titles: list[str], key: str) -> None:
    """Test images (N, 28, 28), each with its title: 8 to a row, 4 on a phone."""
    plotly_chart(image_strip(list(images), titles, ncols=4 if is_phone() else 8), key=key)


def kernels_tab(ckpt: Checkpoint) -> None:
    """Every conv layer's kernels; for a model without conv layers, its first layer's weights as images."""
    model, layers = ckpt.model, conv_layers(ckpt.model)
    averaged = layers and st.toggle("Average each kernel over its input channels", key="kernels_mean")
    reduce = "mean" if averaged else "none"
    for col, layer in zip(st.columns(max(len(layers), 1)), layers):
        with col:
            plotly_chart(kernel_figure(kernels(model, layer, reduce), layer), key=f"k-{layer}")
    templates = None if layers else input_templates(model)
    if templates:
        name, weights = templates
        st.markdown(f"`{ckpt.meta['model']}` has no conv layer, so no kernels. Instead, each unit of its first "
                    f"layer `{name}` weighs every pixel: drawn as an image, those weights show the pattern the unit "
                    "responds to (red adds, blue subtracts). A conv kernel is a small pattern reused at every "
                    "position; these cover the whole image at once.")
        plotly_chart(kernel_figure(weights, f"{name}, first {len(weights)} units", pixel=3), key="templates")
    elif not layers:
        st.info(f"`{ckpt.meta['model']}` has no conv layer, so it has no kernels to show.")


def feature_maps_tab(ckpt: Checkpoint, test: Split) -> None:
    """A test image (by index, by class or at random), its prediction and every layer's feature maps."""
    model, classes, labels = ckpt.model, ckpt.info.classes, test.labels.numpy()
    how = st.radio("Test image", ["by index", "by class", "random"], horizontal=True, key="image_by")
    if how == "by class":
        c = st.selectbox("Class", np.unique(labels).tolist(), format_func=lambda i: classes[i], key="image_class")
        pool = np.flatnonzero(labels == c)
        idx = int(pool[st.number_input(f"Which one of its {len(pool)} test images", 0, len(pool) - 1, 0)])
    elif how == "random":
        st.session_state["image_seed"] = st.session_state.get("image_seed", 0) + st.button("Another one")
        idx = int(np.random.default_rng(st.session_state["image_seed"]).integers(len(test)))
    else:
        idx = int(st.number_input("Index in the test set", 0, len(test) - 1, 0, key="image_index"))
    x = normalize(test.images[idx : idx + 1], ckpt.info.mean, ckpt.info.std, model.input_size)
    probs, maps = predict(model, x)[0], feature_maps(model, x)
    st.image(test.images[idx].numpy(), width=140, caption=f"#{idx} · true {classes[labels[idx]]} · "
             f"predicted {classes[probs.argmax()]} ({probs.max():.0%})")
    if not maps:
        st.info(f"`{ckpt.meta['model']}` has no conv layer, so it makes no feature maps: it sees the image as one "
                "flat row of pixels. Train a LeNet and compare.")
    for tab, (layer, m) in zip(st.tabs(list(maps)) if maps else [], maps.items()):
        with tab:
            plotly_chart(feature_map_figure(m, layer), key=f"fm-{layer}")


def cell_mistakes(ckpt: Checkpoint, test: Split, cm: np.ndarray, preds: np.ndarray, probs: np.ndarray) -> None:
    """The true and predicted class (set by a click on the matrix) and the test images of that cell."""
    classes, k, labels = ckpt.info.classes, len(ckpt.info.classes), test.labels.numpy()
    worst = np.unravel_index(np.argmax(cm - np.diag(np.diag(cm))), cm.shape)  # the most frequent confusion
    st.session_state.setdefault("cm_true", int(worst[0]))
    st.session_state.setdefault("cm_pred", int(worst[1]))
    a, b = st.columns(2)
    t = a.selectbox("True class", range(k), format_func=lambda i: classes[i], key="cm_true")
    p = b.selectbox("Predicted class", range(k), format_func=lambda i: classes[i], key="cm_pred")
    idx, conf = mistakes(labels, preds, probs, t, p, limit=24)
    if t == p:
        st.info("The diagonal holds the correct predictions: choose two different classes to see mistakes.")
    elif len(idx) == 0:
        st.success(f"No {classes[t]} in the test set was taken for a {classes[p]}.")
    else:
        st.caption(f"{cm[t, p]} images of {classes[t]} predicted as {classes[p]}, most confident first "
                   f"(probability of {classes[p]} · of {classes[t]}):")
        strip(test.images[idx].numpy(), [f"#{i} · {c:.0%} · {probs[i, t]:.0%}" for i, c in zip(idx, conf)], "cell")


def confusion_tab(ckpt: Checkpoint, test: Split) -> None:
    """The confusion matrix (click a cell), per-class accuracy, that cell's mistakes and the most confident ones.
    On a phone the cell's mistakes come right under the matrix, per-class accuracy after them."""
    classes, k, labels = ckpt.info.classes, len(ckpt.info.classes), test.labels.numpy()
    with st.spinner(f"Classifying the {len(test):,} test images …"):
        _, preds, probs = predictions(ckpt, test)
    cm = confusion_matrix(labels, preds, k)
    st.markdown(f"**Test accuracy {np.trace(cm) / cm.sum():.2%}**: {cm.sum() - np.trace(cm):,} of {cm.sum():,} "
                "images are misclassified. Click a cell, or choose the classes below, to see its mistakes.")
    phone = is_phone()
    if phone:
        matrix, chosen, per_class = st.container(), st.container(), st.container()
    else:
        (matrix, per_class), chosen = st.columns([3, 2]), st.container()
    with matrix:
        plotly_chart(confusion_figure(cm, classes, height=400 if phone else 520), key="confusion",
                     on_select=partial(select_cell, k), selection_mode="points")
    with per_class:
        plotly_chart(class_accuracy_figure(per_class_accuracy(cm), classes), key="per_class")
    with chosen:
        cell_mistakes(ckpt, test, cm, preds, probs)
    st.subheader("The most confident mistakes")
    idx, conf = mistakes(labels, preds, probs, limit=16)
    if len(idx) == 0:
        st.success("This model classifies every test image correctly.")
    else:
        strip(test.images[idx].numpy(), [f"{classes[labels[i]]} → {classes[preds[i]]} · {c:.0%}"
                                         for i, c in zip(idx, conf)], "top_mistakes")
