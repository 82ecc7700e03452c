"""The Gradio twin as the whole studio: a launched `python gradio_app.py` driven through gradio_client on loopback
(no mocks) — train and watch the curve points stream in, inspect the run, draw for it; the app's validation
messages; Cancel that stops the training; each visitor's runs their own; ten visitors drawing while one trains. And
the `spaces` path with the real package: off a Space its decorator hands the training function back (the CPU
fallback), on ZeroGPU it wraps it with a duration computed from the config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gradio_app
from cnn_core.access import new_key, owner_tag
from cnn_core.checkpoints import load_checkpoint, read_metadata
from cnn_core.config import ConfigError, TrainConfig
from cnn_core.gpu_time import time_request
from cnn_core.live import analyse_drawing
from cnn_core.presets import DEFAULT_PRESET
from tests.conftest import as_array, write_dataset
from tests.test_gradio_app import PRETRAINED, SEVEN, editor_value, serve_gradio, stroke_layer

ROOT = Path(gradio_app.__file__).parent
ONE = [(140, 40), (140, 240)]
ZERO = [(140, 40), (200, 80), (200, 200), (140, 240), (80, 200), (80, 80), (140, 40)]
N_TRAIN, N_TEST = 600, 200  # tests.conftest.write_dataset's sizes


def form(key: str | None, **changes) -> dict:
    """The Train form as /train takes it: a small LeNet run on the tiny data, with `changes`."""
    values = dict(key=key, recipe=DEFAULT_PRESET, model="lenet5_bn", softmax=False, dataset="mnist", epochs=2,
                  batch_size=32, optimizer="adam", lr=3e-3, schedule="none", augment=False, normalize=True,
                  train_subset=0, weight_decay=0.0, momentum=0.9, label_smoothing=0.0, seed=0, metrics_every=2)
    return values | changes


LONG = dict(epochs=200, batch_size=16, metrics_every=1)  # minutes on the CPU: a run that is still training


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """The twin served on loopback as a hosted demo (private runs, up to 200 epochs) on tiny synthetic data; the
    test process sees the same folders (for the in-process checks)."""
    root = tmp_path_factory.mktemp("twin")
    write_dataset(root / "data" / "mnist")
    write_dataset(root / "data" / "fashion-mnist", gz=True)
    env = dict(CNN_DATA_DIR=str(root / "data"), CNN_DATA_VERIFY="0", CNN_RUNS_DIR=str(root / "runs"), CNN_HOSTED="1",
               CNN_MAX_EPOCHS="200")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        with serve_gradio(**env) as client:
            yield client


def client_of(twin):
    """A new visitor: a client of its own (a session) with the key a browser would get."""
    from gradio_client import Client

    client = Client(twin.src, verbose=False)
    return client, client.predict(None, api_name="/visitor")


def plotted(figure: dict | None, trace: str) -> list[int]:
    """The steps of one trace of a curves figure as /train sends it ({"type": "plotly", "plot": JSON})."""
    if not isinstance(figure, dict) or figure.get("type") != "plotly":
        return []
    return next((t["x"] for t in json.loads(figure["plot"])["data"] if t.get("name") == trace), [])


def wait_for_points(job, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for out in job.outputs() if plotted(out[0], "train loss (running)")) < n:
        assert not job.done(), job.outputs()[-1][1] if job.outputs() else "no output"
        assert time.monotonic() < deadline, "no curve points"
        time.sleep(0.1)


def strokes(tmp_path: Path, points, name: str) -> tuple[dict, np.ndarray]:
    """A drawing as /predict takes it (a PNG layer) and as the server reads it (the RGBA array)."""
    from gradio_client import handle_file

    layer = stroke_layer(points)
    Image.fromarray(layer).save(tmp_path / f"{name}.png")
    return {"background": None, "layers": [handle_file(tmp_path / f"{name}.png")], "composite": None}, layer


def alone(ckpt, layer_rgba: np.ndarray, layer: str) -> dict[str, float]:
    """The model's answer to the drawing computed here, alone: the Draw page's call."""
    seen = analyse_drawing(ckpt.model, ckpt.info, gradio_app.editor_image(editor_value(layer_rgba)), layer)
    return {name: float(p) for name, p in zip(ckpt.info.classes, seen.probs, strict=True)}


def same_answer(label: dict, expected: dict[str, float]) -> bool:
    top = max(expected, key=expected.get)
    return label["label"] == top and all(abs(c["confidence"] - expected[c["label"]]) < 1e-5
                                         for c in label["confidences"])


def run_path(key: str, choice: str) -> Path:
    return Path(os.environ["CNN_RUNS_DIR"]) / ".gradio" / owner_tag(key) / f"{choice.removeprefix('run:')}.safetensors"


def test_train_streams_curve_points_in_order_then_inspect_and_draw_with_the_run(twin, tmp_path):
    client, key = client_of(twin)
    job = client.submit(**form(key, epochs=3, batch_size=16), api_name="/train")
    outputs = list(job)  # every yield, as it came
    figures = [plotted(out[0], "train loss (running)") for out in outputs if plotted(out[0], "train loss (running)")]
    assert len(figures) >= 2 and figures[0] == [2], [out[1] for out in outputs]  # the first point came at once,
    # while it trained (later ones at most once a second: how many depends on the machine's speed)
    for before, after in zip(figures, figures[1:]):
        assert after[: len(before)] == before and len(after) >= len(before)  # each update extends the curve
    assert figures[-1] == list(range(2, 58, 2))  # 3 epochs of 19 steps (300 images at batch 16), every 2nd step
    assert plotted(outputs[-1][0], "val acc (epoch)") == [19, 38, 57]
    assert any("**Training**" in out[1] and "images/s" in out[1] for out in outputs)
    curves, status, inspect_menu, draw_menu = outputs[-1]
    assert "**Finished**" in status and "test accuracy" in status
    run = inspect_menu["value"]
    assert run.startswith("run:") and draw_menu["value"] == run
    assert [value for _, value in inspect_menu["choices"]][0] == run  # the visitor's newest model comes first

    summary, kernels, maps, confusion, _ = client.predict(key, run, None, None, 3, None, None, api_name="/inspect")
    assert summary.startswith("**Test accuracy") and "of 200 test images" in summary and "#3" in summary
    assert kernels["type"] == maps["type"] == confusion["type"] == "plotly"
    cm = as_array(json.loads(confusion["plot"])["data"][0]["z"])
    assert cm.shape == (10, 10) and cm.sum() == 200

    value, layer_rgba = strokes(tmp_path, SEVEN, "seven")
    label, steps, feature_maps, heat, message = client.predict(value, run, "conv1", key, api_name="/predict")
    assert same_answer(label, alone(load_checkpoint(run_path(key, run)), layer_rgba, "conv1"))
    assert f"**{label['label']}**" in message and "`conv1`" in message


def test_a_bad_config_gets_the_apps_message_and_starts_nothing(twin):
    client, key = client_of(twin)
    with pytest.raises(ConfigError) as app:  # what the Streamlit app's Train form shows for it
        TrainConfig(epochs=0, lr=0.0).validate()
    *_, (curves, status, *_) = list(client.submit(**form(key, epochs=0, lr=0.0), api_name="/train"))
    assert status == f"⚠️ {app.value}" and curves is None
    assert not run_path(key, "x").parent.exists()  # no run was started
    *_, (_, status, *_) = list(client.submit(**form(None), api_name="/train"))
    assert status == gradio_app.NO_KEY


def test_cancel_stops_the_training(twin):
    client, key = client_of(twin)
    job = client.submit(**form(key, **LONG), api_name="/train")
    wait_for_points(job, 2)
    cancelled = time.monotonic()
    job.cancel()
    deadline = time.monotonic() + 60
    while True:  # the run saves itself as soon as fit has stopped (and run its test evaluation)
        inspect_menu, _ = client.predict(key, api_name="/models")
        stopped = [value for label, value in inspect_menu["choices"] if label.endswith("(stopped)")]
        if stopped:
            break
        assert time.monotonic() < deadline, "the run did not stop within 60 s of Cancel"
        time.sleep(0.2)
    meta = read_metadata(run_path(key, stopped[0]))
    end = meta["history"][-1]
    assert meta["status"] == end["status"] == "stopped"
    assert end["step"] < 200 * 19  # far from its 200 epochs of 19 steps (300 images at batch 16)
    assert time.monotonic() - cancelled < 30


def test_a_visitor_can_never_pick_or_inspect_another_visitors_run(twin, tmp_path):
    from gradio_client.exceptions import AppError

    alice, alice_key = client_of(twin)
    *_, (_, status, menu, _) = list(alice.submit(**form(alice_key, epochs=1), api_name="/train"))
    run = menu["value"]
    bob, bob_key = client_of(twin)
    value, _ = strokes(tmp_path, SEVEN, "seven")
    for key in (bob_key, alice_key):  # even with Alice's key, Bob's session was never offered her run
        with pytest.raises(AppError, match="not in the list of choices"):
            bob.predict(key, run, None, None, 0, None, None, api_name="/inspect")
        with pytest.raises(AppError, match="not in the list of choices"):
            bob.predict(value, run, "conv1", key, api_name="/predict")
    bob_menu, _ = bob.predict(bob_key, api_name="/models")
    assert run not in [v for _, v in bob_menu["choices"]] and not any("your run" in c for c, _ in bob_menu["choices"])
    alice_menu, _ = alice.predict(alice_key, api_name="/models")
    assert alice_menu["choices"][0][1] == run
    # and the functions themselves refuse it, whatever gradio lets through
    assert "not one this page offers" in gradio_app.inspect_model(bob_key, run, None, None, 0, None, None)[0]
    assert "not one this page offers" in gradio_app.classify(value, run, "conv1", bob_key)[-1]
    assert gradio_app.visitor_runs().find(bob_key, run.removeprefix("run:")) is None


def test_ten_visitors_drawing_while_one_trains_get_the_models_answer(twin, tmp_path):
    trainer, trainer_key = client_of(twin)
    job = trainer.submit(**form(trainer_key, **LONG), api_name="/train")
    wait_for_points(job, 1)
    ckpt = load_checkpoint(PRETRAINED)
    drawings = [strokes(tmp_path, points, name) for points, name in ((SEVEN, "seven"), (ONE, "one"), (ZERO, "zero"))]
    expected = [alone(ckpt, rgba, "conv2") for _, rgba in drawings]
    answers: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def draw(i: int) -> None:
        try:
            client, key = client_of(twin)
            for round_ in range(4):
                which = (i + round_) % len(drawings)
                label, *_ = client.predict(drawings[which][0], str(PRETRAINED), "conv2", key, api_name="/predict")
                answers.append((which, label))
        except BaseException as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    drawers = [threading.Thread(target=draw, args=(i,)) for i in range(10)]
    for t in drawers:
        t.start()
    for t in drawers:
        t.join(240)
    training_throughout = not job.done()
    job.cancel()
    assert not errors, errors
    assert len(answers) == 40 and training_throughout
    wrong = [(which, label) for which, label in answers if not same_answer(label, expected[which])]
    assert not wrong, wrong[:3]


def test_a_run_longer_than_allowed_is_refused_before_it_starts(tiny_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CNN_MAX_RUN_SECONDS", "20")
    key = new_key()
    (_, status, *_), = list(gradio_app.train(**form(key, epochs=50, batch_size=16)))
    assert status.startswith("⚠️ This run would take up to ") and "more than the 20 s one run may have here" in status
    assert "50 epochs of 300 images at batch 16" in status  # 600 images less 300 for validation
    assert gradio_app.visitor_runs().runs(key) == [] and not (tmp_path / "runs" / ".gradio" / owner_tag(key)).exists()


def test_off_a_space_the_spaces_decorator_hands_back_the_function_that_trains(tiny_data_dir, tmp_path, monkeypatch):
    """The real `spaces` package outside a Space: `train_on_gpu` is our generator itself, and it trains on the
    CPU here (CUDA where a GPU is present), streaming its records."""
    import inspect

    spaces = pytest.importorskip("spaces")
    assert gradio_app.spaces is spaces and not spaces.config.Config.zero_gpu and not gradio_app.on_zerogpu()
    assert inspect.isgeneratorfunction(gradio_app.train_on_gpu) and not hasattr(gradio_app.train_on_gpu, "zerogpu")
    assert spaces.GPU(duration=gradio_app.gpu_duration)(gradio_app.train_on_gpu) is gradio_app.train_on_gpu
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path / "runs"))
    path = tmp_path / "run.safetensors"
    config = TrainConfig(model="mlp", model_args={"hidden": 16}, epochs=2, batch_size=50, metrics_every=2)
    records = [r for r in gradio_app.train_on_gpu(config, str(path), None) if r is not None]
    assert [r["event"] for r in records][-1] == "end" and [r["step"] for r in records] == sorted(r["step"] for r in records)
    assert sum(r["event"] == "epoch" for r in records) == 2 and "grad_norms" not in records[0]
    meta = read_metadata(path)
    import torch

    assert meta["device"] == ("cuda" if torch.cuda.is_available() else "cpu") and meta["status"] == "finished"


ZEROGPU_SCRIPT = """
import inspect, json, sys
import gradio_app
from spaces.zero.wrappers import static_duration
from cnn_core.config import ConfigError, TrainConfig
from cnn_core.presets import PRESETS
configs = [TrainConfig(epochs=1, batch_size=128), TrainConfig(epochs=10, batch_size=32)]
fn = gradio_app.train_on_gpu
limits = gradio_app.twin_limits()
refusals = []
for epochs in (10, 1000):
    try:
        gradio_app.plan_run(sys.argv[1], dict(batch_size=16, epochs=epochs, train_subset=0))
        refusals.append(None)
    except ConfigError as e:
        refusals.append(str(e))
