"""RayExecutor: each run is a Ray task, on any machine of a Ray cluster ($RAY_ADDRESS) or of a local Ray this
process starts on first use. Only this module imports ray, and only when the executor is made.

The task trains with `train_job` and streams every message back as it comes: a streaming generator
(`num_returns="streaming"`) yields each `encode(message)`, and this side decodes them in order and hands them to
`send`, so the run folder fills as with any executor.

Commands that steer a run (cnn_core.events.Controls) go the same way as a stop request: posted on the run
board (a small actor) and taken by the task, which polls it every POLL_S.

Stop, as Ray 2.60 behaves: `ray.cancel` on a running task raises KeyboardInterrupt in it, and from then on Ray
refuses whatever the task yields (TaskCancelledError), so a cancelled task cannot send its last checkpoint.
So a stop is first posted on the run board, which the task polls: the run ends STOPPED at its next step, with
its last checkpoint. Ray's own `ray.cancel` ends the task when it does not stop within `stop_grace_s` (then
`force=True`, which kills its worker), or at once while it has not begun (it waits for a slot: nothing to
keep); the run then ends STOPPED with the checkpoints it had sent.

A worker that dies (killed, out of memory, its node lost) is not run again (`max_retries=0`): the run reads
FAILED with Ray's reason.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnn_core.events import Command, Controls, Stop
from cnn_core.runs.executors import ROOT, WorkerLost
from cnn_core.runs.protocol import Began, Ended, Job, Message, Send, decode, encode, train_job
from cnn_core.runs.status import RunStatus

PACKAGE = Path(__file__).resolve().parents[1]  # cnn_core/: shipped to a cluster's workers (py_modules)
POLL_S = 0.5  # how often a task asks the run board whether its run should stop, and for its commands
FORCE_AFTER_S = 10.0  # how long Ray's cancel may take before the task's worker is killed


class RunBoard:
    """Stop requests and commands by run id (a Ray actor): the driver posts them, the run's task polls."""

    def __init__(self) -> None:
        self.requests: dict[str, str] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}

    def request(self, run_id: str, status: str) -> None:
        self.requests[run_id] = status

    def command(self, run_id: str, command: dict[str, Any]) -> None:
        self.commands.setdefault(run_id, []).append(command)

    def poll(self, run_id: str) -> tuple[str | None, list[dict[str, Any]]]:
        """The stop requested for the run, if any, and the commands posted since the last poll."""
        return self.requests.get(run_id), self.commands.pop(run_id, [])

    def forget(self, run_id: str) -> None:
        self.requests.pop(run_id, None)
        self.commands.pop(run_id, None)


