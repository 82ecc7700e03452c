"""Every registered model: forward shape, backward, parameter count; the custom builder's checks."""

import pytest
import torch

from cnn_core.models import ModelSpecError, count_parameters, create_model, layer_table, list_models, model_spec


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward_and_table(name):
    model = create_model(name)
    x = torch.randn(4, 1, model.input_size, model.input_size)
    logits = model(x)
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    table = layer_table(model)
    assert table[-1]["output shape"] == (10,)
    assert sum(row["parameters"] for row in table) == count_parameters(model)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0
    assert model_spec(name).description


def test_known_shapes_and_sizes():
    assert count_parameters(create_model("mlp")) == 784 * 128 + 128 + 128 * 10 + 10
    assert create_model("lenet5_bn").input_size == 32
    assert create_model("lenet5_classic").input_size == 32
    rows = {r["layer"]: r["output shape"] for r in layer_table(create_model("bn_cnn4"))}
    assert rows["flatten"] == (1960,)
    assert {r["layer"]: r["output shape"] for r in layer_table(create_model("cnn_dropout"))}["flatten"] == (800,)


def test_models_name_their_conv_layers():
    names = [n for n, m in create_model("lenet5_bn").named_children() if isinstance(m, torch.nn.Conv2d)]
    assert names == ["conv1", "conv2"]


def test_custom_builds_from_specs():
    layers = [
        {"type": "conv", "channels": 4, "kernel": 5, "padding": 2},
        {"type": "batchnorm"},
        {"type": "act", "fn": "gelu"},
        {"type": "pool", "mode": "avg", "size": 2},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "width": 32},
        {"type": "batchnorm"},
        {"type": "act", "fn": "tanh"},
    ]
    model = create_model("custom", layers=layers)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert [n for n, _ in model.named_children()] == ["conv1", "bn1", "act1", "pool1", "drop1", "flatten", "fc1",
                                                       "bn2", "act2", "fc2"]
    assert dict((r["layer"], r["output shape"]) for r in layer_table(model))["flatten"] == (4 * 14 * 14,)


@pytest.mark.parametrize(
    ("layers", "index", "words"),
    [
        ([{"type": "conv", "channels": 4, "kernel": 7}, {"type": "pool", "size": 4}, {"type": "conv", "channels": 4,
                                                                                       "kernel": 9}], 2, "does not fit"),
        ([{"type": "linear", "width": 8}, {"type": "conv", "channels": 4, "kernel": 3}], 1, "linear layer came before"),
        ([{"type": "pool", "size": 2}] * 5, 4, "needs at least"),
        ([{"type": "act", "fn": "swish"}], 0, "activation must be one of"),
        ([{"type": "conv", "channels": 0, "kernel": 3}], 0, "'channels' must be"),
        ([{"type": "teleport"}], 0, "unknown layer type"),
        ([{"type": "dropout", "p": 1.5}], 0, "dropout p"),
    ],
)
def test_custom_bad_specs_name_the_layer(layers, index, words):
    with pytest.raises(ModelSpecError) as err:
        create_model("custom", layers=layers)
    assert err.value.index == index
    assert f"Layer {index + 1}" in str(err.value) and words in str(err.value)


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="lenet5_bn"):
        create_model("resnet1000")
