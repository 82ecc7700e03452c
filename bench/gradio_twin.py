"""The Gradio twin under a stopwatch, in one run: Train → first streamed curve point, the twin's images/s against
`fit` alone in the same process, and drawing latency through gradio_client.

    .venv/bin/python bench/gradio_twin.py [--epochs 1] [--images 20000] [--batch-size 128] [--drawings 40]
                                          [--target 0.99] [--quick] [--json artifacts/gradio_twin.json]

The twin (gradio_app.build_demo) is launched in this process on a free loopback port, with the CPU or the GPU that
`device auto` finds (what the twin trains on off ZeroGPU), and driven by gradio_client as a visitor's browser
drives it:
- first point: seconds from submitting /train to the first output that carries a curve point (the run's start, the
  data moved to the device, `metrics_every` steps); also to the first epoch's validation accuracy >= --target;
- images/s: the epochs' images/s of the run trained through the twin, against the same config trained by `fit`
  alone in this process before it and after it (the machine's load changes: both are shown);
- drawing: a "7", a "1" and a "0" in turn, sent to /predict with the pretrained MNIST model while nothing trains,
  after one warm-up; median and p95 of the round trip.
--quick: tiny synthetic data (a check that the script runs, not figures). Prints the load average and the date.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STROKES = {"7": [(80, 60), (200, 60), (120, 230)], "1": [(140, 40), (140, 240)],
           "0": [(140, 40), (200, 80), (200, 200), (140, 240), (80, 200), (80, 80), (140, 40)]}


def drawing(points: list[tuple[int, int]], path: Path) -> Path:
    """Black strokes on a transparent 280x280 layer, as the Sketchpad sends them, saved as a PNG."""
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(im).line(points, fill=(0, 0, 0, 255), width=18, joint="curve")
    im.save(path)
    return path


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def epoch_speeds(history) -> list[float]:
    return [r.images_per_s for r in history.epochs]


def plotted(figure, trace: str) -> tuple[list, list]:
    """(x, y) of one trace of a curves figure as /train sends it."""
    if not isinstance(figure, dict) or figure.get("type") != "plotly":
        return [], []
    for t in json.loads(figure["plot"])["data"]:
        if t.get("name") == trace:
            y = t.get("y", [])
            if isinstance(y, dict):  # plotly's typed array
                y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
            return t.get("x", []), y
    return [], []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5_bn")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=20_000, help="training images (train_subset; 0: all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--metrics-every", type=int, default=50)
    parser.add_argument("--drawings", type=int, default=40)
    parser.add_argument("--target", type=float, default=0.99, help="validation accuracy to time (time to 99%%)")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic data: checks the script, no figures")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="gradio-twin-bench-"))
    os.environ["CNN_RUNS_DIR"] = str(work / "runs")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.quick:
        from tests.conftest import write_dataset

        write_dataset(work / "data" / "mnist")
        os.environ.update(CNN_DATA_DIR=str(work / "data"), CNN_DATA_VERIFY="0")
        args.epochs, args.images, args.drawings, args.metrics_every = 1, 0, 4, 2

    import gradio_app  # after the environment is set: it reads it
    import torch
    from gradio_client import Client, handle_file

    from cnn_core.config import TrainConfig
    from cnn_core.data import load_splits
    from cnn_core.presets import DEFAULT_PRESET
    from cnn_core.train import fit
    from tests.conftest import free_port

    wanted = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, optimizer="adamw",
                         lr=3e-3, weight_decay=5e-4, schedule="onecycle", metrics_every=args.metrics_every,
                         train_subset=args.images)
    values = dict(zip(gradio_app.FORM, gradio_app.form_values(wanted), strict=True))  # the Train form, filled in
    config = gradio_app.plan_run(DEFAULT_PRESET, values).config  # what the twin trains: fit alone trains the same
    device = "cuda" if torch.cuda.is_available() else "cpu"
    load_splits(config.dataset)  # both sides find the data loaded

    demo = gradio_app.build_demo()  # sets the server's torch threads: fit alone runs with the same
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        before = epoch_speeds(fit(config).history)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        key = client.predict(None, api_name="/visitor")
        form = dict(key=key, recipe=DEFAULT_PRESET, **values)
        start = time.perf_counter()
        job = client.submit(**form, api_name="/train")
        first_point = to_target = None
        last = None
        for out in job:
            now = time.perf_counter() - start
            if first_point is None and plotted(out[0], "train loss (running)")[0]:
                first_point = now
            _, val = plotted(out[0], "val acc (epoch)")
            if to_target is None and any(v is not None and v >= args.target for v in val):
                to_target = now
            last = out
        total = time.perf_counter() - start
        _, twin = plotted(last[0], "images/s per epoch")
        after = epoch_speeds(fit(config).history)

        layer = "conv1"
        pretrained = str(ROOT / "checkpoints" / "lenet5_bn-mnist.safetensors")
        files = [handle_file(drawing(points, work / f"{name}.png")) for name, points in STROKES.items()]
        value = {"background": None, "layers": [files[0]], "composite": None}
        client.predict(value, pretrained, layer, key, api_name="/predict")  # warm-up
        latencies = []
        for i in range(args.drawings):
            value = {"background": None, "layers": [files[i % len(files)]], "composite": None}
            t0 = time.perf_counter()
            client.predict(value, pretrained, layer, key, api_name="/predict")
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        demo.close()

    alone = statistics.mean(before + after)
    through = statistics.mean(twin) if twin else float("nan")
    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg(), "device": device,
        "torch_threads": torch.get_num_threads(), "config": config.to_dict(), "quick": args.quick,
        "first_point_s": first_point, "to_target_s": to_target, "target": args.target, "run_s": total,
        "twin_images_per_s": twin, "fit_alone_images_per_s": {"before": before, "after": after},
        "twin_vs_alone": through / alone, "draw_ms": {"median": statistics.median(latencies),
                                                      "p95": percentile(latencies, 95), "n": len(latencies)},
    }
    print(f"bench/gradio_twin.py · {figures['date']} · load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
          f" · {device} · torch threads {figures['torch_threads']}" + (" · QUICK (tiny data: no figures)" if args.quick else ""))
    print(f"run: {config.model}, {config.epochs} epoch(s) of {config.train_subset or 'all'} images, batch "
          f"{config.batch_size}, a curve point every {config.metrics_every} steps")
    print(f"Train → first streamed curve point: {first_point:.2f} s (whole run through the twin: {total:.1f} s)"
          if first_point is not None else "Train → first streamed curve point: none came")
    print(f"Train → validation accuracy ≥ {args.target:.0%}: "
          + (f"{to_target:.1f} s" if to_target is not None else "not reached in this run"))
    print(f"images/s: twin {through:,.0f} · fit alone {statistics.mean(before):,.0f} before, "
          f"{statistics.mean(after):,.0f} after · twin ÷ alone {figures['twin_vs_alone']:.2f}")
    print(f"drawing through gradio_client ({len(latencies)} drawings): median {figures['draw_ms']['median']:.1f} ms, "
          f"p95 {figures['draw_ms']['p95']:.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
