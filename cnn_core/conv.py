"""Convolution lab math: convolution and pooling by hand, kernels, sample photos, learning a kernel.

The `*_by_hand` functions loop over output positions on purpose: they are what students read,
and the tests check them against torch.nn.functional as the reference.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import skimage.data
import skimage.util
import torch
import torch.nn.functional as F

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
    """An int or an (h, w) tuple as an (h, w) tuple."""
    return (value, value) if isinstance(value, int) else tuple(value)


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis of a convolution or pooling: ⌊(n + 2p − d(k−1) − 1) / s⌋ + 1."""
    size = (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if size < 1:
        raise ValueError(
            f"a kernel spanning {dilation * (kernel - 1) + 1} pixels does not fit in an input of "
            f"{n} pixels padded by {padding} on each side; use a smaller kernel or dilation, or more padding"
        )
    return size


def output_size_formula(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> str:
    """`output_size` as a formula with the numbers filled in, for display."""
    size = output_size(n, kernel, stride, padding, dilation)
    return f"⌊({n} + 2·{padding} − {dilation}·({kernel}−1) − 1) / {stride}⌋ + 1 = {size}"


def cross_correlate_by_hand(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """What F.conv2d computes, one output position at a time (zero padding).
    x (B, C_in, H, W), w (C_out, C_in, kH, kW), bias (C_out,) -> (B, C_out, H_out, W_out)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    c_out, _, kh, kw = w.shape
    n_rows = output_size(x.shape[2], kh, sh, ph, dh)
    n_cols = output_size(x.shape[3], kw, sw, pw, dw)
    x = F.pad(x, (pw, pw, ph, ph))  # zeros around the border: (B, C_in, H + 2ph, W + 2pw)
    out = x.new_zeros(x.shape[0], c_out, n_rows, n_cols)
    for i in range(n_rows):
        for j in range(n_cols):
            top, left = i * sh, j * sw
            # the pixels under the kernel: every dh-th row and dw-th column from (top, left)
            patch = x[:, :, top : top + dh * (kh - 1) + 1 : dh, left : left + dw * (kw - 1) + 1 : dw]
            # for each output channel: multiply its kernel with the patch and add everything up
            out[:, :, i, j] = (patch[:, None] * w[None]).sum(dim=(2, 3, 4))  # (B, C_out)
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def pool_by_hand(
    x: torch.Tensor, kernel: IntPair, stride: IntPair | None = None, mode: Literal["max", "avg"] = "max"
) -> torch.Tensor:
    """What nn.MaxPool2d / nn.AvgPool2d compute (no padding), one window at a time.
    x (B, C, H, W) -> (B, C, H_out, W_out); stride defaults to the kernel size."""
    if mode not in ("max", "avg"):
        raise ValueError(f"unknown pooling mode {mode!r}; choose 'max' or 'avg'")
    (kh, kw), (sh, sw) = _pair(kernel), _pair(kernel if stride is None else stride)
    n_rows, n_cols = output_size(x.shape[2], kh, sh), output_size(x.shape[3], kw, sw)
    out = x.new_zeros(x.shape[0], x.shape[1], n_rows, n_cols)
    for i in range(n_rows):
        for j in range(n_cols):
            window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]  # (B, C, kH, kW)
            out[:, :, i, j] = window.amax(dim=(2, 3)) if mode == "max" else window.mean(dim=(2, 3))
    return out


KERNELS: dict[str, torch.Tensor] = {
    "identity": torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
    "edge": torch.tensor([[1.0, -1.0]]),  # horizontal difference of neighbouring pixels
    "sobel_x": torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]),
    "sobel_y": torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]),
    "laplacian": torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "box_blur": torch.full((3, 3), 1.0 / 9.0),
    "sharpen": torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
}
KERNEL_NAMES: list[str] = [*KERNELS, "gaussian"]


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """A (size, size) Gaussian blur kernel centred in the middle, summing to 1."""
    if size < 1 or sigma <= 0:
        raise ValueError(f"a Gaussian kernel needs size >= 1 and sigma > 0, got size={size}, sigma={sigma}")
    offsets = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    bell = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = torch.outer(bell, bell)
    return kernel / kernel.sum()


def make_kernel(name: str, **kw: float) -> torch.Tensor:
    """A named (kH, kW) kernel, fresh each call; "gaussian" takes size= and sigma=, the others nothing."""
    if name == "gaussian":
        return gaussian_kernel(**kw)
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose from {KERNEL_NAMES}")
    if kw:
        raise ValueError(f"kernel {name!r} takes no parameters, got {sorted(kw)}")
    return KERNELS[name].clone()


LUMA = torch.tensor([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray's weights; they sum to 1


def to_grayscale(image: torch.Tensor) -> torch.Tensor:
    """RGB (H, W, 3) -> grayscale (H, W) as a weighted sum of the channels (LUMA)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {tuple(image.shape)}")
    return image @ LUMA.to(image.dtype)


def convolve_image(
    image: torch.Tensor | np.ndarray,
    kernel: torch.Tensor | np.ndarray,
    padding: IntPair | Literal["same"] = 0,
    stride: IntPair = 1,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """Cross-correlate one image (H, W) with a kernel (kH, kW) via F.conv2d -> (H_out, W_out).
    An RGB image (H, W, 3) is turned to grayscale first (`to_grayscale`)."""
    image = torch.as_tensor(image, dtype=torch.float32)
    if image.ndim == 3:
        image = to_grayscale(image)
    kernel = torch.as_tensor(kernel, dtype=torch.float32)
    out = F.conv2d(image[None, None], kernel[None, None], stride=stride, padding=padding, dilation=dilation)
    return out[0, 0]


@dataclass
class KernelStep:
    """One step of `learn_kernel`: the kernel after `step` updates and its loss."""

    step: int
    loss: float
    kernel: torch.Tensor  # (kH, kW), detached


def learn_kernel(
    target_kernel: torch.Tensor | Sequence[Sequence[float]] = ((1.0, -1.0),),
    steps: int = 300,
    lr: float = 0.02,
    n_images: int = 8,
    image_size: int = 16,
    seed: int = 0,
) -> Iterator[KernelStep]:
    """Recover a hidden (kH, kW) kernel from random images and what it makes of them,
    by gradient descent on the mean squared error; yields a KernelStep per step."""
    target = torch.as_tensor(target_kernel, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 1, image_size, image_size, generator=generator)  # (N, 1, S, S)
    wanted = F.conv2d(images, target[None, None])  # (N, 1, S - kH + 1, S - kW + 1)
    kernel = torch.randn(target.shape, generator=generator).requires_grad_()
    for step in range(steps):
        loss = F.mse_loss(F.conv2d(images, kernel[None, None]), wanted)
        yield KernelStep(step, loss.item(), kernel.detach().clone())
        loss.backward()
        with torch.no_grad():
            kernel -= lr * kernel.grad
        kernel.grad = None


SAMPLE_IMAGES: list[str] = [
    "camera", "coins", "moon", "text", "checkerboard",  # grayscale already
    "astronaut", "chelsea", "coffee",  # RGB, turned to grayscale
]


def sample_image(name: str, max_size: int = 128) -> torch.Tensor:
    """A photo from skimage.data as grayscale float32 (H, W) in [0, 1], its longer side at most max_size."""
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown sample image {name!r}; choose from {SAMPLE_IMAGES}")
    image = torch.from_numpy(skimage.util.img_as_float32(getattr(skimage.data, name)()))
    if image.ndim == 3:
        image = to_grayscale(image)
    scale = min(1.0, max_size / max(image.shape))
    size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    return F.interpolate(image[None, None], size=size, mode="area")[0, 0]  # area: averages, no aliasing
