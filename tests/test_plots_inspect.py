"""Figures for the Inspect and Draw pages: they build, and they show exactly the arrays they were given."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from cnn_core.inspect import kernel_grid
from cnn_core.plots.inspect import (
    class_accuracy_figure,
    confusion_figure,
    feature_map_figure,
    image_strip,
    kernel_figure,
    png_data_uri,
    probability_figure,
    saliency_figure,
)

CLASSES = [str(i) for i in range(10)]
RNG = np.random.default_rng(0)


def decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_confusion_heatmap_is_the_matrix_and_every_cell_is_selectable():
    cm = RNG.integers(0, 40, (10, 10))
    cm[np.diag_indices(10)] = 900
    fig = confusion_figure(cm, CLASSES)
    heatmap, cells = fig.data
    np.testing.assert_array_equal(np.asarray(heatmap.z), cm)
    assert heatmap.zmax == cm[~np.eye(10, dtype=bool)].max()  # mistakes use the whole colour scale
    custom = np.asarray(cells.customdata)
    assert custom.shape == (100, 3)
    for i, (true, pred, count) in enumerate(custom):
        assert (true, pred) == divmod(i, 10) and count == cm[true, pred]
        assert (cells.y[i], cells.x[i]) == (CLASSES[true], CLASSES[pred])
    assert fig.layout.yaxis.autorange == "reversed"  # true class 0 on the top row


def test_confusion_without_mistakes_still_has_a_scale():
    fig = confusion_figure(np.diag([5, 6, 7]), ["a", "b", "c"])
    assert fig.data[0].zmax == 1


@pytest.mark.parametrize("shape", [(6, 1, 5, 5), (16, 6, 5, 5), (16, 5, 5)])
def test_kernel_figure_is_the_kernel_grid_on_a_symmetric_scale(shape):
    weights = RNG.normal(size=shape).astype(np.float32)
    fig = kernel_figure(weights, "conv")
    z = np.asarray(fig.data[0].z, dtype=float)
    expected = kernel_grid(weights[:, 0] if shape[1:2] == (1,) else weights)
    np.testing.assert_array_equal(np.isnan(z), np.isnan(expected))
    np.testing.assert_allclose(z[~np.isnan(z)], expected[~np.isnan(expected)], rtol=1e-6)
    limit = np.abs(weights).max()
    assert fig.data[0].zmin == pytest.approx(-limit) and fig.data[0].zmax == pytest.approx(limit)
    assert fig.data[0].zmid == 0
    if len(shape) == 4 and shape[1] > 1:  # one labelled column per input channel, one row per output channel
        assert list(fig.layout.xaxis.ticktext) == [str(c) for c in range(shape[1])]
        assert list(fig.layout.yaxis.ticktext) == [str(r) for r in range(shape[0])]


def test_feature_maps_tile_with_their_channel_in_the_hover():
    maps = RNG.random((6, 10, 10)).astype(np.float32)
    fig = feature_map_figure(maps, "pool1")
    trace = fig.data[0]
    np.testing.assert_array_equal(np.isnan(np.asarray(trace.z, float)), np.isnan(kernel_grid(maps)))
    channel = np.asarray(trace.customdata, dtype=float)
    z = np.asarray(trace.z, dtype=float)
    for c in range(6):  # every pixel of channel c is labelled c
        np.testing.assert_allclose(np.sort(z[channel == c]), np.sort(maps[c].ravel()), rtol=1e-6)
    assert trace.zmin == 0 and trace.zmid is None  # non-negative: gray from 0


def test_signed_feature_maps_use_the_diverging_scale():
    trace = feature_map_figure(RNG.normal(size=(4, 8, 8))).data[0]
    assert trace.zmid == 0 and trace.zmin == pytest.approx(-trace.zmax)


def test_class_accuracy_bars_mark_the_weakest_class():
    acc = np.array([0.99, 0.98, 0.90, np.nan, 0.97])
    bar = class_accuracy_figure(acc, list("abcde")).data[0]
    np.testing.assert_array_equal(np.asarray(bar.y, float), acc)
    assert bar.marker.color[2] != bar.marker.color[0] and bar.text[3] == ""


def test_probability_bars_mark_the_prediction():
    probs = np.full(10, 0.02)
    probs[7] = 0.82
    bar = probability_figure(probs, CLASSES).data[0]
    np.testing.assert_allclose(np.asarray(bar.y), probs)
    assert len(set(bar.marker.color)) == 2 and bar.marker.color[7] not in bar.marker.color[:7]


def test_saliency_overlays_the_heat_on_the_input():
    image, heat = RNG.random((32, 32)), RNG.random((32, 32))
    fig = saliency_figure(image, heat, "saliency")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), image)
    np.testing.assert_allclose(np.asarray(fig.data[1].z), heat)
    assert fig.data[1].colorscale[0][1].endswith(",0)")  # zero saliency is transparent


def test_image_strip_round_trips_each_image_with_its_title():
    images = [RNG.integers(0, 256, (28, 28), dtype=np.uint8), np.linspace(0, 1, 20 * 12).reshape(20, 12)]
    fig = image_strip(images, ["digit", "fitted"], ncols=8)
    assert [a.text for a in fig.layout.annotations] == ["digit", "fitted"]
    np.testing.assert_array_equal(decode(fig.data[0].source), images[0])
    np.testing.assert_array_equal(decode(fig.data[1].source), np.round(images[1] * 255).astype(np.uint8))


def test_image_strip_wraps_into_rows():
    fig = image_strip([np.zeros((28, 28), np.uint8)] * 10, [f"#{i}" for i in range(10)], ncols=4)
    assert len(fig.data) == 10 and fig.layout.height == 3 * 120 + 30


def test_png_data_uri_clips_floats():
    assert decode(png_data_uri(np.array([[-1.0, 0.5, 2.0]]))).tolist() == [[0, 128, 255]]
