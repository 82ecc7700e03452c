"""The drawing path on real digits: MNIST test digits, upscaled as if drawn, read by the pretrained model.

Needs the real MNIST files and checkpoints/lenet5_bn-mnist.safetensors: skipped (saying which is
missing) without them, except under CI=true, where a missing one fails the test.
"""

import os
from pathlib import Path

import pytest
import torch

from cnn_core.checkpoints import load_checkpoint
from cnn_core.data import DataError, load_splits
from cnn_core.drawing import preprocess, upscale_digit
from cnn_core.inspect import predict

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "lenet5_bn-mnist.safetensors"
DIGITS = 500


def missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run in CI)")
    pytest.skip(reason)


def test_drawn_mnist_digits_are_read_by_the_pretrained_model():
    if not CHECKPOINT.is_file():
        missing(f"no pretrained checkpoint at {CHECKPOINT.relative_to(ROOT)}: see checkpoints/README.md")
    data_root = Path(os.environ.get("CNN_DATA_DIR", ROOT / "data"))
    try:
        test = load_splits("mnist", data_root)["test"]
    except DataError as e:
        missing(f"no MNIST test set: {e}")
    ckpt = load_checkpoint(CHECKPOINT)
    size, info = ckpt.model.input_size, ckpt.info
    x = torch.cat([preprocess(upscale_digit(img), size, info.mean, info.std).tensor for img in test.images[:DIGITS]])
    preds = predict(ckpt.model, x).argmax(axis=1)
    accuracy = float((preds == test.labels[:DIGITS].numpy()).mean())
    assert accuracy >= 0.97, f"only {accuracy:.1%} of {DIGITS} drawn MNIST digits read correctly"
