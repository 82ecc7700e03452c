"""AppTest of "Your examples": drawings (through the test hook) and PNG uploads become examples of named classes;
fine-tuning shows the before/after, offers the model on Draw for this session, and never touches the shared model."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core.checkpoints import load_checkpoint
from cnn_core.drawing import upscale_digit
from tests.conftest import chart, open_page, synthetic_digits

HOOK = "examples_canvas"


def drawing(digit: int, seed: int = 0) -> np.ndarray:
    """A synthetic digit of this class (a bar at its row) as the canvas gives it."""
    images, labels = synthetic_digits(200, seed)
    return upscale_digit(images[list(labels).index(digit)])


def add(at: AppTest, name: str, image: np.ndarray) -> AppTest:
    at.selectbox(key="examples_class").set_value(name)
    at.session_state[HOOK] = image
    at.button(key="examples_add").click().run()
    assert not at.exception, at.exception
    return at


def counts(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "examples in all" in m.value)


def metric(at: AppTest, label: str):
    return next((m for m in at.metric if m.label.startswith(label)), None)


def test_the_page_is_in_the_navigation_and_starts_with_the_models_classes(studio):
    at = open_page("pages/examples.py")
    assert not at.exception and at.title[0].value == "🧑‍🎨 Your examples"
    assert at.text_input(key="examples_classes").value == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    assert at.selectbox(key="examples_class").options == [str(d) for d in range(10)]
    assert any("No examples yet" in i.value for i in at.info)


def test_digits_in_ones_own_hand_fine_tune_with_the_test_set_before_and_after(studio):
    at = open_page("pages/examples.py")
    for digit in range(10):
        add(at, str(digit), drawing(digit))
    assert counts(at).endswith("10 examples in all") and at.get("plotly_chart")
    shared = load_checkpoint(studio.ckpt)
    before = {k: v.clone() for k, v in shared.model.state_dict().items()}
    at.slider(key="examples_epochs").set_value(5)
    at.button(key="examples_fine_tune").click().run()
    assert not at.exception and not at.error
    assert "points (was" in metric(at, "Your examples read right").delta
    test = metric(at, "Test images read right (the first 200)")
    assert test is not None and "points (was" in test.delta
    assert any("10 examples of 10 classes, 5 epochs" in c.value for c in at.caption)
    from ui.model_picker import cached_checkpoint

    cached = cached_checkpoint(studio.ckpt)  # the model every session shares: untouched
    assert all(torch.equal(v, cached.model.state_dict()[k]) for k, v in before.items())
    assert not cached.model.training
    [download] = [d for d in at.get("download_button") if d.proto.label == "Download it"]
    assert download.proto.label == "Download it"
    next(b for b in at.button if b.label == "Draw with it").click().run()
    assert not at.exception and at.title[0].value == "✏️ Draw a digit"
    assert at.selectbox(key="model_picker").value == "fine-tuned · custom · 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"


def test_classes_of_ones_own_fine_tune_and_draw_with_their_names(studio):
    at = open_page("pages/examples.py")
    at.text_input(key="examples_classes").set_value("A, B, ○").run()
    assert at.selectbox(key="examples_class").options == ["A", "B", "○"]
    for name, digit in (("A", 1), ("B", 5), ("○", 8), ("A", 1), ("B", 5), ("○", 8)):
        add(at, name, drawing(digit, seed=len(counts(at))))
    assert counts(at) == "**A** 2 · **B** 2 · **○** 2 · 6 examples in all"
    at.button(key="examples_fine_tune").click().run()
    assert not at.exception and not at.error
    mine = metric(at, "Your examples read right")
    assert mine.value.endswith("%") and not mine.delta, "no before: the new classes had no output"
    assert not metric(at, "Test images") and any("no test set to read" in c.value for c in at.caption)
    at.session_state["draw_image"] = drawing(5)  # what the Draw page will read, and its robustness panel open
    at.session_state["robust_open"] = True
    next(b for b in at.button if b.label == "Draw with it").click().run()
    assert not at.exception and at.title[0].value == "✏️ Draw a digit"
    assert at.selectbox(key="model_picker").value == "fine-tuned · custom · A, B, ○"
    assert at.metric[0].label == "Prediction" and at.metric[0].value in ("A", "B", "○")
    assert chart(at, "probs")["data"][0]["x"] == ["A", "B", "○"]
    assert [t["name"] for t in chart(at, "robust_sweep_chart")["data"]] == ["A", "B", "○"]
    at.switch_page("pages/examples.py").run()  # the last fine-tune is still shown there
    next(b for b in at.button if b.label == "Inspect it").click().run()
    assert not at.exception and at.title[0].value == "🔬 Inspect a model"
    assert any("classes of your own (A, B, ○)" in i.value for i in at.info)


def test_fine_tuning_without_an_example_of_every_class_says_which_are_missing(studio):
    at = open_page("pages/examples.py")
    at.text_input(key="examples_classes").set_value("A, B, C").run()
    add(at, "A", drawing(1))
    at.button(key="examples_fine_tune").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Add at least one example of each class; none yet for B, C."]


def test_a_blank_canvas_or_bad_class_names_get_a_sentence(studio):
    at = open_page("pages/examples.py")
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    add(at, "3", blank)
    assert any("blank" in w.value for w in at.warning) and counts(at).endswith("0 examples in all")
    at.text_input(key="examples_classes").set_value("only one").run()
    assert not at.exception and "between 2 and 20 classes" in at.error[0].value


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def test_png_uploads_become_examples_of_the_chosen_class_and_bad_files_get_a_sentence(studio):
    at = open_page("pages/examples.py")
    at.selectbox(key="examples_class").set_value("7").run()
    uploader = at.get("file_uploader")[0]
    assert uploader.allowed_type == [".png"] and uploader.accept_multiple_files
    jpeg = io.BytesIO()
    Image.new("RGB", (30, 30)).save(jpeg, format="JPEG")
    uploader.set_value([("seven.png", png(255 - drawing(7)[..., 0]), "image/png"),  # dark on white paper
                        ("photo.png", jpeg.getvalue(), "image/png"),
                        ("empty.png", png(np.zeros((50, 50), np.uint8)), "image/png")]).run()
    assert not at.exception
    assert counts(at).startswith("**0** 0") and "**7** 1" in counts(at)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("photo.png is not a PNG image") for w in warnings)
    assert any(w.startswith("empty.png: The canvas is blank") for w in warnings)
    assert at.get("file_uploader")[0].proto.id != uploader.proto.id, "a fresh uploader for the next files"


def test_remove_the_last_and_remove_all(studio):
    at = open_page("pages/examples.py")
    add(at, "1", drawing(1))
    add(at, "2", drawing(2))
    next(b for b in at.button if b.label == "Remove the last").click().run()
    assert counts(at).endswith("1 examples in all") and "**1** 1" in counts(at)
    next(b for b in at.button if b.label == "Remove all").click().run()
    assert counts(at).endswith("0 examples in all")


def test_hosted_fine_tuning_is_bounded(studio, monkeypatch):
    monkeypatch.setenv("CNN_HOSTED", "1")
    from cnn_core.finetune import limits

    most, epochs = limits(True)
    at = open_page("pages/examples.py", examples=[("1", np.zeros((28, 28), np.uint8))] * most)
    assert at.slider(key="examples_epochs").max == epochs
    add(at, "1", drawing(1))
    assert any(f"there are {most} examples already" in w.value for w in at.warning)
