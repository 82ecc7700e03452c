"""What a worker reports about the run it trains, and how the app side writes it into the run store.

A worker (in the app's thread, a process of its own, or a Ray task on another machine) never touches the run
folder: `Reporter`, a `fit` callback, turns the run's events into messages (Began, Recorded, Saved, Ended), and
the process that queued the run hands each to its `RunWriter`. So every executor fills the same folder the same
way, and every page works unchanged whichever trained the run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnn_core.config import TrainConfig
from cnn_core.events import Callback, Controls, Stop, TrainState
from cnn_core.runs.layout import RunFolder, write_atomic
from cnn_core.runs.records import ControlRecord, History, Record, parse, to_dict
from cnn_core.runs.status import RunStatus


@dataclass(frozen=True)
class Job:
    """A run to train: its id, config and, when it resumes, the resume state's bytes."""

    run_id: str
    config: TrainConfig
    resume: bytes | None = None
    threads: int = 0  # torch threads for the worker (0: its default)


@dataclass(frozen=True)
class Began:
    total_steps: int
    device: str
    pid: int
    epoch: int  # > 0 when resumed
    step: int
    elapsed: float


@dataclass(frozen=True)
class Recorded:
    record: Record


@dataclass(frozen=True)
class Saved:
    name: str  # a checkpoint name of RunFolder (epoch-N, best, last, resume.safetensors)
    data: bytes


@dataclass(frozen=True)
class Ended:
    status: RunStatus
    error: str | None = None


Message = Began | Recorded | Saved | Ended
Send = Callable[[Message], None]


def encode(message: Message) -> tuple[dict[str, Any], bytes]:
    """(a JSON-able header, a payload) for a pipe; `decode` undoes it."""
    if isinstance(message, Recorded):
        return {"kind": "recorded", "record": to_dict(message.record)}, b""
    if isinstance(message, Saved):
        return {"kind": "saved", "name": message.name}, message.data
    if isinstance(message, Began):
        return {"kind": "began", **message.__dict__}, b""
    return {"kind": "ended", "status": str(message.status), "error": message.error}, b""


def decode(header: dict[str, Any], payload: bytes) -> Message:
    kind = header.pop("kind")
    if kind == "recorded":
        return Recorded(parse(header["record"]))
    if kind == "saved":
        return Saved(header["name"], payload)
    if kind == "began":
        return Began(**header)
    return Ended(RunStatus.parse(header["status"]), header.get("error"))


class Reporter(Callback):
    """The worker's side: every event of `fit` as messages to `send`, checkpoints as bytes (epoch-N, best on a
    better validation accuracy, last at the end, and the resume state after each whole epoch)."""

    def __init__(self, send: Send, keep_epochs: bool = True):
        self.send, self.keep_epochs = send, keep_epochs

    def _checkpoint(self, state: TrainState, name: str) -> None:
        from cnn_core.checkpoints import checkpoint_bytes

        self.send(Saved(name, checkpoint_bytes(state.model, state.config, state.history, state.data.info)))

    def on_train_begin(self, state: TrainState) -> None:
        self.send(Began(state.total_steps, state.device, os.getpid(), state.epoch, state.step, state.elapsed))

    def on_step(self, state: TrainState) -> None:
        self.send(Recorded(state.history[-1]))

    def on_control(self, state: TrainState) -> None:
        self.send(Recorded(state.history[-1]))

    def on_epoch_end(self, state: TrainState) -> None:
        from cnn_core.callbacks import is_new_best
        from cnn_core.checkpoints import resume_bytes
        from cnn_core.train import resume_point

        self.send(Recorded(state.history[-1]))
        if self.keep_epochs:
            self._checkpoint(state, RunFolder.epoch_name(state.epoch))
        if is_new_best(state):
            self._checkpoint(state, "best.safetensors")
        if state.status is RunStatus.RUNNING:  # a diverged epoch is nothing to resume from
            self.send(Saved("resume.safetensors", resume_bytes(resume_point(state))))

    def on_train_end(self, state: TrainState) -> None:
        self.send(Recorded(state.history[-1]))
        self._checkpoint(state, "last.safetensors")
        self.send(Ended(state.status))


