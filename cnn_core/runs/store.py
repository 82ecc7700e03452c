"""RunStore: the runs folder, one RunFolder per run. Written by the app side only (the process that queued the
run applies what its worker reports, cnn_core.runs.protocol.RunWriter); read by anyone: pages, the CLI, the Gradio twin.

Safe to share between threads: ids never collide, status updates do not lose each other's fields, a run
appears in the folder whole (created aside, then renamed in), and listing never raises: a folder that cannot be
read is listed as UNREADABLE with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_core.config import TrainConfig
from cnn_core.runs.layout import RUN_ID, RunFolder, new_run_id, write_atomic
from cnn_core.runs.records import History, Record, parse, to_dict
from cnn_core.runs.settings import runs_dir
from cnn_core.runs.status import RunStatus


@dataclass
class RunInfo:
    """A run as read from disk. `status` is status.json as a dict (owner, progress, error, …); `state` is its
    RunStatus. An UNREADABLE run has no config and says why in `error`."""

    id: str
    folder: RunFolder
    config: TrainConfig | None
    status: dict[str, Any]
    history: History = field(default_factory=History)
    meta: dict[str, Any] = field(default_factory=dict)  # run.json: owner, recipe, group, created
    error: str | None = None

    @property
    def state(self) -> RunStatus:
        return RunStatus.UNREADABLE if self.config is None else RunStatus.parse(self.status.get("status"))

    @property
    def recipe(self) -> str | None:
        return self.meta.get("recipe")

    @property
    def group(self) -> str | None:
        return self.meta.get("group")

    @property
    def name(self) -> str | None:
        """The display name of who started it (in a class)."""
        return self.meta.get("name")

    @property
    def progress(self) -> float:
        total = self.status.get("total_steps") or 0
        return min(1.0, self.status.get("step", 0) / total) if total else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left, from the pace so far; None before the first step or after the end."""
        step, elapsed = self.status.get("step", 0), self.status.get("elapsed", 0.0)
        started = self.status.get("resumed_at_step", 0)
        if self.state is not RunStatus.RUNNING or step <= started:
            return None
        pace = (elapsed - self.status.get("resumed_at_elapsed", 0.0)) / (step - started)
        return pace * (self.status["total_steps"] - step)

    @property
    def checkpoint(self) -> Path | None:
        return self.folder.latest_checkpoint()

    @property
    def can_resume(self) -> bool:
        return self.state.resumable and self.folder.resume_state.is_file()

    def summary(self) -> dict[str, Any]:
        """One row for a runs table."""
        if self.config is None:
            return {"run": self.id, "status": str(self.state), "error": self.error}
        c = self.config
        return {"run": self.id, **({"by": self.name} if self.name else {}), "model": c.model, "dataset": c.dataset, "status": str(self.state),
                "epochs": c.epochs, "batch": c.batch_size, "optimizer": c.optimizer, "lr": c.lr,
                "schedule": c.schedule, "best val acc": self.history.best_val_acc,
                "test acc": self.history.test_acc, "seconds": round(self.status.get("elapsed", 0.0), 1)}


def delete_folder(folder: Path) -> None:
    """Remove a run folder as one step for readers: renamed aside (atomic) first, then deleted, so no
    session ever reads a half-deleted run."""
    aside = folder.with_name(f".deleted-{folder.name}-{secrets.token_hex(4)}")
    try:
        folder.rename(aside)
    except FileNotFoundError:  # deleted meanwhile by another session
        return
    shutil.rmtree(aside, ignore_errors=True)