def train_stream(job: Job, board: Any) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The Ray task (in a Ray worker): train `job` in a thread and yield each message, encoded, in order.
    The run takes the commands posted on `board` (a RunBoard actor), and stops at its next step when the board
    says so, or when Ray cancels the task."""
    import ray

    messages: queue.Queue[Message | None] = queue.Queue()
    stop, controls, done = Stop(), Controls(), threading.Event()

    def train() -> None:
        if job.threads:
            import torch

            torch.set_num_threads(job.threads)  # this thread's OpenMP team: the one that trains
        try:
            train_job(job, messages.put, stop, controls=controls)
        finally:
            done.set()
            messages.put(None)

    def watch_board() -> None:
        while not done.wait(POLL_S):
            try:
                status, commands = ray.get(board.poll.remote(job.run_id), timeout=10)
            except ray.exceptions.RayError:  # the board is gone or slow: Ray's cancel still ends the run
                continue
            for command in commands:
                controls.post(Command.from_dict(command))
            if status:
                stop.request(RunStatus.parse(status))
                return

    trainer = threading.Thread(target=train, name=f"train-{job.run_id}", daemon=True)
    trainer.start()
    threading.Thread(target=watch_board, name=f"run-board-{job.run_id}", daemon=True).start()
    try:
        while True:
            try:
                message = messages.get(timeout=0.2)  # a timeout, so that ray.cancel's KeyboardInterrupt lands
            except queue.Empty:
                continue
            if message is None:
                return
            yield encode(message)
    finally:  # cancelled (or done): the training thread must not outlive the task in a reused worker
        stop.request()
        trainer.join()


def _reason(error: Exception, pid: int | None) -> str:
    """A sentence saying what happened to the run's Ray task, from Ray's exception."""
    import ray.exceptions as rex

    if isinstance(error, rex.RayTaskError):
        cause = error.cause if isinstance(error.cause, BaseException) else error
        what, detail = "The Ray task training this run failed", f"{type(cause).__name__}: {cause}"
    elif isinstance(error, rex.RuntimeEnvSetupError):
        what, detail = "Ray could not set up a worker for this run", str(error)
    elif isinstance(error, (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError, rex.OutOfMemoryError)):
        what, detail = f"The Ray worker training this run{f' (pid {pid})' if pid else ''} died", str(error)
    else:
        what, detail = "Ray lost the task training this run", f"{type(error).__name__}: {error}"
    first_line = next((line.strip() for line in detail.splitlines() if line.strip()), "")
    return f"{what}: {first_line[:300]}"


class RayExecutor:
    """A Ray task per run. `address`: the cluster to join (None: start a local Ray here, shut down on close);
    a joined cluster's workers get cnn_core with the job (py_modules) and need its requirements installed.
    `stop_grace_s`: how long a stop waits for the run to end at a step before Ray cancels its task (0: Ray
    cancels it at once; the run keeps the checkpoints it had sent)."""

    name = "ray"

    def __init__(self, address: str | None = None, stop_grace_s: float = 20.0, **init_kwargs: Any):
        import ray

        self.stop_grace_s = stop_grace_s
        self.started = False  # whether this executor started the Ray it uses (and so shuts it down)
        if not ray.is_initialized():
            if address:
                init_kwargs.setdefault("runtime_env", {"py_modules": [str(PACKAGE)]})
            else:  # workers inherit this environment (CNN_DATA_DIR, …); cnn_core on their path whatever the cwd
                path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
                init_kwargs.setdefault("runtime_env", {"env_vars": {"PYTHONPATH": path}})
            ray.init(address=address or "local", ignore_reinit_error=True, include_dashboard=False, **init_kwargs)
            self.started = not address
        self._task = ray.remote(num_returns="streaming", max_retries=0)(train_stream)
        self._board = ray.remote(num_cpus=0)(RunBoard).remote()

    def _resources(self, job: Job) -> dict[str, Any] | str:
        """Ray task options for `job` (CPUs for its threads, a GPU when its device wants one), or why it cannot
        run on this cluster."""
        import ray

        gpus = ray.cluster_resources().get("GPU", 0)
        if job.config.device == "cuda" and not gpus:
            return "The run asks for device 'cuda' but the Ray cluster has no GPU: choose 'auto' or 'cpu'."
        node_cpus = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
        wants_gpu = job.config.device == "cuda" or (job.config.device == "auto" and gpus > 0)
        return {"num_cpus": max(1, min(job.threads or 1, int(node_cpus))), "num_gpus": 1 if wants_gpu else 0}

    def run(self, job: Job, send: Send, stop: Stop, controls: Controls | None = None) -> list[str]:
        import ray

        options = self._resources(job)
        if isinstance(options, str):
            send(Ended(RunStatus.FAILED, options))
            return []
        stream = self._task.options(**options).remote(job, self._board)
        began, finished, cancelled = threading.Event(), threading.Event(), threading.Event()
        watcher = threading.Thread(target=self._forward, args=(job.run_id, stream, stop, controls or Controls(), began,
                                                                finished, cancelled), name=f"ray-controls-{job.run_id}",
                                   daemon=True)
        watcher.start()
        pid, ended, lost = None, False, "The Ray task training this run ended without saying how the run ended."
        try:
            for ref in stream:
                message = decode(*ray.get(ref))
                if isinstance(message, Began):
                    pid = message.pid
                    began.set()
                ended = ended or isinstance(message, Ended)
                send(message)
        except ray.exceptions.RayError as e:
            if not ended and (cancelled.is_set() or isinstance(e, ray.exceptions.TaskCancelledError)):
                # Ray's cancel ended it (a KeyboardInterrupt, its worker killed; ours, or from Ray's own tools)
                send(Ended(stop.status or RunStatus.STOPPED))
                ended = True
            lost = _reason(e, pid)
        finally:
            finished.set()
            watcher.join()
            self._board.forget.remote(job.run_id)
        if not ended:
            raise WorkerLost(lost)
        return []

    def _forward(self, run_id: str, stream: Any, stop: Stop, controls: Controls, began: threading.Event,
                 finished: threading.Event, cancelled: threading.Event) -> None:
        """Each command onto the run board; on a stop: ask the task to stop at its next step, then cancel it if it
        has not ended in time."""
        import ray

        while not stop.is_set():
            for command in controls.take(timeout=0.2):
                self._board.command.remote(run_id, command.to_dict())
            if finished.is_set():
                return
        if began.is_set() and self.stop_grace_s > 0:
            self._board.request.remote(run_id, str(stop.status or RunStatus.STOPPED))
            if finished.wait(self.stop_grace_s):
                return
        if finished.is_set():
            return
        cancelled.set()
        ray.cancel(stream)  # a KeyboardInterrupt in the task: it stops its training thread, its worker lives on
        if not finished.wait(FORCE_AFTER_S):
            ray.cancel(stream, force=True)  # stuck (in native code, say): its worker is killed

    def close(self) -> None:
        """Shut down the Ray this executor started; a joined cluster goes on (only the stop board goes)."""
        import ray

        if not ray.is_initialized():
            return
        if self.started:
            gc.collect()  # a stream freed after ray.shutdown (say, held by an exception's traceback) ends the process
            ray.shutdown()
        else:
            ray.kill(self._board)
