"""Shared fixtures: tiny synthetic idx data sets (no test needs the real MNIST files)."""

from __future__ import annotations

import gzip
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from cnn_core.data import Split, make_bundle


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