def delete_old_runs(root: Path, max_age_s: float, keep: Iterable[str] = (), now: float | None = None) -> list[str]:
    """Delete the run folders of `root` not written to for `max_age_s` seconds, except those in `keep`.

    A folder's age is that of its newest file, so a run still training (it writes every few steps)
    is never old. Returns the names deleted, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    keep = set(keep)
    aged = []
    for folder in root.iterdir():
        if folder.is_symlink() or not folder.is_dir() or folder.name in keep or folder.name.startswith("."):
            continue
        try:
            newest = max([folder.stat().st_mtime] + [f.stat().st_mtime for f in folder.rglob("*")])
        except FileNotFoundError:  # deleted meanwhile by another session
            continue
        if now - newest > max_age_s:
            aged.append((newest, folder))
    for _, folder in sorted(aged):
        delete_folder(folder)
    return [folder.name for _, folder in sorted(aged)]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} holds {type(data).__name__}, not an object")
    return data


class RunStore:
    """Runs on disk under `root` (default: the settings' runs folder)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._status_lock = threading.Lock()

    def create(self, config: TrainConfig, owner: str | None = None, recipe: str | None = None,
               group: str | None = None, **meta: Any) -> str:
        """A new queued run for `config`; its id. The folder is written aside and renamed in whole."""
        draft = self.root / f".new-{secrets.token_hex(8)}"
        draft.mkdir(parents=True)
        folder = RunFolder(draft)
        now = time.time()
        write_atomic(folder.config, json.dumps(config.to_dict(), indent=1))
        write_atomic(folder.meta, json.dumps({**meta, "owner": owner, "recipe": recipe, "group": group,
                                              "created": now}))
        write_atomic(folder.status, json.dumps({"status": RunStatus.QUEUED, "owner": owner, "created": now,
                                                "pid": os.getpid(), "updated": now}))
        while True:  # 32 random bits per second and model; the rename is the arbiter if two draws still meet
            run_id = new_run_id(config.model, time.strftime("%Y%m%d-%H%M%S"))
            if (self.root / run_id).exists():
                continue
            try:
                draft.rename(self.root / run_id)  # fails on an existing run (a folder that is not empty)
                return run_id
            except OSError:
                continue

    def folder(self, run_id: str) -> RunFolder:
        """The run's folder; KeyError for a name that is not a run id (a path, a hidden folder)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise KeyError(f"{run_id!r} is not a run id.")
        return RunFolder(self.root / run_id)

    def set_status(self, run_id: str, status: RunStatus | None = None, **fields: Any) -> None:
        """Merge `fields` (and the status, if given) into the run's status.json under one lock."""
        path = self.folder(run_id).status
        if status is not None:
            fields["status"] = RunStatus(status)
        with self._status_lock:
            try:
                current = _read_json(path)
            except (OSError, ValueError):
                current = {}
            write_atomic(path, json.dumps({**current, **fields, "updated": time.time()}))

    def append(self, run_id: str, record: Record) -> None:
        with open(self.folder(run_id).metrics, "a") as f:
            f.write(json.dumps(to_dict(record)) + "\n")

    def rewrite_history(self, run_id: str, history: History) -> None:
        """Replace metrics.jsonl with `history` (a resumed run drops the records after its resume point)."""
        write_atomic(self.folder(run_id).metrics, "".join(json.dumps(r) + "\n" for r in history.to_dicts()))

    def tail(self, run_id: str, offset: int = 0) -> tuple[list[Record], int]:
        """The records appended to metrics.jsonl since byte `offset`, and the offset after the last whole
        line (a line still being written, or cut by a crash, waits for the next call)."""
        try:
            with open(self.folder(run_id).metrics, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return [], offset
        records = []
        for line in chunk.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(parse(json.loads(line)))
            except ValueError:  # a line cut by a crash mid-write (JSONDecodeError is one): stop there
                break
            offset += len(line)
        return records, offset

    def read_status(self, run_id: str) -> dict[str, Any]:
        """The run's status.json alone (cheap: what a live view polls); KeyError for an unknown run."""
        folder = self.folder(run_id)
        if not folder.config.exists():
            raise KeyError(f"No run {run_id!r} in {self.root}.")
        return _read_json(folder.status)

    def read(self, run_id: str, history: bool = True) -> RunInfo:
        """The run (without its metrics with history=False: what a progress line needs); KeyError when there is
        none, OSError/ValueError when its files cannot be read."""
        folder = self.folder(run_id)
        if not folder.path.is_dir():
            raise KeyError(f"No run {run_id!r} in {self.root}.")
        config = TrainConfig.from_dict(_read_json(folder.config))
        status = _read_json(folder.status)
        meta = _read_json(folder.meta) if folder.meta.exists() else {"owner": status.get("owner")}
        records, _ = self.tail(run_id) if history else ([], 0)
        if not folder.path.is_dir():  # deleted (renamed aside) while this read: what was read may be partial
            raise KeyError(f"Run {run_id!r} was deleted.")
        return RunInfo(run_id, folder, config, status, History(records), meta)

    def open(self, run_id: str) -> RunInfo:
        """The run, or, when its files cannot be read, an UNREADABLE RunInfo saying why; KeyError when there is no
        such run (or it was deleted meanwhile)."""
        try:
            return self.read(run_id)
        except (OSError, TypeError, ValueError) as e:
            folder = self.folder(run_id)
            if not folder.path.is_dir():
                raise KeyError(f"No run {run_id!r} in {self.root}.") from None
            why = (f"its {Path(e.filename).name} is missing" if isinstance(e, FileNotFoundError) and e.filename
                   else f"{type(e).__name__}: {e}")
            return RunInfo(run_id, folder, None, {}, error=why)

    def list(self) -> list[RunInfo]:
        """Every run, newest first. A run deleted while this reads is left out; a folder that cannot be read is
        listed as UNREADABLE with the reason (it never hides the others)."""
        runs = []
        try:
            folders = sorted(self.root.iterdir(), reverse=True)
        except FileNotFoundError:
            return []
        for path in folders:
            if path.name.startswith(".") or not path.is_dir():  # being created or deleted; a stray file
                continue
            try:
                runs.append(self.open(path.name))
            except KeyError:
                continue
        return runs

    def delete(self, run_id: str) -> None:
        delete_folder(self.folder(run_id).path)


@dataclass
class _Seen:
    config: TrainConfig
    meta: dict[str, Any]
    records: list[Record]
    offset: int  # bytes of metrics.jsonl read so far


class LiveRuns:
    """The runs of a folder read again and again (the class board, twice a second): each run's config and
    run.json once, its status.json each time, its metrics.jsonl from where the last read stopped. One reader at
    a time (the caller holds a lock); what the folder no longer has is forgotten."""

    def __init__(self, store: RunStore):
        self.store = store
        self._seen: dict[str, _Seen] = {}

    def list(self, keep=lambda meta: True) -> list[RunInfo]:
        """The readable runs whose run.json `keep` accepts, newest first (one being created or cut shows next time)."""
        try:
            names = sorted((p.name for p in self.store.root.iterdir() if not p.name.startswith(".") and p.is_dir()),
                           reverse=True)
        except FileNotFoundError:
            names = []
        self._seen = {name: seen for name, seen in self._seen.items() if name in set(names)}
        runs = []
        for name in names:
            folder = self.store.folder(name)
            try:
                seen = self._seen.get(name)
                if seen is None:
                    config = TrainConfig.from_dict(_read_json(folder.config))
                    meta = _read_json(folder.meta) if folder.meta.exists() else {}
                    seen = self._seen[name] = _Seen(config, meta, [], 0)
                if not keep(seen.meta):
                    continue
                status = _read_json(folder.status)
                if folder.metrics.exists() and folder.metrics.stat().st_size < seen.offset:
                    seen.records, seen.offset = [], 0  # rewritten (a resumed run): read it again
                new, seen.offset = self.store.tail(name, seen.offset)
                seen.records.extend(new)
            except (OSError, TypeError, ValueError):
                continue
            runs.append(RunInfo(name, folder, seen.config, status, History(seen.records), seen.meta))
        return runs
