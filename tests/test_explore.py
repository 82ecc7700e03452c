"""cnn_core.explore: data statistics against numpy, lab helpers against torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_core import conv, explore
from cnn_core.data import load_splits


@pytest.fixture
def tiny_train(tiny_data_dir):
    return load_splits("mnist")["train"]


def test_class_counts_sum_to_n_and_match_a_manual_count(tiny_train):
    counts = explore.class_counts(tiny_train.labels, 10)
    assert counts.shape == (10,) and counts.sum() == len(tiny_train)
    labels = tiny_train.labels.tolist()
    assert counts.tolist() == [labels.count(k) for k in range(10)]


def test_class_counts_keep_empty_classes_and_refuse_labels_out_of_range():
    assert explore.class_counts(np.array([0, 0, 2]), 4).tolist() == [2, 0, 1, 0]
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        explore.class_counts(np.array([0, 3]), 3)


def test_mean_images_equal_a_manual_mean(tiny_train):
    means = explore.mean_images(tiny_train.images, tiny_train.labels, 10)
    assert means.shape == (10, 28, 28)
    for k in range(10):
        members = [img.double() / 255 for img, lbl in zip(tiny_train.images, tiny_train.labels, strict=True)
                   if lbl == k]
        np.testing.assert_allclose(means[k], torch.stack(members).mean(0).numpy(), atol=1e-12)


def test_mean_image_of_an_empty_class_is_nan():
    images = np.stack([np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8)])
    means = explore.mean_images(images, np.array([0, 0]), 2)
    np.testing.assert_allclose(means[0], 0.5)
    assert np.isnan(means[1]).all()


def test_pixel_histogram_sums_to_every_pixel(tiny_train):
    counts, edges = explore.pixel_histogram(tiny_train.images)
    assert counts.shape == (256,) and edges.tolist() == list(range(257))
    assert counts.sum() == len(tiny_train) * 28 * 28
    assert counts[255] == (tiny_train.images == 255).sum().item()
    coarse, coarse_edges = explore.pixel_histogram(tiny_train.images, bins=8)
    assert coarse.tolist() == counts.reshape(8, 32).sum(1).tolist()
    assert coarse_edges.tolist() == list(range(0, 257, 32))


def test_pixel_histogram_refuses_bins_that_do_not_divide_256():
    with pytest.raises(ValueError, match="divide 256"):
        explore.pixel_histogram(np.zeros((1, 2, 2), np.uint8), bins=10)


def test_normalization_stats_equal_numpys(tiny_train):
    pixels = tiny_train.images.numpy() / 255.0
    stats = explore.normalization_stats(tiny_train.images)
    assert stats.mean == pytest.approx(pixels.mean(), abs=1e-12)
    assert stats.std == pytest.approx(pixels.std(), abs=1e-12)
    assert stats.n_pixels == pixels.size


def test_samples_per_class_are_members_of_their_class(tiny_train):
    images, labels = tiny_train.images.numpy(), tiny_train.labels.numpy()
    grid = explore.samples_per_class(images, labels, 10, per_class=4, seed=3)
    assert grid.shape == (10, 4, 28, 28) and grid.dtype == np.uint8
    for k in range(10):
        members = {img.tobytes() for img in images[labels == k]}
        assert all(img.tobytes() in members for img in grid[k])
        assert len({img.tobytes() for img in grid[k]}) == 4  # no image twice
    assert not np.array_equal(grid, explore.samples_per_class(images, labels, 10, 4, seed=4))


def test_samples_per_class_is_capped_by_the_smallest_class():
    images = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    grid = explore.samples_per_class(images, np.array([0, 0, 0, 1, 1]), 2, per_class=10)
    assert grid.shape == (2, 2, 2, 2)


def test_data_overview_covers_both_splits(tiny_data_dir):
    splits = load_splits("fashion-mnist")
    overview = explore.data_overview(splits, 10)
    assert {k: v.sum() for k, v in overview.counts.items()} == {"train": 600, "test": 200}
    assert overview.histogram.sum() == 600 * 784
    assert overview.stats == explore.normalization_stats(splits["train"].images)
    assert overview.mean_images.shape == (10, 28, 28)


# ---------------------------------------------------------------- convolution lab


def test_parse_kernel_reads_numbers_and_fractions():
    kernel = explore.parse_kernel([["1/9", " -0.5 ", 2], [0, "1e-1", "1 / 4"]])
    torch.testing.assert_close(kernel, torch.tensor([[1 / 9, -0.5, 2.0], [0.0, 0.1, 0.25]]))
    assert kernel.dtype == torch.float32


@pytest.mark.parametrize("cells, message", [
    ([["1", "abc"], ["0", "0"]], r"Row 1, column 2 of the custom kernel is 'abc', which is not a number"),
    ([["1", "0"], ["", "0"]], r"Row 2, column 1 of the custom kernel is empty"),
    ([["1", "0"], ["0", None]], r"Row 2, column 2 of the custom kernel is empty"),
    ([["1", "0"], ["0", float("nan")]], r"Row 2, column 2 of the custom kernel is empty"),
    ([["1/0"]], r"'1/0', which is not a number"),
    ([["1", "2"], ["3"]], r"rectangular grid"),
    ([], r"rectangular grid"),
])
def test_parse_kernel_names_the_bad_cell(cells, message):
    with pytest.raises(ValueError, match=message):
        explore.parse_kernel(cells)


@pytest.mark.parametrize("padding, stride, dilation", [(0, 1, 1), (1, 1, 1), (2, 3, 1), (0, 2, 2), (4, 4, 3)])
def test_convolve_with_formula_predicts_the_real_shape(padding, stride, dilation):
    image, kernel = torch.rand(28, 20), conv.make_kernel("sobel_x")
    lesson = explore.convolve_with_formula(image, kernel, padding, stride, dilation)
    assert tuple(lesson.output.shape) == lesson.predicted
    assert lesson.rows_formula.endswith(f"= {lesson.predicted[0]}")
    assert lesson.cols_formula.endswith(f"= {lesson.predicted[1]}")
    expected = F.conv2d(image[None, None], kernel[None, None], padding=padding, stride=stride, dilation=dilation)
    torch.testing.assert_close(lesson.output, expected[0, 0])


def test_convolve_with_formula_says_when_the_kernel_does_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        explore.convolve_with_formula(torch.rand(4, 4), conv.make_kernel("gaussian", size=5))


def test_shrink_keeps_the_aspect_ratio_and_small_images():
    assert tuple(explore.shrink(torch.rand(100, 50), 20).shape) == (20, 10)
    channels = torch.rand(3, 100, 50)
    shrunk = explore.shrink(channels, 20)  # (3, 20, 10): each channel on its own
    assert shrunk.shape == (3, 20, 10)
    torch.testing.assert_close(shrunk[1], explore.shrink(channels[1], 20))
    torch.testing.assert_close(shrunk[0, 0, 0], channels[0, :5, :5].mean())  # area: the mean of each 5x5 block
    small = torch.rand(10, 12)
    assert explore.shrink(small, 28) is small


def test_hand_vs_conv2d_agree_and_are_timed():
    image = conv.sample_image("camera")  # 128 x 128
    run = explore.hand_vs_conv2d(image, conv.make_kernel("laplacian"), padding=1, stride=2, max_side=20)
    assert tuple(run.image.shape) == (20, 20)
    assert tuple(run.by_hand.shape) == tuple(run.by_torch.shape) == (10, 10)
    assert run.max_abs_diff < 1e-5
    assert run.max_abs_diff == pytest.approx((run.by_hand - run.by_torch).abs().max().item())
    assert run.hand_seconds > 0 and run.torch_seconds > 0


def test_sample_rgb_is_a_small_colour_tensor():
    photo = explore.sample_rgb("chelsea", max_size=40)  # chelsea is 300 x 451
    assert photo.shape == (3, 27, 40) and photo.dtype == torch.float32
    assert photo.min().item() >= 0 and photo.max().item() <= 1
    assert (photo[0] - photo[2]).abs().mean() > 0.01  # really in colour
    with pytest.raises(ValueError, match="unknown colour sample 'camera'"):
        explore.sample_rgb("camera")


def test_kernel_bank_on_a_gray_image_gives_each_kernels_response():
    gray = torch.rand(12, 12)
    names = ["sobel_x", "laplacian"]
    weight = explore.kernel_bank(names, in_channels=3)
    assert weight.shape == (2, 3, 3, 3)
    out = explore.multi_channel_conv(gray.expand(3, -1, -1), weight).output  # (1, 2, 10, 10)
    for k, name in enumerate(names):
        torch.testing.assert_close(out[0, k], conv.convolve_image(gray, conv.make_kernel(name)))
    with pytest.raises(ValueError, match="at least one"):
        explore.kernel_bank([], 3)


def test_random_kernels_are_seeded():
    a = explore.random_kernels(4, 3, size=5, seed=1)
    assert a.shape == (4, 3, 5, 5)
    torch.testing.assert_close(a, explore.random_kernels(4, 3, size=5, seed=1))
    assert not torch.equal(a, explore.random_kernels(4, 3, size=5, seed=2))


def test_multi_channel_conv_is_the_sum_of_its_channels():
    image = torch.rand(3, 9, 11)
    weight, bias = explore.random_kernels(2, 3), torch.tensor([0.5, -1.0])
    many = explore.multi_channel_conv(image, weight, bias, padding=1)
    assert many.shapes() == {"x": (1, 3, 9, 11), "weight": (2, 3, 3, 3), "bias": (2,),
                             "contributions": (2, 3, 9, 11), "output": (1, 2, 9, 11)}
    torch.testing.assert_close(many.contributions.sum(1) + bias[:, None, None], many.output[0])
    torch.testing.assert_close(many.output, F.conv2d(image[None], weight, bias, padding=1))
    with pytest.raises(ValueError, match="4 channels but the kernels expect 3"):
        explore.multi_channel_conv(torch.rand(4, 9, 9), weight)


@pytest.mark.parametrize("kernel, stride, shape", [(2, None, (5, 6)), (3, 1, (8, 11)), (2, 3, (3, 4))])
def test_compare_pooling_by_hand_agrees_with_torch(kernel, stride, shape):
    fmap = torch.rand(10, 13)
    pooled = explore.compare_pooling(fmap, kernel, stride)
    assert tuple(pooled.max_pooled.shape) == tuple(pooled.avg_pooled.shape) == shape
    assert pooled.max_diff == 0.0 and pooled.avg_diff < 1e-6
    assert (pooled.max_pooled >= pooled.avg_pooled).all()


def test_learn_hidden_kernel_reaches_the_hidden_kernel():
    result = explore.learn_hidden_kernel(conv.make_kernel("sharpen"), steps=300, lr=0.02)
    assert result.losses.shape == (300,) and result.kernels.shape == (300, 3, 3)
    assert result.max_error < 1e-2
    assert result.max_error == pytest.approx(np.abs(result.kernels[-1] - result.target).max())
    assert result.losses[-1] < 1e-4 * result.losses[0]
