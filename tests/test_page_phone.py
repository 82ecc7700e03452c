"""AppTest of the phone layouts (a browser that reported a narrow screen, ui/viewport.py): each result right under
its input, a canvas as wide as the screen with its pen scaled to it, the Train page's run first with the form folded
away, one-column charts; and a desktop (or a browser that has not said its width) laid out as before."""

import json
import time

import numpy as np
import pytest

from cnn_core.drawing import scaled_stroke, upscale_digit
from cnn_core.runs import RunStatus, RunStore
from tests.conftest import components, finished_runs, open_page, synthetic_digits

PHONE = 390  # CSS pixels: a phone held upright
CANVAS = "streamlit-drawable-canvas.streamlit_drawable_canvas"


def in_order(node) -> list:
    """Every element under an AppTest node, in page order (blocks before what they hold)."""
    out = []
    for index in sorted(getattr(node, "children", None) or {}):
        child = node.children[index]
        out.append(child)
        out.extend(in_order(child))
    return out


def name(element) -> str:
    """A short name of an element: its kind and its label, key or component."""
    if element.type == "bidi_component":
        return element.proto.component_name
    return f"{element.type}:{getattr(element, 'label', None) or getattr(element, 'key', None) or ''}"


def page_order(at) -> list[str]:
    return [name(e) for e in in_order(at.main) if e.type not in ("flex_container", "column")]


def canvas_data(at) -> dict:
    [canvas] = components(at, CANVAS)
    return json.loads(canvas.proto.json)


@pytest.fixture
def digit() -> np.ndarray:
    return upscale_digit(synthetic_digits(1, seed=5)[0][0])


def test_the_probe_asks_until_the_width_is_known_and_a_desktop_keeps_its_layout(studio, digit):
    at = open_page("pages/draw.py", draw_image=digit)  # no width reported yet (AppTest runs no JavaScript)
    assert not at.exception
    assert components(at, "cnn_viewport"), "the shell mounts the width probe until the browser answers"
    assert (canvas_data(at)["canvasWidth"], canvas_data(at)["strokeWidth"]) == (280, 18)
    desktop = open_page("pages/draw.py", viewport_width=1400, draw_image=digit)
    assert not components(desktop, "cnn_viewport"), "the width is asked once per session"
    assert (canvas_data(desktop)["canvasWidth"], canvas_data(desktop)["strokeWidth"]) == (280, 18)
    order = page_order(desktop)  # the two columns: the pen, Clear, the canvas, the pickers; then the reading
    assert order.index("slider:Stroke width") < order.index(CANVAS) < order.index("radio:Saliency")
    assert order.index("radio:Saliency") < order.index("metric:Prediction") < order.index("plotly_chart:probs")
    assert not desktop.get("progress")
    assert any("ms (preprocess" in c.value for c in desktop.caption)


def test_draw_on_a_phone_reads_the_digit_right_under_a_canvas_as_wide_as_the_screen(studio, digit):
    at = open_page("pages/draw.py", viewport_width=PHONE, draw_image=digit)
    assert not at.exception
    canvas = canvas_data(at)
    side = PHONE - 2 * 16  # the page's padding on either side
    assert canvas["canvasWidth"] == canvas["canvasHeight"] == side
    assert canvas["strokeWidth"] == pytest.approx(scaled_stroke(18, side)) == pytest.approx(18 * side / 280)
    order = page_order(at)
    reading = order[order.index(CANVAS) + 1: order.index(CANVAS) + 5]
    assert reading == ["metric:Prediction", "progress:", "progress:", "progress:"], order  # right under the canvas
    assert order.index("progress:") < order.index("button:Clear the canvas") < order.index("slider:Stroke width")
    assert order.index("slider:Stroke width") < order.index("plotly_chart:probs")
    # each picker right above the chart it sets
    assert order[order.index("selectbox:Feature maps of layer") + 1] == "plotly_chart:maps"
    assert order[order.index("radio:Saliency") + 1] == "plotly_chart:heat"
    bars = [p.proto.text for p in at.get("progress")]
    assert bars[0].startswith(f"**{at.metric[0].value}**"), bars  # the most probable first: the prediction
    values = [p.proto.value for p in at.get("progress")]
    assert values == sorted(values, reverse=True)
    for chart in at.get("plotly_chart"):  # a finger on a chart scrolls the page; no mode bar over the titles
        assert json.loads(chart.proto.spec)["layout"]["dragmode"] is False
        assert json.loads(chart.proto.config)["displayModeBar"] is False


