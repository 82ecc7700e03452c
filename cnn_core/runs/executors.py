"""Executors: where a run trains. One interface, three places.

    executor.run(job, send, stop, controls)
                                    trains `job`, handing each message (cnn_core.runs.protocol) to `send`, until the
                                    run ends; `stop` set → the run stops at its next step; what is posted on
                                    `controls` reaches the run's loop (it applies it between two steps). Raises
                                    WorkerLost (with the reason) when the worker died before saying how the run ended.

- `InlineExecutor`: in the calling thread (tests, the CLI).
- `ProcessExecutor`: each run in a worker process (`python -m cnn_core.runs.worker`) of a small pool started
  ahead (torch imported, data read, kernels warmed) and reused run after run, so a run's first curve point
  comes about as fast as inline. A worker that dies (out of memory, a crash in native code, a kill) takes only
  its run down: the run reads FAILED with the reason, and a fresh worker takes its place.
- `RayExecutor` (cnn_core.runs.ray_executor): a Ray task per run, on any machine of a Ray cluster.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Protocol

from cnn_core.events import Callback, Command, Controls, Stop
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

    def run(self, job: Job, send: Send, stop: Stop, controls: Controls | None = None) -> list[str]:
        """Train `job` to its end; what the worker printed (for the run's worker.log)."""

    def close(self) -> None: ...


class InlineExecutor:
    """Trains in the calling thread, with extra `fit` callbacks if given (the CLI's progress bar)."""

    name = "inline"

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = callbacks or []

    def run(self, job: Job, send: Send, stop: Stop, controls: Controls | None = None) -> list[str]:
        if job.threads:
            import torch

            torch.set_num_threads(job.threads)  # this thread's OpenMP team (the setting is per thread)
        train_job(job, send, stop, self.callbacks, controls)
        return []

    def close(self) -> None:
        pass


def _why_dead(code: int) -> str:
    if code < 0:
        why = f"killed by {signal.Signals(-code).name}"
        return why + (" (out of memory, or killed by hand)" if code == -signal.SIGKILL else "")
    return f"exit code {code}"


READY = "cnn-worker-ready"  # the line a worker prints to stderr once it has imported torch and read its data


class _Worker:
    """One started worker process, the last lines it printed, and how many runs it trained."""

    def __init__(self, preload: tuple[str, ...]):
        self.ready = threading.Event()
        self._writing = threading.Lock()  # a job and a command never interleave on stdin
        self.runs = 0
        command = [sys.executable, "-m", "cnn_core.runs.worker", *[f"--preload={name}" for name in preload]]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=ROOT)
        self.output: deque[str] = deque(maxlen=200)
        threading.Thread(target=self._drain, name=f"worker-{self.process.pid}-log", daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stderr:
            text = line.decode(errors="replace").rstrip()
            if text == READY and not self.ready.is_set():
                self.ready.set()
                continue
            self.output.append(text)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send_job(self, job: Job) -> None:
        self._write({"run_id": job.run_id, "config": job.config.to_dict(), "threads": job.threads}, job.resume or b"")

    def send_command(self, run_id: str, command: Command) -> None:
        """A command for the run it trains (a worker drops one for a run it is not training)."""
        self._write({"run_id": run_id, "command": command.to_dict()})

    def _write(self, header: dict, payload: bytes = b"") -> None:
        head = json.dumps(header).encode()
        try:
            with self._writing:
                self.process.stdin.write(len(head).to_bytes(4, "little") + len(payload).to_bytes(8, "little")
                                         + head + payload)
                self.process.stdin.flush()
        except OSError:
            pass  # it died: the run finds out when its messages stop

    def close(self) -> None:
        try:
            self.process.stdin.close()  # an idle worker exits at the end of its input
        except OSError:
            pass


class ProcessExecutor:
    """Each run trains in a worker process of its own. Up to `warm` idle workers wait, started ahead, and a
    worker whose run ended cleanly waits for the next run (at most `runs_per_worker` runs, then a fresh one
    replaces it), so a run starts in a hot process; one that died is replaced at once. Workers are started by
    one thread of this executor (Linux ends a worker when the thread that started it ends: see
    cnn_core.runs.worker)."""

    name = "process"

    def __init__(self, warm: int = 1, preload: tuple[str, ...] = ("mnist",), runs_per_worker: int = 20):
        self.warm, self.preload, self.runs_per_worker = warm, preload, runs_per_worker
        self._idle: queue.Queue[_Worker | OSError] = queue.Queue()
        self._wanted: queue.Queue[bool | None] = queue.Queue()
        self._spawner = threading.Thread(target=self._spawn_loop, name="worker-spawner", daemon=True)
        self._spawner.start()
        for _ in range(warm):
            self._wanted.put(True)

    def ready(self, timeout: float = 120.0) -> bool:
        """Wait until `warm` idle workers have imported torch and read their data (a benchmark's fair start);
        False when they are not ready in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._idle.mutex:
                idle = [w for w in self._idle.queue if isinstance(w, _Worker)]
            if len(idle) >= self.warm and all(w.ready.is_set() for w in idle[:self.warm]):
                return True
            time.sleep(0.05)
        return False

    def _spawn_loop(self) -> None:
        while self._wanted.get():
            try:
                self._idle.put(_Worker(self.preload))
            except OSError as e:  # cannot start a process at all: runs will say so
                self._idle.put(e)

    def _take(self) -> _Worker:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:  # more runs at once than idle workers: start one for this run
            self._wanted.put(True)
            worker = self._idle.get()
        if isinstance(worker, OSError):
            raise WorkerLost(f"A worker process could not start: {worker}")
        if not worker.alive:  # died while it waited
            return self._take()
        return worker

    def _give_back(self, worker: _Worker) -> None:
        """After a run: back to the idle pool if it is healthy and not worn out; else a fresh one is started."""
        worker.runs += 1
        with self._idle.mutex:
            idle = sum(isinstance(w, _Worker) for w in self._idle.queue)
        if worker.alive and worker.runs < self.runs_per_worker and idle < max(1, self.warm):
            self._idle.put(worker)
            return
        worker.close()
        if idle < self.warm:
            self._wanted.put(True)

    def run(self, job: Job, send: Send, stop: Stop, controls: Controls | None = None) -> list[str]:
        worker = self._take()
        worker.output.clear()  # this run's log only
        worker.send_job(job)
        lock, finished = threading.Lock(), threading.Event()
        watcher = threading.Thread(target=self._forward, args=(worker, job.run_id, stop, controls or Controls(), lock,
                                                               finished), daemon=True)
        watcher.start()
        ended = False
        try:
            while not ended and (message := read_frame(worker.process.stdout)) is not None:
                send(message)
                ended = isinstance(message, Ended)
        finally:
            with lock:  # no stop signal reaches this worker once its run has ended (it may train another)
                finished.set()
        output = list(worker.output)
        if ended:
            self._give_back(worker)
            return output
        code = worker.process.wait()
        time.sleep(0.05)  # the last lines of stderr
        output = list(worker.output)
        if self.warm:
            self._wanted.put(True)  # replace the dead worker now, so that the next run starts warm
        tail = [line for line in output if line.strip()][-3:]
        raise WorkerLost(f"The training process ended without finishing: {_why_dead(code)}."
                         + (f" Last output: {' | '.join(tail)}" if tail else ""), output)

    @staticmethod
    def _forward(worker: _Worker, run_id: str, stop: Stop, controls: Controls, lock: threading.Lock,
                 finished: threading.Event) -> None:
        """Until the run ends: each command to the worker (a frame on its stdin), a stop as SIGTERM."""
        while True:
            commands = controls.take(timeout=0.2)
            with lock:  # no command or signal reaches this worker once its run has ended (it may train another)
                if finished.is_set() or not worker.alive:
                    return
                for command in commands:
                    worker.send_command(run_id, command)
                if stop.is_set():
                    try:
                        worker.process.send_signal(signal.SIGTERM)  # it stops at its next step, with checkpoints
                    except ProcessLookupError:
                        pass
                    return

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
