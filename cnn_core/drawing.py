"""Drawing → model input, the way MNIST was made: crop, fit 20x20, centre of mass at the centre of 28x28.

Every step is kept (`DrawingSteps`) so a page can show what the model really sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from cnn_core.data import normalize

BLANK_THRESHOLD = 0.001  # fraction of inked pixels below which a drawing is blank
FAINT = 0.05  # ink below this is background when cropping
FIT = 20  # MNIST fitted each digit in a 20x20 box …
FIELD = 28  # … inside a 28x28 field
CANVAS_SIDE = 280  # the canvas a pen width is meant for (the Draw page's on a desktop), in CSS pixels


@dataclass
class DrawingSteps:
    """Each step of `preprocess` as float32 arrays in [0, 1] (ink = 1), and the model input."""

    gray: np.ndarray  # (H, W) the drawing
    cropped: np.ndarray  # (h, w) the ink's bounding box
    fitted: np.ndarray  # (≤20, ≤20) scaled to fit 20x20, aspect ratio kept
    centered: np.ndarray  # (28, 28) centre of mass at the centre
    resized: np.ndarray  # (S, S) what the model sees, before normalization
    tensor: torch.Tensor  # (1, 1, S, S) normalized

    def steps(self) -> list[tuple[str, np.ndarray]]:
        """(title, array) pairs in order, for display."""
        size = self.resized.shape[0]
        return [
            ("drawing", self.gray),
            ("cropped to the ink", self.cropped),
            (f"fitted in {FIT}x{FIT}", self.fitted),
            (f"centred in {FIELD}x{FIELD}", self.centered),
            (f"model input {size}x{size}", self.resized),
        ]


def scaled_stroke(width: float, side: int, reference: int = CANVAS_SIDE) -> float:
    """A pen `width` meant for a `reference`-px canvas → the width on a canvas of `side` px (the same fraction of
    the canvas), so that `preprocess`, which crops to the ink and fits it in 20x20, sees the same digit at any size."""
    return width * side / reference


def canvas_to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) image, uint8 or float in [0, 1] → float32 (H, W) in [0, 1], ink = 1.

    Where any pixel is transparent, alpha is the ink (strokes on a transparent layer); otherwise
    the luminance is, inverted when the background is light (dark strokes on white).
    """
    arr = np.asarray(image)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"Expected a gray, RGB or RGBA image, got an array of shape {arr.shape}.")
    scale = np.float32(255 if arr.dtype.kind in "ui" or arr.max() > 1 else 1)
    if arr.ndim == 3 and arr.shape[2] == 4 and (arr[..., 3] < scale).any():
        return (arr[..., 3] / scale).astype(np.float32)
    if arr.ndim == 3:
        arr = arr[..., 0] * np.float32(0.299) + arr[..., 1] * np.float32(0.587) + arr[..., 2] * np.float32(0.114)
    gray = (arr / scale).astype(np.float32)
    return 1 - gray if (gray > 0.5).mean() > 0.5 else gray  # mostly light: dark strokes on white


def is_blank(gray: np.ndarray, threshold: float = BLANK_THRESHOLD) -> bool:
    """True when less than `threshold` of the (H, W) image's pixels are inked (> 0.5)."""
    return bool((gray > 0.5).mean() < threshold)


def preprocess(image: np.ndarray, input_size: int = 28, mean: float = 0.1307, std: float = 0.3081) -> DrawingSteps:
    """A canvas image (see `canvas_to_gray`) → every step up to the normalized (1, 1, S, S) tensor.

    Raises ValueError, with a sentence for the user, when the drawing is blank.
    """
    gray = canvas_to_gray(image)
    if is_blank(gray):
        raise ValueError("The canvas is blank: draw a digit, then try again.")
    rows, cols = np.nonzero((gray > FAINT).any(1))[0], np.nonzero((gray > FAINT).any(0))[0]
    cropped = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    fitted = _fit(cropped, FIT)
    centered = _center_by_mass(fitted, FIELD)
    digit = torch.from_numpy(np.round(centered * 255).astype(np.uint8))[None]  # stored like an MNIST digit
    model_view = normalize(digit, 0.0, 1.0, input_size)  # training's own resize, in [0, 1]: (1, 1, S, S)
    return DrawingSteps(gray, cropped, fitted, centered, model_view[0, 0].numpy(), (model_view - mean) / std)


