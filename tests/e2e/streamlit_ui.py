"""What the browser tests do to a Streamlit page: wait for it, use its widgets, draw on the canvas."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "e2e"
TIMEOUT_MS = 120_000  # default for every Playwright wait: generous, the machine is shared and slow

IDLE_JS = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  return !!app && app.dataset.testConnectionState === 'CONNECTED' && app.dataset.testScriptState === 'notRunning'
    && !document.querySelector('[data-testid=stStatusWidget]') && !document.querySelector('[data-testid=stSkeleton]')
    && !!document.querySelector('[data-testid=stMain] [data-testid=stElementContainer]');
}"""
CANVAS = "[data-testid=stBidiComponentIsolated] canvas.upper-canvas"  # fabric.js's input layer, in a shadow root
INK_LAYER = "[data-testid=stBidiComponentIsolated] canvas.dc-canvas.lower-canvas"  # where fabric.js paints strokes
TOOLBAR = "[data-testid=stBidiComponentIsolated] .dc-toolbar"  # absolutely positioned once the canvas's CSS applies
PREDICTION = "[data-testid=stMetricValue]"
HINT = "Draw a digit"  # a blank canvas shows a hint with these words
MNIST_MODEL = "pretrained · lenet5_bn-mnist"  # the model picker's label of checkpoints/lenet5_bn-mnist.safetensors


# Arm: forget the last timestamps; a capturing listener stamps every mouse-up (it reaches window from the shadow root).
ARM_JS = """() => {
  window.__e2eUp = null; window.__e2eChanged = null;
  if (!window.__e2eListening) {
    window.addEventListener('mouseup', () => { window.__e2eUp = performance.now(); }, true);
    window.__e2eListening = true;
  }
}"""
# Polled on every animation frame: the first frame where the Prediction shows text it did not show before.
CHANGED_JS = """(before) => {
  const metric = document.querySelector('[data-testid=stMetricValue]');
  const text = metric ? metric.textContent.trim() : null;
  if (window.__e2eUp === null || text === null || text === before) return false;
  window.__e2eChanged = performance.now();
  return text;
}"""


def needs_page(file: str):
    """Skip only while pages/<file> is not in the repo: once it lands, the test runs."""
    return pytest.mark.skipif(not (REPO / "pages" / file).exists(), reason=f"pages/{file} does not exist yet")


def wait_idle(page, timeout_ms: float = TIMEOUT_MS) -> None:
    """Connected, no script running ("Running…" gone), no skeletons, and the main block has elements."""
    page.wait_for_function(IDLE_JS, polling=50, timeout=timeout_ms)


def open_page(page, url: str, timeout_ms: float = TIMEOUT_MS) -> None:
    """Go to `url` and wait until its script has run and the app is idle."""
    page.goto(url)
    wait_idle(page, timeout_ms)