print(json.dumps({
    "zerogpu": gradio_app.on_zerogpu(), "wrapped": hasattr(fn, "zerogpu"), "name": fn.__wrapped__.__name__,
    "generator": inspect.isgeneratorfunction(fn), "inner_generator": inspect.isgeneratorfunction(fn.__wrapped__),
    "durations": [static_duration(gradio_app.gpu_duration, c, "run.safetensors", None) for c in configs],
    "limits": [limits.enabled, limits.gpu, limits.max_epochs, limits.max_train_subset],
    "refusals": refusals}))
"""


def test_on_zerogpu_the_training_generator_is_wrapped_with_a_duration_from_its_config(tiny_data_dir):
    """The real `spaces` package as on a ZeroGPU Space (SPACES_ZERO_GPU=true; nothing is contacted until a call):
    train_on_gpu becomes its generator wrapper, around our function, and asks for the duration `gpu_duration`
    computes from the config — what spaces' own `static_duration` makes of it."""
    pytest.importorskip("spaces")
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9",
           "CNN_MAX_EPOCHS": "1000"}  # the ZeroGPU limits, their epochs raised: the call's duration bounds the run
    done = subprocess.run([sys.executable, "-c", ZEROGPU_SCRIPT, DEFAULT_PRESET], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["zerogpu"] and seen["wrapped"] and seen["name"] == "train_on_gpu"
    assert seen["generator"] and seen["inner_generator"]  # spaces' generator path: records stream from its process
    wanted = [time_request(c, N_TRAIN, N_TEST).seconds for c in (TrainConfig(epochs=1, batch_size=128),
                                                                TrainConfig(epochs=10, batch_size=32))]
    assert seen["durations"] == wanted and wanted[0] < wanted[1]  # from the config: a short run asks for less
    assert seen["limits"] == [True, True, 1000, 60_000]
    fits, too_long = seen["refusals"]
    assert fits is None and too_long.startswith("This run would take up to ")
    assert "more than the 120 s one run may have here" in too_long
