"""Checkpoints as plain data: one safetensors file, weights as tensors, everything else as JSON metadata.

Nothing is ever unpickled: a file a user hands in is parsed as safetensors or rejected.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from safetensors import SafetensorError
from safetensors.torch import load as load_weights
from safetensors.torch import save as save_weights

from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, DatasetInfo
from cnn_core.models import Net, count_parameters, create_model, list_models, with_classes
from cnn_core.runs.layout import RunFolder, write_atomic
from cnn_core.runs.records import History, Record
from cnn_core.runs.settings import runs_dir as default_runs_dir
from cnn_core.train import ResumePoint

FORMAT = "cnn-studio"
FORMAT_VERSION = 1
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a checkpoint brought from elsewhere: at most 20 MB …
MAX_UPLOAD_PARAMETERS = MAX_UPLOAD_BYTES // 4  # … so at most this many float32 parameters …
MAX_LAYERS = 64  # … a custom stack of at most this many layers …
MAX_CLASSES = 100  # … scoring at most this many classes


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message says why."""


@dataclass
class Checkpoint:
    model: Net  # in eval mode, on CPU, parameters frozen: for inference, safe to share between threads
    config: TrainConfig
    info: DatasetInfo  # dataset, classes, normalization
    history: History
    meta: dict[str, Any]
    path: Path

    @property
    def test_acc(self) -> float | None:
        return self.meta.get("test_acc")


def checkpoint_bytes(model: Net, config: TrainConfig, history: Iterable[Record | dict[str, Any]], info: DatasetInfo,
                     extra: dict[str, Any] | None = None) -> bytes:
    """A checkpoint file's bytes: the weights, and the config, dataset and history as JSON metadata (the history's
    curves and changes by hand; the per-layer statistics stay in the run's metrics.jsonl, or every epoch's
    checkpoint of a long run would carry megabytes of them)."""
    history = History.parse(history).without_layer_stats()
    meta = {
        "model": config.model,
        "model_args": config.model_args,
        "input_size": model.input_size,
        "dataset": info.name,
        "classes": list(info.classes),
        "mean": info.mean,
        "std": info.std,
        "config": config.to_dict(),
        "history": history.to_dicts(),
        "best_val_acc": history.best_val_acc,
        "test_acc": history.test_acc,
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        **(extra or {}),
    }
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_weights(weights, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION),
                                           "meta": json.dumps(meta)})


