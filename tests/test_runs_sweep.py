"""Sweeps: grid() combinations and validation, parse_axis (the CLI's --grid), varying() and label()."""

import pytest

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.runs.sweep import MAX_RUNS, SWEEP_FIELDS, grid, label, new_group, parse_axis, varying

BASE = TrainConfig(model="mlp", model_args={"hidden": 16}, epochs=1)


def test_grid_every_combination_first_axis_slowest():
    configs = grid(BASE, {"lr": [1e-3, 3e-3], "batch_size": [64, 128, 256]})
    assert [(c.lr, c.batch_size) for c in configs] == [(1e-3, 64), (1e-3, 128), (1e-3, 256),
                                                       (3e-3, 64), (3e-3, 128), (3e-3, 256)]
    assert all(c.model == "mlp" and c.model_args == {"hidden": 16} and c.epochs == 1 for c in configs)
    assert BASE.lr == 1e-3 and BASE.batch_size == 64  # the base is left as it was


def test_grid_without_axes_is_the_base():
    assert grid(BASE, {}) == [BASE]


def test_changing_the_model_clears_model_args():
    base = TrainConfig(model="custom", model_args={"layers": [{"type": "conv", "channels": 4, "kernel": 3}]})
    configs = grid(base, {"model": ["custom", "mlp", "lenet5_bn"]})
    assert [(c.model, c.model_args) for c in configs] == [("custom", base.model_args), ("mlp", {}), ("lenet5_bn", {})]


@pytest.mark.parametrize("axes, words", [
    ({"dropout": [0.1]}, "'dropout' cannot be swept"),
    ({"lr": []}, "Give lr at least one value."),
    ({"lr": [1e-3], "momentum": [0.9]}, "'momentum' cannot be swept"),
    ({"lr": [1e-3, -1]}, "Learning rate must be above 0"),
    ({"batch_size": [64, 0]}, "Batch size must be between 1 and 8192"),
    ({"model": ["mlp", "resnet"]}, "Unknown model 'resnet'"),
    ({"optimizer": ["adam", "rmsprop"]}, "Optimizer must be one of"),
])
def test_grid_refuses_in_words(axes, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        grid(BASE, axes)


def test_grid_at_most_max_runs():
    assert len(grid(BASE, {"seed": list(range(MAX_RUNS))})) == MAX_RUNS
    with pytest.raises(ConfigError, match=f"makes {MAX_RUNS + 1} runs; at most {MAX_RUNS}"):
        grid(BASE, {"seed": list(range(MAX_RUNS + 1))})
    with pytest.raises(ConfigError, match="makes 81 runs"):
        grid(BASE, {"seed": list(range(9)), "lr": [0.1 * i for i in range(1, 10)]})


@pytest.mark.parametrize("text, expected", [
    ("lr=1e-3,3e-3", ("lr", [0.001, 0.003])),
    (" lr = 1e-3 , 3e-3 ,", ("lr", [0.001, 0.003])),
    ("batch_size=64,128", ("batch_size", [64, 128])),
    ("lr=1e-3,0.001,3e-3,1e-3", ("lr", [0.001, 0.003])),  # duplicates dropped, order kept
    ("model=mlp,lenet5_bn,mlp", ("model", ["mlp", "lenet5_bn"])),
    ("epochs=3", ("epochs", [3])),
])
def test_parse_axis(text, expected):
    name, values = parse_axis(text)
    assert (name, values) == expected
    assert all(type(v) is SWEEP_FIELDS[name] for v in values)


@pytest.mark.parametrize("text, words", [
    ("lr", "A grid axis reads FIELD=V1,V2"),
    ("dropout=0.1", "A grid axis reads FIELD=V1,V2"),
    ("=1,2", "A grid axis reads FIELD=V1,V2"),
    ("batch_size=64,12.5", "The values of batch_size must be ints"),
    ("lr=fast", "The values of lr must be floats"),
    ("lr=", "Give lr at least one value."),
    ("seed=,", "Give seed at least one value."),
])
def test_parse_axis_errors_in_words(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_axis(text)


def test_varying_in_sweep_field_order():
    configs = grid(BASE, {"batch_size": [64, 128], "lr": [1e-3, 3e-3]})
    assert varying(configs) == ["lr", "batch_size"]
    assert varying(grid(BASE, {"model": ["mlp", "lenet5_bn"], "seed": [1]})) == ["model"]
    assert varying([BASE]) == [] and varying([BASE, BASE]) == []


def test_label():
    config = TrainConfig(model="mlp", lr=0.003, batch_size=128)
    assert label(config, ["lr", "batch_size"]) == "lr=0.003 · batch_size=128"
    assert label(config, ["model"]) == "model=mlp"
    assert label(TrainConfig(lr=1e-5), ["lr"]) == "lr=1e-05"
    assert label(config, []) == ""


def test_new_group_name():
    first, second = new_group(), new_group()
    assert first.startswith("sweep-") and len(first.split("-")) == 4 and len(first.split("-")[3]) == 4
    assert first.split("-")[1:3] <= second.split("-")[1:3]  # date and time, then 2 random bytes
