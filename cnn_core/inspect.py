"""Looking inside a trained model: kernels, feature maps, predictions, confusion, mistakes, saliency.

Pure functions: a model (an `nn.Sequential` of named layers with `input_size`, in eval mode) and tensors
in, numpy arrays out. Nothing here changes the model: no hooks, no train/eval switch, no `.grad` on its
parameters, so many sessions can share one model object and call these at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.data import DatasetInfo, Split, normalize
from cnn_core.models.registry import outputs_probabilities

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _require_eval(model: nn.Module) -> None:
    """Inspection never switches a (possibly shared) model's mode: in training mode its batch norm would
    update running statistics and dropout would drop at random, so refuse with what to do."""
    if model.training:
        raise ValueError("Inspection needs a model in eval mode: call model.eval() once after building or loading it.")


def _forward(model: nn.Sequential, x: torch.Tensor, keep: frozenset[str] = frozenset()
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Walk the children in order: x (B, C, S, S) → (logits, {name: that child's output} for names in `keep`).

    A kept output is the tensor itself (so autograd can differentiate with respect to it); the rest of the
    forward goes on with a copy, since the next layer may work in place."""
    kept: dict[str, torch.Tensor] = {}
    for name, child in model.named_children():
        x = child(x)
        if name in keep:
            kept[name], x = x, x.clone()
    return x, kept


def _layer_outputs(model: nn.Sequential, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Forward x once without autograd, keeping the output of each named child in `layers`."""
    children = dict(model.named_children())
    unknown = [name for name in layers if name not in children]
    if unknown:
        raise ValueError(f"Unknown layer(s) {unknown}: choose from {list(children)}.")
    _require_eval(model)
    with torch.inference_mode():
        _, kept = _forward(model, x.to(_device(model)), frozenset(layers))
    return kept


def conv_layers(model: nn.Sequential) -> list[str]:
    """Names of the Conv2d children, in order."""
    return [name for name, m in model.named_children() if isinstance(m, nn.Conv2d)]


def inspectable_layers(model: nn.Sequential) -> list[str]:
    """Names of the conv, activation and pooling children whose output is an image stack (B, C, H, W)."""
    candidates = [name for name, m in model.named_children() if isinstance(m, (nn.Conv2d, *ACTIVATIONS, *POOLS))]
    blank = torch.zeros(1, 1, model.input_size, model.input_size)
    outputs = _layer_outputs(model, blank, candidates)
    return [name for name in candidates if outputs[name].dim() == 4]


def kernels(model: nn.Sequential, layer: str, reduce: str = "none") -> np.ndarray:
    """A conv layer's weights: (C_out, C_in, kH, kW), or (C_out, kH, kW) with reduce="mean" over inputs."""
    conv = dict(model.named_children()).get(layer)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"{layer!r} is not a conv layer: choose from {conv_layers(model)}.")
    if reduce not in ("none", "mean"):
        raise ValueError(f"reduce must be 'none' or 'mean', not {reduce!r}.")
    weights = conv.weight.detach().cpu().numpy()
    return weights.mean(axis=1) if reduce == "mean" else weights


