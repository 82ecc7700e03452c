"""fit(): it learns, fires its events in order, stops on request, detects divergence, is reproducible, and a
run resumed from the end of an epoch ends exactly where an unbroken one does."""

import dataclasses

import pytest
import torch

from cnn_core.callbacks import Checkpointer
from cnn_core.checkpoints import load_resume, resume_bytes
from cnn_core.config import ConfigError, TrainConfig
from cnn_core.events import Callback, Stop
from cnn_core.runs import EndRecord, EpochRecord, RunStatus, StepRecord
from cnn_core.runs.protocol import Reporter, Saved
from cnn_core.train import fit, resume_point


class EventLog(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, state):
        self.events.append("begin")

    def on_step(self, state):
        self.events.append("step")

    def on_epoch_end(self, state):
        self.events.append("epoch")

    def on_train_end(self, state):
        self.events.append("end")


def tiny_config(**kw):
    base = dict(model="lenet_modern", epochs=2, batch_size=32, lr=3e-3, metrics_every=5, val_size=200)
    return TrainConfig(**{**base, **kw})


def test_fit_learns_and_fires_events_in_order(tiny_bundle):
    log = EventLog()
    state = fit(tiny_config(), [log], data=tiny_bundle)
    assert state.status is RunStatus.FINISHED
    assert log.events[0] == "begin" and log.events[-1] == "end"
    assert log.events.count("epoch") == 2
    assert log.events.count("step") == state.step // 5 == 2 * 19 // 5
    assert log.events.index("epoch") > log.events.index("step")
    steps = state.history.steps
    assert all(isinstance(r, StepRecord) for r in steps) and steps[-1].train_loss < steps[0].train_loss
    assert state.test_acc > 0.5  # chance is 0.1
    epoch = state.history.epochs[-1]
    assert isinstance(epoch, EpochRecord) and epoch.epoch == 2 and epoch.val_acc is not None
    assert epoch.images_per_s > 0 and state.history.best_val_acc == max(e.val_acc for e in state.history.epochs)


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adamw"])
def test_every_optimizer_and_schedule_runs(tiny_bundle, optimizer, schedule):
    state = fit(tiny_config(epochs=1, optimizer=optimizer, schedule=schedule, lr=0.01, augment=True,
                            label_smoothing=0.1), data=tiny_bundle)
    assert state.status is RunStatus.FINISHED and state.step == 19


def test_same_seed_same_metrics_on_cpu(tiny_bundle):
    a = fit(tiny_config(epochs=1, seed=3), data=tiny_bundle)
    b = fit(tiny_config(epochs=1, seed=3), data=tiny_bundle)
    assert strip(a.history) == strip(b.history)


def strip(history):
    """The records without what depends on the clock."""
    return [{k: v for k, v in dataclasses.asdict(r).items() if k not in ("time", "seconds", "images_per_s")}
            for r in history]


def test_stop_is_honoured_within_one_step(tiny_bundle):
    stop = Stop()

    class StopAtStep(Callback):
        def on_step(self, state):
            stop.request(RunStatus.STOPPED)

    state = fit(tiny_config(epochs=5), [StopAtStep()], data=tiny_bundle, stop=stop)
    assert state.status is RunStatus.STOPPED
    assert state.step == 5  # the step that set the flag, and not one more
    assert isinstance(state.history[-1], EndRecord) and state.test_acc is not None
    assert state.history.epochs == []  # a partial epoch leaves no epoch record


def test_huge_learning_rate_diverges_and_keeps_history(tiny_bundle):
    state = fit(tiny_config(optimizer="sgd", lr=10.0, epochs=3, metrics_every=1), data=tiny_bundle)
    assert state.status is RunStatus.DIVERGED
    assert state.step < 3 * 19
    assert state.history.end.status is RunStatus.DIVERGED
    assert len(state.history) > 1


def test_early_stopping(tiny_bundle):
    state = fit(tiny_config(epochs=30, lr=1e-9, patience=1), data=tiny_bundle)
    assert state.status is RunStatus.EARLY_STOPPED
    assert len(state.history.epochs) < 30


def test_checkpointer_writes_epochs_best_and_last(tiny_bundle, tmp_path):
    fit(tiny_config(), [Checkpointer(tmp_path)], data=tiny_bundle)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.safetensors", "epoch-1.safetensors", "epoch-2.safetensors", "last.safetensors"]


def test_config_validation_speaks_plainly():
    with pytest.raises(ConfigError) as err:
        TrainConfig(model="nope", epochs=0, lr=-1, optimizer="rmsprop").validate()
    message = str(err.value)
    for words in ("Unknown model 'nope'", "Epochs must be at least 1", "Learning rate", "Optimizer must be one of"):
        assert words in message
    assert TrainConfig.from_dict({**TrainConfig().to_dict(), "future_field": 1}) == TrainConfig()


def test_cuda_without_gpu_is_a_clear_error(tiny_bundle):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no GPU"):
        fit(tiny_config(device="cuda"), data=tiny_bundle)


class StopInEpoch(Callback):
    """Stops the run a few steps into `epoch`, as a Cancel (or a killed worker) would."""

    def __init__(self, epoch: int, after_steps: int = 7):
        self.epoch, self.after_steps = epoch, after_steps

    def on_step(self, state):
        if state.epoch == self.epoch and state.step >= (self.epoch - 1) * state.steps_per_epoch + self.after_steps:
            state.stop.request(RunStatus.STOPPED)


@pytest.mark.parametrize("recipe", [
    dict(optimizer="adamw", schedule="onecycle", augment=True, weight_decay=1e-3),
    dict(optimizer="momentum", lr=0.02, schedule="step", label_smoothing=0.1),
])
def test_resumed_run_ends_exactly_as_an_unbroken_one(tiny_bundle, recipe):
    config = tiny_config(epochs=3, seed=11, **recipe)
    whole = fit(config, data=tiny_bundle)
    saved = {}
    reporter = Reporter(lambda m: saved.__setitem__(m.name, m.data) if isinstance(m, Saved) else None,
                        keep_epochs=False)
    cut = fit(config, [reporter, StopInEpoch(2)], data=tiny_bundle)
    assert cut.status is RunStatus.STOPPED and cut.step < 2 * 19
    point = load_resume(saved["resume.safetensors"])  # written after epoch 1, the last whole one
    assert [e.epoch for e in point.history.epochs] == [1]
    resumed = fit(config, data=tiny_bundle, resume=point)
    assert resumed.status is RunStatus.FINISHED and resumed.step == whole.step == 3 * 19
    assert strip(resumed.history) == strip(whole.history)  # same curves, same test accuracy
    assert resumed.test_acc == whole.test_acc
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.history.epochs[-1].time >= point.history.epochs[-1].time  # the clock goes on from the cut


def test_resume_point_round_trips_without_pickle(tiny_bundle):
    state = fit(tiny_config(epochs=1), data=tiny_bundle)
    data = resume_bytes(resume_point(state))
    assert b"cnn-studio-resume" in data[8:8 + int.from_bytes(data[:8], "little")]  # in the JSON header
    point = load_resume(data)
    assert point.history == state.history.until_epoch(1) and point.epoch == 1
    with pytest.raises(ValueError):
        load_resume(b"not a resume file")
