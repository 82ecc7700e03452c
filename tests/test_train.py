"""fit(): it learns, fires its events in order, stops on request, detects divergence, is reproducible."""

import threading

import pytest
import torch

from cnn_core.callbacks import Checkpointer
from cnn_core.config import ConfigError, TrainConfig
from cnn_core.train import Callback, fit


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
    assert state.status == "finished"
    assert log.events[0] == "begin" and log.events[-1] == "end"
    assert log.events.count("epoch") == 2
    assert log.events.count("step") == state.step // 5 == 2 * 19 // 5
    assert log.events.index("epoch") > log.events.index("step")
    steps = [r for r in state.history if r["event"] == "step"]
    assert steps[-1]["train_loss"] < steps[0]["train_loss"]
    assert state.test_acc > 0.5  # chance is 0.1
    epoch = [r for r in state.history if r["event"] == "epoch"][-1]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"} <= set(epoch)


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adamw"])
def test_every_optimizer_and_schedule_runs(tiny_bundle, optimizer, schedule):
    state = fit(tiny_config(epochs=1, optimizer=optimizer, schedule=schedule, lr=0.01, augment=True,
                            label_smoothing=0.1), data=tiny_bundle)
    assert state.status == "finished" and state.step == 19


def test_same_seed_same_metrics_on_cpu(tiny_bundle):
    a = fit(tiny_config(epochs=1, seed=3), data=tiny_bundle)
    b = fit(tiny_config(epochs=1, seed=3), data=tiny_bundle)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("time", "seconds", "images_per_s")} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)


def test_stop_is_honoured_within_one_step(tiny_bundle):
    stop = threading.Event()

    class StopAtStep(Callback):
        def on_step(self, state):
            stop.set()

    state = fit(tiny_config(epochs=5), [StopAtStep()], data=tiny_bundle, stop=stop)
    assert state.status == "stopped"
    assert state.step == 5  # the step that set the flag, and not one more
    assert state.history[-1]["event"] == "end" and state.test_acc is not None


def test_huge_learning_rate_diverges_and_keeps_history(tiny_bundle):
    state = fit(tiny_config(optimizer="sgd", lr=10.0, epochs=3, metrics_every=1), data=tiny_bundle)
    assert state.status == "diverged"
    assert state.step < 3 * 19
    assert state.history[-1]["event"] == "end" and state.history[-1]["status"] == "diverged"
    assert len(state.history) > 1


def test_early_stopping(tiny_bundle):
    state = fit(tiny_config(epochs=30, lr=1e-9, patience=1), data=tiny_bundle)
    assert state.status == "early_stopped"
    assert sum(r["event"] == "epoch" for r in state.history) < 30


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
