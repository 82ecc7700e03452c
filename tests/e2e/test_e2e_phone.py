"""Phones: 390x844 CSS pixels, a touch screen and no mouse (taps and CDP touch events). A digit drawn with a finger
is read right under the canvas, on the first screen, without scrolling; a run started on the Train page shows its
live curve without scrolling; no page scrolls sideways; the toolbar is a visitor's (no Deploy, no developer menu)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from streamlit_ui import (CANVAS, HINT, MNIST_MODEL, ONE, PREDICTION, TIMEOUT_MS, ZERO, choose, needs_page, open_page,
                          prediction, set_number, touch_stroke, wait_idle)

from cnn_core.access import owner_tag
from cnn_core.classroom import ClassStore
from cnn_core.config import TrainConfig
from cnn_core.runs import RunStatus, RunStore
from tests.conftest import finished_runs
from tests.e2e.conftest import PHONE

WIDTH, HEIGHT = PHONE["viewport"]["width"], PHONE["viewport"]["height"]
MAIN = "document.querySelector('[data-testid=stMain]')"  # the part of a Streamlit page that scrolls
LIVE = ".cnn-live[data-mode=single]"  # the live chart (ui/live_chart.js; Playwright's CSS reaches its shadow root)
SIDEWAYS_JS = f"""() => [document.documentElement, document.body, {MAIN}]
  .map(e => ({{name: e.tagName, scroll: e.scrollWidth, client: e.clientWidth}})).filter(e => e.scroll > e.client)"""


def scrolled(page) -> float:
    return page.evaluate(f"() => {MAIN}.scrollTop")


def settle(page) -> None:
    """The shell's width probe has reported (ui/viewport.py marks the page) and its one rerun has ended: the page
    is laid out for this screen."""
    page.wait_for_function("() => document.documentElement.dataset.viewportWidth "
                           "&& !document.querySelector('[data-reported]')", timeout=TIMEOUT_MS)
    wait_idle(page)


def on_screen(box: dict) -> bool:
    return box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH


def assert_no_sideways_scroll(page, where: str) -> None:
    wide = page.evaluate(SIDEWAYS_JS)
    assert not wide, f"{where} scrolls sideways at {WIDTH} px: {wide}"


@needs_page("draw.py")
def test_a_finger_draws_and_the_reading_is_under_the_canvas_on_the_first_screen(app, phone, console_errors):
    open_page(phone, f"{app.url}/draw")
    settle(phone)
    choose(phone, "Model", MNIST_MODEL, tap=True)
    wait_idle(phone)
    phone.evaluate(f"() => {{ {MAIN}.scrollTop = 0; }}")  # the page as it opened
    canvas = phone.locator(CANVAS).bounding_box()
    assert canvas["width"] == canvas["height"] == WIDTH - 32, f"the canvas fills the page's width: {canvas}"
    assert on_screen(canvas), f"the whole canvas is on the first screen: {canvas}"
    hint = phone.get_by_test_id("stAlert").filter(has_text=HINT).bounding_box()
    assert hint["y"] >= canvas["y"] + canvas["height"] and on_screen(hint), "the hint sits where the reading will"

    for digit, points in (("1", ONE), ("0", ZERO)):
        touch_stroke(phone, points)
        assert prediction(phone) == digit
        wait_idle(phone)
        assert scrolled(phone) == 0, "nothing scrolled the page while drawing"
        assert phone.locator(CANVAS).bounding_box() == canvas, "the canvas did not move"
        reading = phone.locator(PREDICTION).bounding_box()
        bars = [phone.get_by_test_id("stProgress").nth(i).bounding_box() for i in range(3)]
        print(f"\n'{digit}': canvas y {canvas['y']:.0f}–{canvas['y'] + canvas['height']:.0f}, prediction "
              f"y {reading['y']:.0f}–{reading['y'] + reading['height']:.0f}, top-3 bars y {bars[0]['y']:.0f}–"
              f"{bars[-1]['y'] + bars[-1]['height']:.0f} of a {HEIGHT}-px screen")
        assert reading["y"] >= canvas["y"] + canvas["height"], "the prediction is under the canvas"
        assert on_screen(reading) and all(on_screen(bar) for bar in bars), "… and on the first screen"
        assert_no_sideways_scroll(phone, "/draw with a reading")
        if digit == "1":
            clear = phone.get_by_role("button", name="Clear the canvas")
            assert clear.bounding_box()["height"] >= 44, "a thumb's size (ui/viewport.py's phone stylesheet)"
            phone.locator(CANVAS).evaluate("el => { el.dataset.e2eOld = '1'; }")
            clear.tap()
            phone.locator(PREDICTION).wait_for(state="detached")
            expect(phone.locator(f"{CANVAS}:not([data-e2e-old])")).to_have_count(1, timeout=TIMEOUT_MS)
            wait_idle(phone)
            phone.evaluate(f"() => {{ {MAIN}.scrollTop = 0; }}")  # Clear is under the reading: back to the canvas
    assert phone.get_by_test_id("stException").count() == 0
    assert not console_errors, console_errors


@needs_page("train.py")
def test_a_run_started_on_a_phone_shows_its_live_curve_without_scrolling(fresh_app, phone, console_errors):
    """On a fresh server of its own (the desktop Train test counts the shared server's runs), whose first page
    this is: the page and the width probe's rerun keep the values the recipe put in the form (in Streamlit's
    pages-folder mode, now off, the learning rate came back as 0 and Train was disabled)."""
    from cnn_core.presets import DEFAULT_PRESET, PRESETS

    open_page(phone, f"{fresh_app.url}/train")
    settle(phone)
    assert phone.get_by_text("Train settings").count() == 0, "before any run the form is the page"
    recipe = PRESETS[DEFAULT_PRESET].config
    lr = phone.get_by_test_id("stNumberInput").filter(has_text="Learning rate").locator("input")
    assert float(lr.input_value()) == pytest.approx(recipe.lr)
    choose(phone, "Model", "mlp", tap=True)
    wait_idle(phone)
    set_number(phone, "Epochs", 100)  # still training while the test looks (a few epochs of tiny data end in 1 s)
    wait_idle(phone)
    phone.get_by_test_id("stExpander").filter(has_text="More settings").locator("summary").tap()
    wait_idle(phone)
    set_number(phone, "Report every N steps", 2)
    wait_idle(phone)
    train = phone.get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled(timeout=10_000)
    train.scroll_into_view_if_needed()
    before = scrolled(phone)
    assert before > HEIGHT / 2, "the Train button is at the bottom of a long form"
    train.tap()

    # No scrolling from here: the run comes first, the form folds away, the page brings the run into view.
    curve = phone.locator(f"{LIVE} svg.panel polyline").first
    curve.wait_for(timeout=TIMEOUT_MS)
    loss = phone.locator(f"{LIVE} svg.panel").first.bounding_box()
    print(f"\nafter Train (the page was scrolled to {before:.0f} px): the loss panel at y {loss['y']:.0f}–"
          f"{loss['y'] + loss['height']:.0f}, width {loss['width']:.0f}, of a {HEIGHT}-px screen")
    assert on_screen(loss), f"the live loss curve is on the screen: {loss}"
    assert on_screen(curve.bounding_box())
    settings = phone.locator(".st-key-train_settings details").first  # the form's expander (pages/train.py)
    expect(settings).to_contain_text("Train settings")
    assert settings.get_attribute("open") is None, "the form folded away"
    assert loss["y"] < settings.bounding_box()["y"], "the run above the form"
    assert_no_sideways_scroll(phone, "/train with a live run")

    run_id = phone.url.split("run=")[1].split("&")[0]
    store, deadline = RunStore(Path(fresh_app.env["CNN_RUNS_DIR"])), time.monotonic() + 120
    assert store.read(run_id).state.is_active, "the run ended before the test looked at its live view"
    phone.get_by_role("button", name="Cancel run", exact=True).tap()
    while store.read(run_id).state.is_active:
        assert time.monotonic() < deadline, "the run did not stop in 120 s"
        time.sleep(0.5)
    expect(phone.locator(f".st-key-curves_{run_id} .js-plotly-plot")).to_have_count(1, timeout=TIMEOUT_MS)
    wait_idle(phone)
    assert_no_sideways_scroll(phone, "/train with an ended run")
    assert phone.get_by_test_id("stException").count() == 0
    assert not console_errors, console_errors


def a_class_with_runs(runs_dir) -> None:
    """Finished runs, and a class in progress whose board shows two students' runs."""
    finished_runs(runs_dir, 2)
    classes = ClassStore(runs_dir)
    room = classes.start(owner_tag("e2e-phone-teacher"), None)
    store = RunStore(runs_dir)
    for student in ("Maximiliana Featherstone", "Bo"):
        tag = owner_tag(f"e2e-phone-{student}")
        name = classes.join(tag, student)
        run_id = store.create(TrainConfig(model="lenet5_bn", epochs=2), owner=tag, name=name, **{"class": room.id},
                              step=0)
        store.set_status(run_id, RunStatus.FINISHED, epoch=2, step=10, total_steps=10, elapsed=3.0, best_val_acc=0.9,
                         test_acc=0.89, finished=time.time())


