"""Recipes from the tutorials this app teaches, each with the accuracy its source reported."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cnn_core.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    config: TrainConfig
    reported_acc: float | None  # what the tutorial reported on its data set's test set, or None
    note: str


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("Quick start — LeNet-5 + BN, one-cycle, 2 epochs",
           TrainConfig(model="lenet5_bn", epochs=2, batch_size=128, optimizer="adamw", lr=3e-3,
                       weight_decay=5e-4, schedule="onecycle", metrics_every=20),
           None, "Trains to about 99% in well under a minute on a laptop CPU."),
    Preset("LeNet-5 with BatchNorm — Adam 1e-3, batch 64, 10 epochs",
           TrainConfig(model="lenet5_bn", epochs=10, batch_size=64, optimizer="adam", lr=1e-3, metrics_every=50),
           0.988, "The LeNet-5 + BatchNorm tutorial."),
    Preset("MLP 784-128-10 on Fashion-MNIST — SGD 0.001, 3 epochs",
           TrainConfig(model="mlp", dataset="fashion-mnist", epochs=3, batch_size=64, optimizer="sgd", lr=1e-3,
                       metrics_every=50),
           0.7448, "A tiny learning rate: plain SGD barely moves in 3 epochs. (On MNIST the same recipe reaches "
                   "about 87%.)"),
    Preset("MLP on Fashion-MNIST — SGD 0.01, 10 epochs",
           TrainConfig(model="mlp", dataset="fashion-mnist", epochs=10, batch_size=64, optimizer="sgd", lr=0.01,
                       metrics_every=50),
           0.8301, "The MLP half of the 'MLP vs LeNet' lesson."),
    Preset("LeNet-5 + BN on Fashion-MNIST — SGD 0.01, 10 epochs",
           TrainConfig(model="lenet5_bn", dataset="fashion-mnist", epochs=10, batch_size=64, optimizer="sgd",
                       lr=0.01, metrics_every=50),
           0.8961, "The LeNet half of the 'MLP vs LeNet' lesson: same data, optimizer and epochs as the MLP."),
    Preset("LeNet-5 (1998) on Fashion-MNIST — SGD 0.01, 10 epochs",
           TrainConfig(model="lenet5_classic", dataset="fashion-mnist", epochs=10, batch_size=64, optimizer="sgd",
                       lr=0.01, metrics_every=50),
           None, "The 1998 original (tanh, average pooling, no BatchNorm) with the same recipe: it learns much "
                 "slower than LeNet-5 + BN and, in 10 epochs, does no better than the MLP."),
    Preset("4-conv BatchNorm CNN — Adam 1e-3, 10 epochs",
           TrainConfig(model="bn_cnn4", epochs=10, batch_size=64, optimizer="adam", lr=1e-3, metrics_every=50),
           0.99, "About 99%; the tutorial reports 99.7% with augmentation: the next recipe."),
    Preset("4-conv BatchNorm CNN + augmentation — Adam 1e-3, 10 epochs",
           TrainConfig(model="bn_cnn4", epochs=10, batch_size=64, optimizer="adam", lr=1e-3, augment=True,
                       metrics_every=50),
           0.997, "Random shifts, rotations and scaling of every batch: slower epochs, fewer test mistakes."),
]}
DEFAULT_PRESET = next(iter(PRESETS))
LESSON_MLP_VS_LENET = ("MLP on Fashion-MNIST — SGD 0.01, 10 epochs", "LeNet-5 + BN on Fashion-MNIST — SGD 0.01, 10 epochs")
LESSON_CLASSIC = "LeNet-5 (1998) on Fashion-MNIST — SGD 0.01, 10 epochs"  # optional third run of the lesson


def preset_config(name: str, **overrides) -> TrainConfig:
    """A copy of the preset's config with `overrides` applied."""
    return dataclasses.replace(PRESETS[name].config, **overrides)


def recipe_of(config: TrainConfig) -> str | None:
    """The name of the recipe this config is exactly (recorded with the run, so its tutorial's accuracy stays
    next to it even after a hosted demo clamps it); None for a config of one's own."""
    return next((name for name, preset in PRESETS.items() if preset.config == config), None)
