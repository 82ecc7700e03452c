"""cnn_core.conv against PyTorch as the reference."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.conv import (
    KERNEL_NAMES,
    KERNELS,
    SAMPLE_IMAGES,
    convolve_image,
    cross_correlate_by_hand,
    gaussian_kernel,
    learn_kernel,
    make_kernel,
    output_size,
    output_size_formula,
    pool_by_hand,
    sample_image,
    to_grayscale,
)

CONV_CASES = [  # c_in, c_out, kernel, stride, padding, dilation
    (1, 1, (3, 3), 1, 0, 1),
    (1, 1, (1, 2), 1, 0, 1),
    (3, 2, (3, 3), 1, 1, 1),
    (2, 4, (3, 3), 2, 0, 1),
    (2, 3, (3, 3), 1, 0, 2),
    (3, 2, (5, 5), 2, 2, 2),
    (1, 2, (2, 3), (2, 1), (1, 0), (1, 2)),
    (2, 2, (3, 1), (1, 3), (0, 2), (2, 1)),
    (4, 1, (1, 1), 3, 1, 1),
    (1, 3, (4, 4), 3, 3, 1),
]


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, dilation", CONV_CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_cross_correlate_by_hand_matches_conv2d(c_in, c_out, kernel, stride, padding, dilation, with_bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, c_in, 9, 11, generator=g)
    w = torch.randn(c_out, c_in, *kernel, generator=g)
    bias = torch.randn(c_out, generator=g) if with_bias else None
    expected = F.conv2d(x, w, bias, stride=stride, padding=padding, dilation=dilation)
    got = cross_correlate_by_hand(x, w, bias, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# n, kernel, stride, padding, dilation
SIZE_GRID = list(itertools.product((5, 28), (1, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)))


@pytest.mark.parametrize("n, kernel, stride, padding, dilation", SIZE_GRID)
def test_output_size_matches_conv2d_shape(n, kernel, stride, padding, dilation):
    x, w = torch.zeros(1, 1, n, n), torch.zeros(1, 1, kernel, kernel)
    if dilation * (kernel - 1) + 1 > n + 2 * padding:  # the kernel does not fit: both refuse
        with pytest.raises(RuntimeError):
            F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
        with pytest.raises(ValueError, match="does not fit"):
            output_size(n, kernel, stride, padding, dilation)
        return
    expected = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape[-1]
    assert output_size(n, kernel, stride, padding, dilation) == expected


def test_output_size_formula_shows_the_numbers():
    assert output_size_formula(28, 3, padding=1) == "⌊(28 + 2·1 − 1·(3−1) − 1) / 1⌋ + 1 = 28"
    assert output_size_formula(28, 5, stride=2, dilation=2).endswith("= 10")


POOL_CASES = [(2, None), (3, None), (2, 1), (3, 2), ((2, 3), None), ((3, 2), (1, 2))]  # kernel, stride


@pytest.mark.parametrize("kernel, stride", POOL_CASES)
@pytest.mark.parametrize("mode, reference", [("max", nn.MaxPool2d), ("avg", nn.AvgPool2d)])
def test_pool_by_hand_matches_torch(kernel, stride, mode, reference):
    x = torch.randn(2, 3, 7, 9, generator=torch.Generator().manual_seed(1))
    expected = reference(kernel, stride)(x)
    torch.testing.assert_close(pool_by_hand(x, kernel, stride, mode=mode), expected, atol=1e-6, rtol=1e-6)


def test_pool_by_hand_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'max' or 'avg'"):
        pool_by_hand(torch.zeros(1, 1, 4, 4), 2, mode="median")


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_every_named_kernel_is_a_2d_float_tensor(name):
    kernel = make_kernel(name)
    assert kernel.ndim == 2 and kernel.dtype == torch.float32


def test_named_kernels_have_their_textbook_values():
    assert make_kernel("edge").tolist() == [[1.0, -1.0]]
    assert torch.equal(make_kernel("sobel_y"), make_kernel("sobel_x").T)
    assert make_kernel("box_blur").sum().item() == pytest.approx(1.0)
    assert make_kernel("sharpen").sum().item() == pytest.approx(1.0)
    assert make_kernel("laplacian").sum().item() == 0.0


def test_make_kernel_returns_a_copy():
    make_kernel("identity").fill_(7.0)
    assert KERNELS["identity"].sum().item() == 1.0


def test_unknown_kernel_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown kernel 'blurry'.*sobel_x.*gaussian"):
        make_kernel("blurry")


def test_fixed_kernels_refuse_parameters():
    with pytest.raises(ValueError, match="takes no parameters"):
        make_kernel("sobel_x", size=5)


@pytest.mark.parametrize("size, sigma", [(3, 0.5), (5, 1.0), (6, 2.0), (1, 1.0)])
def test_gaussian_sums_to_one_and_is_symmetric(size, sigma):
    k = gaussian_kernel(size, sigma)
    assert k.shape == (size, size)
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(k, k.T)
    torch.testing.assert_close(k, k.flip(0))
    torch.testing.assert_close(k, k.flip(1))
    assert k.max() == k[(size - 1) // 2, (size - 1) // 2]
    torch.testing.assert_close(make_kernel("gaussian", size=size, sigma=sigma), k)


def test_gaussian_rejects_bad_sigma():
    with pytest.raises(ValueError, match="sigma > 0"):
        gaussian_kernel(3, 0.0)


def test_convolve_image_matches_the_hand_version():
    image = torch.rand(12, 10, generator=torch.Generator().manual_seed(2))
    kernel = make_kernel("sobel_x")
    got = convolve_image(image, kernel, padding=1, stride=2, dilation=1)
    expected = cross_correlate_by_hand(image[None, None], kernel[None, None], padding=1, stride=2)[0, 0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_convolve_image_identity_with_padding_gives_the_image_back():
    image = torch.rand(8, 8)
    torch.testing.assert_close(convolve_image(image.numpy(), make_kernel("identity"), padding=1), image)


def test_convolve_image_turns_rgb_into_grayscale():
    gray = torch.rand(10, 10)
    rgb = torch.stack([gray, gray, gray], dim=-1)  # (H, W, 3), all channels equal
    torch.testing.assert_close(to_grayscale(rgb), gray)
    kernel = make_kernel("laplacian")
    torch.testing.assert_close(convolve_image(rgb, kernel), convolve_image(gray, kernel))


def test_to_grayscale_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        to_grayscale(torch.zeros(4, 4, 4))


@pytest.mark.parametrize("name", ["edge", "sobel_x"])
def test_learn_kernel_recovers_the_hidden_kernel(name):
    target = make_kernel(name)
    history = list(learn_kernel(target))
    assert [s.step for s in history] == list(range(len(history)))
    assert history[-1].kernel.shape == target.shape
    torch.testing.assert_close(history[-1].kernel, target, atol=1e-2, rtol=0)
    losses = [s.loss for s in history]
    assert losses[-1] < 1e-4 * losses[0]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(losses, losses[1:]))


def test_learn_kernel_default_target_is_edge():
    final = list(learn_kernel())[-1]
    torch.testing.assert_close(final.kernel, torch.tensor([[1.0, -1.0]]), atol=1e-2, rtol=0)


def test_learn_kernel_yields_detached_copies():
    first, second = itertools.islice(learn_kernel(), 2)
    assert not first.kernel.requires_grad
    assert not torch.equal(first.kernel, second.kernel)


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_sample_image_is_small_gray_and_in_range(name):
    image = sample_image(name)
    assert image.ndim == 2 and image.dtype == torch.float32
    assert max(image.shape) <= 128 and min(image.shape) > 16
    assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    assert image.std().item() > 0.01  # a picture, not a flat field


def test_sample_image_keeps_the_aspect_ratio():
    assert tuple(sample_image("coins").shape) == (101, 128)  # coins is 303 x 384


def test_unknown_sample_image_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown sample image 'lena'.*camera"):
        sample_image("lena")
