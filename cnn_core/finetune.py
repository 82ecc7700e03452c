"""Fine-tune a trained model on a handful of one's own examples: digits in one's own hand, or classes of one's own
(letters, shapes), with how it read those examples and the test set before and after.

The model is a deep copy (a shared, cached checkpoint is never touched). Classes other than the model's get a new
last layer (F → len(classes)). It trains in eval mode throughout: batch norm keeps the statistics of the data set
it learned from (a few examples would overwrite them) and dropout stays off. A few epochs of Adam on the
examples, each batch lightly shifted, rotated and scaled (`cnn_core.data.augment`), on the CPU: seconds.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnn_core.checkpoints import Checkpoint, checkpoint_bytes, checkpoint_from_bytes
from cnn_core.data import DatasetInfo, Split, augment, normalize
from cnn_core.inspect import predict
from cnn_core.models import head, outputs_probabilities, with_classes

OWN_DATASET = "your examples"  # the data set a model with classes of its own names
MAX_CLASSES = 20
BATCH = 32
TEST_IMAGES = 2000  # the test images read before and after, when the classes are the model's own
LIMITS = {False: (300, 100), True: (60, 30)}  # hosted? → (most examples, most epochs)


@dataclass(frozen=True)
class FineTuneReport:
    """What fine-tuning did, and how the model read the examples and the test images before and after."""

    classes: tuple[str, ...]
    examples: int
    epochs: int
    steps: int
    seconds: float  # the training alone
    new_head: bool  # classes of one's own: a fresh last layer, which had read nothing before
    whole: bool  # every layer trained (else the last layer only)
    losses: tuple[float, ...]  # mean training loss per epoch
    before: np.ndarray | None  # (N,) each example's predicted class before (None with a new head)
    after: np.ndarray  # (N,) … and after
    labels: np.ndarray  # (N,) each example's class
    test_before: float | None  # accuracy on the first `test_images` test images (None: no test set)
    test_after: float | None
    test_images: int

    @property
    def examples_before(self) -> float | None:
        return None if self.before is None else float((self.before == self.labels).mean())

    @property
    def examples_after(self) -> float:
        return float((self.after == self.labels).mean())


@dataclass
class FineTuned:
    checkpoint: Checkpoint  # the new model, frozen and in eval mode, as a checkpoint file would load it …
    data: bytes  # … from these bytes (safetensors: to download, or to bring back later)
    report: FineTuneReport


def limits(hosted: bool) -> tuple[int, int]:
    """(most examples, most epochs) a fine-tune may use: a hosted server's are smaller."""
    return LIMITS[hosted]


def parse_classes(text: str) -> tuple[str, ...]:
    """'A, B, ○' → ('A', 'B', '○'): the names between commas, stripped; ValueError with a sentence unless there are
    2 to MAX_CLASSES different ones."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not 2 <= len(names) <= MAX_CLASSES:
        raise ValueError(f"Name between 2 and {MAX_CLASSES} classes, separated by commas (you named {len(names)}).")
    if len(set(names)) != len(names):
        raise ValueError("Each class needs a name of its own: two have the same name.")
    return names


def check_examples(labels: Sequence[int], classes: Sequence[str], hosted: bool = False) -> None:
    """ValueError with the sentence to show unless these examples can fine-tune for these classes."""
    most, _ = limits(hosted)
    parse_classes(",".join(classes))
    missing = [name for k, name in enumerate(classes) if k not in set(labels)]
    if missing:
        raise ValueError(f"Add at least one example of each class; none yet for {', '.join(missing)}.")
    if len(labels) > most:
        raise ValueError(f"{len(labels)} examples are more than the {most} fine-tuning takes here: remove a few.")


def fine_tune(ckpt: Checkpoint, images: np.ndarray, labels: np.ndarray, classes: Sequence[str], epochs: int = 15,
              lr: float = 1e-3, whole: bool = True, test: Split | None = None, seed: int = 0,
              hosted: bool = False) -> FineTuned:
    """Fine-tune a copy of `ckpt`'s model on images (N, 28, 28) uint8 (ink high, as MNIST) with labels (N,) indexing
    `classes`; `test` (its first TEST_IMAGES) is read before and after when the classes are the model's own.

    ValueError, with the sentence to show, when the examples cannot train (a class without one, too many)."""
    images, labels = np.asarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64)
    classes = tuple(str(c) for c in classes)
    check_examples(labels.tolist(), classes, hosted)
    epochs = max(1, min(int(epochs), limits(hosted)[1]))
    new_head = classes != tuple(ckpt.info.classes)
    info = ckpt.info if not new_head else DatasetInfo(OWN_DATASET, classes, ckpt.info.mean, ckpt.info.std, {})
    x = normalize(torch.from_numpy(images), info.mean, info.std, ckpt.model.input_size)  # (N, 1, S, S)
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)  # the new head, the batches, their augmentation: no global seed
    model = with_classes(copy.deepcopy(ckpt.model).eval(), len(classes)).requires_grad_(whole)
    last = getattr(model, head(model)).requires_grad_(True)
    if new_head:  # nn.Linear's own initialization, drawn from our generator
        bound = last.in_features ** -0.5
        with torch.no_grad():
            last.weight.uniform_(-bound, bound, generator=generator)
            last.bias.uniform_(-bound, bound, generator=generator)
    before = None if new_head else predict(ckpt.model, x).argmax(1)
    test = None if new_head or test is None else Split(test.images[:TEST_IMAGES], test.labels[:TEST_IMAGES])
    test_before = None if test is None else _accuracy(ckpt.model, test, info)

    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses, steps, start = [], 0, time.perf_counter()
    for _ in range(epochs):
        total = torch.zeros(())
        for batch in torch.randperm(len(y), generator=generator).split(BATCH):
            out = model(augment(x[batch], generator))
            loss = (F.nll_loss(out.clamp_min(1e-12).log(), y[batch]) if outputs_probabilities(model)
                    else F.cross_entropy(out, y[batch]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
            steps += 1
        losses.append(float(total) / len(y))
    seconds = time.perf_counter() - start
    model.requires_grad_(False)

    after = predict(model, x).argmax(1)
    report = FineTuneReport(classes, len(y), epochs, steps, seconds, new_head, whole, tuple(losses), before, after,
                            labels, test_before, None if test is None else _accuracy(model, test, info),
                            0 if test is None else len(test))
    extra = {"fine_tuned": {"from": ckpt.path.name, "examples": len(y), "epochs": epochs, "lr": lr, "whole": whole,
                            "examples_before": report.examples_before, "examples_after": report.examples_after,
                            "test_images": report.test_images, "test_before": test_before,
                            "test_after": report.test_after}}
    name = f"{ckpt.meta['model']}-{'own-classes' if new_head else info.name}-fine-tuned.safetensors"
    data = checkpoint_bytes(model, ckpt.config, [], info, extra)
    return FineTuned(checkpoint_from_bytes(data, name, Path(name)), data, report)


def _accuracy(model: torch.nn.Module, split: Split, info: DatasetInfo) -> float:
    x = normalize(split.images, info.mean, info.std, model.input_size)
    preds = np.concatenate([predict(model, batch).argmax(1) for batch in x.split(1000)])
    return float((preds == split.labels.numpy()).mean())
