"""The Convolution lab page, run by AppTest on the tiny synthetic data sets."""

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.conv import output_size
from tests.conftest import as_array, open_page

EDIT = {"added_rows": [], "deleted_rows": []}  # a data editor's edit state, besides edited_rows


@pytest.fixture
def page(tiny_data_dir) -> AppTest:
    at = open_page("pages/conv_lab.py", 120)
    assert not at.exception, at.exception
    return at


def open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state["lesson"] = label
    at.run()
    assert not at.exception, at.exception
    return at


def panel_titles(at: AppTest, i: int = 0) -> list[str]:
    return [a["text"] for a in json.loads(at.get("plotly_chart")[i].proto.spec)["layout"]["annotations"]]


def shown_shape(at: AppTest) -> tuple[int, int]:
    """The output shape the Convolve tab reports, (H_out, W_out)."""
    text = next(m.value for m in at.markdown if m.value.startswith("F.conv2d:"))
    return tuple(int(n) for n in re.search(r"output \*\*\(1, 1, (\d+), (\d+)\)\*\*", text).groups())


def test_the_lab_opens_on_a_digit_and_sobel_x(page):
    assert [t.label for t in page.tabs] == ["Convolve", "By hand vs F.conv2d", "Many channels", "Pooling",
                                            "Learn a kernel"]
    assert panel_titles(page) == ["input 28 × 28", "kernel 3 × 3", "output 26 × 26"]
    assert shown_shape(page) == (26, 26)
    assert "✓ as the formula says" in page.markdown[-1].value
    assert page.markdown[0].value.count("= 26") == 2  # the formula, rows and columns


@pytest.mark.parametrize("padding, stride, dilation", [(1, 1, 1), (2, 2, 1), (0, 3, 2), (4, 4, 6), (3, 1, 4)])
def test_geometry_sliders_change_the_output_as_the_formula_says(page, padding, stride, dilation):
    page.slider(key="padding").set_value(padding)
    page.slider(key="stride").set_value(stride)
    page.slider(key="dilation").set_value(dilation).run()
    assert not page.exception and not page.error
    expected = output_size(28, 3, stride, padding, dilation)
    assert shown_shape(page) == (expected, expected)
    assert f"= {expected}`" in page.markdown[0].value
    assert "✓" in page.markdown[-1].value


@pytest.mark.parametrize("kernel, shape", [("edge", (28, 27)), ("identity", (26, 26)), ("box_blur", (26, 26))])
def test_kernel_choice_changes_the_kernel_and_output(page, kernel, shape):
    page.selectbox(key="kernel").set_value(kernel).run()
    assert not page.exception
    assert shown_shape(page) == shape
    assert panel_titles(page)[1] == f"kernel {' × '.join(map(str, (28 - shape[0] + 1, 28 - shape[1] + 1)))}"


def test_gaussian_kernel_size_and_sigma(page):
    page.selectbox(key="kernel").set_value("gaussian").run()
    assert panel_titles(page)[1] == "kernel 5 × 5"
    page.select_slider(key="gauss_size").set_value(7).run()
    page.slider(key="sigma").set_value(2.0).run()
    assert not page.exception and panel_titles(page)[1] == "kernel 7 × 7" and shown_shape(page) == (22, 22)


def test_a_kernel_that_does_not_fit_gets_a_sentence(page):
    page.selectbox(key="kernel").set_value("gaussian").run()
    page.select_slider(key="gauss_size").set_value(7)
    page.slider(key="dilation").set_value(6).run()
    assert not page.exception
    assert page.error[0].value == ("A kernel spanning 37 pixels does not fit in an input of 28 pixels padded by 0 "
                                   "on each side; use a smaller kernel or dilation, or more padding.")
    assert not page.tabs  # nothing below the guard


def test_custom_kernel_typed_in_the_grid(page):
    page.selectbox(key="kernel").set_value("custom").run()
    assert page.data_editor[0].key == "custom_3" and not page.error
    page.session_state["custom_3"] = {"edited_rows": {0: {"0": "1/9", "2": "-1"}}, **EDIT}
    page.run()
    assert not page.exception and not page.error
    assert shown_shape(page) == (26, 26)


@pytest.mark.parametrize("cell, message", [
    ("abc", "Row 2, column 3 of the custom kernel is 'abc', which is not a number: type a number such as 1, "
            "-0.5 or 1/9."),
    ("", "Row 2, column 3 of the custom kernel is empty: type a number such as 1, -0.5 or 1/9."),
])
def test_a_bad_custom_kernel_gets_a_sentence_not_a_traceback(page, cell, message):
    page.selectbox(key="kernel").set_value("custom").run()
    page.session_state["custom_3"] = {"edited_rows": {1: {"2": cell}}, **EDIT}
    page.run()
    assert not page.exception
    assert [e.value for e in page.error] == [message]
    assert not page.get("plotly_chart")


def test_custom_kernel_can_be_5x5(page):
    page.selectbox(key="kernel").set_value("custom").run()
    page.radio(key="custom_size").set_value(5).run()
    assert page.data_editor[0].key == "custom_5" and shown_shape(page) == (24, 24)


def test_photo_and_fashion_sources(page):
    page.radio(key="source").set_value("photo").run()
    page.selectbox(key="photo").set_value("coins").run()
    assert not page.exception and panel_titles(page)[0] == "input 101 × 128"
    page.radio(key="source").set_value("fashion-mnist").run()
    assert not page.exception and page.caption[0].value.startswith("Label: ")