def train_job(job: Job, send: Send, stop: Stop, callbacks: list[Callback] | None = None,
              controls: Controls | None = None) -> RunStatus:
    """Train `job` here, reporting through `send`, steered by `controls`; an error ends the run FAILED with the
    reason (never raised). Every executor's worker runs this."""
    try:
        from cnn_core.checkpoints import load_resume
        from cnn_core.train import fit

        resume = load_resume(job.resume) if job.resume else None
        state = fit(job.config, [Reporter(send), *(callbacks or [])], stop=stop, resume=resume, controls=controls)
        return state.status
    except Exception as e:  # noqa: BLE001 - the run's failure, told to its owner
        send(Ended(RunStatus.FAILED, f"{type(e).__name__}: {e}"))
        return RunStatus.FAILED


class RunWriter:
    """The app's side: applies one run's messages to the run store (status, metrics, checkpoints)."""

    def __init__(self, store, run_id: str):
        self.store, self.run_id = store, run_id
        self.folder: RunFolder = store.folder(run_id)
        self.history = History()
        self.ended: Ended | None = None

    def begin(self, resume_from: History | None = None) -> None:
        """Before the worker starts: a resumed run's records are cut back to its resume point."""
        if resume_from is not None:
            self.store.rewrite_history(self.run_id, resume_from)
            self.history = History(resume_from)

    def __call__(self, message: Message) -> None:
        if isinstance(message, Recorded):
            self.history.append(message.record)
            self.store.append(self.run_id, message.record)
            r = message.record
            steered = {"paused": r.paused, "momentum": r.momentum} if isinstance(r, ControlRecord) else {}
            if getattr(r, "lr", None) is not None:  # the lr it trains with now (a schedule's too)
                steered["lr"] = r.lr
            self.store.set_status(self.run_id, epoch=r.epoch, step=r.step, elapsed=r.time,
                                  best_val_acc=self.history.best_val_acc, test_acc=self.history.test_acc, **steered)
        elif isinstance(message, Saved):
            write_atomic(self.folder.checkpoint_path(message.name), message.data)
        elif isinstance(message, Began):
            self.store.set_status(self.run_id, RunStatus.RUNNING, started=time.time(), total_steps=message.total_steps,
                                  device=message.device, worker_pid=message.pid, epoch=message.epoch,
                                  step=message.step, elapsed=message.elapsed, resumed_at_step=message.step,
                                  resumed_at_elapsed=message.elapsed, error=None, paused=False)
        else:
            self.ended = message
            self.store.set_status(self.run_id, message.status, finished=time.time(), paused=False,
                                  **({"error": message.error} if message.error else {}))
            if not message.status.resumable:  # it ended for good: the resume state is only weight on the disk
                self.folder.resume_state.unlink(missing_ok=True)

    def fail(self, reason: str) -> None:
        """The worker died without saying how the run ended."""
        self(Ended(RunStatus.FAILED, reason))


def frame(message: Message) -> bytes:
    """One message as bytes for a pipe: header length (4 bytes), payload length (8), JSON header, payload."""
    header, payload = encode(message)
    head = json.dumps(header).encode()
    return len(head).to_bytes(4, "little") + len(payload).to_bytes(8, "little") + head + payload


def read_frame(stream) -> Message | None:
    """The next message from a binary stream; None at its end (or at a frame cut short by a dying writer)."""
    prefix = stream.read(12)
    if len(prefix) < 12:
        return None
    head_len, payload_len = int.from_bytes(prefix[:4], "little"), int.from_bytes(prefix[4:], "little")
    head, payload = stream.read(head_len), stream.read(payload_len)
    if len(head) < head_len or len(payload) < payload_len:
        return None
    return decode(json.loads(head), payload)
