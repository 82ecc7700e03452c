from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from cnn_core.inspect import (
    confusion_matrix,
    conv_layers,
    evaluate_predictions,
    feature_maps,
    input_templates,
    inspectable_layers,
    kernel_grid,
    kernels,
    mistakes,
    per_class_accuracy,
    predict,
    SALIENCY_METHODS,
    saliency,
    symmetric_limit,
)
from cnn_core.models import create_model


def tiny_cnn(size: int = 28) -> nn.Sequential:
    """Two conv blocks (one with batch norm, both with in-place ReLU) and a small classifier."""
    torch.manual_seed(0)
    side = (size // 2 - 2) // 2
    model = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 4, 3, padding=1),
            bn1=nn.BatchNorm2d(4),
            act1=nn.ReLU(inplace=True),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(4, 6, 3),
            act2=nn.ReLU(inplace=True),  # would overwrite conv2's output if not copied
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(6 * side * side, 16),
            act3=nn.ReLU(),
            drop1=nn.Dropout(0.5),
            fc2=nn.Linear(16, 10),
        )
    )
    model.input_size = size
    return model.eval()  # inspection takes models in eval mode, as the checkpoint loader hands them out


def digit_like(size: int = 28) -> torch.Tensor:
    """A normalized (1, 1, S, S) image: a bright bar on the MNIST background."""
    x = torch.zeros(1, 1, size, size)
    x[..., 6 : size - 6, size // 2 - 2 : size // 2 + 2] = 1.0
    return (x - 0.1307) / 0.3081


def test_layer_names():
    model = tiny_cnn()
    assert conv_layers(model) == ["conv1", "conv2"]
    assert inspectable_layers(model) == ["conv1", "act1", "pool1", "conv2", "act2", "pool2"]


def test_feature_maps_match_a_manual_partial_forward():
    model = tiny_cnn()
    x = digit_like()
    maps = feature_maps(model, x)
    assert list(maps) == inspectable_layers(model)
    with torch.no_grad():
        for name, fmap in maps.items():
            out = x
            for child_name, child in model.named_children():
                out = child(out)
                if child_name == name:
                    break
            assert fmap.shape == out.shape[1:]
            assert torch.allclose(torch.from_numpy(fmap), out[0], atol=1e-6), name


def test_feature_maps_of_chosen_layers_and_unknown_layer():
    model = tiny_cnn()
    maps = feature_maps(model, digit_like(), layers=["pool2"])
    assert list(maps) == ["pool2"] and maps["pool2"].shape == (6, 6, 6)
    with pytest.raises(ValueError, match="conv9"):
        feature_maps(model, digit_like(), layers=["conv9"])


def test_inspection_leaves_the_model_untouched():
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feature_maps(model, digit_like())
    predict(model, digit_like())
    for method in SALIENCY_METHODS:
        saliency(model, digit_like(), method=method)
    assert not model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():  # batch norm's running statistics included
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_a_model_in_training_mode_is_refused_not_switched():
    model = tiny_cnn().train()
    for call in (lambda: feature_maps(model, digit_like()), lambda: predict(model, digit_like()),
                 lambda: saliency(model, digit_like()), lambda: inspectable_layers(model)):
        with pytest.raises(ValueError, match="eval mode"):
            call()
    assert model.training


@pytest.mark.parametrize(("c_out", "c_in", "k"), [(6, 1, 5), (16, 6, 5), (4, 3, 3)])
def test_kernel_grid_shapes(c_out, c_in, k):
    weights = nn.Conv2d(c_in, c_out, k).weight.detach().numpy()
    grid = kernel_grid(weights)  # one row per output channel, one column per input channel
    assert grid.shape == (c_out * (k + 1) - 1, c_in * (k + 1) - 1)
    assert np.isnan(grid).sum() == grid.size - weights.size
    assert symmetric_limit(grid) == pytest.approx(np.abs(weights).max())

    averaged = weights.mean(axis=1)  # (C_out, k, k) tiled in ⌈√C_out⌉ columns
    ncols = int(np.ceil(np.sqrt(c_out)))
    nrows = int(np.ceil(c_out / ncols))
    assert kernel_grid(averaged).shape == (nrows * (k + 1) - 1, ncols * (k + 1) - 1)
    assert kernel_grid(averaged, ncols=1, pad=2).shape == (c_out * (k + 2) - 2, k)


def test_kernels_of_a_layer():
    model = tiny_cnn()
    assert kernels(model, "conv2").shape == (6, 4, 3, 3)
    np.testing.assert_allclose(kernels(model, "conv2", reduce="mean"), model.conv2.weight.detach().mean(1).numpy())
    with pytest.raises(ValueError, match="conv1"):
        kernels(model, "act1")


def test_predict_and_evaluate_predictions():
    model = tiny_cnn()
    x = torch.randn(7, 1, 28, 28)
    probs = predict(model, x)
    assert probs.shape == (7, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    preds, batched = evaluate_predictions(model, x, torch.zeros(7, dtype=torch.long), batch_size=3)
    np.testing.assert_allclose(batched, probs, atol=1e-6)
    np.testing.assert_array_equal(preds, probs.argmax(axis=1))


LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PREDS = np.array([0, 1, 1, 1, 2, 0, 2])


def test_confusion_matrix_and_per_class_accuracy():
    cm = confusion_matrix(LABELS, PREDS, num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert cm.dtype == np.int64 and cm.sum() == len(LABELS)
    np.testing.assert_allclose(per_class_accuracy(cm), [0.5, 1.0, 2 / 3])

    cm10 = confusion_matrix(torch.from_numpy(LABELS), torch.from_numpy(PREDS))
    assert cm10.shape == (10, 10) and cm10.sum() == len(LABELS)
    assert np.isnan(per_class_accuracy(cm10)[3:]).all()


def test_mistakes_most_confident_first():
    probs = np.full((7, 3), 0.1)
    probs[1, 1], probs[5, 0] = 0.6, 0.9  # the two wrong predictions
    idx, confidence = mistakes(LABELS, PREDS, probs)
    np.testing.assert_array_equal(idx, [5, 1])
    np.testing.assert_allclose(confidence, [0.9, 0.6])
    assert list(mistakes(LABELS, PREDS, probs, true_class=0)[0]) == [1]
    assert list(mistakes(LABELS, PREDS, probs, pred_class=0)[0]) == [5]
    assert list(mistakes(LABELS, PREDS, probs, limit=1)[0]) == [5]
    assert len(mistakes(LABELS, PREDS, probs, true_class=1)[0]) == 0


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("method", ["grad_x_input", "gradcam"])
def test_saliency_shape_and_range(method, size):
    model = tiny_cnn(size)
    x = digit_like(size)
    heat = saliency(model, x, method=method)
    assert heat.shape == (size, size)
    assert heat.min() >= 0 and heat.max() <= 1
    assert heat.max() == pytest.approx(1)
    assert saliency(model, x, target=3, method=method).shape == (size, size)
    assert all(p.grad is None for p in model.parameters())  # no gradients left on the model


def test_grad_x_input_is_zero_on_the_background():
    x = digit_like()
    heat = saliency(tiny_cnn(), x)
    assert (heat[x[0, 0] == x.min()] == 0).all() and heat.max() == 1


def test_input_templates_are_an_mlps_first_layer_rows_as_images():
    torch.manual_seed(0)
    mlp = create_model("mlp", hidden=20).eval()
    name, images = input_templates(mlp, limit=8)
    assert name == "fc1" and images.shape == (8, 28, 28)
    np.testing.assert_array_equal(images[3].ravel(), mlp.fc1.weight.detach()[3].numpy())
    assert input_templates(create_model("lenet5_bn")) is None  # a conv layer comes first: kernels instead
