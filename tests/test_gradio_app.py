"""The Gradio twin's Draw tab: Sketchpad values → prediction, unit-tested and through a served app with gradio_client
(its Train, Inspect and Learn tabs, visitors and ZeroGPU: tests/test_gradio_twin.py).

With the pretrained checkpoint the digits must be read right; without it a model trained here on
synthetic data only shows that the pipeline works (a class among 0 to 9, probabilities summing to 1).
"""

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image, ImageDraw

import gradio_app
from cnn_core.checkpoints import save_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, DataError, Split, load_splits, make_bundle
from cnn_core.drawing import upscale_digit
from cnn_core.train import fit
from tests.conftest import free_port, stop_process, synthetic_digits

ROOT = Path(gradio_app.__file__).parent
PRETRAINED = ROOT / "checkpoints" / "lenet5_bn-mnist.safetensors"
SEVEN = [(80, 60), (200, 60), (120, 230)]  # a 7 drawn as two strokes on a 280x280 canvas
CLASSES = [str(i) for i in range(10)]


def stroke_layer(points, width=18, size=280):
    """Black strokes through `points` on a transparent (size, size, 4) layer, as the Sketchpad sends them."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(im).line(points, fill=(0, 0, 0, 255), width=width, joint="curve")
    return np.asarray(im)


def editor_value(*layers, background=None, composite=None):
    return {"background": background, "layers": list(layers), "composite": composite}


def white(size=280):
    return np.full((size, size, 4), 255, dtype=np.uint8)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """$CNN_RUNS_DIR for the app: empty when the pretrained checkpoint exists, else one tiny trained run."""
    runs = tmp_path_factory.mktemp("runs")
    if not PRETRAINED.is_file():
        images, labels = synthetic_digits(600, 0)
        test_images, test_labels = synthetic_digits(100, 1)
        splits = {"train": Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))),
                  "test": Split(torch.from_numpy(test_images), torch.from_numpy(test_labels.astype(np.int64)))}
        cfg = TrainConfig(model="lenet_modern", epochs=1, batch_size=32, val_size=100)
        state = fit(cfg, data=make_bundle("mnist", val_size=100, splits=splits))
        save_checkpoint(runs / "tiny" / "last.safetensors", state.model, cfg, state.history, DATASETS["mnist"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_RUNS_DIR", str(runs))
        yield runs


@pytest.fixture(scope="module")
def model_path(runs_dir):
    choices = gradio_app.model_choices(None)
    assert choices, "the app lists no checkpoint"
    return str(PRETRAINED) if PRETRAINED.is_file() else choices[-1][1]


def check_probabilities(probs):
    assert set(probs) == set(CLASSES)
    assert abs(sum(probs.values()) - 1) < 1e-5 and all(0 <= p <= 1 for p in probs.values())


def test_editor_image_merges_the_strokes_of_every_layer_by_alpha():
    a, b = np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)
    a[0, 0, 3], a[1, 1, 3], b[1, 1, 3], b[2, 2, 3] = 255, 60, 200, 40  # faint anti-aliased edges count too
    merged = gradio_app.editor_image(editor_value(a, b, background=white(4), composite=white(4)))
    assert merged[..., 3].tolist() == np.maximum(a[..., 3], b[..., 3]).tolist()
    assert not merged[..., :3].any()
    upload = upscale_digit(np.eye(28, dtype=np.uint8) * 255)
    assert gradio_app.editor_image(editor_value(np.zeros((4, 4, 4), np.uint8), composite=upload)) is upload
    assert gradio_app.editor_image(editor_value(background=upload)) is upload
    assert gradio_app.editor_image(editor_value()) is None and gradio_app.editor_image(None) is None


@pytest.mark.parametrize("width", [18, 3], ids=["thick", "thin"])
def test_classify_a_drawn_digit(model_path, width):
    probs, steps, maps, heat, message = gradio_app.classify(
        editor_value(stroke_layer(SEVEN, width), background=white()), model_path, None)
    check_probabilities(probs)
    assert isinstance(steps, go.Figure) and isinstance(maps, go.Figure) and isinstance(heat, go.Figure)
    top = max(probs, key=probs.get)
    assert f"**{top}**" in message
    if PRETRAINED.is_file():
        assert top == "7"


def test_a_blank_canvas_gives_a_hint(model_path):
    blank = editor_value(np.zeros((280, 280, 4), np.uint8), background=white(), composite=white())
    assert gradio_app.classify(blank, model_path, "conv1") == (None, None, None, None, gradio_app.BLANK_HINT)
    assert gradio_app.classify(None, model_path, None) == (None, None, None, None, gradio_app.BLANK_HINT)
    assert gradio_app.classify(blank, None, None)[-1] == gradio_app.NO_MODEL_HINT


def test_layer_menu_lists_feature_map_layers(model_path):
    menu = gradio_app.layer_menu(None, model_path)
    names = [choice[0] if isinstance(choice, tuple) else choice for choice in menu.choices]
    assert names[0] == "conv1" and menu.value == "conv1"
    *_, message = gradio_app.classify(editor_value(stroke_layer(SEVEN)), model_path, names[-1])
    assert f"layer `{names[-1]}`" in message


@pytest.fixture(scope="module")
def mnist_test():
    if not PRETRAINED.is_file():
        pytest.skip("the pretrained checkpoint is not in checkpoints/ yet")
    try:
        return load_splits("mnist")["test"]
    except DataError:
        pytest.skip("MNIST is not in the data folder (make data)")


def test_pretrained_reads_real_mnist_digits(mnist_test):
    for i in range(8):
        layer = np.zeros((280, 280, 4), np.uint8)
        layer[..., 3] = upscale_digit(mnist_test.images[i])[..., 0]  # the digit as strokes on a transparent layer
        probs, *_ = gradio_app.classify(editor_value(layer, background=white()), str(PRETRAINED), None)
        assert max(probs, key=probs.get) == str(int(mnist_test.labels[i])), f"test digit {i}"


@contextlib.contextmanager
def serve_gradio(**env_vars: str):
    """`python gradio_app.py` on a free loopback port (with `env_vars`), and a gradio_client.Client on it."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **env_vars}
    proc = subprocess.Popen([sys.executable, "gradio_app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while not answers(url):
            if proc.poll() is not None:
                pytest.fail(f"gradio_app.py exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("gradio_app.py did not answer within 180 s")
            time.sleep(1)
        yield Client(url, verbose=False)
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def served(runs_dir):
    with serve_gradio(CNN_RUNS_DIR=str(runs_dir)) as client:
        yield client


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_served_app_predicts_through_gradio_client(served, model_path, tmp_path):
    from gradio_client import handle_file

    Image.fromarray(stroke_layer(SEVEN)).save(tmp_path / "strokes.png")
    digit, expected = synthetic_digits(1, 3)[0][0], None
    if PRETRAINED.is_file():
        with contextlib.suppress(DataError):
            test = load_splits("mnist")["test"]
            digit, expected = test.images[0].numpy(), str(int(test.labels[0]))
    Image.fromarray(upscale_digit(digit)).save(tmp_path / "digit.png")  # white on opaque black, like an upload
    cases = [
        ({"background": None, "layers": [handle_file(tmp_path / "strokes.png")], "composite": None},
         "7" if PRETRAINED.is_file() else None),
        ({"background": handle_file(tmp_path / "digit.png"), "layers": [],
          "composite": handle_file(tmp_path / "digit.png")}, expected),
    ]
    for value, want in cases:
        label, steps, maps, heat, message = served.predict(value, model_path, "conv1", None, api_name="/predict")
        assert label["label"] in CLASSES and f"**{label['label']}**" in message
        assert steps["type"] == "plotly" and maps["type"] == "plotly" and heat["type"] == "plotly"
        if want is not None:
            assert label["label"] == want
