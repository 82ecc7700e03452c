"""The worker-to-app protocol: messages encoded and framed for a pipe, RunWriter applying them to a run folder,
and train_job turning a failure into Ended(FAILED) instead of raising."""

import io
import json

import pytest

from cnn_core.config import TrainConfig
from cnn_core.events import Stop
from cnn_core.runs.protocol import (Began, Ended, Job, Recorded, RunWriter, Saved, decode, encode, frame, read_frame,
                                    train_job)
from cnn_core.runs.records import EndRecord, EpochRecord, StepRecord
from cnn_core.runs.status import RunStatus
from cnn_core.runs.store import RunStore

STEP = StepRecord(1, 5, time=0.5, train_loss=2.0, train_acc=0.3, lr=0.01)
EPOCH1 = EpochRecord(1, 10, time=1.0, train_loss=1.5, train_acc=0.5, val_loss=1.4, val_acc=0.6, lr=0.01, seconds=1.0,
                     images_per_s=640.0)
EPOCH2 = EpochRecord(2, 20, time=2.0, train_loss=1.2, train_acc=0.6, val_loss=1.3, val_acc=0.55, lr=0.01,
                     seconds=1.0, images_per_s=700.0)
END = EndRecord(2, 20, time=2.1, status=RunStatus.FINISHED, test_loss=1.25, test_acc=0.58, seconds=2.1)
PAYLOAD = bytes(range(256)) * 4

