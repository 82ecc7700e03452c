"""Shared fixtures: tiny synthetic idx data sets (no test needs the real MNIST files)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from cnn_core.checkpoints import save_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, Split, make_bundle
from cnn_core.models import create_model
from cnn_core.runs import EndRecord, EpochRecord, RunStatus, RunStore, StepRecord

APP = str(Path(__file__).parents[1] / "app.py")
TINY_LAYERS = [  # a two-conv custom stack: every inspect and drawing view has something to show
    {"type": "conv", "channels": 4, "kernel": 3, "padding": 1}, {"type": "act", "fn": "relu"},
    {"type": "pool", "mode": "max", "size": 2},
    {"type": "conv", "channels": 6, "kernel": 3, "padding": 1}, {"type": "act", "fn": "relu"},
    {"type": "pool", "mode": "max", "size": 2},
]
TINY_HISTORY = [{"event": "epoch", "epoch": 1, "val_acc": 0.5}, {"event": "end", "test_acc": 0.5}]


def free_port() -> int:
    """A TCP port free on loopback right now (servers in tests listen on 127.0.0.1 only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate a server a test started; kill it if it does not exit within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images (n, 28, 28) whose class is a bright bar at a class-specific row, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        row = 3 + 2 * int(k)
        images[i, row : row + 2, 4:24] = 255
    return images, labels


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format (magic 0x0000080N, big-endian dims, payload)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_dataset(folder: Path, n_train: int = 600, n_test: int = 200, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = synthetic_digits(n, seed)
        for suffix, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            raw = idx_bytes(arr)
            name = f"{prefix}-{suffix}"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


@pytest.fixture(autouse=True)
def _close_the_apps_job_managers(monkeypatch):
    """The JobManagers the app makes during a test (ui.jobs keeps one per runs folder in st.cache_resource, for
    the whole pytest process) are closed when the test ends, with the executor each made for itself and its
    warm worker process. Left open, every page test's runs folder kept a worker (about 450 MB: torch and its
    data) until pytest exited (11 at once, 5.3 GB, in test_page_train and test_page_runs alone); in the whole
    suite, Ray's memory monitor (it acts above 95% of the machine's memory) then killed the Ray tests' tasks.
    Managers a test builds itself, around an executor it may share, are the test's own business."""
    import ui.jobs

    made: list = []

    def recording(*args, **kwargs):
        made.append(jobs := real(*args, **kwargs))
        return jobs

    real = ui.jobs.JobManager
    monkeypatch.setattr(ui.jobs, "JobManager", recording)
    yield
    if made:
        ui.jobs._manager.clear()  # the next test's app makes a fresh one
    for jobs in made:
        jobs.close()


@pytest.fixture
def tiny_data_dir(tmp_path, monkeypatch) -> Path:
    """A data dir with small synthetic 'mnist' and 'fashion-mnist'; checksums off (they are not the real files)."""
    root = tmp_path / "data"
    write_dataset(root / "mnist")
    write_dataset(root / "fashion-mnist", gz=True)
    monkeypatch.setenv("CNN_DATA_DIR", str(root))
    monkeypatch.setenv("CNN_DATA_VERIFY", "0")
    return root


@pytest.fixture
def tiny_bundle():
    images, labels = synthetic_digits(800, 0)
    test_images, test_labels = synthetic_digits(200, 1)
    splits = {
        "train": Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))),
        "test": Split(torch.from_numpy(test_images), torch.from_numpy(test_labels.astype(np.int64))),
    }
    return make_bundle("mnist", val_size=200, splits=splits)



