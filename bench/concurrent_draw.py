"""Many sessions drawing at once: threads calling `analyse_drawing` together on ONE shared model.

    .venv/bin/python bench/concurrent_draw.py [--threads 1 4 8 16] [--calls 50] [--checkpoint PATH] [--seed 0]

Streamlit runs each session in its own thread and every session shares one cached model, so the Draw
page's `analyse_drawing` must give each caller its own answer while others run. The bench takes a mix
of drawings (real MNIST test digits, upscaled as the canvas sends them, when data/ holds the data set;
else a few synthetic strokes), every `inspectable_layers(model)` and both saliency methods. First it
computes each distinct (drawing, layer, method) ALONE, in one thread: the reference. Then, for each
thread count, that many threads start together (a barrier) and each makes `--calls` calls, drawing
(drawing, layer, method) at random; every result is compared with its reference (probabilities,
feature maps and saliency, abs tolerance 1e-5). A call is *wrong* when any of them differs and
*failed* when it raises (each kind of failure, its type and first line, is counted below the table).

Columns: threads, calls, calls/s (all calls ÷ wall time of the threaded phase), median and p95 latency
of one call (ms, wall: with more threads than cores it includes waiting for the GIL and a core), wrong,
failed. Exit status 1 when any call was wrong or failed. torch runs with `--torch-threads` intra-op
threads (default 1, what the app serves with: `CNN_SERVE_THREADS`), set once before any thread starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_core.checkpoints import load_checkpoint  # noqa: E402
from cnn_core.data import DataError, load_splits  # noqa: E402
from cnn_core.drawing import upscale_digit  # noqa: E402
from cnn_core.inspect import SALIENCY_METHODS, inspectable_layers  # noqa: E402
from cnn_core.live import analyse_drawing  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "lenet5_bn-mnist.safetensors"
TOLERANCE = 1e-5  # absolute, on probabilities, feature maps and saliency
CANVAS = 280  # the Draw page's canvas side, in pixels

# A few strokes as a user draws them, in a 0-1 box: polylines, or ("ellipse", box) for an "0".
STROKES = {
    "0": [("ellipse", (0.3, 0.15, 0.7, 0.85))],
    "1": [[(0.5, 0.15), (0.5, 0.85)]],
    "7": [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]],
    "4": [[(0.6, 0.85), (0.6, 0.15), (0.25, 0.6), (0.75, 0.6)]],
    "L": [[(0.35, 0.15), (0.35, 0.8), (0.7, 0.8)]],
    "+": [[(0.5, 0.2), (0.5, 0.8)], [(0.2, 0.5), (0.8, 0.5)]],
}


def synthetic_drawings(n: int) -> list[tuple[str, np.ndarray]]:
    """n (name, (280, 280, 4) uint8) canvases: white strokes 20 px wide on opaque black, like upscale_digit."""
    out = []
    for name, strokes in list(STROKES.items())[:n]:
        img = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(img)
        for stroke in strokes:
            if stroke[0] == "ellipse":
                draw.ellipse([v * CANVAS for v in stroke[1]], outline=255, width=20)
            else:
                draw.line([(x * CANVAS, y * CANVAS) for x, y in stroke], fill=255, width=20, joint="curve")
        gray = np.asarray(img)
        out.append((f"synthetic {name}", np.dstack([gray, gray, gray, np.full_like(gray, 255)])))
    return out


def mnist_drawings(dataset: str, n: int) -> list[tuple[str, np.ndarray]]:
    """The first test digit of each of n classes, upscaled to a canvas. Raises DataError without the data."""
    test = load_splits(dataset)["test"]
    labels = test.labels.numpy()
    out = []
    for k in range(n):
        i = int(np.nonzero(labels == k % 10)[0][k // 10])
        out.append((f"{dataset} test #{i} ({k % 10})", upscale_digit(test.images[i])))
    return out


@dataclass
class Case:
    drawing: int  # index into the drawings
    layer: str
    method: str


@dataclass
class Row:
    threads: int
    latencies: list[float] = field(default_factory=list)  # ms, every call
    wrong: int = 0
    failures: Counter = field(default_factory=Counter)  # kind of failure → count
    seconds: float = 0.0  # wall time of the threaded phase

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def differs(got, ref) -> bool:
    """True when any of probabilities, feature maps or saliency is off by more than TOLERANCE (or misshapen)."""
    for a, b in ((got.probs, ref.probs), (got.maps, ref.maps), (got.heat, ref.heat)):
        if a is None or b is None:
            if a is not b:
                return True
            continue
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or not np.all(np.abs(a.astype(np.float64) - b) <= TOLERANCE):
            return True
    return got.layer != ref.layer


def run_threads(model, info, drawings, cases, refs, threads: int, calls: int, seed: int) -> Row:
    """`threads` threads start together, each making `calls` calls on random cases; all compared with refs."""
    barrier = threading.Barrier(threads + 1)
    results: list[Row] = [Row(threads) for _ in range(threads)]

    def worker(i: int) -> None:
        rng = np.random.default_rng([seed, threads, i])
        mine = results[i]
        barrier.wait()
        for _ in range(calls):
            c = int(rng.integers(len(cases)))
            case = cases[c]
            start = time.perf_counter()
            try:
                got = analyse_drawing(model, info, drawings[case.drawing][1], case.layer, case.method)
            except Exception as e:  # noqa: BLE001 - every failure is counted, whatever it is
                mine.latencies.append((time.perf_counter() - start) * 1000)
                lines = str(e).strip().splitlines()
                mine.failures[f"{type(e).__name__}: {lines[0] if lines else ''}"] += 1
                continue
            mine.latencies.append((time.perf_counter() - start) * 1000)
            mine.wrong += differs(got, refs[c])

    workers = [threading.Thread(target=worker, args=(i,), name=f"draw-{i}") for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    row = Row(threads, seconds=time.perf_counter() - start)
    for r in results:
        row.latencies += r.latencies
        row.wrong += r.wrong
        row.failures += r.failures
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8, 16], help="thread counts, one row each")
    parser.add_argument("--calls", type=int, default=50, help="calls per thread")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="the shared model")
    parser.add_argument("--seed", type=int, default=0, help="seeds each thread's choice of cases")
    parser.add_argument("--drawings", type=int, default=6, help="distinct drawings in the mix")
    parser.add_argument("--synthetic", action="store_true", help="synthetic strokes even when data/ has the data set")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads, set once at start")
    args = parser.parse_args(argv)

    ckpt = load_checkpoint(args.checkpoint)
    model, info = ckpt.model, ckpt.info
    drawings = None
    if not args.synthetic:
        try:
            drawings = mnist_drawings(info.name, args.drawings)
        except DataError as e:
            print(f"no {info.name} data ({str(e).splitlines()[0]}): synthetic drawings instead")
    drawings = drawings or synthetic_drawings(args.drawings)
    layers = inspectable_layers(model)
    methods = list(SALIENCY_METHODS)
    cases = [Case(d, layer, m) for d in range(len(drawings)) for layer in layers for m in methods]

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(args.torch_threads)
    try:
        # Each case alone, in this one thread: the answer every threaded call must reproduce.
        refs = [analyse_drawing(model, info, drawings[c.drawing][1], c.layer, c.method) for c in cases]
        rows = [run_threads(model, info, drawings, cases, refs, n, args.calls, args.seed) for n in args.threads]
    finally:
        torch.set_num_threads(torch_threads)

    header = ["threads", "calls", "calls/s", "median ms", "p95 ms", "wrong", "failed"]
    table = [[str(r.threads), str(len(r.latencies)), f"{len(r.latencies) / r.seconds:.0f}",
              f"{np.median(r.latencies):.2f}", f"{np.percentile(r.latencies, 95):.2f}",
              str(r.wrong), str(r.failed)] for r in rows]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))
    for r in rows:
        for kind, count in r.failures.most_common():
            print(f"{r.threads} threads: {count} x {kind}")
    load = os.getloadavg()
    print(f"\n{ckpt.path.name}, {len(drawings)} drawings ({drawings[0][0]}, ...), {len(layers)} layers "
          f"({', '.join(layers)}), {len(methods)} saliency methods: {len(cases)} cases, each computed alone first; "
          f"{args.calls} calls per thread, torch threads {args.torch_threads}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    return 1 if any(r.wrong or r.failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
