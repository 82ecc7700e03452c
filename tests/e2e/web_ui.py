"""What the browser tests and bench/web_latency.py do to an exported web page (cnn_core/webpage.py)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

PAD = "#pad"
PREDICTION = "#prediction"
READY_JS = "document.body.dataset.ready === '1'"
# Put an RGBA drawing on the page's canvas, run the page's own update, and read the canvas back.
ANALYSE_JS = """async ([b64, w, h]) => {
  const raw = atob(b64), bytes = new Uint8ClampedArray(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const pad = document.getElementById('pad'), ctx = pad.getContext('2d');
  ctx.putImageData(new ImageData(bytes, w, h), 0, 0);
  const r = await window.cnnStudio.update();
  return {rgba: canvasBase64(), result: r && {prediction: r.prediction, probs: r.probs,
          tensor: Array.from(r.steps.tensor), maps: r.maps && Array.from(r.maps.data),
          shown: document.getElementById('prediction').textContent}};
}"""
# The page's canvas as base64 RGBA (defined once per page: the drawing is ~300 kB, too many for one call's args).
CANVAS_B64_JS = """() => { window.canvasBase64 = () => {
  const d = document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280).data;
  let s = '';
  for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
  return btoa(s);
}; }"""


def open_web_page(page, url: str, timeout_ms: float = 60_000) -> None:
    """Go to the exported page and wait until its model is loaded."""
    page.goto(url)
    page.wait_for_function(READY_JS, timeout=timeout_ms)
    page.evaluate(CANVAS_B64_JS)


def draw(page, points) -> None:
    """One stroke with the mouse through `points` (canvas pixels, 280x280)."""
    box = page.locator(PAD).bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.up()


def clear(page) -> None:
    """Press Clear; wait until no prediction shows."""
    page.get_by_role("button", name="Clear").click()
    page.wait_for_function("document.getElementById('prediction').textContent === ''")


def prediction(page, timeout_ms: float = 30_000) -> str:
    """The prediction's text once the drawing as the pen left it has been read."""
    page.wait_for_function("(() => { const s = window.cnnStudio.state;"
                           " return s.upVersion > 0 && s.shownVersion >= s.upVersion; })()", timeout=timeout_ms)
    return page.locator(PREDICTION).inner_text().strip()


def analyse_on_page(page, rgba: np.ndarray) -> tuple[np.ndarray, dict | None]:
    """Draw `rgba` (280, 280, 4) on the page's canvas and let the page read it: (the canvas read back, what the
    page computed: prediction, probs, tensor, maps, shown text; None when it saw a blank canvas)."""
    h, w = rgba.shape[:2]
    out = page.evaluate(ANALYSE_JS, [base64.b64encode(np.ascontiguousarray(rgba).tobytes()).decode(), w, h])
    back = np.frombuffer(base64.b64decode(out["rgba"]), np.uint8).reshape(h, w, 4)
    return back, out["result"]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """`folder` served as a static web host would, on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
