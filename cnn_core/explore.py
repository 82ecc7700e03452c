"""What the Learn pages compute: data-set statistics, and the convolution lab's experiments.

Pure functions, no UI. Data statistics take uint8 images (N, H, W) and labels (N,), torch or numpy,
and return numpy arrays. The lab functions wrap `cnn_core.conv` (which does the convolving) with
what a lesson shows next to it: the output-size formula, timings, differences, per-channel sums.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import skimage.data
import skimage.util
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core import conv
from cnn_core.data import Split

ArrayLike = torch.Tensor | np.ndarray

# ---------------------------------------------------------------- data-set statistics


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def class_counts(labels: ArrayLike, n_classes: int) -> np.ndarray:
    """labels (N,) with values in 0..n_classes-1 -> counts (n_classes,) int64, summing to N."""
    labels = _numpy(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels run from {labels.min()} to {labels.max()}, outside 0..{n_classes - 1}")
    return np.bincount(labels, minlength=n_classes).astype(np.int64)


def mean_images(images: ArrayLike, labels: ArrayLike, n_classes: int) -> np.ndarray:
    """uint8 images (N, H, W), labels (N,) -> the mean image of each class (n_classes, H, W), float64 in [0, 1].
    A class without images is all NaN."""
    images, labels = _numpy(images), _numpy(labels)
    means = np.full((n_classes, *images.shape[1:]), np.nan)
    for k in range(n_classes):
        members = images[labels == k]
        if len(members):
            means[k] = members.mean(axis=0, dtype=np.float64) / 255.0
    return means


def pixel_histogram(images: ArrayLike, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) -> (counts (bins,) int64 summing to N·H·W, edges (bins + 1,) in pixel values 0..256).
    `bins` must divide 256, so every bin holds the same number of pixel values."""
    if bins < 1 or 256 % bins:
        raise ValueError(f"bins must divide 256 (1, 2, 4, …, 256), got {bins}")
    per_value = np.bincount(_numpy(images).ravel(), minlength=256)  # (256,) how many pixels have each value
    width = 256 // bins
    return per_value.reshape(bins, width).sum(axis=1).astype(np.int64), np.arange(0, 257, width)


@dataclass(frozen=True)
class NormStats:
    """Mean and (population) standard deviation of all pixel values scaled to [0, 1]."""

    mean: float
    std: float
    n_pixels: int


def normalization_stats(images: ArrayLike) -> NormStats:
    """uint8 images (N, H, W) -> mean and std of every pixel / 255, exact, computed from the 256-value histogram
    (no float copy of the whole data set)."""
    counts, _ = pixel_histogram(images)
    values = np.arange(256) / 255.0
    n = int(counts.sum())
    if n == 0:
        raise ValueError("no pixels to compute statistics from")
    mean = float((values * counts).sum() / n)
    std = float(np.sqrt((((values - mean) ** 2) * counts).sum() / n))
    return NormStats(mean, std, n)


