"""Background runs: a queue of training jobs run by worker threads, persisted under runs/<id>/.

The worker never touches the UI: it writes to disk (config.json, status.json, metrics.jsonl,
epoch-N / best / last checkpoints) and pages read from there, so a refresh, a second tab or an
app restart sees the same run. A run that was training when its process died reads `interrupted`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnn_core.callbacks import Checkpointer
from cnn_core.checkpoints import latest_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.train import Callback, TrainState, fit

ACTIVE_STATUSES = ("queued", "running")
EXECUTORS = ("thread", "process")
RUN_ID = re.compile(r"[0-9A-Za-z][\w-]*")  # 20261203-211613-lenet5_bn-40b0c1d2


def runs_dir() -> Path:
    """The runs folder: $CNN_RUNS_DIR, default ./runs."""
    return Path(os.environ.get("CNN_RUNS_DIR", "runs"))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_folder(folder: Path) -> None:
    """Remove a run folder as one step for readers: renamed aside (atomic) first, then deleted, so no
    session ever reads a half-deleted run."""
    aside = folder.with_name(f".deleted-{folder.name}-{secrets.token_hex(4)}")
    try:
        folder.rename(aside)
    except FileNotFoundError:  # deleted meanwhile by another session
        return
    shutil.rmtree(aside, ignore_errors=True)


def delete_old_runs(runs_dir: Path, max_age_s: float, keep: Iterable[str] = (), now: float | None = None
                     ) -> list[str]:
    """Delete the run folders of `runs_dir` not written to for `max_age_s` seconds, except those in `keep`.

    A folder's age is that of its newest file, so a run still training (it writes every few steps)
    is never old. Returns the names deleted, oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    now = time.time() if now is None else now
    keep = set(keep)
    aged = []
    for folder in runs_dir.iterdir():
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


