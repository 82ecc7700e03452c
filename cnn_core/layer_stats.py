"""Per-layer gradient and weight statistics while a run trains: what ConvNetJS shows beside its curves.

For every conv and linear layer, at one step every `metrics_every` (the step the loop reports): the L2 norm of
its gradient and of its weights (weight and bias together), a histogram of its weights, and whether its
gradients have almost vanished. Everything is computed on the device and read back with one `.tolist()` at the
report, where the loop syncs anyway: no extra sync per step (see docs/performance.md).

Vanishing: a layer whose relative gradient (||g|| / ||w||) stayed under VANISH_RATIO of the largest layer's for
VANISH_REPORTS reports in a row is flagged: deep sigmoid stacks shrink gradients on their way back, and gradients
of exactly 0 are dead ReLUs. Measured over one epoch on 6,400 MNIST images (batch 64, a report every 10 steps):
LeNet-5 with sigmoid as d2l.ai writes it has conv1 at 3e-4 and conv2 at 2e-3 of fc3's (SGD 0.1; with Adam 1e-3
fc1 too, at 6e-3), flagged; lenet5_bn, lenet5_classic (tanh) and mlp keep every layer at 0.1 or more of the
largest, never flagged. lenet_modern at SGD lr 2 on synthetic digits: its ReLUs die within 10 steps, the gradients
of conv1 to fc2 are 0 from then on, flagged.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import nn

HIST_BINS = 24  # equal bins over [-max|w|, max|w|]
VANISH_RATIO = 1e-2  # a layer's relative gradient under this share of the largest one's …
VANISH_REPORTS = 3  # … for this many reports in a row
_WHY = (f" (under 1/{round(1 / VANISH_RATIO)} of the largest layer's, for the size of the weights): sigmoid and tanh "
        "shrink gradients on their way back (ReLU or BatchNorm help), and gradients of exactly 0 mean dead ReLUs (try "
        "a smaller learning rate).")
HINT = {  # the live chart (ui/live_chart.js) fills {layers} the same way
    "one": "{layers}'s gradients have almost vanished" + _WHY,
    "many": "The gradients of {layers} have almost vanished" + _WHY,
}


def stat_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) of each conv and linear layer, in model order: the layers the statistics are about."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _round(x: float) -> float:
    return float(f"{x:.4g}")


class LayerStats:
    """The statistics of one model's layers, report after report (it remembers the last few, for `vanishing`)."""

    def __init__(self, model: nn.Module):
        layers = stat_layers(model)
        self.names = [name for name, _ in layers]
        self.weights = [m.weight for _, m in layers]
        self.params = [(i, p) for i, (_, m) in enumerate(layers) for p in m.parameters(recurse=False)]
        self.owner = torch.tensor([i for i, _ in self.params], device=self.weights[0].device) if layers else None
        self.below: deque[set[str]] = deque(maxlen=VANISH_REPORTS)

    @torch.no_grad()
    def _measure(self) -> torch.Tensor:
        """On the device: grad norms (L), weight norms (L), max |w| (L), histograms (L, HIST_BINS), flat."""
        n = len(self.names)
        grads = torch.stack([p.grad.float().norm() if p.grad is not None else p.new_zeros((), dtype=torch.float32)
                             for _, p in self.params])
        values = torch.stack([p.float().norm() for _, p in self.params])
        grad_sq = torch.zeros(n, device=grads.device).index_add_(0, self.owner, grads.square())
        weight_sq = torch.zeros(n, device=grads.device).index_add_(0, self.owner, values.square())
        tops, hists = [], []
        for w in self.weights:
            flat = w.detach().float().flatten()
            top = flat.abs().max().clamp_min(1e-12)
            bins = ((flat / top + 1) * (HIST_BINS / 2)).long().clamp_(0, HIST_BINS - 1)  # (N,) bin of each weight
            tops.append(top)
            hists.append(torch.bincount(bins, minlength=HIST_BINS).float())
        return torch.cat([grad_sq.sqrt(), weight_sq.sqrt(), torch.stack(tops), torch.cat(hists)])

    def report(self) -> dict[str, object]:
        """The StepRecord fields for the gradients as they are now (after a step's backward pass): grad_norms,
        weight_norms, weight_hist and vanishing (the layers whose gradients have almost vanished, or None)."""
        if not self.names:
            return {}
        n = len(self.names)
        values = self._measure().tolist()  # the one sync
        grads, weights, tops, counts = values[:n], values[n:2 * n], values[2 * n:3 * n], values[3 * n:]
        relative = [g / w if w > 0 else 0.0 for g, w in zip(grads, weights)]
        largest = max(relative)
        self.below.append({name for name, r in zip(self.names, relative) if r <= VANISH_RATIO * largest})  # all: all 0
        vanishing = set.intersection(*self.below) if len(self.below) == VANISH_REPORTS else set()
        return {
            "grad_norms": {name: _round(g) for name, g in zip(self.names, grads)},
            "weight_norms": {name: _round(w) for name, w in zip(self.names, weights)},
            "weight_hist": {name: {"lo": -_round(top), "hi": _round(top),
                                   "counts": [int(c) for c in counts[i * HIST_BINS:(i + 1) * HIST_BINS]]}
                            for i, (name, top) in enumerate(zip(self.names, tops))},
            "vanishing": [name for name in self.names if name in vanishing] or None,
        }


def vanishing_hint(layers: list[str]) -> str | None:
    """The sentence the live view shows for layers whose gradients have almost vanished; None for none."""
    if not layers:
        return None
    names = layers[0] if len(layers) == 1 else ", ".join(layers[:-1]) + " and " + layers[-1]
    return HINT["one" if len(layers) == 1 else "many"].format(layers=names)
