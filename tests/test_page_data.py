"""The Data page, run by AppTest on the tiny synthetic data sets."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.data import load_splits
from tests.conftest import open_page


@pytest.fixture
def page(tiny_data_dir) -> AppTest:
    at = open_page("pages/data.py", 120)
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def decode(typed: dict) -> np.ndarray:
    """A plotly typed array ({'dtype', 'bdata'}, as figures travel to the browser) as numpy."""
    return np.frombuffer(base64.b64decode(typed["bdata"]), dtype=typed["dtype"])


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_page_shows_samples_counts_histogram_means_and_a_tensor(page):
    assert page.title[0].value.endswith("Data")
    assert [h.value for h in page.subheader] == ["Samples of each class", "Images per class",
                                                 "Pixel intensities (training set)", "The mean image of each class",
                                                 "Normalization constants", "One image as a tensor"]
    samples, counts, histogram, means, tensor = charts(page)
    assert samples["data"][0]["z"]["shape"] == "298, 238"  # 10 rows x 8 samples of 28 pixels, 2-pixel gaps
    assert samples["layout"]["yaxis"]["ticktext"] == [str(k) for k in range(10)]
    assert [bar["name"] for bar in counts["data"]] == ["train", "test"]
    assert histogram["layout"]["yaxis"]["type"] == "log"
    assert means["layout"]["xaxis"]["ticktext"] == [str(k) for k in range(10)]
    assert tensor["data"][0]["z"]["shape"] == "28, 28"
    assert "shape **(1, 28, 28)**" in page.markdown[-1].value
    assert page.caption[0].value.startswith("Classes: **0** · **1** · **2**")  # a digit's name is its index: once


def test_class_counts_are_the_real_counts(page):
    splits = load_splits("mnist")
    for bar, split in zip(charts(page)[1]["data"], ("train", "test"), strict=True):
        np.testing.assert_array_equal(decode(bar["y"]), np.bincount(splits[split].labels.numpy(), minlength=10))


def test_normalization_constants_are_computed_from_the_training_set(page):
    pixels = load_splits("mnist")["train"].images.numpy() / 255.0
    shown = metrics(page)
    assert shown["Mean of all training pixels / 255"] == f"{pixels.mean():.4f}"
    assert shown["Std of all training pixels / 255"] == f"{pixels.std():.4f}"
    assert shown["Constants the models use (mean / std)"] == "0.1307 / 0.3081"
    assert "converges faster" in page.markdown[-2].value


def test_switching_to_fashion_mnist_updates_classes_and_constants(page):
    page.radio[0].set_value("fashion-mnist").run()
    assert not page.exception
    assert page.caption[0].value.startswith("Classes: **0** T-shirt/top · **1** Trouser")
    assert "**9** Ankle boot" in page.caption[0].value
    assert metrics(page)["Constants the models use (mean / std)"] == "0.2860 / 0.3530"
    assert charts(page)[0]["layout"]["yaxis"]["ticktext"][0] == "T-shirt/top"


def test_sliders_and_toggles_change_what_is_shown(page):
    page.slider[0].set_value(3).run()
    assert charts(page)[0]["data"][0]["z"]["shape"] == "298, 88"  # 3 samples per class now
    page.toggle[0].set_value(False).run()
    assert charts(page)[2]["layout"]["yaxis"]["type"] == "linear"
    image = load_splits("mnist")["train"].images[5].numpy()
    page.number_input[0].set_value(5).run()
    assert "images[5]" in page.markdown[-1].value
    assert not page.dataframe
    page.toggle[1].set_value(True).run()
    np.testing.assert_array_equal(page.dataframe[0].value.to_numpy(), image)


def test_missing_data_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "empty"))
    at = open_page("pages/data.py")
    assert not at.exception
    assert "python -m cnn_core fetch-data" in at.error[0].value and "make data" in at.error[0].value
    assert not at.get("plotly_chart")
