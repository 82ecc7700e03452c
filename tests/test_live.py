"""analyse_drawing: one canvas update end to end, checked against the inspect functions it stands for."""

import numpy as np
import pytest
import torch

from cnn_core.data import DATASETS
from cnn_core.drawing import preprocess, upscale_digit
from cnn_core.inspect import feature_maps, predict, saliency
from cnn_core.live import STAGES, analyse_drawing
from cnn_core.models import create_model
from tests.conftest import TINY_LAYERS, synthetic_digits

MNIST = DATASETS["mnist"]


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return create_model("custom", layers=TINY_LAYERS).eval()


@pytest.fixture
def drawing():
    """A synthetic digit (a bar) upscaled to a 280x280 RGBA canvas image."""
    images, _ = synthetic_digits(1, seed=3)
    return upscale_digit(images[0])


def test_shapes_and_probabilities(tiny_model, drawing):
    result = analyse_drawing(tiny_model, MNIST, drawing, "conv2")
    assert result.probs.shape == (10,)
    assert result.probs.sum() == pytest.approx(1.0, abs=1e-5) and (result.probs >= 0).all()
    assert result.prediction == int(result.probs.argmax()) and result.confidence == pytest.approx(result.probs.max())
    assert result.steps.tensor.shape == (1, 1, 28, 28)
    assert result.maps.shape == (6, 14, 14)
    assert result.heat.shape == (28, 28) and 0 <= result.heat.min() and result.heat.max() == pytest.approx(1.0)
    assert list(result.timings) == list(STAGES) and all(ms >= 0 for ms in result.timings.values())
    assert result.total_ms == pytest.approx(sum(result.timings.values()))


def test_matches_the_inspect_functions_it_combines(tiny_model, drawing):
    x = preprocess(drawing, 28, MNIST.mean, MNIST.std).tensor
    result = analyse_drawing(tiny_model, MNIST, drawing, "pool1", "gradcam")
    torch.testing.assert_close(result.steps.tensor, x)
    np.testing.assert_allclose(result.probs, predict(tiny_model, x)[0], rtol=1e-6)
    np.testing.assert_array_equal(result.maps, feature_maps(tiny_model, x, ["pool1"])["pool1"])
    np.testing.assert_allclose(result.heat, saliency(tiny_model, x, result.prediction, "gradcam"), rtol=1e-6)


def test_model_input_size_is_respected():
    torch.manual_seed(0)
    model = create_model("lenet5_bn").eval()
    result = analyse_drawing(model, MNIST, upscale_digit(synthetic_digits(1)[0][0]), "conv1")
    assert result.steps.tensor.shape == (1, 1, 32, 32) and result.heat.shape == (32, 32)
    assert result.maps.shape == (6, 28, 28)


def test_no_layer_means_no_feature_maps(tiny_model, drawing):
    result = analyse_drawing(tiny_model, MNIST, drawing)
    assert result.maps is None and result.layer is None and result.probs.shape == (10,)


@pytest.mark.parametrize("fill", [0, 255])
def test_blank_canvas_raises_a_sentence(tiny_model, fill):
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., :3], blank[..., 3] = fill, 255  # all black (our canvas) or all white
    with pytest.raises(ValueError, match="blank"):
        analyse_drawing(tiny_model, MNIST, blank, "conv1")


def test_nearly_blank_canvas_is_blank(tiny_model):
    dot = np.zeros((280, 280, 4), np.uint8)
    dot[..., 3] = 255
    dot[140:145, 140:145, :3] = 255  # 25 pixels of 78,400
    with pytest.raises(ValueError):
        analyse_drawing(tiny_model, MNIST, dot, "conv1")


def test_leaves_the_thread_count_alone(tiny_model, drawing):
    before = torch.get_num_threads()
    analyse_drawing(tiny_model, MNIST, drawing, "conv1")
    assert torch.get_num_threads() == before
