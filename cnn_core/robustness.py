"""How robust is a prediction: the drawing shifted, rotated, scaled, thickened or thinned, and noised, and the class
probabilities as one of these sweeps its range.

The transforms work on the 28x28 field the drawing was centred in (`DrawingSteps.centered`, ink = 1), so a pixel
is an MNIST pixel whatever the model's input size; each result is stored as MNIST stores a digit (0-255) and
prepared as training prepares one (`cnn_core.data.normalize`). A whole sweep is one batched forward. Pure
functions: the model is only read (`cnn_core.inspect.predict`), so any number of sessions may share it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.data import DatasetInfo, normalize
from cnn_core.inspect import predict


@dataclass(frozen=True)
class Perturbation:
    """What is done to a drawing, in this order: thicken or thin, scale and rotate about the centre, shift, noise."""

    shift_x: int = 0  # pixels to the right (negative: left)
    shift_y: int = 0  # pixels down (negative: up)
    rotate: float = 0.0  # degrees, counter-clockwise as seen
    scale: float = 1.0  # 2.0 twice as big
    thickness: int = 0  # 3x3 dilations (each widens a stroke by 2 pixels); negative: erosions
    noise: float = 0.0  # standard deviation of Gaussian noise added to the ink (0-1), clipped to [0, 1]
    seed: int = 0  # the noise's pattern: one seed, one pattern, scaled by `noise`


@dataclass(frozen=True)
class Sweep:
    """One transform's range: the Perturbation field it sets, its slider's bounds and step, and its unit."""

    field: str
    low: float
    high: float
    step: float
    unit: str

    def values(self) -> np.ndarray:
        """(steps,) every value from low to high."""
        return np.round(np.arange(self.low, self.high + self.step / 2, self.step), 6)


SWEEPS: dict[str, Sweep] = {
    "shift right": Sweep("shift_x", -10, 10, 1, "px"),
    "shift down": Sweep("shift_y", -10, 10, 1, "px"),
    "rotate": Sweep("rotate", -90, 90, 5, "°"),
    "scale": Sweep("scale", 0.4, 1.6, 0.05, "×"),
    "thickness": Sweep("thickness", -2, 3, 1, "px steps"),
    "noise": Sweep("noise", 0, 1, 0.05, "σ"),
}


def perturb(images: torch.Tensor, perturbations: Sequence[Perturbation]) -> torch.Tensor:
    """(B, H, W) float ink in [0, 1], one Perturbation per image → (B, H, W) in [0, 1]."""
    if len(images) != len(perturbations):
        raise ValueError(f"{len(images)} images but {len(perturbations)} perturbations.")
    x = images.float().unsqueeze(1)  # (B, 1, H, W)
    x = _thickness(x, torch.tensor([p.thickness for p in perturbations]))
    x = _rotate_scale(x, torch.tensor([p.rotate for p in perturbations], dtype=torch.float64),
                      torch.tensor([p.scale for p in perturbations], dtype=torch.float64))
    x = torch.stack([shift(image, p.shift_x, p.shift_y) for image, p in zip(x, perturbations, strict=True)])
    noise = torch.stack([p.noise * torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(p.seed))
                         for p in perturbations])
    return (x + noise).clamp(0, 1).squeeze(1)


def shift(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """(..., H, W) moved `dx` pixels right and `dy` down; what leaves the field is lost, what enters is 0."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        image[..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return out


def _thickness(x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) with image i dilated steps[i] times by a 3x3 max (a negative count: eroded by a 3x3 min)."""
    out = x.clone()
    for n in steps.unique().tolist():
        rows = steps == n
        y = x[rows]
        for _ in range(abs(n)):
            y = F.max_pool2d(y, 3, 1, 1) if n > 0 else -F.max_pool2d(-y, 3, 1, 1)
        out[rows] = y
    return out


def _rotate_scale(x: torch.Tensor, degrees: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) each rotated counter-clockwise by degrees[i] and scaled by scale[i] about the centre (bilinear;
    the border fills with 0). Images neither rotated nor scaled are returned as they are."""
    moved = (degrees != 0) | (scale != 1)
    if not moved.any():
        return x
    angle = degrees[moved] * (math.pi / 180)
    cos, sin = torch.cos(angle) / scale[moved], torch.sin(angle) / scale[moved]
    # affine_grid maps each output pixel to where it samples the input (x right, y down): the inverse rotation
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1).float()
    grid = F.affine_grid(theta, [int(moved.sum()), *x.shape[1:]], align_corners=False)
    out = x.clone()
    out[moved] = F.grid_sample(x[moved], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out


def model_inputs(images: torch.Tensor, input_size: int, mean: float, std: float) -> torch.Tensor:
    """(B, 28, 28) ink in [0, 1] → (B, 1, S, S) normalized, each stored as 0-255 first (as `preprocess` does)."""
    return normalize(torch.round(images * 255), mean, std, input_size)


def probabilities(model: nn.Module, info: DatasetInfo, centered: np.ndarray,
                  perturbations: Sequence[Perturbation]) -> tuple[np.ndarray, np.ndarray]:
    """The (28, 28) drawing under each perturbation → (the images (B, 28, 28) in [0, 1], probabilities (B, K)),
    in one forward."""
    images = perturb(torch.as_tensor(np.asarray(centered, dtype=np.float32)).expand(len(perturbations), -1, -1),
                     perturbations)
    probs = predict(model, model_inputs(images, model.input_size, info.mean, info.std))
    return images.numpy(), probs


def sweep(model: nn.Module, info: DatasetInfo, centered: np.ndarray, name: str,
          values: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (28, 28) drawing with transform `name` (a key of SWEEPS) at each value of its range, the others off →
    (values (steps,), images (steps, 28, 28), probabilities (steps, K)), in one forward."""
    if name not in SWEEPS:
        raise ValueError(f"Unknown transform {name!r}: choose one of {', '.join(SWEEPS)}.")
    spec = SWEEPS[name]
    values = spec.values() if values is None else np.asarray(values, dtype=float)
    kind = type(getattr(Perturbation(), spec.field))
    images, probs = probabilities(model, info, centered,
                                  [replace(Perturbation(), **{spec.field: kind(v)}) for v in values])
    return values, images, probs
