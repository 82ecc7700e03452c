"""AppTest of the Inspect page on a tiny checkpoint and the tiny synthetic data set."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.data import load_splits, normalize
from cnn_core.inspect import confusion_matrix, evaluate_predictions, kernel_grid
from tests.conftest import as_array, chart, save_mlp, save_tiny, tiny_net


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


def test_an_mlp_shows_its_first_layer_as_images_instead_of_kernels(studio):
    from cnn_core.checkpoints import load_checkpoint

    mlp = load_checkpoint(save_mlp(studio.checkpoints / "mlp-mnist.safetensors")).model
    at = AppTest.from_file("../pages/inspect.py", default_timeout=60)
    at.session_state["model_picker"] = "pretrained · mlp-mnist"
    at.run()
    assert not at.exception and not at.error
    templates = z_of(chart(at, "templates")["data"][0])
    expected = kernel_grid(mlp.fc1.weight.detach().numpy().reshape(16, 28, 28))
    np.testing.assert_allclose(np.nan_to_num(templates, nan=9), np.nan_to_num(expected, nan=9), rtol=1e-5)
    assert any("no feature maps" in i.value for i in at.info)
    assert not at.toggle  # nothing to average without kernels
    assert chart(at, "confusion")["data"][0]["type"] == "heatmap"


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
    assert "last.safetensors" in at.caption[0].value  # the latest epoch is the run's own checkpoint
    at.select_slider[0].set_value(1).run()
    assert "epoch-1.safetensors" in at.caption[0].value
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


def test_an_epoch_checkpoint_reports_its_validation_accuracy():
    from types import SimpleNamespace

    from cnn_core.runs import EpochRecord, History
    from ui.model_picker import accuracy_text

    epoch_2 = History([EpochRecord(e, 10 * e, e, 0.5, 0.5, 0.5, acc, 1e-3, 1.0, 100.0)
                       for e, acc in ((1, 0.5), (2, 0.625))])

    def checkpoint(test_acc, history):
        return SimpleNamespace(meta={}, test_acc=test_acc, history=history)

    assert accuracy_text(checkpoint(None, epoch_2)) == "validation accuracy 62.50% after epoch 2"
    assert accuracy_text(checkpoint(0.9, epoch_2)) == "test accuracy 90.00%"
    assert accuracy_text(checkpoint(None, History())) == "no accuracy measured yet"
