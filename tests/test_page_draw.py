"""AppTest of the Draw page: a digit handed in through the test hook (st.session_state["draw_image"])."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.checkpoints import load_checkpoint
from cnn_core.drawing import upscale_digit
from cnn_core.live import analyse_drawing
from tests.conftest import as_array, chart, save_mlp, synthetic_digits


def open_draw(image: np.ndarray | None = None) -> AppTest:
    at = AppTest.from_file("../pages/draw.py", default_timeout=60)
    if image is not None:
        at.session_state["draw_image"] = image
    return at.run()


@pytest.fixture
def digit() -> np.ndarray:
    return upscale_digit(synthetic_digits(1, seed=5)[0][0])


def black_canvas() -> np.ndarray:
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    return canvas


def test_empty_canvas_shows_the_hint_not_a_prediction(studio):
    at = open_draw()
    assert not at.exception
    assert any("Draw a digit" in i.value for i in at.info)
    assert not at.metric


@pytest.mark.parametrize("pixels", [0, 20])
def test_blank_or_nearly_blank_drawing_shows_the_hint(studio, pixels):
    canvas = black_canvas()
    canvas[100 : 100 + pixels, 100, :3] = 255
    at = open_draw(canvas)
    assert not at.exception
    assert any("Draw a digit" in i.value for i in at.info) and not at.metric


def test_a_drawn_digit_is_predicted_with_every_view(studio, digit):
    at = open_draw(digit)
    assert not at.exception and not at.info
    ckpt = load_checkpoint(studio.ckpt)
    expected = analyse_drawing(ckpt.model, ckpt.info, digit, "conv1")
    assert at.metric[0].label == "Prediction" and at.metric[0].value == str(expected.prediction)
    probs = chart(at, "probs")["data"][0]
    np.testing.assert_allclose(as_array(probs["y"]), expected.probs, rtol=1e-4)
    steps = chart(at, "steps")  # the preprocessing steps as one figure of inline images (no media files)
    assert [a["text"] for a in steps["layout"]["annotations"]] == [title for title, _ in expected.steps.steps()]
    assert [t["type"] for t in steps["data"]] == ["image"] * len(expected.steps.steps())
    assert chart(at, "maps")["data"][0]["type"] == "heatmap"
    assert [t["type"] for t in chart(at, "heat")["data"]] == ["heatmap", "heatmap"]
    assert any("ms (preprocess" in c.value for c in at.caption)


def test_layer_and_saliency_method_can_be_changed(studio, digit):
    at = open_draw(digit)
    at.selectbox(key="draw_layer").set_value("pool2")
    at.radio(key="draw_saliency").set_value("Grad-CAM")
    at.run()
    assert not at.exception
    assert chart(at, "maps")["layout"]["title"]["text"] == "pool2 · 6 × 7 × 7"
    assert "Grad-CAM" in chart(at, "heat")["layout"]["title"]["text"]


def test_clear_gives_a_fresh_canvas(studio):
    at = open_draw()
    assert at.session_state["canvas_version"] == 0
    [b for b in at.button if b.label == "Clear the canvas"][0].click().run()
    assert not at.exception and at.session_state["canvas_version"] == 1


def test_a_model_without_conv_layers_still_reads_the_drawing(studio, digit):
    save_mlp(studio.checkpoints / "mlp-mnist.safetensors")
    at = AppTest.from_file("../pages/draw.py", default_timeout=60)
    at.session_state["model_picker"] = "pretrained · mlp-mnist"
    at.session_state["draw_image"] = digit
    at.run()
    assert not at.exception
    assert at.metric[0].label == "Prediction"
    assert not [s for s in at.selectbox if s.key == "draw_layer"]
    assert at.radio(key="draw_saliency").options == ["gradient × input"]
    assert any("no feature maps" in i.value for i in at.info)
    assert [t["type"] for t in chart(at, "heat")["data"]] == ["heatmap", "heatmap"]


def test_the_model_is_offered_as_a_web_page_to_download_and_to_open(studio):
    from cnn_core.webpage import runtime_version

    at = open_draw()
    if runtime_version() is None:  # no `make web` here: a sentence instead of the button
        assert any("make web" in c.value for c in at.caption) and not at.get("download_button")
        return
    [download] = at.get("download_button")
    assert download.proto.label == "Download as a web page" and download.proto.deferred_file_id  # built when pressed
    [link] = at.get("link_button")
    assert link.proto.label == "Open this model as a stand-alone page"
    assert link.proto.url == "/web/page?model=pretrained+%C2%B7+tiny-mnist&layer=conv1"
    at.selectbox(key="draw_layer").set_value("act2").run()
    assert at.get("link_button")[0].proto.url.endswith("&layer=act2")  # the maps the page shows follow the choice


def test_without_the_web_runtime_the_page_says_how_to_get_it(studio, monkeypatch):
    import ui.web_export

    monkeypatch.setattr(ui.web_export, "runtime_version", lambda: None)
    at = open_draw()
    assert not at.exception and not at.get("download_button") and not at.get("link_button")
    assert any("make web" in c.value for c in at.caption)


def test_how_robust_is_it_is_computed_only_when_opened(studio, digit, monkeypatch):
    import ui.robustness_view

    calls = []
    monkeypatch.setattr(ui.robustness_view, "sweep", lambda *a: calls.append(a) or pytest.fail("swept while closed"))
    at = open_draw(digit)
    assert not at.exception
    assert [e for e in at.expander if e.label == "How robust is it?"]
    assert not [s for s in at.slider if (s.key or "").startswith("robust_")] and not calls


def test_how_robust_is_it_shows_the_changed_drawing_its_reading_and_a_sweep(studio, digit):
    from cnn_core.robustness import SWEEPS, Perturbation, probabilities, sweep

    at = AppTest.from_file("../pages/draw.py", default_timeout=60)
    at.session_state["draw_image"] = digit
    at.session_state["robust_open"] = True  # the panel opened
    at.run()
    assert not at.exception
    ckpt = load_checkpoint(studio.ckpt)
    centered = analyse_drawing(ckpt.model, ckpt.info, digit).steps.centered
    assert {s.key for s in at.slider if s.key.startswith("robust_")} == {
        "robust_shift_x", "robust_shift_y", "robust_rotate", "robust_scale", "robust_thickness", "robust_noise"}
    at.slider(key="robust_rotate").set_value(60)
    at.slider(key="robust_thickness").set_value(2).run()
    _, probs = probabilities(ckpt.model, ckpt.info, centered, [Perturbation(), Perturbation(rotate=60, thickness=2)])
    reading = next(m for m in at.metric if m.label == "The model reads")
    assert reading.value == str(probs[1].argmax())
    assert [a["text"] for a in chart(at, "robust_images")["layout"]["annotations"]] == ["as drawn", "changed"]
    figure = chart(at, "robust_sweep_chart")  # "shift right" first
    values, _, expected = sweep(ckpt.model, ckpt.info, centered, "shift right")
    assert [t["name"] for t in figure["data"]] == [str(k) for k in range(10)]
    for k, trace in enumerate(figure["data"]):
        np.testing.assert_allclose(as_array(trace["x"]), values)
        np.testing.assert_allclose(as_array(trace["y"]), expected[:, k], rtol=1e-5, atol=1e-7)
    at.selectbox(key="robust_sweep").set_value("rotate").run()
    figure = chart(at, "robust_sweep_chart")
    np.testing.assert_allclose(as_array(figure["data"][0]["x"]), SWEEPS["rotate"].values())
    assert figure["layout"]["shapes"][0]["x0"] == 60, "the slider's value is marked on the sweep"
    assert figure["layout"]["xaxis"]["title"]["text"] == "rotate (°)"
    assert len(chart(at, "robust_sweep_images")["data"]) == 7