def _fit(img: np.ndarray, box: int) -> np.ndarray:
    """(h, w) → scaled, anti-aliased, so the longer side is `box`; strongest ink scaled to 1."""
    scale = box / max(img.shape)
    height, width = (max(1, round(n * scale)) for n in img.shape)
    fitted = antialias_matrix(img.shape[0], height) @ img.astype(np.float64) @ antialias_matrix(img.shape[1], width).T
    return (fitted / fitted.max()).astype(np.float32)


def antialias_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64: linear resizing along one axis with a triangle filter widened by the shrink factor,
    the weights of F.interpolate(mode="bilinear", antialias=True) (and PIL); each row sums to 1.

    As two matrices rather than F.interpolate itself: the same values (to 1e-7), and also right where torch
    2.14 is not (an output one pixel wide, e.g. a thin upright stroke, repeats the top row's value); the web
    page's preprocess.js computes exactly these weights."""
    scale = n_in / n_out
    support, stretch = (scale, 1 / scale) if scale >= 1 else (1.0, 1.0)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        w = np.maximum(0.0, 1 - np.abs((np.arange(lo, hi) - center + 0.5) * stretch))
        weights[i, lo:hi] = w / w.sum()
    return weights


def _center_by_mass(img: np.ndarray, field: int) -> np.ndarray:
    """Paste (h, w) into (field, field) with its centre of mass at (field/2, field/2), never cut off."""
    ys, xs = np.indices(img.shape)
    total = img.sum(dtype=np.float64)
    top = _offset(field / 2 - (ys * img).sum() / total, field - img.shape[0])
    left = _offset(field / 2 - (xs * img).sum() / total, field - img.shape[1])
    out = np.zeros((field, field), dtype=np.float32)
    out[top : top + img.shape[0], left : left + img.shape[1]] = img
    return out


def _offset(shift: float, most: int) -> int:
    """`shift` rounded half to even, within [0, most]. Snapped to 1/64 pixel first, so that a centre of mass
    exactly halfway (a symmetric drawing) rounds the same whatever order its sums were added in."""
    return int(np.clip(np.rint(np.rint(shift * 64) / 64), 0, most))


def upscale_digit(img28: np.ndarray | torch.Tensor, size: int = 280) -> np.ndarray:
    """A uint8 (28, 28) MNIST digit → a (size, size, 4) uint8 RGBA "drawing": white on opaque black."""
    digit = Image.fromarray(np.asarray(img28, dtype=np.uint8))
    gray = np.asarray(digit.resize((size, size), Image.Resampling.BILINEAR))
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


MAX_PNG_BYTES = 2 * 1024 * 1024  # an uploaded drawing: at most 2 MB …
MAX_PNG_PIXELS = 4096 * 4096  # … and 16 megapixels, checked before its pixels are decoded


def decode_png(data: bytes, name: str = "the image") -> np.ndarray:
    """An uploaded PNG's bytes → its pixels (H, W), (H, W, 3) or (H, W, 4) uint8, for `preprocess`. Raises
    ValueError with one sentence for anything else: another format, too big a file or image, a damaged file."""
    import io

    from PIL import UnidentifiedImageError

    if len(data) > MAX_PNG_BYTES:
        raise ValueError(f"{name} is {len(data) / 2**20:.1f} MB; a drawing may be at most {MAX_PNG_BYTES // 2**20} MB.")
    too_big = f"a drawing may have at most {MAX_PNG_PIXELS // 10**6} million pixels."
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:  # reads the header only
            if image.width * image.height > MAX_PNG_PIXELS:
                raise ValueError(f"{name} is {image.width}x{image.height} pixels; {too_big}")
            converted = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            return np.asarray(converted)
    except Image.DecompressionBombError as e:  # PIL's own limit, far above ours, refused while opening
        raise ValueError(f"{name} is an image of billions of pixels; {too_big}") from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{name} is not a PNG image that can be read ({type(e).__name__}).") from e