def save_checkpoint(path: Path, model: Net, config: TrainConfig, history: Iterable[Record | dict[str, Any]],
                    info: DatasetInfo, extra: dict[str, Any] | None = None) -> Path:
    """Write weights + metadata to `path` atomically (temp file, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, checkpoint_bytes(model, config, history, info, extra))
    return path


RESUME_FORMAT = "cnn-studio-resume"


def resume_bytes(point: ResumePoint) -> bytes:
    """A resume point as one safetensors file: weights, optimizer tensors and generator states as tensors,
    the rest (epoch, step, history, optimizer settings) as JSON. Nothing in it is pickled."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in point.model.items()}
    tensors.update({f"rng.{k}": v.cpu().contiguous() for k, v in point.rng.items()})
    plain_state: dict[str, dict[str, Any]] = {}
    for index, values in point.optimizer["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(index), {})[key] = value
    meta = {"epoch": point.epoch, "step": point.step, "elapsed": point.elapsed, "history": point.history.to_dicts(),
            "param_groups": point.optimizer["param_groups"], "optimizer_plain": plain_state}
    return save_weights(tensors, metadata={"format": RESUME_FORMAT, "meta": json.dumps(meta)})


def load_resume(data: bytes) -> ResumePoint:
    """The resume point `resume_bytes` wrote; CheckpointError for anything else."""
    try:
        header = _header("resume state", io.BytesIO(data))
        if (header.get("__metadata__") or {}).get("format") != RESUME_FORMAT:
            raise CheckpointError("This file is not a CNN studio resume state.")
        meta = json.loads(header["__metadata__"]["meta"])
        tensors = load_weights(data)
    except (SafetensorError, KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"The resume state is damaged: {e}") from e
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    rng = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value  # load_state_dict moves it to the parameter's device
    for index, values in meta["optimizer_plain"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
              for g in meta["param_groups"]]
    return ResumePoint(meta["epoch"], meta["step"], meta["elapsed"], History.parse(meta["history"]), model,
                       {"state": state, "param_groups": groups}, rng)


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
    metadata = (header.get("__metadata__") or {}) if isinstance(header, dict) else {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a safetensors file but not a CNN studio checkpoint.")
    try:
        version = int(metadata.get("format_version", 0))
        meta = json.loads(metadata["meta"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{name} is a CNN studio checkpoint whose description cannot be read "
                              f"({type(e).__name__}).") from e
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer CNN studio (format {version}).")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name} is a CNN studio checkpoint whose description is not a dictionary.")
    return meta


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
    return checkpoint_from_bytes(data, path.name, path)


def load_upload(data: bytes, name: str) -> Checkpoint:
    """A checkpoint file brought from elsewhere (an upload), as `load_checkpoint` loads one and stricter: a
    .safetensors name, at most MAX_UPLOAD_BYTES, a model of at most MAX_UPLOAD_PARAMETERS. Whatever is wrong
    with it raises CheckpointError with one sentence, before any weight is read or any layer allocated."""
    check_upload(name, len(data))
    return checkpoint_from_bytes(data, name, Path(name), max_parameters=MAX_UPLOAD_PARAMETERS)


def check_upload(name: str, size: int) -> None:
    """CheckpointError unless a file called `name` of `size` bytes may be an upload (before its bytes are read)."""
    if not name.lower().endswith(".safetensors"):
        raise CheckpointError(f"{name} is not a .safetensors file: bring a checkpoint CNN studio saved (a "
                              "run's best.safetensors or last.safetensors, or a download from this app).")
    if size > MAX_UPLOAD_BYTES:
        raise CheckpointError(f"{name} is {size / 2**20:.1f} MB; a model brought here may be at most "
                              f"{MAX_UPLOAD_BYTES // 2**20} MB.")


def checkpoint_from_bytes(data: bytes, name: str, path: Path, max_parameters: int | None = None) -> Checkpoint:
    """A checkpoint file's bytes → the Checkpoint (`name` for messages, `path` where it came from). The model is
    rebuilt from the registry and checked against the file's tensors before they are read; CheckpointError with
    one sentence for anything that does not fit."""
    header = _header(name, io.BytesIO(data))
    meta = _metadata(name, header)
    model = _architecture(name, meta, header, max_parameters)
    try:
        weights = load_weights(data)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{name} is damaged or truncated: {e}") from e
    try:
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise CheckpointError(f"{name}: its weights do not fit model {meta['model']!r}: {detail}") from e
    model.eval().requires_grad_(False)
    try:
        config = TrainConfig.from_dict(meta.get("config", {}))
        history = History.parse(meta.get("history", []))
        info = _dataset_info(meta)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{name}: its description (data set, normalization, config or history) cannot be "
                              f"read: {e}") from e
    return Checkpoint(model, config, info, history, meta, path)


def _dataset_info(meta: dict[str, Any]) -> DatasetInfo:
    """The data set the checkpoint's model reads, with its classes (as the model was trained to name them) and
    its normalization; ValueError when these are not usable."""
    dataset = str(meta.get("dataset", "mnist"))
    known = DATASETS.get(dataset) or DatasetInfo(dataset, tuple(meta["classes"]), meta["mean"], meta["std"], {})
    mean, std = float(meta.get("mean", known.mean)), float(meta.get("std", known.std))
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise ValueError(f"mean {mean} and std {std} cannot normalize an image.")
    classes = tuple(str(c) for c in meta.get("classes", known.classes))
    return dataclasses.replace(known, classes=classes, mean=mean, std=std)


def _architecture(name: str, meta: dict[str, Any], header: dict[str, Any], max_parameters: int | None) -> Net:
    """The model the metadata names, built for real only once its skeleton (on the meta device, where nothing is
    allocated) is within `max_parameters` and has exactly the file's tensor names and shapes."""
    model_name, args = meta.get("model"), meta.get("model_args", {})
    if model_name not in list_models():
        raise CheckpointError(f"{name} holds an unknown model {model_name!r}; "
                              f"this version knows {', '.join(list_models())}.")
    if not isinstance(args, dict):
        raise CheckpointError(f"{name}: its model arguments are not a dictionary.")
    if isinstance(args.get("layers"), list) and len(args["layers"]) > MAX_LAYERS:
        raise CheckpointError(f"{name}: its layer stack has {len(args['layers'])} layers; at most {MAX_LAYERS} "
                              "are built.")
    classes = meta.get("classes", DATASETS["mnist"].classes)
    if not isinstance(classes, (list, tuple)) or not 2 <= len(classes) <= MAX_CLASSES:
        raise CheckpointError(f"{name}: its model must name between 2 and {MAX_CLASSES} classes.")
    try:
        with torch.device("meta"):
            skeleton = with_classes(create_model(model_name, **args), len(classes))
    except Exception as e:  # noqa: BLE001 - whatever a file's arguments do to a factory is the file's fault
        raise CheckpointError(f"{name}: its model {model_name!r} cannot be built from the arguments it gives "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}).") from e
    parameters = count_parameters(skeleton)
    if max_parameters is not None and parameters > max_parameters:
        raise CheckpointError(f"{name}: its model would have {parameters:,} parameters; a model brought here may "
                              f"have at most {max_parameters:,}.")
    wanted = {key: list(tensor.shape) for key, tensor in skeleton.state_dict().items()}
    stored = {key: value.get("shape") if isinstance(value, dict) else None
              for key, value in header.items() if key != "__metadata__"}
    if stored != wanted:
        raise CheckpointError(f"{name}: its weights do not fit model {model_name!r}: {_difference(stored, wanted)}.")
    return with_classes(create_model(model_name, **args), len(classes))