def samples_per_class(images: ArrayLike, labels: ArrayLike, n_classes: int, per_class: int,
                      seed: int = 0) -> np.ndarray:
    """A random pick of each class: (n_classes, m, H, W) with m = min(per_class, the smallest class's count)."""
    images, labels = _numpy(images), _numpy(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    members = [order[labels[order] == k] for k in range(n_classes)]  # shuffled indices of each class
    m = min(per_class, *(len(idx) for idx in members))
    return np.stack([images[idx[:m]] for idx in members])


@dataclass
class DataOverview:
    """Everything the Data page shows about one data set, computed once."""

    counts: dict[str, np.ndarray]  # split -> (n_classes,)
    mean_images: np.ndarray  # (n_classes, H, W) in [0, 1], training set
    histogram: np.ndarray  # (256,) pixels per value 0..255, training set
    stats: NormStats  # training set


def data_overview(splits: dict[str, Split], n_classes: int) -> DataOverview:
    """{'train', 'test'} splits -> class counts of each, and the training set's mean images, histogram, stats."""
    train = splits["train"]
    return DataOverview(
        counts={name: class_counts(split.labels, n_classes) for name, split in splits.items()},
        mean_images=mean_images(train.images, train.labels, n_classes),
        histogram=pixel_histogram(train.images)[0],
        stats=normalization_stats(train.images),
    )


# ---------------------------------------------------------------- convolution lab


def parse_kernel(cells: Sequence[Sequence[object]]) -> torch.Tensor:
    """A grid of cells typed by a student (numbers, or text such as '-1', '0.5', '1/9') -> (kH, kW) float32.
    A cell that is empty or not a number raises ValueError with a sentence naming it."""
    rows = [list(row) for row in cells]
    if not rows or not rows[0] or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("The custom kernel needs a rectangular grid of at least one number.")
    values = [[_cell_value(cell, i, j) for j, cell in enumerate(row)] for i, row in enumerate(rows)]
    return torch.tensor(values, dtype=torch.float32)


def _cell_value(cell: object, i: int, j: int) -> float:
    where = f"Row {i + 1}, column {j + 1} of the custom kernel"
    hint = "type a number such as 1, -0.5 or 1/9"
    text = "" if cell is None else str(cell).strip()
    if text == "" or text.lower() in ("nan", "none"):
        raise ValueError(f"{where} is empty: {hint}.")
    try:
        value = float(Fraction(text.replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{where} is {text!r}, which is not a number: {hint}.") from None
    return value


@dataclass
class ConvolutionLesson:
    """One convolution with its output size worked out by the formula, for comparison."""

    output: torch.Tensor  # (H_out, W_out)
    rows_formula: str  # output_size_formula along the rows, ending in "= H_out"
    cols_formula: str
    predicted: tuple[int, int]  # what the formula says (H_out, W_out) is


def convolve_with_formula(image: torch.Tensor, kernel: torch.Tensor, padding: int = 0, stride: int = 1,
                          dilation: int = 1) -> ConvolutionLesson:
    """image (H, W), kernel (kH, kW) -> F.conv2d's output and the formula's prediction of its shape.
    ValueError (a sentence) when the kernel does not fit in the padded image."""
    (h, w), (kh, kw) = image.shape, kernel.shape
    predicted = (conv.output_size(h, kh, stride, padding, dilation), conv.output_size(w, kw, stride, padding, dilation))
    return ConvolutionLesson(
        output=conv.convolve_image(image, kernel, padding=padding, stride=stride, dilation=dilation),
        rows_formula=conv.output_size_formula(h, kh, stride, padding, dilation),
        cols_formula=conv.output_size_formula(w, kw, stride, padding, dilation),
        predicted=predicted,
    )


def shrink(image: torch.Tensor, max_side: int) -> torch.Tensor:
    """(..., H, W) -> (..., H', W') with the longer side at most max_side (area averaging), aspect ratio kept."""
    h, w = image.shape[-2:]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image.reshape(-1, 1, h, w), size=size, mode="area").reshape(*image.shape[:-2], *size)


def _best_time(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[torch.Tensor, float]:
    """fn's result and its fastest wall time in seconds over `repeats` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


@dataclass
class HandVsTorch:
    """The same cross-correlation computed by the hand loop and by F.conv2d."""

    image: torch.Tensor  # (H, W), the (shrunken) input both saw
    by_hand: torch.Tensor  # (H_out, W_out)
    by_torch: torch.Tensor  # (H_out, W_out)
    max_abs_diff: float
    hand_seconds: float  # one call
    torch_seconds: float  # fastest of several calls after a warm-up


def hand_vs_conv2d(image: torch.Tensor, kernel: torch.Tensor, padding: int = 0, stride: int = 1,
                   dilation: int = 1, max_side: int = 28) -> HandVsTorch:
    """image (H, W) shrunk to max_side, kernel (kH, kW) -> both outputs, their largest difference and timings."""
    small = shrink(image.float(), max_side)
    x, w = small[None, None], kernel.float()[None, None]  # (1, 1, H, W), (1, 1, kH, kW)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    by_hand, hand_seconds = _best_time(lambda: conv.cross_correlate_by_hand(x, w, **kw), repeats=1)
    F.conv2d(x, w, **kw)  # warm-up: the first call pays for setting up
    by_torch, torch_seconds = _best_time(lambda: F.conv2d(x, w, **kw), repeats=5)
    return HandVsTorch(small, by_hand[0, 0], by_torch[0, 0], float((by_hand - by_torch).abs().max()),
                       hand_seconds, torch_seconds)


RGB_SAMPLES: list[str] = ["astronaut", "chelsea", "coffee"]
SQUARE_KERNELS: list[str] = [name for name, k in conv.KERNELS.items() if k.shape == (3, 3)]


def sample_rgb(name: str, max_size: int = 64) -> torch.Tensor:
    """A colour photo from skimage.data as float32 (3, H, W) in [0, 1], its longer side at most max_size."""
    if name not in RGB_SAMPLES:
        raise ValueError(f"unknown colour sample {name!r}; choose from {RGB_SAMPLES}")
    return shrink(torch.from_numpy(skimage.util.img_as_float32(getattr(skimage.data, name)())).permute(2, 0, 1),
                  max_size)


def kernel_bank(names: Sequence[str], in_channels: int) -> torch.Tensor:
    """K named 3x3 kernels -> weight (K, C, 3, 3): kernel k on every input channel, divided by C,
    so that on a gray image (all channels equal) output k is that kernel's response."""
    if not names:
        raise ValueError("Pick at least one kernel.")
    return torch.stack([conv.make_kernel(n).expand(in_channels, -1, -1) / in_channels for n in names])


def random_kernels(out_channels: int, in_channels: int, size: int = 3, seed: int = 0) -> torch.Tensor:
    """Seeded standard-normal weights (K, C, size, size), scaled by 1/sqrt(C·size²) like a fresh layer."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out_channels, in_channels, size, size, generator=g) / (in_channels * size * size) ** 0.5


@dataclass
class MultiChannelConv:
    """out[k] = Σ_c x[c] ⋆ w[k, c] + b[k], with every term kept."""

    x: torch.Tensor  # (1, C, H, W)
    weight: torch.Tensor  # (K, C, kH, kW)
    bias: torch.Tensor  # (K,)
    contributions: torch.Tensor  # (K, C, H_out, W_out): x[c] ⋆ w[k, c]
    output: torch.Tensor  # (1, K, H_out, W_out) = F.conv2d(x, weight, bias)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(getattr(self, name).shape) for name in ("x", "weight", "bias", "contributions", "output")}


def multi_channel_conv(image: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                       padding: int = 0) -> MultiChannelConv:
    """image (C, H, W), weight (K, C, kH, kW), bias (K,) -> F.conv2d's output and each channel's share of it."""
    if image.shape[0] != weight.shape[1]:
        raise ValueError(f"the image has {image.shape[0]} channels but the kernels expect {weight.shape[1]}")
    bias = torch.zeros(weight.shape[0]) if bias is None else bias
    x = image[None]
    per_channel = [F.conv2d(x[:, c : c + 1], weight[:, c : c + 1], padding=padding)[0] for c in range(x.shape[1])]
    return MultiChannelConv(x, weight, bias, torch.stack(per_channel, dim=1),
                            F.conv2d(x, weight, bias, padding=padding))


@dataclass
class PoolingComparison:
    """Max and average pooling of one feature map, by nn.MaxPool2d / nn.AvgPool2d, checked by hand."""

    feature_map: torch.Tensor  # (H, W)
    max_pooled: torch.Tensor  # (H_out, W_out)
    avg_pooled: torch.Tensor  # (H_out, W_out)
    max_diff: float  # largest |by hand - torch| for max pooling
    avg_diff: float


def compare_pooling(feature_map: torch.Tensor, kernel: int = 2, stride: int | None = None) -> PoolingComparison:
    """feature_map (H, W) -> max and average pooled maps (H_out, W_out) and the hand versions' largest differences."""
    x = feature_map.float()[None, None]  # (1, 1, H, W)
    pooled = {mode: pool(kernel, stride)(x) for mode, pool in (("max", nn.MaxPool2d), ("avg", nn.AvgPool2d))}
    diffs = {mode: float((conv.pool_by_hand(x, kernel, stride, mode=mode) - out).abs().max())
             for mode, out in pooled.items()}
    return PoolingComparison(x[0, 0], pooled["max"][0, 0], pooled["avg"][0, 0], diffs["max"], diffs["avg"])


@dataclass
class KernelLearning:
    """A run of `conv.learn_kernel`: losses and the kernel at every step."""

    target: np.ndarray  # (kH, kW), the hidden kernel
    losses: np.ndarray  # (T,)
    kernels: np.ndarray  # (T, kH, kW)

    @property
    def learned(self) -> np.ndarray:
        return self.kernels[-1]

    @property
    def max_error(self) -> float:
        """Largest |learned - hidden| over the kernel's entries."""
        return float(np.abs(self.learned - self.target).max())


def learn_hidden_kernel(target: torch.Tensor, steps: int = 300, lr: float = 0.02, seed: int = 0) -> KernelLearning:
    """Run gradient descent (conv.learn_kernel) to the end on the hidden kernel target (kH, kW)."""
    history = list(conv.learn_kernel(target, steps=steps, lr=lr, seed=seed))
    return KernelLearning(target.float().numpy(), np.array([s.loss for s in history]),
                          np.stack([s.kernel.numpy() for s in history]))
