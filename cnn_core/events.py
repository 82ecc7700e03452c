"""What `fit` tells its callbacks and what it is told: the Callback protocol, the TrainState they see, Stop, the
one way to end a run early (a user's Cancel, early stopping, a worker's SIGTERM all request it; the loop checks
it every step), and Controls, the commands that steer a run while it trains (lr, momentum, pause, resume, one
step by hand; the loop applies them between two steps)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

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


ACTIONS = ("set", "pause", "resume", "step")


@dataclass(frozen=True)
class Command:
    """One request to a training run: `set` its lr and/or momentum (SGD's momentum, Adam's beta1), `pause` it,
    `resume` it, or, while paused, `step` one batch."""

    action: str
    lr: float | None = None
    momentum: float | None = None

    def check(self) -> Command:
        """Raise ConfigError, in a sentence, for a command a user got wrong; return self."""
        from cnn_core.config import ConfigError

        if self.action not in ACTIONS:
            raise ConfigError(f"Unknown command {self.action!r}: use one of {', '.join(ACTIONS)}.")
        if self.lr is not None and not 0 < self.lr <= 10:
            raise ConfigError("Learning rate must be above 0 and at most 10 (try 1e-3 for Adam, 0.01-0.1 for SGD).")
        if self.momentum is not None and not 0 <= self.momentum < 1:
            raise ConfigError("Momentum must be in [0, 1).")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Command:
        return cls(data["action"], data.get("lr"), data.get("momentum"))


class Controls:
    """The commands for one run, in order; safe across threads. The app side `post`s them; the loop `take`s
    them between two steps (never mid-step) and, while paused, waits for the next one without using the CPU.
    An executor that trains elsewhere forwards them (a pipe to a worker process, a Ray actor)."""

    def __init__(self) -> None:
        self._commands: deque[Command] = deque()
        self._ready = threading.Condition()
        self.paused = False  # as last asked: pause without a resume since (what the app offers next)

    def post(self, command: Command) -> None:
        with self._ready:
            self._commands.append(command)
            if command.action in ("pause", "resume"):
                self.paused = command.action == "pause"
            self._ready.notify_all()

    def pending(self) -> bool:
        """Whether a command waits (cheap: the loop asks before every step)."""
        return bool(self._commands)

    def take(self, timeout: float = 0.0) -> list[Command]:
        """The commands posted since the last take, oldest first; waits up to `timeout` seconds for one."""
        with self._ready:
            if not self._commands and timeout > 0:
                self._ready.wait(timeout)
            taken = list(self._commands)
            self._commands.clear()
            return taken


class Callback:
    """Override the events you need; each gets the live TrainState.

    Events, in order: on_train_begin, on_step (every `metrics_every` steps), on_epoch_end, on_train_end; and
    on_control whenever a command changed the run (a ControlRecord) or a batch was stepped by hand (a
    HandStepRecord), the record being the history's last."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_control(self, state: TrainState) -> None: ...
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
    controls: Controls = field(default_factory=Controls)
    paused: bool = False  # waiting between two steps for a resume (or a step by hand)
    paused_s: float = 0.0  # seconds spent paused: not training time
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
        return self.elapsed_before + time.perf_counter() - self.started - self.paused_s

    @property
    def last(self) -> Record | None:
        return self.history[-1] if self.history else None

    @property
    def best_val_acc(self) -> float | None:
        return self.history.best_val_acc

    @property
    def test_acc(self) -> float | None:
        return self.history.test_acc
