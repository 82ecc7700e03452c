"""AppTest of the Inspect page on a tiny checkpoint and the tiny synthetic data set."""

import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from cnn_core.checkpoints import save_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, load_splits, normalize
from cnn_core.inspect import confusion_matrix, evaluate_predictions, kernel_grid
from cnn_core.models import create_model
from tests.test_live import TINY_LAYERS

HISTORY = [{"event": "epoch", "epoch": 1, "val_acc": 0.5}, {"event": "end", "test_acc": 0.5}]


def tiny_net(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("custom", layers=TINY_LAYERS)


def save_tiny(path, seed: int = 0):
    cfg = TrainConfig(model="custom", model_args={"layers": TINY_LAYERS}, epochs=1)
    return save_checkpoint(path, tiny_net(seed), cfg, HISTORY, DATASETS["mnist"])


@pytest.fixture
def studio(tmp_path, tiny_data_dir, monkeypatch):
    """An empty runs folder and a checkpoints folder holding one tiny untrained model (it makes mistakes)."""
    folders = SimpleNamespace(checkpoints=tmp_path / "checkpoints", runs=tmp_path / "runs", data=tiny_data_dir)
    folders.runs.mkdir()
    monkeypatch.setenv("CNN_CHECKPOINTS_DIR", str(folders.checkpoints))
    monkeypatch.setenv("CNN_RUNS_DIR", str(folders.runs))
    folders.ckpt = save_tiny(folders.checkpoints / "tiny-mnist.safetensors")
    return folders


def chart(at: AppTest, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with this key."""
    specs = [c.proto.spec for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert specs, f"no chart {key!r}"
    return json.loads(specs[0])


def as_array(data) -> np.ndarray:
    """An array from a figure's JSON, whether plotly wrote a list or a typed array."""
    if isinstance(data, dict):  # {"dtype": "f8", "bdata": base64, "shape": "7, 7"}
        shape = [int(n) for n in str(data.get("shape", -1)).split(",")]
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).reshape(shape)
    return np.array(data, dtype=float)


def z_of(trace: dict) -> np.ndarray:
    return as_array(trace["z"])


def expected_confusion() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tiny model on the tiny test set, computed here independently of the page."""
    test = load_splits("mnist")["test"]
    preds, probs = evaluate_predictions(tiny_net().eval(), normalize(test.images, 0.1307, 0.3081), test.labels)
    return confusion_matrix(test.labels.numpy(), preds), preds, test.labels.numpy()


def open_inspect() -> AppTest:
    return AppTest.from_file("../pages/inspect.py", default_timeout=60).run()


def test_no_checkpoint_says_how_to_get_one(studio):
    studio.ckpt.unlink()
    at = open_inspect()
    assert not at.exception
    assert "Train" in at.info[0].value and "make run" in at.info[0].value
    assert not at.get("plotly_chart")


def test_kernels_feature_maps_and_confusion_render(studio):
    at = open_inspect()
    assert not at.exception and not at.error
    conv1 = chart(at, "k-conv1")["data"][0]
    expected = kernel_grid(tiny_net().conv1.weight.detach().numpy()[:, 0])
    np.testing.assert_allclose(np.nan_to_num(z_of(conv1), nan=9), np.nan_to_num(expected, nan=9), rtol=1e-5)
    assert chart(at, "k-conv2")["data"][0]["type"] == "heatmap"
    for layer in ("conv1", "act1", "pool1", "conv2", "act2", "pool2"):
        assert chart(at, f"fm-{layer}")["data"][0]["type"] == "heatmap"
    cm, _, _ = expected_confusion()
    np.testing.assert_array_equal(z_of(chart(at, "confusion")["data"][0]), cm)
    accuracy = np.trace(cm) / cm.sum()
    assert any(f"Test accuracy {accuracy:.2%}" in m.value for m in at.markdown)
    assert len(chart(at, "per_class")["data"][0]["x"]) == 10


def test_choosing_true_and_predicted_classes_shows_those_mistakes(studio):
    cm, preds, labels = expected_confusion()
    off = cm - np.diag(np.diag(cm))
    true, pred = map(int, np.unravel_index(np.argmin(np.where(off > 0, off, 10**9)), cm.shape))  # a small cell
    at = open_inspect()
    at.selectbox(key="cm_true").set_value(true)
    at.selectbox(key="cm_pred").set_value(pred)
    at.run()
    assert not at.exception
    assert any(f"{cm[true, pred]} images of {true} predicted as {pred}" in c.value for c in at.caption)
    titles = [a["text"] for a in chart(at, "cell")["layout"]["annotations"]]
    shown = {int(t.split(" ")[0][1:]) for t in titles}
    assert shown == set(np.flatnonzero((labels == true) & (preds == pred))[:24].tolist())


def test_the_largest_mistake_is_chosen_first_and_the_diagonal_explains_itself(studio):
    cm, _, _ = expected_confusion()
    off = cm - np.diag(np.diag(cm))
    at = open_inspect()
    chosen = at.selectbox(key="cm_true").value, at.selectbox(key="cm_pred").value
    assert chosen == np.unravel_index(off.argmax(), cm.shape)
    at.selectbox(key="cm_pred").set_value(at.selectbox(key="cm_true").value).run()
    assert any("diagonal" in i.value for i in at.info)


def test_epoch_slider_shows_each_epochs_kernels(studio):
    run = studio.runs / "20261125-0930-custom"
    for epoch in (1, 2, 3):
        save_tiny(run / f"epoch-{epoch}.safetensors", seed=epoch)
    save_tiny(run / "last.safetensors", seed=3)
    at = open_inspect()
    at.selectbox(key="model_picker").set_value("run · 20261125-0930-custom").run()
    assert not at.exception
    assert at.select_slider[0].value == 3
    at.select_slider[0].set_value(1).run()
    conv1 = z_of(chart(at, "k-conv1")["data"][0])
    expected = kernel_grid(tiny_net(seed=1).conv1.weight.detach().numpy()[:, 0])
    np.testing.assert_allclose(np.nan_to_num(conv1, nan=9), np.nan_to_num(expected, nan=9), rtol=1e-5)


@pytest.mark.parametrize("how", ["by class", "random"])
def test_test_image_by_class_or_at_random(studio, how):
    at = open_inspect()
    at.radio(key="image_by").set_value(how).run()
    assert not at.exception
    if how == "random":
        before = at.image[0].proto.imgs[0].caption
        [b for b in at.button if b.label == "Another one"][0].click().run()
        assert not at.exception and at.image[0].proto.imgs[0].caption != before
    else:
        at.selectbox(key="image_class").set_value(3).run()
        assert "true 3" in at.image[0].proto.imgs[0].caption


def test_averaged_kernels(studio):
    at = open_inspect()
    at.toggle(key="kernels_mean").set_value(True).run()
    conv2 = z_of(chart(at, "k-conv2")["data"][0])
    expected = kernel_grid(tiny_net().conv2.weight.detach().numpy().mean(axis=1))
    np.testing.assert_allclose(np.nan_to_num(conv2, nan=9), np.nan_to_num(expected, nan=9), rtol=1e-5)


def test_missing_data_is_a_sentence_and_kernels_still_show(studio, monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "nowhere"))
    at = open_inspect()
    assert not at.exception
    assert "fetch-data" in at.error[0].value
    assert chart(at, "k-conv1")
