"""A run's folder, file by file: the one place that knows the names.

    runs/<run id>/
      config.json         the TrainConfig
      run.json            who and what: owner (a hash), recipe name, sweep group, created
      status.json         RunStatus and progress (epoch, step, total_steps, elapsed, best/test accuracy, error)
      metrics.jsonl       one record per line (cnn_core.runs.records)
      epoch-N.safetensors the model after epoch N; best.safetensors (best validation); last.safetensors (the end)
      resume.safetensors  the training state after the last whole epoch: weights, optimizer, RNG (resume)
      worker.log          what the run's worker process printed
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

RUN_ID = re.compile(r"[0-9A-Za-z][\w-]*")  # 20261203-211613-lenet5_bn-40b0c1d2
_EPOCH = re.compile(r"epoch-(\d+)\.safetensors")
CHECKPOINT_NAMES = ("last.safetensors", "best.safetensors")


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def meta(self) -> Path:
        return self.path / "run.json"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def resume_state(self) -> Path:
        return self.path / "resume.safetensors"

    @property
    def log(self) -> Path:
        return self.path / "worker.log"

    @staticmethod
    def epoch_name(epoch: int) -> str:
        return f"epoch-{epoch}.safetensors"

    @property
    def best(self) -> Path:
        return self.path / "best.safetensors"

    @property
    def last(self) -> Path:
        return self.path / "last.safetensors"

    def checkpoint_path(self, name: str) -> Path:
        """Where a checkpoint called `name` goes; ValueError for a name that is not a checkpoint's."""
        if name not in (*CHECKPOINT_NAMES, self.resume_state.name) and not _EPOCH.fullmatch(name):
            raise ValueError(f"{name!r} is not a checkpoint name.")
        return self.path / name

    def epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every epoch-N checkpoint, in epoch order."""
        return sorted((epoch, p) for p in self.path.glob("epoch-*.safetensors") if (epoch := epoch_of(p)) is not None)

    def latest_checkpoint(self) -> Path | None:
        """The newest usable checkpoint: last, else best, else the latest epoch's."""
        for path in (self.last, self.best):
            if path.is_file():
                return path
        epochs = self.epoch_checkpoints()
        return epochs[-1][1] if epochs else None


def epoch_of(path: Path) -> int | None:
    """N for an epoch-N.safetensors path, else None."""
    m = _EPOCH.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that a reader sees the old one or the new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-{threading.get_ident()}.",
                               suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; run files are meant to be read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def new_run_id(model: str, now: str) -> str:
    return f"{now}-{model}-{secrets.token_hex(4)}"