def kernel_grid(arr: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile kernels into one 2-D array with NaN gaps of `pad` between tiles.

    (N, kH, kW): N tiles, `ncols` (default ⌈√N⌉) per row. (C_out, C_in, kH, kW): one row per
    output channel, one column per input channel by default.
    """
    if arr.ndim == 4:
        ncols = ncols or arr.shape[1]
        arr = arr.reshape(-1, *arr.shape[2:])
    n, kh, kw = arr.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (kh + pad) - pad, ncols * (kw + pad) - pad), np.nan, dtype=np.float32)
    for i, kernel in enumerate(arr):
        top, left = (i // ncols) * (kh + pad), (i % ncols) * (kw + pad)
        grid[top : top + kh, left : left + kw] = kernel
    return grid


def input_templates(model: nn.Sequential, limit: int = 64) -> tuple[str, np.ndarray] | None:
    """An MLP's first layer, one image per hidden unit: (name, (N ≤ limit, S, S)) weights over the input
    pixels, the pattern each unit responds to. None when the model starts with a conv layer."""
    for name, m in model.named_children():
        if isinstance(m, nn.Conv2d):
            return None
        if isinstance(m, nn.Linear):
            side = model.input_size
            if m.in_features != side * side:
                return None
            return name, m.weight.detach()[:limit].reshape(-1, side, side).float().cpu().numpy()
    return None


def symmetric_limit(arr: np.ndarray) -> float:
    """max |value| ignoring NaN: the ± range of a diverging colour scale centred at 0."""
    return float(np.nanmax(np.abs(arr)))


def feature_maps(model: nn.Sequential, image: torch.Tensor, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """One normalized image (1, 1, S, S) → {layer: (C, H, W)} for `layers` (default: `inspectable_layers`)."""
    layers = inspectable_layers(model) if layers is None else layers
    outputs = _layer_outputs(model, image, layers)
    return {name: outputs[name][0].float().cpu().numpy() for name in layers}


def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Normalized images (B, 1, S, S) → class probabilities (B, 10) (a model that ends in a softmax gives
    them itself)."""
    _require_eval(model)
    with torch.inference_mode():
        out = model(x.to(_device(model))).float()
        return (out if outputs_probabilities(model) else F.softmax(out, dim=1)).cpu().numpy()


def evaluate_predictions(
    model: nn.Module, images_normalized: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Normalized images (N, 1, S, S) with their (N,) labels → predictions (N,) and probabilities (N, 10)."""
    if len(images_normalized) != len(labels):
        raise ValueError(f"{len(images_normalized)} images but {len(labels)} labels.")
    probs = np.concatenate([predict(model, batch) for batch in images_normalized.split(batch_size)])
    return probs.argmax(axis=1), probs


def split_predictions(model: nn.Module, info: DatasetInfo, split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model on a split of uint8 images (N, 28, 28) → labels (N,), predictions (N,), probabilities (N, K)."""
    x = normalize(split.images, info.mean, info.std, model.input_size)
    preds, probs = evaluate_predictions(model, x, split.labels)
    return split.labels.numpy(), preds, probs


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(N,) true and predicted classes → (num_classes, num_classes) int64 counts, rows true, columns predicted."""
    labels, preds = np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    counts = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Confusion matrix → (num_classes,) recall of each true class; NaN for a class with no examples."""
    totals = cm.sum(axis=1)
    return np.divide(np.diag(cm), totals, out=np.full(len(cm), np.nan), where=totals > 0)


def mistakes(
    labels: np.ndarray,
    preds: np.ndarray,
    probs: np.ndarray,
    true_class: int | None = None,
    pred_class: int | None = None,
    limit: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """Wrong predictions, optionally of one true and/or predicted class, most confident first.

    Returns up to `limit` indices (K,) and the probability each gave its wrong prediction (K,).
    """
    labels, preds = np.asarray(labels), np.asarray(preds)
    wrong = labels != preds
    if true_class is not None:
        wrong &= labels == true_class
    if pred_class is not None:
        wrong &= preds == pred_class
    idx = np.nonzero(wrong)[0]
    confidence = np.asarray(probs)[idx, preds[idx]]
    order = np.argsort(-confidence, kind="stable")[:limit]
    return idx[order], confidence[order]


def _score(logits: torch.Tensor, target: int | None) -> torch.Tensor:
    """The logit of `target`, or of the predicted class when None, for a batch of one."""
    return logits[0, int(logits.argmax(1)) if target is None else target]


def _grad_x_input(model: nn.Sequential, x: torch.Tensor, target: int | None) -> torch.Tensor:
    """|gradient × ink| (S, S), the ink being the input minus its background (its minimum)."""
    x = x.requires_grad_()
    logits, _ = _forward(model, x)
    (grad,) = torch.autograd.grad(_score(logits, target), x)
    return (grad * (x - x.min()))[0, 0].abs()


def _gradcam(model: nn.Sequential, x: torch.Tensor, target: int | None) -> torch.Tensor:
    """Grad-CAM (S, S) on the last conv layer's output, upsampled bilinearly to the input size."""
    layers = conv_layers(model)
    if not layers:
        raise ValueError("Grad-CAM needs a model with a conv layer.")
    logits, kept = _forward(model, x.requires_grad_(), frozenset(layers[-1:]))
    activation = kept[layers[-1]]  # (1, C, H, W)
    (grad,) = torch.autograd.grad(_score(logits, target), activation)
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * activation).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]


SALIENCY_METHODS = {"grad_x_input": _grad_x_input, "gradcam": _gradcam}


def saliency(
    model: nn.Sequential, x: torch.Tensor, target: int | None = None, method: str = "grad_x_input"
) -> np.ndarray:
    """Where one normalized image (1, 1, S, S) drove the `target` logit (default: the predicted class).

    Returns an (S, S) map in [0, 1]; `method` is one of SALIENCY_METHODS. Gradients are taken with respect
    to the input (and Grad-CAM's activation) only: the parameters' `.grad` stays untouched.
    """
    if method not in SALIENCY_METHODS:
        raise ValueError(f"method must be one of {list(SALIENCY_METHODS)}, not {method!r}.")
    _require_eval(model)
    with torch.enable_grad():
        heat = SALIENCY_METHODS[method](model, x.detach().clone().to(_device(model)), target)
    heat = heat.detach().float().cpu().numpy()
    return heat / heat.max() if heat.max() > 0 else heat
