"""Executors: where a run trains. One interface, three places.

    executor.run(job, send, stop)   trains `job`, handing each message (cnn_core.runs.protocol) to `send`, until the
                                    run ends; `stop` set → the run stops at its next step. Raises WorkerLost
                                    (with the reason) when the worker died before saying how the run ended.

- `InlineExecutor`: in the calling thread (tests, the CLI).
- `ProcessExecutor`: a process per run (`python -m cnn_core.runs.worker`), from a small pool of workers started
  ahead (torch imported, data read), so a run's first curve point comes as fast as inline. A worker that dies
  (out of memory, a crash in native code, a kill) takes only its run down: the run reads FAILED with the reason.
- `RayExecutor` (cnn_core.runs.ray_executor): a Ray task per run, on any machine of a Ray cluster.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Protocol

from cnn_core.events import Callback, Stop
from cnn_core.runs.protocol import Ended, Job, Send, read_frame, train_job
from cnn_core.runs.settings import RunSettings

ROOT = Path(__file__).resolve().parents[2]  # the folder holding cnn_core/: where workers start


class WorkerLost(RuntimeError):
    """The worker training a run went away without reporting its end; the message says why, `output` holds
    what it printed last."""

    def __init__(self, reason: str, output: list[str] | None = None):
        super().__init__(reason)
        self.output = output or []


class Executor(Protocol):
    name: str

    def run(self, job: Job, send: Send, stop: Stop) -> list[str]:
        """Train `job` to its end; what the worker printed (for the run's worker.log)."""

    def close(self) -> None: ...


class InlineExecutor:
    """Trains in the calling thread, with extra `fit` callbacks if given (the CLI's progress bar)."""

    name = "inline"

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = callbacks or []

    def run(self, job: Job, send: Send, stop: Stop) -> list[str]:
        if job.threads:
            import torch

            torch.set_num_threads(job.threads)  # this thread's OpenMP team (the setting is per thread)
        train_job(job, send, stop, self.callbacks)
        return []

    def close(self) -> None:
        pass


def _why_dead(code: int) -> str:
    if code < 0:
        why = f"killed by {signal.Signals(-code).name}"
        return why + (" (out of memory, or killed by hand)" if code == -signal.SIGKILL else "")
    return f"exit code {code}"


class _Worker:
    """One started worker process and the last lines it printed."""

    def __init__(self, preload: tuple[str, ...]):
        command = [sys.executable, "-m", "cnn_core.runs.worker", *[f"--preload={name}" for name in preload]]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=ROOT)
        self.output: deque[str] = deque(maxlen=200)
        threading.Thread(target=self._drain, name=f"worker-{self.process.pid}-log", daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.output.append(line.decode(errors="replace").rstrip())

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        try:
            self.process.stdin.close()  # an idle worker exits at the end of its input
        except OSError:
            pass


class ProcessExecutor:
    """A process per run, from a pool of `warm` started ahead. Workers are started by one thread of this
    executor (Linux ends a worker when the thread that started it ends: see cnn_core.runs.worker)."""

    name = "process"

    def __init__(self, warm: int = 1, preload: tuple[str, ...] = ("mnist",)):
        self.warm, self.preload = warm, preload
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._wanted: queue.Queue[bool | None] = queue.Queue()
        self._spawner = threading.Thread(target=self._spawn_loop, name="worker-spawner", daemon=True)
        self._spawner.start()
        for _ in range(warm):
            self._wanted.put(True)

    def _spawn_loop(self) -> None:
        while self._wanted.get():
            try:
                self._idle.put(_Worker(self.preload))
            except OSError as e:  # cannot start a process at all: runs will say so
                self._idle.put(e)  # type: ignore[arg-type]

    def _take(self) -> _Worker:
        if self._idle.empty():
            self._wanted.put(True)
        worker = self._idle.get()
        if isinstance(worker, OSError):
            raise WorkerLost(f"A worker process could not start: {worker}")
        if self.warm:
            self._wanted.put(True)  # keep the pool full for the next run
        if not worker.alive:  # died while it waited
            return self._take()
        return worker

    def run(self, job: Job, send: Send, stop: Stop) -> list[str]:
        worker = self._take()
        header = json.dumps({"run_id": job.run_id, "config": job.config.to_dict(), "threads": job.threads}).encode()
        resume = job.resume or b""
        try:
            worker.process.stdin.write(len(header).to_bytes(4, "little") + len(resume).to_bytes(8, "little")
                                       + header + resume)
            worker.process.stdin.flush()
        except OSError:
            pass  # it died: found below
        watcher = threading.Thread(target=self._stop_on_request, args=(worker, stop), daemon=True)
        watcher.start()
        ended = False
        while (message := read_frame(worker.process.stdout)) is not None:
            send(message)
            ended = ended or isinstance(message, Ended)
        code = worker.process.wait()
        output = list(worker.output)
        if not ended:
            tail = [line for line in output if line.strip()][-3:]
            raise WorkerLost(f"The training process ended without finishing: {_why_dead(code)}."
                             + (f" Last output: {' | '.join(tail)}" if tail else ""), output)
        return output

    @staticmethod
    def _stop_on_request(worker: _Worker, stop: Stop) -> None:
        while not stop.wait(0.2):
            if not worker.alive:
                return
        if worker.alive:
            try:
                worker.process.send_signal(signal.SIGTERM)  # the worker stops at its next step, with checkpoints
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self._wanted.put(None)
        while not self._idle.empty():
            worker = self._idle.get_nowait()
            if isinstance(worker, _Worker):
                worker.close()


def make_executor(settings: RunSettings | None = None, name: str | None = None) -> Executor:
    """The executor the settings (or `name`) choose; Ray is imported only when it is the one."""
    settings = settings or RunSettings.from_env()
    name = name or settings.executor
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor(warm=settings.warm_workers)
    if name == "ray":
        from cnn_core.runs.ray_executor import RayExecutor

        return RayExecutor(address=settings.ray_address)
    raise ValueError(f"Unknown executor {name!r}.")
