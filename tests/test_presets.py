"""cnn_core/presets.py: every tutorial's recipe as the tutorial wrote it (model layers, parameter count,
data preparation and hyperparameters), and the lessons that run recipes side by side."""

import numpy as np
import pytest
import torch
from torch import nn

from cnn_core.checkpoints import load_checkpoint, save_checkpoint
from cnn_core.data import DATASETS, make_bundle
from cnn_core.inspect import predict
from cnn_core.models import count_parameters, create_model, outputs_probabilities
from cnn_core.presets import LESSONS, PRESETS, preset_config, recipe_of
from cnn_core.train import fit

C, R, MP, AP, F, L, BN, D, SM, T = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Linear,
                                    nn.BatchNorm2d, nn.Dropout, nn.Softmax, nn.Tanh)
# Each tutorial's model: its layers in order and its parameter count, worked out by hand from the layer sizes.
TUTORIAL_MODELS = {
    # nn.Sequential(Flatten, Linear(784, 128), ReLU, Linear(128, 10)): 784*128+128 + 128*10+10
    "Course notebook: MLP — SGD 0.001, 3 epochs": ([F, L, R, L], 101_770),
    "Course notebook: MLP — SGD 0.01, 10 epochs": ([F, L, R, L, SM], 101_770),
    # conv 6@5 pad 2 (156), max pool, conv 16@5 (2,416), avg pool, Linear(400, 84) (33,684), Linear(84, 10) (850)
    "Course notebook: LeNet — SGD 0.01, 10 epochs": ([C, R, MP, C, R, AP, F, L, R, L, SM], 37_106),
    # conv 6@5 + BN (156 + 12), conv 16@5 + BN (2,416 + 32), 400-120-84-10 (48,120 + 10,164 + 850)
    "LeNet-5 + BatchNorm tutorial — Adam 1e-3, batch 64, 10 epochs": (
        [C, BN, R, MP, C, BN, R, MP, F, L, R, L, R, L], 61_750),
    # convs 5-10-20-40 @3 with BN (50+10, 460+20, 1,820+40, 7,240+80), 1960-200-500-10 (392,200 + 100,500 + 5,010)
    "4-conv BatchNorm CNN tutorial — Adam 3e-4, weight decay 1e-3, batch 100, 10 epochs": (
        [C, BN, R, C, BN, R, MP, C, BN, R, C, BN, R, MP, F, L, R, D, L, R, D, L], 507_430),
    # conv 20@5 (520), conv 50@5 (25,050), Linear(800, 500) (400,500), dropout, Linear(500, 10) (5,010)
    "Dropout CNN tutorial (conv 20/50) — Adam 3e-4, batch 32, 10 epochs": ([C, R, MP, C, R, MP, F, L, R, D, L], 431_080),
    # conv 6@5 (156), conv 16@3 (880), 400-120-84-10 (48,120 + 10,164 + 850), ReLU and average pooling
    "LeNet average-pooling tutorial — SGD 0.01, batch 64, 5 epochs": ([C, R, AP, C, R, AP, F, L, R, L, R, L], 60_170),
}
# Each tutorial's data preparation and hyperparameters:
# (dataset, normalized, optimizer, lr, weight decay, batch size, epochs, schedule, augmentation)
TUTORIAL_HYPERPARAMETERS = {
    "Course notebook: MLP — SGD 0.001, 3 epochs": ("mnist", False, "sgd", 1e-3, 0.0, 64, 3, "none", False),
    "Course notebook: MLP — SGD 0.01, 10 epochs": ("mnist", False, "sgd", 0.01, 0.0, 64, 10, "none", False),
    "Course notebook: LeNet — SGD 0.01, 10 epochs": ("mnist", False, "sgd", 0.01, 0.0, 64, 10, "none", False),
    "LeNet-5 + BatchNorm tutorial — Adam 1e-3, batch 64, 10 epochs": (
        "mnist", True, "adam", 1e-3, 0.0, 64, 10, "none", False),
    "4-conv BatchNorm CNN tutorial — Adam 3e-4, weight decay 1e-3, batch 100, 10 epochs": (
        "mnist", True, "adam", 3e-4, 1e-3, 100, 10, "none", False),
    "Dropout CNN tutorial (conv 20/50) — Adam 3e-4, batch 32, 10 epochs": (
        "mnist", True, "adam", 3e-4, 0.0, 32, 10, "none", False),
    "LeNet average-pooling tutorial — SGD 0.01, batch 64, 5 epochs": (
        "mnist", True, "sgd", 0.01, 0.0, 64, 5, "none", False),
}
REPORTED = {"Course notebook: MLP — SGD 0.001, 3 epochs": 0.7448, "Course notebook: MLP — SGD 0.01, 10 epochs": 0.8301,
            "Course notebook: LeNet — SGD 0.01, 10 epochs": 0.8961,
            "LeNet-5 + BatchNorm tutorial — Adam 1e-3, batch 64, 10 epochs": 0.988,
            "4-conv BatchNorm CNN tutorial — Adam 3e-4, weight decay 1e-3, batch 100, 10 epochs": 0.99}


