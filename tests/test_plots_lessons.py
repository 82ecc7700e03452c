"""cnn_core.plots.lessons: each figure holds the data it was given, in the traces a reader expects."""

import numpy as np
import pytest

from cnn_core.plots import lessons


def titles(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_side_by_side_keeps_each_image_and_its_own_scale():
    image, kernel = np.random.default_rng(0).random((20, 20)), np.array([[1.0, -3.0]])
    fig = lessons.side_by_side([image, kernel], ["a", "b"])
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"] and titles(fig) == ["a", "b"]
    np.testing.assert_array_equal(fig.data[0].z, image)
    np.testing.assert_array_equal(fig.data[1].z, kernel)
    assert fig.data[0].zmin is None  # non-negative: gray, its own range
    assert (fig.data[1].zmin, fig.data[1].zmax) == (-3.0, 3.0)  # signed: symmetric around 0
    assert fig.data[0].texttemplate is None and fig.data[1].texttemplate == "%{z:.2f}"  # numbers on small panels
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis2.scaleanchor == "x2"


def test_side_by_side_diverging_panel_of_zeros_still_has_a_range():
    fig = lessons.side_by_side([np.zeros((3, 3))], ["zeros"], diverging=[True])
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-1.0, 1.0)


def test_convolution_figure_shows_input_kernel_output_with_shapes():
    image, kernel, output = np.ones((28, 28)), np.ones((1, 2)), -np.ones((28, 27))
    fig = lessons.convolution_figure(image, kernel, output)
    assert titles(fig) == ["input 28 × 28", "kernel 1 × 2", "output 28 × 27"]
    assert [np.shape(t.z) for t in fig.data] == [(28, 28), (1, 2), (28, 27)]
    assert fig.data[2].colorscale != fig.data[0].colorscale  # negative output: diverging colours


def test_hand_vs_torch_figure_shows_the_difference():
    hand, torch_out = np.array([[1.0, 2.0]]), np.array([[1.0, 2.5]])
    fig = lessons.hand_vs_torch_figure(hand, torch_out)
    assert titles(fig) == ["by hand", "F.conv2d", "by hand − F.conv2d"]
    np.testing.assert_array_equal(fig.data[2].z, [[0.0, -0.5]])
    assert {(t.zmin, t.zmax) for t in fig.data} == {(-2.5, 2.5)}  # the difference on the outputs' scale


def test_pooling_and_learned_kernel_figures():
    fmap = np.arange(16.0).reshape(4, 4)
    fig = lessons.pooling_figure(fmap, np.array([[5.0, 7], [13, 15]]), np.array([[2.5, 4.5], [10.5, 12.5]]))
    assert titles(fig) == ["feature map 4 × 4", "max pool 2 × 2", "average pool 2 × 2"]
    np.testing.assert_array_equal(fig.data[1].z, [[5, 7], [13, 15]])
    assert {(t.zmin, t.zmax) for t in fig.data} == {(0.0, 15.0)}  # one range: average pooling looks dimmer
    fig = lessons.learned_vs_hidden_figure(np.array([[0.99, -1.01]]), np.array([[1.0, -1.0]]))
    assert titles(fig) == ["learned", "hidden"] and len(fig.data) == 2


def test_loss_curve_is_on_a_log_scale():
    losses = [1.0, 0.1, 0.01]
    fig = lessons.loss_curve(losses)
    assert fig.layout.yaxis.type == "log"
    np.testing.assert_array_equal(fig.data[0].y, losses)


def test_kernel_convergence_has_a_line_and_a_target_per_entry():
    steps = np.linspace(0, 1, 5)[:, None, None]  # (5, 1, 1)
    kernels = np.concatenate([steps * 1.0, steps * -1.0], axis=2)  # (5, 1, 2): w[0,0] → 1, w[0,1] → -1
    target = np.array([[1.0, -1.0]])
    fig = lessons.kernel_convergence(kernels, target)
    assert len(fig.data) == 4
    lines, targets = fig.data[0::2], fig.data[1::2]
    assert [t.name for t in lines] == ["w[0,0]", "w[0,1]"]
    np.testing.assert_array_equal(lines[1].y, kernels[:, 0, 1])
    assert [list(t.y) for t in targets] == [[1.0, 1.0], [-1.0, -1.0]]
    assert all(t.line.dash == "dot" and not t.showlegend for t in targets)
    assert lines[0].line.color == targets[0].line.color


def test_class_count_bars_one_trace_per_split():
    counts = {"train": np.array([3, 5]), "test": np.array([1, 2])}
    fig = lessons.class_count_bars(counts, ["cat", "dog"])
    assert [t.name for t in fig.data] == ["train", "test"] and fig.layout.barmode == "group"
    assert list(fig.data[0].x) == ["cat", "dog"] and fig.layout.xaxis.type == "category"  # "0".."9" too
    np.testing.assert_array_equal(fig.data[1].y, [1, 2])


@pytest.mark.parametrize("log_y, axis", [(True, "log"), (False, "linear")])
def test_pixel_histogram_figure(log_y, axis):
    counts = np.arange(256)
    fig = lessons.pixel_histogram_figure(counts, log_y=log_y)
    assert fig.layout.yaxis.type == axis
    np.testing.assert_array_equal(fig.data[0].x, np.arange(256))
    np.testing.assert_array_equal(fig.data[0].y, counts)


def test_mosaic_tiles_the_images_with_blank_gaps_and_labels():
    images = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)  # 2 rows, 3 columns of 4 x 5 images
    fig = lessons.mosaic(images, row_labels=["a", "b"], col_labels=["x", "y", "z"], gap=1)
    assert len(fig.data) == 1
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2 * 4 + 1, 3 * 5 + 2)
    np.testing.assert_array_equal(z[5:9, 12:17], images[1, 2])
    assert np.isnan(z[4]).all() and np.isnan(z[:, 5]).all()  # the gaps
    assert list(fig.layout.yaxis.ticktext) == ["a", "b"] and list(fig.layout.xaxis.ticktext) == ["x", "y", "z"]
    assert list(fig.layout.yaxis.tickvals) == [1.5, 6.5]
    assert lessons.mosaic(images).layout.yaxis.tickvals == ()  # no labels, no ticks


def test_a_step_is_marked_on_both_curves_and_named_on_the_kernel():
    kernels = np.zeros((4, 1, 2))
    for fig in (lessons.loss_curve([1.0, 0.5, 0.2, 0.1], step=2), lessons.kernel_convergence(kernels, np.ones((1, 2)), 2)):
        assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(2, 2)]
    assert not lessons.loss_curve([1.0, 0.5]).layout.shapes
    fig = lessons.learned_vs_hidden_figure(kernels[2], np.ones((1, 2)), step=2)
    assert [a.text for a in fig.layout.annotations] == ["learned, step 2", "hidden"]
