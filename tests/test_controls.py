"""Steering fit() while it trains (cnn_core.events.Controls, applied by the loop between two steps): lr and
momentum set by hand from the next step on (the schedule ends there), pause without using the CPU, one batch by
hand while paused, stop while paused, and resume from a checkpoint after a change, exact as an unbroken run."""

import base64
import threading
import time

import numpy as np
import pytest
import torch

from cnn_core.checkpoints import load_resume
from cnn_core.config import ConfigError
from cnn_core.events import Callback, Command, Controls, Stop
from cnn_core.runs import ControlRecord, HandStepRecord, RunStatus, StepRecord
from cnn_core.runs.protocol import Reporter, Saved
from cnn_core.train import fit
from tests.test_train import StopInEpoch, strip, tiny_config


class PostAt(Callback):
    """Posts `commands` on `controls` at the report of step `step` (as a user's click between two reports)."""

    def __init__(self, controls: Controls, step: int, *commands: Command):
        self.controls, self.step, self.commands = controls, step, commands

    def on_step(self, state):
        if state.step == self.step:
            for command in self.commands:
                self.controls.post(command)


def after(history, step):
    """The first step record after `step`."""
    return next(r for r in history if isinstance(r, StepRecord) and r.step > step)


@pytest.mark.parametrize("schedule", ["none", "cosine", "onecycle"])
def test_an_lr_set_mid_run_is_the_optimizers_lr_from_the_next_step_on_and_ends_the_schedule(tiny_bundle, schedule):
    controls = Controls()
    state = fit(tiny_config(epochs=2, schedule=schedule, lr=0.01), [PostAt(controls, 10, Command("set", lr=0.123))],
                data=tiny_bundle, controls=controls)
    assert state.status is RunStatus.FINISHED
    [mark] = state.history.controls
    assert (mark.step, mark.action, mark.lr, mark.paused) == (10, "set", 0.123, False)  # applied before step 11
    assert state.history.index(mark) == state.history.index(next(r for r in state.history if r.step == 10)) + 1
    assert after(state.history, 10).lr == 0.123  # the next record: the optimizer's lr since step 11
    assert {r.lr for r in state.history.steps if r.step > 10} == {0.123}  # by hand: no schedule moves it any more
    assert state.optimizer.param_groups[0]["lr"] == 0.123
    if schedule != "none":
        assert len({r.lr for r in state.history.steps if r.step <= 10}) > 1  # the schedule moved it before


@pytest.mark.parametrize("optimizer, read", [
    ("momentum", lambda g: g["momentum"]),
    ("adam", lambda g: g["betas"][0]),  # Adam's momentum is its beta1
])
def test_momentum_is_sgds_momentum_or_adams_beta1(tiny_bundle, optimizer, read):
    controls = Controls()
    state = fit(tiny_config(epochs=1, optimizer=optimizer), [PostAt(controls, 5, Command("set", momentum=0.5))],
                data=tiny_bundle, controls=controls)
    [mark] = state.history.controls
    assert mark.momentum == 0.5 and read(state.optimizer.param_groups[0]) == 0.5


def test_plain_sgd_has_no_momentum_to_set(tiny_bundle):
    controls = Controls()
    state = fit(tiny_config(epochs=1, optimizer="sgd", lr=0.01),
                [PostAt(controls, 5, Command("set", momentum=0.5), Command("set", lr=0.02, momentum=0.5))],
                data=tiny_bundle, controls=controls)
    [mark] = state.history.controls  # the momentum alone changed nothing: no record
    assert (mark.lr, mark.momentum) == (0.02, None) and state.optimizer.param_groups[0]["momentum"] == 0


@pytest.mark.parametrize("command, words", [(Command("set", lr=0.0), "Learning rate"),
                                            (Command("set", momentum=1.0), "Momentum"),
                                            (Command("jump"), "Unknown command")])
def test_a_bad_command_is_a_sentence(command, words):
    with pytest.raises(ConfigError, match=words):
        command.check()


class Watch(Callback):
    """Sets `changed` at every control record or step by hand; keeps the state for the test's thread."""

    def __init__(self):
        self.changed = threading.Event()
        self.state = None

    def on_train_begin(self, state):
        self.state = state

    def on_control(self, state):
        self.changed.set()


def wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_pause_waits_without_cpu_steps_one_batch_at_a_time_and_resumes(tiny_bundle):
    controls, watch = Controls(), Watch()
    result = {}
    trainer = threading.Thread(target=lambda: result.setdefault("state", fit(
        tiny_config(epochs=2), [watch, PostAt(controls, 5, Command("pause"))], data=tiny_bundle, controls=controls)))
    trainer.start()
    wait(lambda: watch.state is not None and watch.state.paused)
    state = watch.state
    mark = state.history[-1]
    assert state.step == 5 and isinstance(mark, ControlRecord)
    assert (mark.step, mark.action, mark.paused, mark.lr, mark.momentum) == (5, "pause", True, 3e-3, 0.9)  # Adam
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(1.0)
    assert state.step == 5  # paused: no step …
    assert time.process_time() - cpu < 0.25 * (time.perf_counter() - wall)  # … and no busy wait
    for n in (1, 2):
        controls.post(Command("step"))
        wait(lambda: len([r for r in state.history if isinstance(r, HandStepRecord)]) == n)
        assert state.step == 5 + n and state.paused  # exactly one batch, then paused again
    first, second = [r for r in state.history if isinstance(r, HandStepRecord)]
    assert (first.step, second.step) == (6, 7) and first.batch_size == 32
    images = np.frombuffer(base64.b64decode(first.images), np.uint8).reshape(len(first.labels), first.side, first.side)
    assert images.shape == (16, 28, 28) and images.max() == 255 and images.min() == 0
    assert len(first.predictions) == 16 and all(0 <= p < 10 for p in first.predictions)
    assert 0 < first.update_ratio < 1 and first.loss > 0
    assert len(first.labels) == 16 and all(0 <= y < 10 for y in first.labels)
    controls.post(Command("resume"))
    trainer.join(120)
    final = result["state"]
    assert final.status is RunStatus.FINISHED and final.step == 2 * 19
    assert [r.action for r in final.history.controls] == ["pause", "resume"]
    assert final.history.controls[-1].step == 7
    assert final.elapsed < time.perf_counter() - final.started - 0.9  # the pause is not training time


def test_a_stop_ends_a_paused_run_at_once(tiny_bundle):
    controls, stop, watch = Controls(), Stop(), Watch()
    result = {}
    trainer = threading.Thread(target=lambda: result.setdefault("state", fit(
        tiny_config(epochs=3), [watch, PostAt(controls, 5, Command("pause"))], data=tiny_bundle, stop=stop,
        controls=controls)))
    trainer.start()
    wait(lambda: watch.state is not None and watch.state.paused)
    asked = time.perf_counter()
    stop.request(RunStatus.STOPPED)
    trainer.join(60)
    assert result["state"].status is RunStatus.STOPPED and result["state"].step == 5
    assert result["state"].history.end is not None
    assert time.perf_counter() - asked < 10  # the pause polls its stop flag every 0.25 s (plus the test split)


def test_a_step_or_resume_while_not_paused_changes_nothing(tiny_bundle):
    controls = Controls()
    state = fit(tiny_config(epochs=1), [PostAt(controls, 5, Command("step"), Command("resume"))], data=tiny_bundle,
                controls=controls)
    assert state.history.controls == [] and state.step == 19
    assert not [r for r in state.history if isinstance(r, HandStepRecord)]


def test_a_run_resumed_after_an_lr_change_ends_exactly_as_an_unbroken_one(tiny_bundle):
    """The change came in epoch 1, the cut in epoch 2: the resumed run keeps the lr set by hand and no schedule."""
    config = tiny_config(epochs=3, seed=5, optimizer="momentum", lr=0.02, schedule="onecycle")
    set_lr = Command("set", lr=0.007, momentum=0.8)
    controls = Controls()
    whole = fit(config, [PostAt(controls, 10, set_lr)], data=tiny_bundle, controls=controls)
    saved, controls = {}, Controls()
    reporter = Reporter(lambda m: saved.__setitem__(m.name, m.data) if isinstance(m, Saved) else None,
                        keep_epochs=False)
    cut = fit(config, [reporter, PostAt(controls, 10, set_lr), StopInEpoch(2)], data=tiny_bundle, controls=controls)
    assert cut.status is RunStatus.STOPPED
    point = load_resume(saved["resume.safetensors"])
    assert [r.action for r in point.history.controls] == ["set"]
    resumed = fit(config, data=tiny_bundle, resume=point)
    assert resumed.status is RunStatus.FINISHED and strip(resumed.history) == strip(whole.history)
    assert {r.lr for r in resumed.history.steps if r.step > 10} == {0.007}
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