MESSAGES = [
    Began(total_steps=20, device="cpu", pid=4242, epoch=0, step=0, elapsed=0.0),
    Began(total_steps=20, device="cuda", pid=7, epoch=1, step=10, elapsed=1.0),  # a resumed run
    Recorded(STEP), Recorded(EPOCH1), Recorded(END),
    Saved("epoch-1.safetensors", PAYLOAD), Saved("resume.safetensors", b""),
    Ended(RunStatus.FINISHED), Ended(RunStatus.FAILED, "RuntimeError: out of memory"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_encode_decode_round_trip(message):
    header, payload = encode(message)
    assert decode(json.loads(json.dumps(header)), payload) == message  # the header crosses the pipe as JSON
    assert payload == (message.data if isinstance(message, Saved) else b"")


def test_frames_in_a_row_read_back_in_order():
    stream = io.BytesIO(b"".join(frame(m) for m in MESSAGES))
    read = []
    while (message := read_frame(stream)) is not None:
        read.append(message)
    assert read == MESSAGES
    assert read_frame(io.BytesIO(b"")) is None


@pytest.mark.parametrize("cut", [1, 11, 12, 20, -1])
def test_read_frame_returns_none_for_a_stream_cut_mid_frame(cut):
    first, second = frame(Recorded(STEP)), frame(Saved("best.safetensors", PAYLOAD))
    stream = io.BytesIO(first + second[:cut])
    assert read_frame(stream) == Recorded(STEP)
    assert read_frame(stream) is None


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def run_messages(status=RunStatus.FINISHED, error=None):
    return [Began(total_steps=20, device="cpu", pid=4242, epoch=0, step=0, elapsed=0.0),
            Recorded(STEP), Recorded(EPOCH1), Saved("epoch-1.safetensors", b"weights after epoch 1"),
            Saved("best.safetensors", b"best weights"), Saved("resume.safetensors", b"training state"),
            Recorded(EPOCH2), Saved("epoch-2.safetensors", b"weights after epoch 2"),
            Recorded(END), Saved("last.safetensors", b"last weights"), Ended(status, error)]


def test_run_writer_fills_the_run_folder(store):
    run_id = store.create(TrainConfig(model="mlp"))
    writer = RunWriter(store, run_id)
    messages = run_messages()
    for message in messages[:3]:
        writer(message)
    status = store.read_status(run_id)
    assert status["status"] == "running" and status["total_steps"] == 20 and status["worker_pid"] == 4242
    assert status["step"] == 10 and status["epoch"] == 1 and status["best_val_acc"] == 0.6
    assert status["test_acc"] is None and status["device"] == "cpu" and status["error"] is None
    for message in messages[3:]:
        writer(message)
    run = store.read(run_id)
    assert run.state is RunStatus.FINISHED and writer.ended == Ended(RunStatus.FINISHED)
    assert run.status["step"] == 20 and run.status["elapsed"] == 2.1 and run.status["finished"] >= run.status["started"]
    assert run.status["best_val_acc"] == 0.6 and run.status["test_acc"] == 0.58 and run.progress == 1.0
    assert list(run.history) == [STEP, EPOCH1, EPOCH2, END] and writer.history == run.history
    folder = store.folder(run_id)
    assert folder.checkpoint_path("epoch-1.safetensors").read_bytes() == b"weights after epoch 1"
    assert folder.best.read_bytes() == b"best weights" and folder.last.read_bytes() == b"last weights"
    assert not folder.resume_state.exists()  # finished for good: the resume state is dropped
    assert not run.can_resume


@pytest.mark.parametrize("status, keeps_resume", [(RunStatus.FINISHED, False), (RunStatus.EARLY_STOPPED, False),
                                                  (RunStatus.DIVERGED, False), (RunStatus.STOPPED, True),
                                                  (RunStatus.INTERRUPTED, True), (RunStatus.FAILED, True)])
def test_resume_state_kept_only_when_the_run_can_resume(store, status, keeps_resume):
    run_id = store.create(TrainConfig(model="mlp"))
    writer = RunWriter(store, run_id)
    for message in run_messages(status):
        writer(message)
    assert store.folder(run_id).resume_state.exists() is keeps_resume
    assert store.read(run_id).state is status and store.read(run_id).can_resume is keeps_resume


def test_fail_ends_the_run_failed_with_the_reason(store):
    run_id = store.create(TrainConfig(model="mlp"))
    writer = RunWriter(store, run_id)
    for message in run_messages()[:6]:
        writer(message)
    writer.fail("worker exited with code -9")
    run = store.read(run_id)
    assert run.state is RunStatus.FAILED and run.status["error"] == "worker exited with code -9"
    assert writer.ended == Ended(RunStatus.FAILED, "worker exited with code -9") and run.can_resume


def test_begin_cuts_a_resumed_run_back_to_its_resume_point(store):
    run_id = store.create(TrainConfig(model="mlp"))
    writer = RunWriter(store, run_id)
    for message in run_messages(RunStatus.STOPPED):
        writer(message)
    resumed = RunWriter(store, run_id)
    resumed.begin(store.read(run_id).history.until_epoch(1))
    assert list(store.read(run_id).history) == [STEP, EPOCH1] and list(resumed.history) == [STEP, EPOCH1]
    resumed(Recorded(EPOCH2))
    assert resumed.history.best_val_acc == 0.6 and store.read_status(run_id)["best_val_acc"] == 0.6


@pytest.mark.parametrize("name", ["../evil", "../best.safetensors", "sub/epoch-1.safetensors", "config.json",
                                  "/tmp/evil.safetensors"])
def test_saved_with_a_bad_name_is_refused_and_writes_nothing(store, tmp_path, name):
    run_id = store.create(TrainConfig(model="mlp"))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    config_before = store.folder(run_id).config.read_bytes()
    with pytest.raises(ValueError, match="not a checkpoint name"):
        RunWriter(store, run_id)(Saved(name, b"evil"))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert store.folder(run_id).config.read_bytes() == config_before


BAD_KERNEL = TrainConfig(model="custom", model_args={"layers": [{"type": "conv", "channels": 2, "kernel": 99}]},
                         epochs=1, val_size=100, device="cpu")


@pytest.mark.parametrize("config, words", [(BAD_KERNEL, "does not fit"), (TrainConfig(lr=-1), "Learning rate")])
def test_train_job_that_fails_sends_ended_failed_and_never_raises(tiny_data_dir, config, words):
    sent = []
    status = train_job(Job("20260101-000000-custom-00000000", config), sent.append, Stop())
    assert status is RunStatus.FAILED
    assert isinstance(sent[-1], Ended) and sent[-1].status is RunStatus.FAILED
    assert words in sent[-1].error and not any(isinstance(m, Saved) for m in sent)
    assert sum(isinstance(m, Ended) for m in sent) == 1
