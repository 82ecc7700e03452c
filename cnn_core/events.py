"""What `fit` tells its callbacks: the Callback protocol, the TrainState they see, and Stop, the one way to end a
run early (a user's Cancel, early stopping, a worker's SIGTERM all request it; the loop checks it every step)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch

from cnn_core.config import TrainConfig
from cnn_core.data import DataBundle
from cnn_core.models import Net
from cnn_core.runs.records import History, Record
from cnn_core.runs.status import RunStatus


class Stop:
    """A request to end a run at its next step, with the status it should end with. Safe across threads and
    from a signal handler; the first request wins."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.status: RunStatus | None = None

    def request(self, status: RunStatus = RunStatus.STOPPED) -> None:
        if not self._event.is_set():
            self.status = status
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class Callback:
    """Override the events you need; each gets the live TrainState.

    Events, in order: on_train_begin, on_step (every `metrics_every` steps), on_epoch_end, on_train_end."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


@dataclass
class TrainState:
    config: TrainConfig
    model: Net
    data: DataBundle
    device: str
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    generators: tuple[torch.Generator, ...]  # batch order (and augmentation, on a GPU): kept for resume
    stop: Stop = field(default_factory=Stop)
    epoch: int = 0  # the epoch in progress, 1-based
    step: int = 0  # optimizer steps so far
    status: RunStatus = RunStatus.RUNNING
    history: History = field(default_factory=History)  # every step/epoch/end record
    elapsed_before: float = 0.0  # seconds trained before a resume
    started: float = field(default_factory=time.perf_counter)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    @property
    def last(self) -> Record | None:
        return self.history[-1] if self.history else None

    @property
    def best_val_acc(self) -> float | None:
        return self.history.best_val_acc

    @property
    def test_acc(self) -> float | None:
        return self.history.test_acc