def test_a_blank_canvas_on_a_phone_says_what_to_do_right_under_it(studio):
    at = open_page("pages/draw.py", viewport_width=PHONE)
    order = page_order(at)
    assert order[order.index(CANVAS) + 1] == "info:", order  # the hint, where the prediction will be
    assert "Draw a digit" in at.info[0].value


def test_train_on_a_phone_puts_the_run_first_and_folds_the_form_away(runs_root):
    at = open_page("pages/train.py", viewport_width=PHONE)
    assert not at.exception
    assert not [e for e in at.expander if e.label == "Train settings"], "no run yet: the form is the page"
    assert "below" in at.info[0].value
    at.selectbox(key="cfg_model").set_value("mlp")
    at.number_input(key="cfg_epochs").set_value(1)
    at.selectbox(key="cfg_batch_size").set_value(32)
    at.number_input(key="cfg_val_size").set_value(100)
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception
    run_id = at.query_params["run"]
    order = page_order(at)
    [settings] = [e for e in at.expander if e.label == "Train settings"]
    assert settings.button(key="train_start"), "the form, its Train button with it, folded under the run"
    assert order.index("cnn_reveal") < order.index("cnn_live_curves") < order.index("expander:Train settings")
    assert not at.session_state["train_settings"], "folded"
    assert json.loads(components(at, "cnn_live_curves")[0].proto.json)["phone"] is True
    at.run()  # the next rerun: the run still first, nothing scrolls the page again
    assert not components(at, "cnn_reveal") and components(at, "cnn_live_curves")
    store = RunStore(runs_root)

    def ended(run: str) -> bool:
        deadline = time.monotonic() + 90
        while store.read(run).state.is_active and time.monotonic() < deadline:
            time.sleep(0.1)
        return store.read(run).state is RunStatus.FINISHED

    assert ended(run_id)
    at.session_state["train_settings"] = True  # the student opens the settings for another run …
    at.run()
    at.button(key="train_start").click().run()  # … and presses Train: the new run first, the form folded again
    assert not at.exception and at.query_params["run"] != run_id
    assert not at.session_state["train_settings"] and components(at, "cnn_reveal")
    assert ended(at.query_params["run"])


def test_an_ended_run_on_a_phone_shows_its_tiles_two_by_two_and_its_curves_in_one_column(runs_root):
    finished_runs(runs_root, 2)
    run_id = RunStore(runs_root).list()[0].id
    at = open_page("pages/train.py", viewport_width=PHONE)
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    tiles = [m for m in at.metric]
    assert [m.label for m in tiles] == ["best val accuracy", "test accuracy", "images / s", "seconds"]
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["layout"]["xaxis"]["domain"] == figure["layout"]["xaxis4"]["domain"], "one column"
    assert figure["layout"]["height"] == 860
    runs = open_page("pages/runs.py", viewport_width=PHONE)
    assert not runs.exception
    overlay = json.loads(runs.get("plotly_chart")[0].proto.spec)
    assert overlay["layout"]["yaxis"]["domain"][0] > overlay["layout"]["yaxis2"]["domain"][1], "loss over accuracy"
    table = runs.dataframe[0].proto
    assert list(table.column_order)[-1] == "run", "the long run id last on a phone"


def test_inspect_on_a_phone_shows_a_cells_mistakes_right_under_the_matrix(studio):
    at = open_page("pages/inspect.py", viewport_width=PHONE)
    assert not at.exception
    order = page_order(at)
    confusion = order.index("plotly_chart:confusion")
    assert order[confusion + 1: confusion + 3] == ["selectbox:True class", "selectbox:Predicted class"], order
    assert order.index("selectbox:Predicted class") < order.index("plotly_chart:per_class")
    desktop = page_order(open_page("pages/inspect.py", viewport_width=1400))
    assert desktop.index("plotly_chart:per_class") < desktop.index("selectbox:True class")
