"""Checkpoints as plain data: one safetensors file, weights as tensors, everything else as JSON metadata.

Nothing is ever unpickled: a file a user hands in is parsed as safetensors or rejected.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from safetensors import SafetensorError
from safetensors.torch import load as load_weights
from safetensors.torch import save_file

from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, DatasetInfo
from cnn_core.models import Net, create_model, list_models

FORMAT = "cnn-studio"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message says why."""


@dataclass
class Checkpoint:
    model: Net  # in eval mode, on CPU, parameters frozen: for inference, safe to share between threads
    config: TrainConfig
    info: DatasetInfo  # dataset, classes, normalization
    history: list[dict[str, Any]]
    meta: dict[str, Any]
    path: Path

    @property
    def test_acc(self) -> float | None:
        return self.meta.get("test_acc")


def save_checkpoint(path: Path, model: Net, config: TrainConfig, history: list[dict[str, Any]],
                    info: DatasetInfo, extra: dict[str, Any] | None = None) -> Path:
    """Write weights + metadata to `path` atomically (temp file, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ends = [r for r in history if r.get("event") == "end"]
    vals = [r["val_acc"] for r in history if r.get("event") == "epoch" and r["val_acc"] == r["val_acc"]]
    meta = {
        "model": config.model,
        "model_args": config.model_args,
        "input_size": model.input_size,
        "dataset": info.name,
        "classes": list(info.classes),
        "mean": info.mean,
        "std": info.std,
        "config": config.to_dict(),
        "history": history,
        "best_val_acc": max(vals) if vals else None,
        "test_acc": ends[-1]["test_acc"] if ends else None,
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        **(extra or {}),
    }
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "meta": json.dumps(meta)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        save_file(weights, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _header(name: str, f: BinaryIO) -> dict[str, Any]:
    """The JSON header at the start of a safetensors file."""
    try:
        size = int.from_bytes(f.read(8), "little")
        if size <= 0 or size > 100_000_000:
            raise CheckpointError(f"{name} is not a safetensors checkpoint (a pickle or other file?).")
        return json.loads(f.read(size))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name} is not a readable safetensors checkpoint ({type(e).__name__}).") from e


def _metadata(name: str, header: dict[str, Any]) -> dict[str, Any]:
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a safetensors file but not a CNN studio checkpoint.")
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer CNN studio (format {metadata['format_version']}).")
    return json.loads(metadata["meta"])


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without building the model."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _metadata(path.name, _header(path.name, f))
    except OSError as e:
        raise CheckpointError(f"{path.name} is not a readable safetensors checkpoint ({type(e).__name__}).") from e


def load_checkpoint(path: Path) -> Checkpoint:
    """Rebuild the model from the registry and load its weights; reject anything that does not fit.

    The file is read once, so a checkpoint rewritten meanwhile (a run writes last.safetensors every epoch)
    never pairs one version's metadata with another's weights. The model comes back in eval mode with
    frozen parameters: it is for inference, and many sessions may share it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"No checkpoint at {path}." if not path.exists() else
                              f"{path.name} cannot be read ({type(e).__name__}).") from e
    meta = _metadata(path.name, _header(path.name, io.BytesIO(data)))
    if meta.get("model") not in list_models():
        raise CheckpointError(f"{path.name} holds an unknown model {meta.get('model')!r}; "
                              f"this version knows {', '.join(list_models())}.")
    try:
        weights = load_weights(data)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path.name} is damaged or truncated: {e}") from e
    try:
        model = create_model(meta["model"], **meta.get("model_args", {}))
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise CheckpointError(f"{path.name}: its weights do not fit model {meta['model']!r}: {detail}") from e
    model.eval().requires_grad_(False)
    dataset = meta.get("dataset", "mnist")
    info = DATASETS.get(dataset) or DatasetInfo(dataset, tuple(meta["classes"]), meta["mean"], meta["std"], {})
    return Checkpoint(model, TrainConfig.from_dict(meta.get("config", {})), info, meta.get("history", []), meta, path)


@dataclass(frozen=True)
class CheckpointEntry:
    label: str  # what a picker shows, e.g. "pretrained · lenet5_bn-mnist" or "run 20261125-0930-lenet5_bn (running)"
    path: Path
    kind: str  # "pretrained" or "run"


def epoch_checkpoints(run_dir: Path) -> list[Path]:
    """A run's per-epoch checkpoints (epoch-N.safetensors), in epoch order."""
    return sorted(Path(run_dir).glob("epoch-*.safetensors"), key=lambda p: int(p.stem.split("-")[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest usable checkpoint of a run: last, else best, else the latest epoch."""
    run_dir = Path(run_dir)
    for name in ("last.safetensors", "best.safetensors"):
        if (run_dir / name).is_file():
            return run_dir / name
    epochs = epoch_checkpoints(run_dir)
    return epochs[-1] if epochs else None


def run_label(run_id: str) -> str:
    """How a picker names a run's checkpoint."""
    return f"run · {run_id}"


def available_checkpoints(pretrained_dir: Path = Path("checkpoints"), runs_dir: Path | None = None) -> list[CheckpointEntry]:
    """Pretrained checkpoints, then every run (newest first) that has written a checkpoint yet."""
    entries = [CheckpointEntry(f"pretrained · {p.stem}", p, "pretrained")
               for p in sorted(Path(pretrained_dir).glob("*.safetensors"), key=lambda p: ("fashion" in p.stem, p.name))]
    # digits first: the Draw page opens on the first entry, and people draw digits
    runs_dir = Path(runs_dir) if runs_dir is not None else Path(os.environ.get("CNN_RUNS_DIR", "runs"))
    if runs_dir.is_dir():
        for run in sorted((d for d in runs_dir.iterdir() if d.is_dir()), reverse=True):
            path = latest_checkpoint(run)
            if path is not None:
                entries.append(CheckpointEntry(run_label(run.name), path, "run"))
    return entries
