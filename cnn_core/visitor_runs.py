"""The runs a visitor trained in the Gradio twin: one checkpoint file each, in a folder of their own.

    <runs>/.gradio/<owner tag>/<run id>.safetensors

The folder is named by the visitor's owner tag (cnn_core.access.owner_tag: a hash of their secret key), and every
method takes the key, never a folder or a path: a visitor reaches their own runs only, whatever they send. A run is
its checkpoint (config, history, test accuracy, how it ended); files older than `max_age_s`, and beyond the newest
`keep`, are deleted when the runs are listed.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_core.access import is_key, owner_tag
from cnn_core.checkpoints import CheckpointError, read_metadata

RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[A-Za-z0-9_]+-[0-9a-f]{6}")  # 20261207-140312-lenet5_bn-3fa2c1
SUFFIX = ".safetensors"


@dataclass(frozen=True)
class VisitorRun:
    id: str
    path: Path
    meta: dict[str, Any]  # the checkpoint's metadata (cnn_core.checkpoints): model, config, history, test_acc, …

    @property
    def label(self) -> str:
        """How a model picker names it, e.g. "your run · 14:03 · lenet5_bn · test 98.71%"."""
        clock = f"{self.id[9:11]}:{self.id[11:13]}"
        acc = self.meta.get("test_acc")
        status = self.meta.get("status", "finished")
        return (f"your run · {clock} · {self.meta.get('model', '?')}"
                + (f" · test {acc:.2%}" if acc is not None else "") + ("" if status == "finished" else f" ({status})"))


class VisitorRuns:
    """Each visitor's runs under `root` (the twin uses <runs dir>/.gradio)."""

    def __init__(self, root: Path, max_age_s: float | None = None, keep: int = 12) -> None:
        self.root, self.max_age_s, self.keep = Path(root), max_age_s, keep

    def _folder(self, key: str) -> Path:
        if not is_key(key):
            raise ValueError("not a visitor key")
        return self.root / owner_tag(key)

    def new_path(self, key: str, model: str) -> Path:
        """Where a new run of this visitor saves its checkpoint (the folder is made; the file is not)."""
        folder = self._folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{secrets.token_hex(3)}{SUFFIX}"

    def runs(self, key: str | None) -> list[VisitorRun]:
        """This visitor's runs, newest first ([] for no key or a malformed one); deletes the expired ones."""
        if not is_key(key):
            return []
        folder = self._folder(key)
        if not folder.is_dir():
            return []
        paths = sorted((p for p in folder.glob(f"*{SUFFIX}") if RUN_ID.fullmatch(p.name[: -len(SUFFIX)])),
                       reverse=True)
        now, kept = time.time(), []
        for path in paths:
            try:
                old = self.max_age_s is not None and now - path.stat().st_mtime > self.max_age_s
                if old or len(kept) >= self.keep:
                    path.unlink()
                    continue
                kept.append(VisitorRun(path.name[: -len(SUFFIX)], path, read_metadata(path)))
            except (OSError, CheckpointError):  # deleted meanwhile, or half written: not a run to offer
                continue
        return kept

    def find(self, key: str | None, run_id: str) -> VisitorRun | None:
        """This visitor's run `run_id`, or None (no such run of theirs: another's id finds nothing)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            return None
        return next((run for run in self.runs(key) if run.id == run_id), None)