PAGES = ["", "data", "conv_lab", "train", "runs", "inspect", "draw", "examples", "class", "board"]


def test_no_page_scrolls_sideways_on_a_phone_and_the_toolbar_is_a_visitors(start_fresh_app, phone, console_errors):
    server = start_fresh_app(a_class_with_runs)
    for path in PAGES:
        open_page(phone, f"{server.url}/{path}")
        settle(phone)
        assert_no_sideways_scroll(phone, f"/{path}")
        if path == "inspect":
            for tab in ("Feature maps", "Confusion matrix and mistakes"):
                phone.get_by_role("tab", name=tab).tap()
                wait_idle(phone)
                assert_no_sideways_scroll(phone, f"/inspect, {tab}")
        if path == "board":
            expect(phone.get_by_text("Leaderboard").first).to_be_visible()
            assert_no_sideways_scroll(phone, "/board with a class")
        assert phone.get_by_test_id("stException").count() == 0, f"/{path}"
    # served from 127.0.0.1, where Streamlit's "auto" would show the developer's toolbar: a visitor's toolbar
    assert phone.get_by_test_id("stAppDeployButton").count() == 0, "no Deploy button"
    phone.get_by_test_id("stMainMenuButton").tap()
    menu = phone.get_by_test_id("stMainMenuPopover")
    expect(menu).to_be_visible()
    for developer_item in ("Rerun", "Clear cache"):
        assert menu.get_by_text(developer_item).count() == 0, f"no developer item {developer_item!r} in the menu"
    assert not console_errors, console_errors


@pytest.mark.parametrize("path", ["draw", "train"])
def test_a_desktop_keeps_its_two_columns(app, page, path):
    """The phone layouts are a phone's: a desktop browser still gets the canvas and the form on the left."""
    open_page(page, f"{app.url}/{path}")
    settle(page)
    columns = page.get_by_test_id("stColumn")
    assert columns.count() >= 2
    first = columns.first.bounding_box()
    if path == "draw":
        assert page.locator(CANVAS).bounding_box()["width"] == 280
        inside = page.locator(CANVAS).bounding_box()
    else:
        inside = page.get_by_role("button", name="Train", exact=True).bounding_box()
    assert first["x"] <= inside["x"] < first["x"] + first["width"], "the input in the left column"
