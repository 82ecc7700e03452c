"""Fine-tuning on one's own examples (cnn_core/finetune.py) and reading an uploaded PNG (cnn_core.drawing.decode_png):
the shared model is never touched, a new head for new classes, the file reloads to the same model, bad input
gets a sentence."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_core.checkpoints import load_checkpoint, load_upload
from cnn_core.data import load_splits, normalize
from cnn_core.drawing import decode_png, preprocess, upscale_digit
from cnn_core.finetune import FineTuned, check_examples, fine_tune, parse_classes
from cnn_core.inspect import predict
from cnn_core.models import num_classes
from tests.conftest import save_tiny, synthetic_digits
from tests.hammer import failures, hammer

PRETRAINED = "checkpoints/lenet5_bn-mnist.safetensors"


@pytest.fixture(scope="module")
def shared():
    return load_checkpoint(PRETRAINED)


def bars(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of our own, as the model's field holds them: a bar near the top (0) or near the bottom (1)."""
    images, digits = synthetic_digits(n, seed)
    labels = (digits >= 5).astype(np.int64)
    return np.stack([np.round(preprocess(upscale_digit(im)).centered * 255).astype(np.uint8) for im in images]), labels


def digits(n: int = 40, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Examples of every digit class (the synthetic kind: a bar at a row per class), as the model's field holds them."""
    images, labels = synthetic_digits(n, seed)
    assert set(labels) == set(range(10))
    return (np.stack([np.round(preprocess(upscale_digit(im)).centered * 255).astype(np.uint8) for im in images]),
            labels.astype(np.int64))


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_classes_of_ones_own_get_a_new_head_and_are_learned_without_touching_the_shared_model(shared):
    before = weights(shared.model)
    images, labels = bars(24)
    out = fine_tune(shared, images, labels, ["top", "bottom"], epochs=20, lr=3e-3)
    assert isinstance(out, FineTuned) and num_classes(out.checkpoint.model) == 2
    assert out.checkpoint.info.classes == ("top", "bottom") and out.checkpoint.info.name == "your examples"
    r = out.report
    assert r.new_head and r.before is None and r.examples_before is None and r.test_before is None
    assert r.examples_after >= 0.9 and r.losses[-1] < r.losses[0] and r.steps == 20
    assert all(torch.equal(before[k], v) for k, v in shared.model.state_dict().items()), "the shared model is unchanged"
    assert not shared.model.training and not any(p.requires_grad for p in shared.model.parameters())
    model = out.checkpoint.model
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_the_file_reloads_to_the_same_model(shared):
    images, labels = bars(12)
    out = fine_tune(shared, images, labels, ["top", "bottom"], epochs=2)
    again = load_upload(out.data, out.checkpoint.path.name)
    x = normalize(torch.from_numpy(images), 0.1307, 0.3081, 32)
    np.testing.assert_array_equal(predict(again.model, x), predict(out.checkpoint.model, x))
    assert again.meta["fine_tuned"]["examples"] == 12 and again.info.classes == ("top", "bottom")


def test_the_models_own_classes_are_read_on_the_test_set_before_and_after(shared, tiny_data_dir):
    test = load_splits("mnist")["test"]
    images = np.stack([np.round(preprocess(upscale_digit(im)).centered * 255).astype(np.uint8)
                       for im in test.images[:20].numpy()])
    out = fine_tune(shared, images, test.labels[:20].numpy(), [str(d) for d in range(10)], epochs=3, test=test)
    r = out.report
    assert not r.new_head and num_classes(out.checkpoint.model) == 10 and out.checkpoint.info.name == "mnist"
    expected = (predict(shared.model, normalize(test.images, 0.1307, 0.3081, 32)).argmax(1) == test.labels.numpy())
    assert r.test_images == len(test) and r.test_before == pytest.approx(expected.mean())
    assert r.before is not None and r.examples_before is not None and r.test_after is not None


def test_the_last_layer_only_changes_the_last_layer_and_batch_norm_keeps_its_statistics(shared):
    images, labels = digits()
    out = fine_tune(shared, images, labels, [str(d) for d in range(10)], epochs=3, whole=False)
    old, new = shared.model.state_dict(), out.checkpoint.model.state_dict()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed == {"fc3.weight", "fc3.bias"}
    every = fine_tune(shared, images, labels, [str(d) for d in range(10)], epochs=3).checkpoint.model.state_dict()
    assert all(torch.equal(old[k], every[k]) for k in old if "running_" in k or "num_batches" in k)
    assert any(not torch.equal(old[k], every[k]) for k in old if k.startswith("conv1"))


def test_fine_tunes_from_many_threads_on_one_shared_model_match_each_alone(tmp_path):
    shared = load_checkpoint(save_tiny(tmp_path / "tiny.safetensors"))
    images, labels = bars(16)
    cases = [(["top", "bottom"], 1e-3), (["upper", "lower"], 3e-3)]
    alone = [fine_tune(shared, images, labels, c, epochs=2, lr=lr).checkpoint.model.state_dict() for c, lr in cases]
    results = hammer([lambda i=i: fine_tune(shared, images, labels, cases[i % 2][0], epochs=2, lr=cases[i % 2][1])
                      for i in range(12)], 6)
    assert not failures(results), failures(results)
    for i, (out, _) in enumerate(results):
        for k, v in out.checkpoint.model.state_dict().items():
            torch.testing.assert_close(v, alone[i % 2][k], rtol=0, atol=1e-6)


@pytest.mark.parametrize("labels, classes, hosted, says", [
    ([0, 0, 1], ["A", "B", "C"], False, "none yet for C"),
    ([0], ["A"], False, "between 2 and 20 classes"),
    ([0, 1], ["A", "A"], False, "a name of its own"),
    ([0, 1] * 31, ["A", "B"], True, "62 examples are more than the 60"),
])
def test_examples_that_cannot_train_get_a_sentence(labels, classes, hosted, says):
    with pytest.raises(ValueError, match=says):
        check_examples(labels, classes, hosted)


def test_class_names_are_read_between_commas():
    assert parse_classes(" A, B ,○,, ") == ("A", "B", "○")
    for text in ("A", "", "A, A", ",".join(map(str, range(21)))):
        with pytest.raises(ValueError, match="classes|own"):
            parse_classes(text)


def png(image: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image, mode).save(out, format="PNG")
    return out.getvalue()


def test_a_png_drawing_is_read_as_the_canvas_would_give_it():
    digit = upscale_digit(synthetic_digits(1, seed=2)[0][0])
    np.testing.assert_array_equal(decode_png(png(digit)), digit)  # RGBA
    gray = digit[..., 0]
    np.testing.assert_array_equal(decode_png(png(gray))[..., 0], gray)  # L → RGB
    on_white = 255 - gray  # dark ink on white paper: the same digit for the model
    np.testing.assert_allclose(preprocess(decode_png(png(on_white))).centered, preprocess(digit).centered, atol=1e-6)


def with_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (its CRC made right): a decompression bomb's first bytes."""
    ihdr = data[12:29]
    patched = ihdr[:4] + struct.pack(">II", width, height) + ihdr[12:]
    return data[:12] + patched + struct.pack(">I", zlib.crc32(patched)) + data[33:]


@pytest.mark.parametrize("case, says", [
    ("jpeg", "is not a PNG image that can be read"),
    ("truncated", "is not a PNG image that can be read"),
    ("bomb", "billions of pixels; a drawing may have at most 16 million pixels"),
    ("big", "5000x5000 pixels; a drawing may have at most 16 million pixels"),
    ("huge file", "a drawing may be at most 2 MB"),
    ("text", "is not a PNG image that can be read"),
])
def test_a_bad_png_gets_one_sentence(case, says):
    good = png(np.zeros((40, 40), np.uint8))
    out = io.BytesIO()
    Image.new("RGB", (40, 40)).save(out, format="JPEG")
    data = {"jpeg": out.getvalue(), "truncated": good[:40], "bomb": with_size(good, 100_000, 100_000),
            "big": with_size(good, 5000, 5000),
            "huge file": good + b"\0" * (3 * 2**20), "text": b"<svg>not a png</svg>"}[case]
    with pytest.raises(ValueError, match=says):
        decode_png(data, "upload.png")