def screenshot(page, name: str) -> Path:
    """A full-page screenshot into artifacts/e2e/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def widget(page, testid: str, label: str):
    """The widget of kind `testid` (stSelectbox, stNumberInput, …) whose label is exactly `label`."""
    return page.get_by_test_id(testid).filter(has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))


def choose(page, label: str, option: str, attempts: int = 3, tap: bool = False) -> None:
    """Pick `option` in the selectbox labelled `label`, as a user does: open it, click the option (with `tap`,
    a finger on a touch screen).

    The list is a popover that closes when the page scrolls (a rerun that grows the page can): the box is
    centred first, and opened again when its list has gone before the click."""
    box = page.get_by_role("combobox", name=label, exact=True)
    item = page.get_by_role("option", name=option, exact=True)
    for attempt in range(attempts):
        box.evaluate("el => el.scrollIntoView({block: 'center'})")
        (box.tap if tap else box.click)()
        try:
            (item.tap if tap else item.click)(timeout=10_000)
            break
        except PlaywrightTimeoutError:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
    expect(box).to_have_value(option, timeout=TIMEOUT_MS)


def set_number(page, label: str, value: float) -> None:
    """Type `value` into the number input labelled `label` and commit it with Enter."""
    field = widget(page, "stNumberInput", label).locator("input")
    field.fill(str(value))
    field.press("Enter")
    expect(field).to_have_value(str(value), timeout=TIMEOUT_MS)


# Strokes in canvas pixels (the canvas is 280x280), drawn as a person would: many small mouse moves.
ONE = [(140, 45 + 9 * i) for i in range(21)]  # a vertical bar, 45 → 225
ZERO = [(140 + 55 * math.sin(2 * math.pi * i / 28), 140 - 85 * math.cos(2 * math.pi * i / 28)) for i in range(31)]


INK_JS = """el => {
  const d = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
  return false;
}"""


def wait_canvas_styled(page) -> None:
    """A canvas mounts before its stylesheet applies: for a moment it sits ~290 px lower, with a bare toolbar
    above it. A stroke aimed at that spot would miss once the styles land; wait for them."""
    expect(page.locator(TOOLBAR)).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator(TOOLBAR)).to_have_css("position", "absolute", timeout=TIMEOUT_MS)


def stroke(page, points, attempts: int = 3) -> None:
    """Press at the first point, move through the others, release: one fabric.js path.

    A canvas that has just replaced a cleared one can drop a stroke before fabric.js listens: when the
    drawing layer has no ink after the release, the stroke is drawn again."""
    for _ in range(attempts):
        wait_canvas_styled(page)
        box = page.locator(CANVAS).bounding_box()
        x0, y0 = box["x"], box["y"]
        page.mouse.move(x0 + points[0][0], y0 + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x0 + x, y0 + y)
        page.mouse.up()
        if page.locator(INK_LAYER).evaluate(INK_JS):
            return
    raise AssertionError(f"{attempts} strokes left no ink on the canvas")


def touch_stroke(page, points, attempts: int = 3) -> None:
    """`stroke` with a finger: touch events (CDP Input.dispatchTouchEvent, as a phone's screen sends them, no
    mouse), the points given on a 280-px canvas and scaled to the canvas's size on screen."""
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, at=None) -> None:
        points = [] if at is None else [{"x": at[0], "y": at[1]}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    try:
        for _ in range(attempts):
            wait_canvas_styled(page)
            box = page.locator(CANVAS).bounding_box()
            scale = box["width"] / 280
            at = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in points]
            touch("touchStart", at[0])
            for point in at[1:]:
                touch("touchMove", point)
            touch("touchEnd")
            if page.locator(INK_LAYER).evaluate(INK_JS):
                return
    finally:
        cdp.detach()
    raise AssertionError(f"{attempts} touch strokes left no ink on the canvas")


def clear_canvas(page) -> None:
    """Press "Clear the canvas"; wait for the hint, no prediction and the fresh canvas alone.

    The new canvas mounts while the old one is still there (both for a moment, or the old one alone): the old
    one is marked first, so that the next stroke cannot land on it and vanish with it."""
    page.locator(CANVAS).evaluate("el => { el.dataset.e2eOld = '1'; }")
    page.get_by_role("button", name="Clear the canvas").click()
    page.get_by_text(HINT).first.wait_for()
    page.locator(PREDICTION).wait_for(state="detached")
    expect(page.locator(CANVAS)).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator(f"{CANVAS}:not([data-e2e-old])")).to_have_count(1, timeout=TIMEOUT_MS)
    wait_canvas_styled(page)
    wait_idle(page)


def prediction(page, timeout_ms: float = TIMEOUT_MS) -> str:
    """The text of the Prediction metric, waiting for it to appear."""
    metric = page.locator(PREDICTION)
    metric.wait_for(timeout=timeout_ms)
    return metric.inner_text().strip()


def plotly_points(page, chart: str = "[data-testid=stPlotlyChart] .js-plotly-plot") -> list[int]:
    """The number of x values of each trace of the first plotly chart matching `chart` (empty list: no chart).

    Read from plotly's `_fullData`, where arrays sent base64-encoded ({dtype, bdata}) are decoded."""
    return page.evaluate("""(sel) => {
      const plot = document.querySelector(sel);
      return plot && plot._fullData ? plot._fullData.map(t => (t.x || []).length) : [];
    }""", chart)