def test_by_hand_agrees_with_conv2d_and_is_timed(page):
    page.slider(key="padding").set_value(1)
    page.slider(key="stride").set_value(2).run()
    open_tab(page, "By hand vs F.conv2d")
    shown = {m.label: m.value for m in page.metric}
    assert float(shown["Max |by hand − F.conv2d|"]) < 1e-5
    assert shown["By hand, (28, 28) input"].endswith(" ms") and shown["F.conv2d (best of 5)"].endswith(" ms")
    assert panel_titles(page) == ["by hand", "F.conv2d", "by hand − F.conv2d"]


def test_by_hand_on_a_shrunken_image_too_small_for_the_kernel(page):
    page.slider(key="dilation").set_value(5).run()
    open_tab(page, "By hand vs F.conv2d")
    page.slider(key="side").set_value(8).run()
    assert not page.exception
    assert page.error[0].value.startswith("A kernel spanning 11 pixels does not fit in an input of 8 pixels")


def test_many_channels_show_every_shape(page):
    open_tab(page, "Many channels")
    shapes = page.markdown[0].value
    for part in ("x **(1, 3, 64, 64)**", "weight **(3, 3, 3, 3)**", "bias **(3,)**", "output **(1, 3, 64, 64)**"):
        assert part in shapes
    assert panel_titles(page, 2) == ["R ⋆ w[0,R]", "G ⋆ w[0,G]", "B ⋆ w[0,B]", "sum + b = out[0]"]
    page.radio(key="bank").set_value("random").run()
    page.slider(key="k_random").set_value(6).run()
    assert not page.exception and "weight **(6, 3, 3, 3)**" in page.markdown[0].value
    page.slider(key="take_apart").set_value(5).run()
    assert panel_titles(page, 2)[-1] == "sum + b = out[5]"


def test_many_channels_with_no_kernel_picked(page):
    open_tab(page, "Many channels")
    page.multiselect(key="picked").set_value([]).run()
    assert not page.exception and page.error[0].value.startswith("Pick at least one kernel")


def test_pooling_by_hand_matches_torch(page):
    open_tab(page, "Pooling")
    assert panel_titles(page) == ["feature map 26 × 26", "max pool 13 × 13", "average pool 13 × 13"]
    text = page.markdown[-1].value
    assert "`nn.MaxPool2d`: max difference **0.0e+00**" in text
    page.slider(key="window").set_value(3)
    page.slider(key="pool_stride").set_value(1).run()
    assert panel_titles(page)[1:] == ["max pool 24 × 24", "average pool 24 × 24"]


@pytest.mark.parametrize("hidden", ["edge", "sobel_x"])
def test_learning_a_kernel_reaches_the_hidden_one(page, hidden):
    open_tab(page, "Learn a kernel")
    page.selectbox(key="hidden").set_value(hidden).run()
    assert not page.exception
    text = next(m.value for m in page.markdown if "max |learned − hidden|" in m.value)
    error = float(re.search(r"max \|learned − hidden\| = \*\*([0-9.]+)\*\*", text).group(1))
    assert error < 1e-2 and text.endswith("✓")
    loss, convergence, pair = (json.loads(c.proto.spec) for c in page.get("plotly_chart"))
    assert loss["layout"]["yaxis"]["type"] == "log"
    entries = 2 if hidden == "edge" else 9
    assert len(convergence["data"]) == 2 * entries  # a line and a dotted target per kernel entry
    last = len(as_array(loss["data"][0]["y"])) - 1
    assert [a["text"] for a in pair["layout"]["annotations"]] == [f"learned, step {last}", "hidden"]


def test_the_step_slider_shows_the_kernel_at_that_step(page):
    from cnn_core.conv import make_kernel
    from cnn_core.explore import learn_hidden_kernel

    open_tab(page, "Learn a kernel")
    page.slider(key="learn_step").set_value(0).run()
    assert not page.exception
    loss, convergence, pair = (json.loads(c.proto.spec) for c in page.get("plotly_chart"))
    assert [s["x0"] for s in loss["layout"]["shapes"]] == [0] == [s["x0"] for s in convergence["layout"]["shapes"]]
    first = learn_hidden_kernel(make_kernel("edge"), steps=300, lr=0.02).kernels[0]
    np.testing.assert_allclose(as_array(pair["data"][0]["z"]), first, rtol=1e-5)
    assert pair["layout"]["annotations"][0]["text"] == "learned, step 0"


def test_too_few_steps_say_so(page):
    open_tab(page, "Learn a kernel")
    page.slider(key="steps").set_value(50)
    page.select_slider(key="lr").set_value(0.005).run()
    text = next(m.value for m in page.markdown if "max |learned − hidden|" in m.value)
    assert "After 50 steps" in text and text.endswith("(try more steps or a larger learning rate)")


def test_digits_missing_point_to_fetching_and_photos_still_work(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "empty"))
    at = open_page("pages/conv_lab.py")
    assert not at.exception
    assert "fetch-data" in at.error[0].value and at.error[0].value.endswith("Or pick a photo.")
    at.radio(key="source").set_value("photo").run()
    assert not at.exception and not at.error and panel_titles(at)[0] == "input 128 × 128"