def _difference(stored: dict[str, Any], wanted: dict[str, list[int]]) -> str:
    """What differs between a file's tensors and a model's, the first few, in words."""
    def shape(s: Any) -> str:
        return "x".join(map(str, s)) if isinstance(s, list) else repr(s)

    parts = [f"{key} is {shape(stored[key])} where the model has {shape(wanted[key])}"
             for key in wanted if key in stored and stored[key] != wanted[key]]
    parts += [f"{key} is missing" for key in wanted if key not in stored]
    parts += [f"{key} is not in the model" for key in stored if key not in wanted]
    return "; ".join(parts[:3]) + (f" (and {len(parts) - 3} more)" if len(parts) > 3 else "")


@dataclass(frozen=True)
class CheckpointEntry:
    label: str  # what a picker shows, e.g. "pretrained · lenet5_bn-mnist" or "run 20261125-0930-lenet5_bn (running)"
    path: Path
    kind: str  # "pretrained" or "run"


def run_label(run_id: str) -> str:
    """How a picker names a run's checkpoint."""
    return f"run · {run_id}"


def available_checkpoints(pretrained_dir: Path = Path("checkpoints"), runs_dir: Path | None = None) -> list[CheckpointEntry]:
    """Pretrained checkpoints, then every run (newest first) that has written a checkpoint yet."""
    entries = [CheckpointEntry(f"pretrained · {p.stem}", p, "pretrained")
               for p in sorted(Path(pretrained_dir).glob("*.safetensors"), key=lambda p: ("fashion" in p.stem, p.name))]
    # digits first: the Draw page opens on the first entry, and people draw digits
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if runs_dir.is_dir():
        for run in sorted((d for d in runs_dir.iterdir() if d.is_dir() and not d.name.startswith(".")), reverse=True):
            path = RunFolder(run).latest_checkpoint()
            if path is not None:
                entries.append(CheckpointEntry(run_label(run.name), path, "run"))
    return entries
