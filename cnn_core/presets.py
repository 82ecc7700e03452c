"""Recipes from the tutorials this app teaches, each as its tutorial wrote it, with the accuracy it reported;
and lessons: recipes run side by side on one chart."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cnn_core.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str  # says which tutorial it comes from
    config: TrainConfig
    reported_acc: float | None  # what the tutorial reported on its data set's test set, or None
    note: str
    reported_by: str = "The tutorial behind this recipe reported"  # who reported `reported_acc`, as a caption starts


def notebook(model: str, epochs: int, lr: float, softmax: bool = True, normalize: bool = False) -> TrainConfig:
    """The course notebook's recipe: datasets.MNIST with transforms.ToTensor() only (pixels in [0, 1], no
    normalization), batch 64 shuffled, plain SGD, CrossEntropyLoss; the nn.Sequential models of its "MLP vs LeNet"
    part end in nn.Softmax (`softmax`). `softmax=False` and `normalize=True` are its two fixes."""
    return TrainConfig(model=model, model_args={"softmax": True} if softmax else {}, dataset="mnist",
                       normalize=normalize, epochs=epochs, batch_size=64, optimizer="sgd", lr=lr, metrics_every=50)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("Quick start — LeNet-5 + BN, one-cycle, 2 epochs",
           TrainConfig(model="lenet5_bn", epochs=2, batch_size=128, optimizer="adamw", lr=3e-3,
                       weight_decay=5e-4, schedule="onecycle", metrics_every=20),
           None, "Not a tutorial's: this app's fast recipe, about 99% in well under a minute on a laptop CPU."),
    Preset("LeNet-5 + BatchNorm tutorial — Adam 1e-3, batch 64, 10 epochs",
           TrainConfig(model="lenet5_bn", epochs=10, batch_size=64, optimizer="adam", lr=1e-3, metrics_every=50),
           0.988, "32x32 input (Resize(32)), normalized with MNIST's mean and std, as the tutorial does."),
    Preset("Course notebook: MLP — SGD 0.001, 3 epochs",
           notebook("mlp", 3, 1e-3, softmax=False),
           0.7448, "The notebook's first model, as it wrote it: an MLP that returns logits, pixels in [0, 1] (no "
                   "normalization), a learning rate so small that plain SGD is still far from done after 3 epochs "
                   "(its losses: 2.22, 2.00, 1.71)."),
    Preset("Course notebook: MLP — SGD 0.01, 10 epochs",
           notebook("mlp", 10, 0.01),
           0.8301, "The notebook's MLP half of 'MLP vs LeNet', as written (no normalization, softmax twice)."),
    Preset("Course notebook: LeNet — SGD 0.01, 10 epochs",
           notebook("lenet_notebook", 10, 0.01),
           0.8961, "The notebook's LeNet as written: conv 6@5 (padding 2), max pool, conv 16@5, average pool, "
                   "FC 400-84-10, softmax at the end; same data, optimizer and epochs as its MLP."),
    Preset("4-conv BatchNorm CNN tutorial — Adam 3e-4, weight decay 1e-3, batch 100, 10 epochs",
           TrainConfig(model="bn_cnn4", epochs=10, batch_size=100, optimizer="adam", lr=3e-4, weight_decay=1e-3,
                       metrics_every=50),
           0.99, "The tutorial's own recipe (about 99%). The 99.7% often quoted with it is a Kaggle winner's "
                 "result with 25 million augmented images: the lesson '4-conv CNN: the tutorial vs one-cycle + "
                 "augmentation' goes after it."),
    Preset("Dropout CNN tutorial (conv 20/50) — Adam 3e-4, batch 32, 10 epochs",
           TrainConfig(model="cnn_dropout", epochs=10, batch_size=32, optimizer="adam", lr=3e-4, metrics_every=100),
           None, "Conv 20@5 and 50@5, FC 800-500 with dropout 0.5; the tutorial follows its train and validation "
                 "curves rather than quoting a test figure."),
    Preset("LeNet average-pooling tutorial — SGD 0.01, batch 64, 5 epochs",
           TrainConfig(model="lenet_avgpool", epochs=5, batch_size=64, optimizer="sgd", lr=0.01, metrics_every=50),
           None, "Conv 6@5 and 16@3 with ReLU and average pooling on 28x28 digits; the tutorial ends by "
                 "classifying one image rather than quoting a test figure. Plain SGD 0.01 learns slowly here."),
    # the fixes of the course notebook's two flaws, for its lesson
    Preset("Course notebook fixed: MLP without the extra softmax — SGD 0.01, 10 epochs",
           notebook("mlp", 10, 0.01, softmax=False),
           None, "The notebook's MLP with its last nn.Softmax removed: CrossEntropyLoss gets logits, as it expects."),
    Preset("Course notebook fixed: MLP on normalized inputs — SGD 0.01, 10 epochs",
           notebook("mlp", 10, 0.01, normalize=True),
           None, "The notebook's MLP, softmax kept, on inputs standardized with MNIST's mean and std."),
    Preset("Course notebook fixed: MLP, both fixes — SGD 0.01, 10 epochs",
           notebook("mlp", 10, 0.01, softmax=False, normalize=True),
           None, "No extra softmax and normalized inputs: everything else as the notebook wrote it."),
    Preset("4-conv BatchNorm CNN beyond the tutorial — AdamW one-cycle + augmentation, 10 epochs",
           TrainConfig(model="bn_cnn4", epochs=10, batch_size=128, optimizer="adamw", lr=3e-3, weight_decay=5e-4,
                       schedule="onecycle", augment=True, metrics_every=50),
           0.997, "Random shifts, rotations and scaling of every batch and a one-cycle schedule, in the tutorial's "
                  "10 epochs: how close does it get to 99.7%?",
           reported_by="The target: a Kaggle winner (25 million augmented images) reached"),
]}
DEFAULT_PRESET = next(iter(PRESETS))


@dataclass(frozen=True)
class Lesson:
    name: str
    recipes: tuple[str, ...]  # started together and drawn on one chart
    text: str  # what to look at, in two or three sentences


LESSONS: dict[str, Lesson] = {lesson.name: lesson for lesson in [
    Lesson("MLP vs LeNet (the course notebook)",
           ("Course notebook: MLP — SGD 0.01, 10 epochs", "Course notebook: LeNet — SGD 0.01, 10 epochs"),
           "Same data, same optimizer (SGD 0.01), same 10 epochs: does convolution beat a plain MLP? The notebook "
           "got **83.01%** for the MLP and **89.61%** for LeNet."),
    Lesson("The course notebook: as written vs fixed",
           ("Course notebook: MLP — SGD 0.01, 10 epochs",
            "Course notebook fixed: MLP without the extra softmax — SGD 0.01, 10 epochs",
            "Course notebook fixed: MLP on normalized inputs — SGD 0.01, 10 epochs",
            "Course notebook fixed: MLP, both fixes — SGD 0.01, 10 epochs"),
           "The notebook ends its models in a softmax and trains them with CrossEntropyLoss, which applies softmax "
           "again: the gradients shrink and the loss sits near 2.30 for epochs. It also feeds raw [0, 1] pixels. "
           "Four runs: as written, each fix alone, and both fixes: what does each buy?"),
    Lesson("4-conv CNN: the tutorial vs one-cycle + augmentation",
           ("4-conv BatchNorm CNN tutorial — Adam 3e-4, weight decay 1e-3, batch 100, 10 epochs",
            "4-conv BatchNorm CNN beyond the tutorial — AdamW one-cycle + augmentation, 10 epochs"),
           "The tutorial's recipe reaches about 99%. A Kaggle winner reached 99.7% with 25 million augmented "
           "images. Same network, same 10 epochs, with augmentation and a one-cycle schedule: how close does it "
           "get?"),
]}


def preset_config(name: str, **overrides) -> TrainConfig:
    """A copy of the preset's config with `overrides` applied."""
    return dataclasses.replace(PRESETS[name].config, **overrides)


def recipe_of(config: TrainConfig) -> str | None:
    """The name of the recipe this config is exactly (recorded with the run, so its tutorial's accuracy stays
    next to it even after a hosted demo clamps it); None for a config of one's own."""
    return next((name for name, preset in PRESETS.items() if preset.config == config), None)


def reported(recipe: str | None) -> tuple[float | None, str]:
    """What the tutorial behind `recipe` reported on its test set, and who did (a caption's start); (None, "") for
    no recipe or one that reported nothing."""
    preset = PRESETS.get(recipe) if recipe else None
    return (preset.reported_acc, preset.reported_by) if preset else (None, "")
