"""Draw-page latency: canvas updates through `analyse_drawing` for each pretrained checkpoint.

    .venv/bin/python bench/draw_latency.py [--updates 200] [--layer conv1] [--saliency grad_x_input]

Each update is one upscaled test digit (280x280 RGBA, as the canvas sends it) → preprocess, forward,
feature maps of one layer and saliency. Prints the wall-clock median and p95 per model, the median of
each stage, and the median CPU time per update: on a busy shared machine the wall clock includes
waiting for a core, the CPU time does not (with one thread it is what an idle core would take).
Goal: ≤ 10 ms median for lenet5_bn. The load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_core.checkpoints import load_checkpoint  # noqa: E402
from cnn_core.data import DataError, load_splits  # noqa: E402
from cnn_core.drawing import upscale_digit  # noqa: E402
from cnn_core.inspect import SALIENCY_METHODS, inspectable_layers  # noqa: E402
from cnn_core.live import STAGES, analyse_drawing  # noqa: E402

WARMUP = 10


def bench(path: Path, updates: int, layer: str | None, method: str) -> list[str]:
    """One table row: model, median, p95 and the median of each stage, all in ms."""
    ckpt = load_checkpoint(path)
    images = load_splits(ckpt.info.name)["test"].images[: updates + WARMUP]
    drawings = [upscale_digit(img) for img in images]
    layer = layer or inspectable_layers(ckpt.model)[0]
    runs, cpu = [], []
    for drawing in drawings:
        start = time.process_time()
        runs.append(analyse_drawing(ckpt.model, ckpt.info, drawing, layer, method).timings)
        cpu.append((time.process_time() - start) * 1000)
    runs, cpu = runs[WARMUP:], cpu[WARMUP:]
    totals = np.array([sum(t.values()) for t in runs])
    stages = [np.median([t[s] for t in runs]) for s in STAGES]
    return [path.stem, layer, f"{np.median(totals):.2f}", f"{np.percentile(totals, 95):.2f}",
            *(f"{s:.2f}" for s in stages), f"{np.median(cpu):.2f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=Path(os.environ.get("CNN_CHECKPOINTS_DIR", "checkpoints")))
    parser.add_argument("--updates", type=int, default=200, help="canvas updates per model")
    parser.add_argument("--layer", default=None, help="feature-map layer (default: the first conv layer)")
    parser.add_argument("--saliency", default="grad_x_input", choices=list(SALIENCY_METHODS))
    args = parser.parse_args()
    paths = sorted(args.checkpoints.glob("*.safetensors"))
    if not paths:
        print(f"No checkpoints in {args.checkpoints}: run `make run` or train one first.")
        return 1
    header = ["model", "layer", "median ms", "p95 ms", *(f"{s} ms" for s in STAGES), "CPU ms (median)"]
    rows = []
    for path in paths:
        try:
            rows.append(bench(path, args.updates, args.layer, args.saliency))
        except DataError as e:
            print(f"skipped {path.name}: {e}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    load = os.getloadavg()
    print(f"\n{args.updates} updates per model, saliency={args.saliency}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