@dataclass
class RunInfo:
    """A run as read from disk."""

    id: str
    folder: Path
    config: TrainConfig
    status: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.status.get("status", "unknown")

    @property
    def progress(self) -> float:
        total = self.status.get("total_steps") or 0
        return min(1.0, self.status.get("step", 0) / total) if total else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left, from the pace so far; None before the first step or after the end."""
        step, elapsed = self.status.get("step", 0), self.status.get("elapsed", 0.0)
        if self.state != "running" or not step:
            return None
        return elapsed * (self.status["total_steps"] / step - 1)

    @property
    def checkpoint(self) -> Path | None:
        return latest_checkpoint(self.folder)

    def summary(self) -> dict[str, Any]:
        """One row for a runs table."""
        c = self.config
        return {"run": self.id, "model": c.model, "dataset": c.dataset, "status": self.state,
                "epochs": c.epochs, "batch": c.batch_size, "optimizer": c.optimizer, "lr": c.lr,
                "schedule": c.schedule, "best val acc": self.status.get("best_val_acc"),
                "test acc": self.status.get("test_acc"), "seconds": round(self.status.get("elapsed", 0.0), 1)}


class RunStore:
    """Runs on disk: one folder each, written by the worker, read by anyone.

    Safe to share between threads: ids never collide, status updates do not lose each other's fields,
    and listing skips a run deleted (or half-written) while it reads."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._status_lock = threading.Lock()

    def create(self, config: TrainConfig, owner: str | None = None) -> str:
        while True:  # 32 random bits per second and model; mkdir is the arbiter if two draws still meet
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model}-{secrets.token_hex(4)}"
            folder = self.root / run_id
            try:
                folder.mkdir(parents=True)
                break
            except FileExistsError:
                continue
        _write_json(folder / "config.json", config.to_dict())
        self.set_status(run_id, status="queued", created=time.time(), owner=owner, pid=os.getpid())
        return run_id

    def folder(self, run_id: str) -> Path:
        """The run's folder; KeyError for a name that is not a run id (a path, a hidden folder)."""
        if not RUN_ID.fullmatch(run_id):
            raise KeyError(f"{run_id!r} is not a run id.")
        return self.root / run_id

    def set_status(self, run_id: str, **fields: Any) -> None:
        """Merge `fields` into the run's status.json (read, merge and replace under one lock)."""
        path = self.folder(run_id) / "status.json"
        with self._status_lock:
            current = json.loads(path.read_text()) if path.exists() else {}
            _write_json(path, {**current, **fields, "updated": time.time()})

    def append(self, run_id: str, record: dict[str, Any]) -> None:
        with open(self.folder(run_id) / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def tail(self, run_id: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The records appended to metrics.jsonl since byte `offset`, and the offset after the last whole
        line (a line still being written, or cut by a crash, waits for the next call)."""
        try:
            with open(self.folder(run_id) / "metrics.jsonl", "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return [], offset
        records = []
        for line in chunk.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: stop there
                break
            offset += len(line)
        return records, offset

    def read_status(self, run_id: str) -> dict[str, Any]:
        """The run's status.json alone (cheap: what a live view polls); KeyError for an unknown run."""
        folder = self.folder(run_id)
        if not (folder / "config.json").exists():
            raise KeyError(f"No run {run_id!r} in {self.root}.")
        return json.loads((folder / "status.json").read_text())

    def read(self, run_id: str) -> RunInfo:
        folder = self.folder(run_id)
        if not (folder / "config.json").exists():
            raise KeyError(f"No run {run_id!r} in {self.root}.")
        status = json.loads((folder / "status.json").read_text())
        history, _ = self.tail(run_id)
        config = TrainConfig.from_dict(json.loads((folder / "config.json").read_text()))
        return RunInfo(run_id, folder, config, status, history)

    def list(self, owner: str | None = None) -> list[RunInfo]:
        """Every run, newest first; only `owner`'s when given. A run deleted or not yet complete on disk
        while this reads (another session's housekeeping, a run being created) is left out."""
        runs = []
        for folder in sorted(self.root.iterdir(), reverse=True):
            if folder.name.startswith("."):  # a run being deleted
                continue
            try:
                run = self.read(folder.name)
            except (KeyError, OSError, TypeError, ValueError):  # gone, half-written or unreadable: not a run to list
                continue
            if owner is None or run.status.get("owner") == owner:
                runs.append(run)
        return runs

    def delete(self, run_id: str) -> None:
        delete_folder(self.folder(run_id))


class RunRecorder(Callback):
    """Persist every event of a run: the metrics line, then the status with progress."""

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id

    def _save(self, state: TrainState, **extra: Any) -> None:
        if state.history:
            self.store.append(self.run_id, state.history[-1])
        self.store.set_status(self.run_id, status=state.status, epoch=state.epoch, step=state.step,
                              total_steps=state.total_steps, elapsed=state.elapsed,
                              best_val_acc=state.best_val_acc, test_acc=state.test_acc, **extra)

    def on_train_begin(self, state: TrainState) -> None:
        self.store.set_status(self.run_id, status="running", started=time.time(), step=0,
                              total_steps=state.total_steps, device=state.device, pid=os.getpid())

    def on_step(self, state: TrainState) -> None:
        self._save(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._save(state)

    def on_train_end(self, state: TrainState) -> None:
        self._save(state, finished=time.time())


def threads_for(concurrent_runs: int, cores: int | None = None) -> int:
    """Torch threads per run so that runs training at once do not ask for more threads than there are cores:
    oversubscribed, OpenMP threads wait on each other (measured on 2 cores, two runs of 2 threads each
    trained 4.5x slower in total than two runs of 1 thread)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, concurrent_runs))


class JobManager:
    """Queue + worker threads: at most `max_concurrent` runs train at once, the rest wait in order.

    Executor "thread" trains in the worker thread itself (tests, the CLI); "process" (the app's) trains
    each run in a child process (`cnn_core.worker`), so the server's interpreter only serves pages and a
    run that dies marks itself failed while the app serves on.

    One manager serves every session of the app, from their threads at once. With `max_run_age_s` it also
    keeps the runs folder tidy: a housekeeping thread of its own deletes, every `housekeeping_every_s`,
    the runs not written to for that long (never an active one). Reading never deletes anything."""

    def __init__(self, store: RunStore | None = None, max_concurrent: int = 1, threads_per_run: int | None = None,
                 max_run_age_s: float | None = None, housekeeping_every_s: float = 60.0, executor: str = "thread"):
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}.")
        self.store = store or RunStore()
        self.executor = executor
        self.max_concurrent = max_concurrent
        self.threads_per_run = threads_per_run or threads_for(max_concurrent)
        self._lock = threading.Lock()
        self._queue: list[str] = []
        self._active: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._closed = threading.Event()
        self.mark_interrupted()
        if max_run_age_s is not None:
            threading.Thread(target=self._housekeeping, args=(max_run_age_s, housekeeping_every_s),
                             name="runs-housekeeping", daemon=True).start()

    def _housekeeping(self, max_age_s: float, every_s: float) -> None:
        while not self._closed.wait(every_s):
            self.delete_old_runs(max_age_s)

    def delete_old_runs(self, max_age_s: float) -> list[str]:
        """Delete the runs not written to for `max_age_s` seconds, except active ones; returns their ids."""
        return delete_old_runs(self.store.root, max_age_s, keep=self.active_runs())

    def close(self) -> None:
        """Stop the housekeeping thread (runs in progress go on)."""
        self._closed.set()

    def mark_interrupted(self) -> list[str]:
        """Runs left queued/running by a process that is gone (or by an earlier manager here) → interrupted."""
        marked = []
        for run in self.store.list():
            if run.state not in ACTIVE_STATUSES or run.id in self._active or run.id in self._queue:
                continue
            pid = run.status.get("pid")
            if pid == os.getpid() or not (isinstance(pid, int) and _pid_alive(pid)):
                self.store.set_status(run.id, status="interrupted")
                marked.append(run.id)
        return marked

    def submit(self, config: TrainConfig, owner: str | None = None) -> str:
        """Validate, persist and queue a run; returns its id at once (raises ConfigError on bad config)."""
        config.validate()
        run_id = self.store.create(config, owner)
        with self._lock:
            self._queue.append(run_id)
        self._dispatch()
        return run_id

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None when not waiting."""
        with self._lock:
            return self._queue.index(run_id) + 1 if run_id in self._queue else None

    def cancel(self, run_id: str) -> None:
        """Stop a running run within one step, or take a waiting one out of the queue."""
        with self._lock:
            if run_id in self._queue:
                self._queue.remove(run_id)
                self.store.set_status(run_id, status="cancelled")
                return
            if run_id in self._active:
                self._active[run_id].set()

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._active or run_id in self._queue

    def active_runs(self) -> list[str]:
        with self._lock:
            return list(self._active) + list(self._queue)

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until the run has finished (used by tests and the CLI)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_active(run_id):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still active after {timeout} s")
            thread = self._threads.get(run_id)
            if thread is not None:
                thread.join(0.05)
            else:
                time.sleep(0.05)

    def _dispatch(self) -> None:
        with self._lock:
            while self._queue and len(self._active) < self.max_concurrent:
                run_id = self._queue.pop(0)
                self._active[run_id] = threading.Event()
                thread = threading.Thread(target=self._work, args=(run_id,), name=f"train-{run_id}", daemon=True)
                self._threads[run_id] = thread
                thread.start()

    def _work(self, run_id: str) -> None:
        stop = self._active[run_id]
        try:
            if self.executor == "process":
                self._train_in_process(run_id, stop)
            else:
                torch.set_num_threads(self.threads_per_run)  # this worker thread's ops (OpenMP's is per thread)
                train_run(self.store, run_id, stop)
        except Exception as e:  # the worker lives on for the next run
            self.store.set_status(run_id, status="failed", error=f"{type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._active.pop(run_id, None)
                self._threads.pop(run_id, None)
            self._dispatch()

    def _train_in_process(self, run_id: str, stop: threading.Event) -> None:
        """Train in a child process (`cnn_core.worker`); `stop` becomes SIGTERM. A child that dies before
        the run reached a final status marks it failed with the reason (signal or exit code, log tail)."""
        log = self.store.folder(run_id) / "worker.log"
        command = [sys.executable, "-m", "cnn_core.worker", str(self.store.root.resolve()), run_id,
                   "--threads", str(self.threads_per_run)]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=Path(__file__).resolve().parents[1])
        self.store.set_status(run_id, worker_pid=process.pid)
        signalled = False
        while process.poll() is None:
            if stop.wait(0.2) and not signalled:
                process.terminate()  # the worker stops at its next step and saves a checkpoint
                signalled = True
        if self.store.read(run_id).state in ACTIVE_STATUSES:  # it never got to write how it ended
            code = process.returncode
            why = (f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}")
            if code == -signal.SIGKILL:
                why += " (out of memory, or killed by hand)"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            self.store.set_status(run_id, status="failed",
                                  error=f"The training process ended without finishing: {why}." +
                                  (f" Last output: {' | '.join(tail)}" if tail else ""))


def train_run(store: RunStore, run_id: str, stop: threading.Event) -> None:
    """Train one stored run to its end in this process, recording into its folder; a failure is recorded
    as the run's status (with the error), not raised."""
    try:
        config = store.read(run_id).config
        fit(config, [RunRecorder(store, run_id), Checkpointer(store.folder(run_id))], stop=stop)
    except Exception as e:
        store.set_status(run_id, status="failed", error=f"{type(e).__name__}: {e}")
