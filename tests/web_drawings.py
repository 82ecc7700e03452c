"""Drawings for comparing the web page's preprocessing and model with the server's: 280x280 RGBA canvases.

Random pen strokes (white on opaque black, as the page's canvas paints them), a few shapes that test the
edge cases (a thin upright line, a symmetric ring, a dot-sized digit, strokes on a transparent layer or on
white paper) and, where the MNIST test set is on disk, its digits upscaled as if drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cnn_core.data import DataError, load_splits
from cnn_core.drawing import upscale_digit

SIZE = 280


def canvas(strokes: list[list[tuple[float, float]]], width: int, ink=(255, 255, 255, 255),
           paper=(0, 0, 0, 255)) -> np.ndarray:
    """Polylines through `strokes` (canvas pixels) → a uint8 (280, 280, 4) RGBA drawing."""
    im = Image.new("RGBA", (SIZE, SIZE), paper)
    pen = ImageDraw.Draw(im)
    for points in strokes:
        pen.line(points, fill=ink, width=width, joint="curve")
        r = width / 2
        for x, y in (points[0], points[-1]):  # round ends, like the canvas's lineCap = "round"
            pen.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return np.asarray(im).copy()


def random_strokes(n: int, seed: int = 0) -> list[np.ndarray]:
    """n drawings of 1-3 wobbly strokes of 6-30 px, somewhere on the canvas."""
    rng = np.random.default_rng(seed)
    drawings = []
    for _ in range(n):
        strokes = []
        for _ in range(rng.integers(1, 4)):
            start, steps = rng.uniform(30, 250, 2), rng.integers(3, 12)
            heading, points = rng.uniform(0, 2 * np.pi), [tuple(start)]
            for _ in range(steps):
                heading += rng.normal(0, 0.6)
                step = rng.uniform(8, 30)
                x, y = points[-1]
                points.append((float(np.clip(x + step * np.cos(heading), 5, 275)),
                               float(np.clip(y + step * np.sin(heading), 5, 275))))
            strokes.append(points)
        drawings.append(canvas(strokes, int(rng.integers(6, 31))))
    return drawings


def edge_cases() -> list[np.ndarray]:
    """Shapes where a careless port goes wrong: halves to round, one-pixel-wide fits, other canvas kinds."""
    ring = [(140 + 60 * np.sin(2 * np.pi * i / 40), 140 - 90 * np.cos(2 * np.pi * i / 40)) for i in range(41)]
    upright = canvas([[(140, 20), (140, 260)]], 6)  # fitted 20 tall and 1 wide
    transparent = canvas([[(60, 60), (200, 60), (120, 230)]], 18, ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))
    paper = canvas([[(100, 50), (100, 230)], [(60, 200), (180, 200)]], 14, ink=(0, 0, 0, 255),
                   paper=(255, 255, 255, 255))
    return [canvas([ring], 18), upright, canvas([[(40, 140), (240, 140)]], 10), canvas([[(130, 130), (150, 150)]], 8),
            canvas([[(140, 45 + 9 * i) for i in range(21)]], 18), transparent, paper]


def mnist_drawings(n: int) -> list[np.ndarray]:
    """The first n MNIST test digits upscaled to 280x280, or none when the data set is not on disk."""
    root = Path(os.environ.get("CNN_DATA_DIR", Path(__file__).resolve().parents[1] / "data"))
    try:
        images = load_splits("mnist", root)["test"].images[:n]
    except DataError:
        return []
    return [upscale_digit(img) for img in images]


def drawings(n_random: int = 24, n_mnist: int = 12) -> list[np.ndarray]:
    """The comparison set: edge cases, random strokes and (when available) MNIST digits."""
    return [*edge_cases(), *random_strokes(n_random), *mnist_drawings(n_mnist)]
