"""Browser latency, last mouse-up → prediction shown: the exported web page vs the app's Draw page, in one run.

    .venv/bin/python bench/web_latency.py [--drawings 30] [--checkpoint checkpoints/lenet5_bn-mnist.safetensors]
                                          [--file] [--json artifacts/web_latency.json]

Headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) draws with the mouse, alternating a "1" and a "0"
(tests/e2e/streamlit_ui.py's strokes), after one warm-up; each drawing starts on a cleared canvas.
- web page: the checkpoint exported by cnn_core/webpage.py, served by a loopback static server (as a static
  Space serves it; --file: opened as a file). The page also predicts while the pen moves; that does not count:
  the clock stops on the first animation frame where the prediction of the drawing as the pen left it is shown.
- Draw page: app.py served by `streamlit run` on a free loopback port, the same model picked; the clock stops on
  the first animation frame where its Prediction shows text (as tests/e2e/test_e2e_latency.py measures).
Prints the median and p95 of each, the page's own compute time, the load average and the date.
Goal for the web page: median ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from streamlit_ui import (ARM_JS, CHANGED_JS, MNIST_MODEL, ONE, ZERO, choose, clear_canvas, open_page,  # noqa: E402
                          prediction, stroke, wait_idle)
from web_ui import clear, draw, open_web_page, serve_folder  # noqa: E402
from web_ui import prediction as web_prediction  # noqa: E402

GOAL_MS = 50.0
TIMEOUT_MS = 30_000
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The page's pen-up bumps state.upVersion; shownVersion says which drawing the prediction on screen is of.
WEB_ARM_JS = """() => {
  window.__up = null; window.__shown = null; window.__armed = window.cnnStudio.state.upVersion;
  if (!window.__listening) {
    window.addEventListener('pointerup', () => { window.__up = performance.now(); }, true);
    window.__listening = true;
  }
}"""
WEB_SHOWN_JS = """() => {
  const s = window.cnnStudio.state;
  if (window.__up === null || s.upVersion <= window.__armed || s.shownVersion < s.upVersion) return false;
  window.__shown = performance.now();
  return document.getElementById('prediction').textContent;
}"""


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "median_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
            "min_ms": round(ordered[0], 1), "max_ms": round(ordered[-1], 1)}


def strokes(n: int) -> Iterator[tuple[list, str]]:
    for i in range(n):
        yield (ONE, "1") if i % 2 == 0 else (ZERO, "0")


def measure_web_page(browser, url: str, n: int) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        open_web_page(page, url)
        draw(page, ONE)  # warm-up, not counted
        web_prediction(page)
        clear(page)
        times, compute, wrong = [], [], []
        for i, (points, expected) in enumerate(strokes(n)):
            page.evaluate(WEB_ARM_JS)
            draw(page, points)
            text = page.wait_for_function(WEB_SHOWN_JS, polling="raf", timeout=TIMEOUT_MS).json_value()
            times.append(page.evaluate("window.__shown - window.__up"))
            compute.append(float(re.search(r"computed in ([\d.]+) ms", page.locator("#status").inner_text()).group(1)))
            if text != expected:
                wrong.append((i, expected, text))
            clear(page)
        return {**summary(times), "compute_median_ms": round(statistics.median(compute), 2), "misread": wrong,
                "samples_ms": [round(t, 1) for t in times]}
    finally:
        context.close()


def measure_draw_page(browser, url: str, n: int) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)
    try:
        page = context.new_page()
        open_page(page, url)  # the home page first, as tests/e2e's app fixture: a cold deep link to /draw lost
        open_page(page, f"{url}/draw")  # its first stroke (the canvas came back empty) in a trial here
        choose(page, "Model", MNIST_MODEL)
        wait_idle(page)
        stroke(page, ONE)  # warm-up, not counted: the first forward pass, the first figures
        prediction(page)
        wait_idle(page)
        clear_canvas(page)
        times, wrong = [], []
        for i, (points, expected) in enumerate(strokes(n)):
            page.evaluate(ARM_JS)
            stroke(page, points)
            text = page.wait_for_function(CHANGED_JS, arg=None, polling="raf", timeout=TIMEOUT_MS).json_value()
            times.append(page.evaluate("window.__e2eChanged - window.__e2eUp"))
            if text != expected:
                wrong.append((i, expected, text))
            wait_idle(page)
            clear_canvas(page)
        return {**summary(times), "misread": wrong, "samples_ms": [round(t, 1) for t in times]}
    finally:
        context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(checkpoints: Path, log: Path) -> Iterator[str]:
    """app.py on a free loopback port with an empty runs folder and `checkpoints`; yields its URL."""
    port = free_port()
    env = {**os.environ, "CNN_RUNS_DIR": str(log.parent / "runs"), "CNN_CHECKPOINTS_DIR": str(checkpoints),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
               str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        break
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=30, help="timed drawings on each (default: 30)")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "lenet5_bn-mnist.safetensors",
                        help="the model (its folder is the app's checkpoints folder; the Draw page picks "
                             f"'{MNIST_MODEL}')")
    parser.add_argument("--file", action="store_true", help="open the web page as a file, not over http")
    parser.add_argument("--json", type=Path, help="also write the figures (and every sample) to this file")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from cnn_core.webpage import export_web

    chromium = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        print(f"No Chromium at {chromium}: install it (`make browser`) or set $CHROMIUM.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="web_latency-") as tmp, sync_playwright() as playwright:
        tmp = Path(tmp)
        page_file = export_web(args.checkpoint, tmp / "site")
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        load_before = os.getloadavg()
        with contextlib.ExitStack() as stack:
            base = page_file.parent.as_uri() if args.file else stack.enter_context(serve_folder(page_file.parent))
            web = measure_web_page(browser, f"{base}/{page_file.name}", args.drawings)
        with streamlit_app(args.checkpoint.parent, tmp / "streamlit.log") as url:
            draw_page = measure_draw_page(browser, url, args.drawings)
        result = {"date": time.strftime("%Y-%m-%d %H:%M"), "chromium": browser.version,
                  "checkpoint": args.checkpoint.name, "web_page_served": "as a file" if args.file else "over http",
                  "load_average_before": [round(x, 2) for x in load_before],
                  "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
                  "goal_median_ms": GOAL_MS, "web_page": web, "draw_page": draw_page}
        browser.close()
    print(f"last mouse-up → prediction shown, {args.drawings} drawings each ('1' and '0' in turn), "
          f"{args.checkpoint.stem}, headless Chromium {result['chromium']}, {result['date']}")
    print(f"load average {' '.join(map(str, result['load_average_before']))} before, "
          f"{' '.join(map(str, result['load_average_after']))} after ({result['cpus']} CPUs)")
    for label, r in ((f"web page ({result['web_page_served']})", web), ("Draw page (streamlit)", draw_page)):
        print(f"  {label:<26} median {r['median_ms']:7.1f} ms   p95 {r['p95_ms']:7.1f} ms   "
              f"min {r['min_ms']:6.1f}   max {r['max_ms']:7.1f}")
    verdict = "met" if web["median_ms"] <= GOAL_MS else "NOT met"
    print(f"  web page: its own compute (preprocess + model) median {web['compute_median_ms']} ms; "
          f"goal median ≤ {GOAL_MS:.0f} ms {verdict}")
    if web["misread"] or draw_page["misread"]:
        print(f"  misread (drawing, expected, shown): web page {web['misread']}, Draw page {draw_page['misread']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
