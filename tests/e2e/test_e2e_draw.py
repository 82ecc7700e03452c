"""Draw: mouse strokes on the canvas reach the pretrained LeNet; a "1" reads 1, a "0" reads 0; clear resets."""

from streamlit_ui import (HINT, MNIST_MODEL, ONE, PREDICTION, ZERO, choose, clear_canvas, needs_page, open_page,
                          prediction, screenshot, stroke, wait_idle)

pytestmark = needs_page("draw.py")


def test_drawn_digits_are_read_and_clear_resets(app, page, console_errors):
    open_page(page, f"{app.url}/draw")
    choose(page, "Model", MNIST_MODEL)  # checkpoints/ holds a Fashion-MNIST model too
    wait_idle(page)
    assert page.get_by_text(HINT).first.is_visible(), "a blank canvas shows the hint"
    assert page.locator(PREDICTION).count() == 0

    stroke(page, ONE)
    assert prediction(page) == "1"
    wait_idle(page)
    screenshot(page, "draw")

    clear_canvas(page)
    assert page.get_by_text(HINT).first.is_visible()
    stroke(page, ZERO)
    assert prediction(page) == "0"
    wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert not console_errors, console_errors
