"""One canvas update, end to end: drawing → model input → probabilities, feature maps and saliency.

`analyse_drawing` is the single call the Draw page makes per stroke; it times each stage so the
page (and bench/draw_latency.py) can show where the milliseconds go. It only reads the model, so any
number of sessions may call it at once on one shared model. It leaves torch's thread count alone:
the serving process sets that once when it starts (`cnn_core.runtime.serve_threads`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from cnn_core.data import DatasetInfo
from cnn_core.drawing import DrawingSteps, preprocess
from cnn_core.inspect import feature_maps, predict, saliency

STAGES = ("preprocess", "forward", "feature maps", "saliency")


@dataclass
class DrawingAnalysis:
    """What the model made of one drawing."""

    probs: np.ndarray  # (K,) class probabilities, summing to 1
    steps: DrawingSteps  # every preprocessing step, down to the (1, 1, S, S) input
    layer: str | None  # the layer whose feature maps were taken
    maps: np.ndarray | None  # (C, H, W) that layer's output, None when no layer was asked for
    heat: np.ndarray  # (S, S) saliency of the predicted class, in [0, 1]
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage in STAGES

    @property
    def prediction(self) -> int:
        return int(self.probs.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probs.max())

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        """The k most probable classes, most probable first: [(class index, probability)]."""
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(int(i), float(self.probs[i])) for i in order]

    @property
    def total_ms(self) -> float:
        return sum(self.timings.values())


def analyse_drawing(model: nn.Module, info: DatasetInfo, image: np.ndarray, layer: str | None = None,
                    saliency_method: str = "grad_x_input") -> DrawingAnalysis:
    """A canvas image (H, W[, 3|4]) → probabilities (K,), steps, `layer`'s maps (C, H, W) and saliency (S, S).

    Raises ValueError, with a sentence for the user, when the drawing is blank.
    """
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = (now - clock) * 1000
        clock = now

    steps = preprocess(image, model.input_size, info.mean, info.std)
    lap("preprocess")
    probs = predict(model, steps.tensor)[0]
    lap("forward")
    maps = feature_maps(model, steps.tensor, [layer])[layer] if layer is not None else None
    lap("feature maps")
    heat = saliency(model, steps.tensor, int(probs.argmax()), saliency_method)
    lap("saliency")
    return DrawingAnalysis(probs, steps, layer, maps, heat, timings)
