"""AppTest of "Bring a model" (Inspect and Draw): an uploaded checkpoint is offered in this session's pickers only;
a pickle, a truncated, oversized or mismatched file, or a malicious layer stack gets one sentence and nothing
is loaded."""

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save
from streamlit.testing.v1 import AppTest

from cnn_core.access import new_key
from cnn_core.checkpoints import MAX_UPLOAD_BYTES, load_checkpoint, read_metadata
from cnn_core.drawing import upscale_digit
from cnn_core.live import analyse_drawing
from cnn_core.models import create_model
from tests.conftest import as_visitor, open_page, save_mlp, synthetic_digits

UPLOAD = "model_upload"


@pytest.fixture
def digit() -> np.ndarray:
    return upscale_digit(synthetic_digits(1, seed=5)[0][0])


@pytest.fixture
def mine(tmp_path):
    """An MLP checkpoint saved elsewhere (not in this server's checkpoints folder)."""
    return save_mlp(tmp_path / "elsewhere" / "my-mlp.safetensors", seed=3)


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=UPLOAD).set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def picker(at: AppTest):
    return at.selectbox(key="model_picker")


def test_an_uploaded_model_is_picked_and_draws_on_the_draw_page(studio, mine, digit):
    at = open_page("pages/draw.py", draw_image=digit)
    assert [e for e in at.expander if e.label == "Bring a model"]
    assert at.file_uploader(key=UPLOAD).allowed_type == [".safetensors"]
    upload(at, "my-mlp.safetensors", mine.read_bytes())
    assert picker(at).value == "uploaded · my-mlp" and not at.error
    assert any("yours, in this browser tab only" in c.value for c in at.caption)
    ckpt = load_checkpoint(mine)
    assert at.metric[0].value == str(analyse_drawing(ckpt.model, ckpt.info, digit).prediction)
    assert picker(at).options[0] == "pretrained · tiny-mnist" and "uploaded · my-mlp" in picker(at).options
    assert not at.get("link_button"), "no stand-alone link: the server has no file of it"
    at.switch_page("pages/inspect.py").run()  # the same session: the model goes with it
    assert not at.exception and picker(at).value == "uploaded · my-mlp"


def test_an_uploaded_model_opens_in_inspect(studio, tmp_path):
    from tests.conftest import save_tiny

    path = save_tiny(tmp_path / "elsewhere" / "tiny2.safetensors", seed=9)
    at = upload(open_page("pages/inspect.py"), "tiny2.safetensors", path.read_bytes())
    assert picker(at).value == "uploaded · tiny2"
    assert at.get("plotly_chart") and not at.error


def crafted(meta: dict, weights: dict | None = None) -> bytes:
    weights = create_model("custom").state_dict() if weights is None else weights
    return save(weights, metadata={"format": "cnn-studio", "format_version": "1", "meta": json.dumps(meta)})


def bad_files(mine) -> dict[str, tuple[str, bytes, str]]:
    meta = read_metadata(mine)
    good = mine.read_bytes()
    mlp = create_model("mlp", hidden=16).state_dict()
    torch.save({"weights": mlp}, mine.parent / "model.pt")
    huge = {**meta, "model": "custom", "model_args": {"layers": [{"type": "conv", "channels": 4096, "kernel": 11},
                                                                 {"type": "linear", "width": 4096}]}}
    return {
        "a pickle": ("model.safetensors", pickle.dumps({"weights": mlp}), "is not a safetensors checkpoint"),
        "a torch.save file": ("model.safetensors", (mine.parent / "model.pt").read_bytes(),
                              "is not a safetensors checkpoint"),
        "truncated": ("cut.safetensors", good[: len(good) - 500], "is damaged or truncated"),
        "oversized": ("big.safetensors", good + b"\0" * MAX_UPLOAD_BYTES, "a model brought here may be at most 20 MB"),
        "mismatched shapes": ("odd.safetensors", crafted(meta, {**mlp, "fc1.weight": torch.zeros(32, 784)}),
                              "fc1.weight is 32x784 where the model has 16x784"),
        "a malicious stack": ("evil.safetensors", crafted(huge), "a model brought here may have at most 5,242,880"),
    }


@pytest.mark.parametrize("case", ["a pickle", "a torch.save file", "truncated", "oversized",
                                  "mismatched shapes", "a malicious stack"])
def test_a_wrong_or_malicious_file_gets_one_sentence_and_nothing_is_loaded(studio, mine, digit, case):
    name, data, says = bad_files(mine)[case]
    at = open_page("pages/draw.py", draw_image=digit)
    before = picker(at).value
    upload(at, name, data)
    [error] = at.error
    assert error.value.startswith(name) and says in error.value and "\n" not in error.value, error.value
    assert picker(at).value == before and not [o for o in picker(at).options if o.startswith("uploaded")]
    assert at.session_state["session_models"] == {}
    assert at.metric[0].label == "Prediction", "the page goes on with the model it had"


def test_a_good_upload_after_a_bad_one_clears_the_sentence(studio, mine):
    at = open_page("pages/inspect.py")
    upload(at, "model.safetensors", b"\x80\x04not really")
    assert at.error
    upload(at, "my-mlp.safetensors", mine.read_bytes())
    assert not at.error and picker(at).value == "uploaded · my-mlp"


def test_hosted_an_upload_is_offered_to_its_visitor_only(studio, mine, monkeypatch):
    from ui.web_export import _find

    monkeypatch.setenv("CNN_HOSTED", "1")
    alice, bob = new_key(), new_key()
    at = upload(as_visitor("pages/draw.py", alice), "my-mlp.safetensors", mine.read_bytes())
    assert picker(at).value == "uploaded · my-mlp"
    for page in ("pages/draw.py", "pages/inspect.py"):
        other = as_visitor(page, bob)
        assert not [o for o in picker(other).options if o.startswith("uploaded")]
        again = as_visitor(page, alice)  # her next session (a new tab): uploads are the tab's own
        assert not [o for o in picker(again).options if o.startswith("uploaded")]
    assert _find("uploaded · my-mlp", None) is None, "the stand-alone page route knows no uploaded model"
