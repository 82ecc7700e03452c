"""What fine-tuning on a handful of one's own examples costs and buys (cnn_core.finetune, the Your examples page).

    .venv/bin/python bench/finetune.py [--checkpoint checkpoints/lenet5_bn-mnist.safetensors] [--epochs 15]

Two cases, each with every layer learning and with the last layer only, on one torch thread (as the server):
- letters of one's own (A, B, C, ○): 5 of each, rendered in PIL's default font at random sizes, slants, stroke
  weights and places, prepared as the Draw page prepares a drawing; then 80 other such letters read;
- digits in another hand: 5 MNIST training digits per class, rotated 25° and thickened by one 3x3 step; the
  first 2,000 test images read before and after (what it forgot), and 500 other test digits so changed (what it
  learned).
Prints the training seconds, the whole call's seconds, the accuracies, and the load average. Seeded: the
accuracies are the same run to run on the CPU; the seconds depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from cnn_core.checkpoints import load_checkpoint  # noqa: E402 - after the path above
from cnn_core.data import load_splits, normalize  # noqa: E402
from cnn_core.drawing import preprocess  # noqa: E402
from cnn_core.finetune import fine_tune  # noqa: E402
from cnn_core.inspect import predict  # noqa: E402
from cnn_core.robustness import Perturbation, perturb  # noqa: E402

LETTERS = ["A", "B", "C", "○"]
STYLE = Perturbation(rotate=25, thickness=1)


def letters(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 letters as the Draw page would prepare them, and their labels (N,)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k, letter in enumerate(LETTERS):
        for _ in range(per_class):
            canvas = Image.new("L", (280, 280), 0)
            font = ImageFont.load_default(size=int(rng.integers(140, 220)))
            ImageDraw.Draw(canvas).text((140 + int(rng.integers(-20, 20)), 140), letter, fill=255, font=font,
                                        anchor="mm", stroke_width=int(rng.integers(0, 6)), stroke_fill=255)
            steps = preprocess(np.asarray(canvas.rotate(float(rng.uniform(-15, 15)))))
            images.append(np.round(steps.centered * 255).astype(np.uint8))
            labels.append(k)
    return np.stack(images), np.array(labels)


def styled(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 digits rotated 25° and thickened: another hand."""
    return (perturb(images.float() / 255, [STYLE] * len(images)) * 255).round().to(torch.uint8)


def accuracy(model, images: torch.Tensor | np.ndarray, labels: np.ndarray, info) -> float:
    x = normalize(torch.as_tensor(images), info.mean, info.std, model.input_size)
    return float((predict(model, x).argmax(1) == np.asarray(labels)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/lenet5_bn-mnist.safetensors")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ckpt = load_checkpoint(Path(args.checkpoint))
    print(f"{args.checkpoint}, {args.epochs} epochs, 1 torch thread; load average {os.getloadavg()[0]:.1f}")
    x, y = letters(5, 0)
    held_x, held_y = letters(20, 1)
    for whole in (True, False):
        start = time.perf_counter()
        out = fine_tune(ckpt, x, y, LETTERS, epochs=args.epochs, whole=whole)
        call, r = time.perf_counter() - start, out.report
        print(f"letters, {'every layer' if whole else 'last layer only'}: {r.examples} examples, {r.steps} steps, "
              f"trained in {r.seconds:.2f} s ({call:.2f} s in all); examples read right {r.examples_after:.2%}; "
              f"{len(held_y)} other letters {accuracy(out.checkpoint.model, held_x, held_y, out.checkpoint.info):.2%}")
    splits = load_splits(ckpt.info.name)
    train, test = splits["train"], splits["test"]
    picked = np.concatenate([np.nonzero(train.labels.numpy() == k)[0][:5] for k in range(10)])
    held = np.concatenate([np.nonzero(test.labels.numpy() == k)[0][-50:] for k in range(10)])
    examples, held_images = styled(train.images[picked]).numpy(), styled(test.images[held])
    held_labels = test.labels[held].numpy()
    for whole in (True, False):
        start = time.perf_counter()
        out = fine_tune(ckpt, examples, train.labels[picked].numpy(), list(ckpt.info.classes), epochs=args.epochs,
                        whole=whole, test=test)
        call, r = time.perf_counter() - start, out.report
        print(f"digits in another hand, {'every layer' if whole else 'last layer only'}: {r.examples} examples, "
              f"{r.steps} steps, trained in {r.seconds:.2f} s ({call:.2f} s in all); examples "
              f"{r.examples_before:.2%} → {r.examples_after:.2%}; first {r.test_images:,} test images "
              f"{r.test_before:.2%} → {r.test_after:.2%}; {len(held)} other digits so changed "
              f"{accuracy(ckpt.model, held_images, held_labels, ckpt.info):.2%} → "
              f"{accuracy(out.checkpoint.model, held_images, held_labels, ckpt.info):.2%}")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
