"""The Gradio twin in Chromium: Train streams its curves into the page, the Cancel button stops the run (it shows up
in Draw as stopped), and a 7 drawn with the mouse is read by the stopped run, then as a 7 by the pretrained model.
Screenshots: artifacts/e2e/gradio_*.png."""

from __future__ import annotations

import re
import time

import pytest

from streamlit_ui import screenshot
from tests.conftest import write_dataset
from tests.test_gradio_app import serve_gradio

SEVEN = [[(80, 60), (200, 60)], [(200, 60), (120, 230)]]


@pytest.fixture(scope="module")
def twin_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_twin")
    write_dataset(root / "data" / "mnist")
    env = dict(CNN_DATA_DIR=str(root / "data"), CNN_DATA_VERIFY="0", CNN_RUNS_DIR=str(root / "runs"),
               CNN_HOSTED="1", CNN_MAX_EPOCHS="2000")
    with serve_gradio(**env) as client:
        yield client.src


def draw(page, strokes) -> None:
    """Pick the Sketchpad's brush and draw `strokes` (points on its 280x280 canvas, shown at its zoom)."""
    sketchpad = page.locator("#sketch")
    sketchpad.get_by_label("Brush", exact=True).click()
    box = sketchpad.locator("canvas").first.bounding_box()
    zoom = float(sketchpad.get_by_text(re.compile(r"^\d+%$")).first.inner_text().strip("%")) / 100
    left, top = box["x"] + box["width"] / 2 - 140 * zoom, box["y"] + box["height"] / 2 - 140 * zoom
    for points in strokes:
        page.mouse.move(left + points[0][0] * zoom, top + points[0][1] * zoom)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(left + x * zoom, top + y * zoom, steps=12)
        page.mouse.up()


def test_train_streams_cancel_stops_and_draw_reads(page, twin_url):
    page.goto(twin_url)
    page.get_by_label("Epochs").fill("2000")  # minutes on the tiny data: still training when cancelled
    page.get_by_role("button", name="Train", exact=True).click()
    progress = page.get_by_text("images/s", exact=False).first
    progress.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()  # the curves, streamed while it trains
    assert "Training" in progress.inner_text() and "step" in progress.inner_text()
    screenshot(page, "gradio_train")
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_text("Cancelled", exact=False).first.wait_for()

    page.get_by_role("tab", name="Draw").click()
    picker = page.get_by_label("Model", exact=True).last
    deadline = time.monotonic() + 60
    while "(stopped)" not in picker.input_value():  # the run saved itself once fit stopped; the tab shows it
        assert time.monotonic() < deadline, picker.input_value()
        page.get_by_role("tab", name="Learn").click()
        page.get_by_role("tab", name="Draw").click()
        page.wait_for_timeout(500)
    draw(page, SEVEN)
    reads = page.get_by_text("The model reads", exact=False).first
    reads.wait_for()  # the stopped run (trained on the tests' synthetic digits) reads it, whatever it says
    picker.click()
    page.get_by_role("option", name="pretrained · lenet5_bn-mnist", exact=True).click()
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_text("The model reads 7", exact=False).first.wait_for()  # the same drawing, MNIST's model: a 7
    screenshot(page, "gradio_draw")