def tiny_net(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("custom", layers=TINY_LAYERS)


def save_tiny(path, seed: int = 0):
    cfg = TrainConfig(model="custom", model_args={"layers": TINY_LAYERS}, epochs=1)
    return save_checkpoint(path, tiny_net(seed), cfg, TINY_HISTORY, DATASETS["mnist"])


def save_mlp(path, seed: int = 0):
    """An untrained MLP checkpoint: a model with no conv layer at all."""
    torch.manual_seed(seed)
    return save_checkpoint(path, create_model("mlp", hidden=16), TrainConfig(model="mlp", model_args={"hidden": 16}),
                           TINY_HISTORY, DATASETS["mnist"])


@pytest.fixture
def runs_root(tmp_path, tiny_data_dir, monkeypatch):
    """An empty runs folder (CNN_RUNS_DIR) beside the tiny data sets."""
    root = tmp_path / "runs"
    monkeypatch.setenv("CNN_RUNS_DIR", str(root))
    return root


@pytest.fixture
def studio(tmp_path, tiny_data_dir, monkeypatch):
    """An empty runs folder and a checkpoints folder holding one tiny untrained model (it makes mistakes)."""
    folders = SimpleNamespace(checkpoints=tmp_path / "checkpoints", runs=tmp_path / "runs", data=tiny_data_dir)
    folders.runs.mkdir()
    monkeypatch.setenv("CNN_CHECKPOINTS_DIR", str(folders.checkpoints))
    monkeypatch.setenv("CNN_RUNS_DIR", str(folders.runs))
    folders.ckpt = save_tiny(folders.checkpoints / "tiny-mnist.safetensors")
    return folders


def finished_runs(runs_dir: Path, n: int = 3) -> None:
    """n finished 2-epoch MLP runs, written as the worker writes them (no checkpoints: nothing to load)."""
    store = RunStore(runs_dir)
    for i in range(n):
        config = TrainConfig(model="mlp", epochs=2, metrics_every=2, seed=i)
        run_id = store.create(config)
        step, acc = 0, 0.5 + 0.1 * i
        for epoch in (1, 2):
            for _ in range(3):
                step += 2
                store.append(run_id, StepRecord(epoch, step, step / 10, 1.0 / step, acc, config.lr))
            store.append(run_id, EpochRecord(epoch, step, step / 10, 1.0 / step, acc, 1.1 / step, acc + 0.01 * epoch,
                                             config.lr, 0.3, 1000.0))
        store.append(run_id, EndRecord(2, step, 1.2, RunStatus.FINISHED, 0.2, acc, 1.2))
        store.set_status(run_id, RunStatus.FINISHED, epoch=2, step=step, total_steps=step, elapsed=1.2,
                         best_val_acc=acc + 0.02, test_acc=acc, finished=time.time())


def tampered(token: str) -> str:
    """`token` with its last character changed: a wrong token that is never, by chance, the right one."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def run_async(coroutine):
    """asyncio.run in a thread of its own: the browser tests' sync Playwright keeps an event loop running in
    the main thread for the whole session, and asyncio.run refuses to start inside one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def load_bench(monkeypatch):
    """Import a script of bench/ by name ("concurrent_draw") as a module, registered in sys.modules for
    the test (its dataclasses look their module up there)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_bench", Path(__file__).parents[1] / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        return module

    return load


def chart(at, key: str) -> dict:
    """The plotly figure (as JSON) of an AppTest's chart with this key."""
    specs = [c.proto.spec for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert specs, f"no chart {key!r}"
    return json.loads(specs[0])


def components(at, name: str) -> list:
    """An AppTest's components-v2 elements named `name` (the shell's width probe, cnn_viewport, is on every page)."""
    return [c for c in at.get("bidi_component") if c.proto.component_name == name]


def as_array(data) -> np.ndarray:
    """An array from a figure's JSON, whether plotly wrote a list or a typed array."""
    if isinstance(data, dict):  # {"dtype": "f8", "bdata": base64, "shape": "7, 7"}
        shape = [int(n) for n in str(data.get("shape", -1)).split(",")]
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).reshape(shape)
    return np.array(data, dtype=float)


def open_page(page: str, timeout: float = 60, **session_state) -> AppTest:
    """Run the app's entry point (navigation, sidebar), then switch to `page` ("pages/x.py") as a user would,
    with `session_state` set first. Page links resolve only this way, not when a page file runs alone."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in session_state.items():
        at.session_state[key] = value
    at.run()
    return at.switch_page(page).run()


def as_visitor(page: str, key: str | None, **query: str) -> AppTest:
    """`page` opened through app.py by the visitor with this secret key (a browser's cookie), with `query` in
    the URL."""
    at = AppTest.from_file(APP, default_timeout=60)
    if key is not None:
        at.session_state["visitor_key"] = key
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    at = at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