@pytest.mark.parametrize("name", TUTORIAL_MODELS)
def test_each_tutorial_recipe_builds_the_tutorials_model(name):
    layers, parameters = TUTORIAL_MODELS[name]
    config = PRESETS[name].config
    model = create_model(config.model, **config.model_args)
    assert [type(layer) for layer in model] == layers
    assert count_parameters(model) == parameters
    assert model(torch.zeros(2, 1, model.input_size, model.input_size)).shape == (2, 10)


@pytest.mark.parametrize("name", TUTORIAL_HYPERPARAMETERS)
def test_each_tutorial_recipe_has_the_tutorials_hyperparameters(name):
    c = PRESETS[name].config
    assert (c.dataset, c.normalize, c.optimizer, c.lr, c.weight_decay, c.batch_size, c.epochs, c.schedule,
            c.augment) == TUTORIAL_HYPERPARAMETERS[name]
    assert PRESETS[name].reported_acc == REPORTED.get(name)
    assert recipe_of(c) == name


def test_the_course_notebooks_comparison_models_end_in_a_softmax_and_its_fixes_do_not():
    as_written = PRESETS["Course notebook: MLP — SGD 0.01, 10 epochs"].config
    fixes = LESSONS["The course notebook: as written vs fixed"].recipes
    assert fixes[0] == "Course notebook: MLP — SGD 0.01, 10 epochs"
    for name in fixes[1:]:
        fixed = PRESETS[name].config
        differ = {f for f in ("model_args", "normalize") if getattr(fixed, f) != getattr(as_written, f)}
        assert differ and preset_config(name, model_args=as_written.model_args, normalize=False) == as_written
    assert outputs_probabilities(create_model("mlp", softmax=True)) and not outputs_probabilities(create_model("mlp"))


def test_every_lesson_names_recipes_that_exist_and_every_recipe_is_valid():
    for preset in PRESETS.values():
        preset.config.validate()
    for lesson in LESSONS.values():
        assert len(lesson.recipes) >= 2 and all(name in PRESETS for name in lesson.recipes)


def test_a_run_without_normalization_trains_on_pixels_in_0_1_and_its_checkpoint_says_so(tiny_data_dir, tmp_path):
    bundle = make_bundle("mnist", val_size=100, normalize=False)
    assert (bundle.info.mean, bundle.info.std) == (0.0, 1.0)
    assert make_bundle("mnist", val_size=100).info.mean == DATASETS["mnist"].mean
    config = preset_config("Course notebook: MLP — SGD 0.01, 10 epochs", epochs=1, train_subset=200, val_size=100)
    state = fit(config)
    path = save_checkpoint(tmp_path / "nb.safetensors", state.model, config, state.history, state.data.info)
    ckpt = load_checkpoint(path)
    assert (ckpt.info.mean, ckpt.info.std) == (0.0, 1.0) and ckpt.info.classes == DATASETS["mnist"].classes
    assert ckpt.config.normalize is False and outputs_probabilities(ckpt.model)


def test_a_model_that_ends_in_a_softmax_gives_its_own_output_as_probabilities():
    torch.manual_seed(0)
    with_softmax = create_model("lenet_notebook", softmax=True).eval()
    logits_model = create_model("lenet_notebook").eval()
    logits_model.load_state_dict(with_softmax.state_dict())
    x = torch.randn(4, 1, 28, 28)
    probs = predict(with_softmax, x)
    np.testing.assert_allclose(probs, predict(logits_model, x), atol=1e-6)  # not softmax applied twice
    np.testing.assert_allclose(probs, torch.softmax(logits_model(x), 1).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
