"""Background runs: queue order, cancel, persistence and reload, interrupted detection, two at once."""

import json
import threading

import pytest
import torch

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.jobs import JobManager, RunStore, threads_for
from cnn_core.train import Callback


def small(**kw):
    base = dict(model="mlp", epochs=1, batch_size=32, val_size=100, metrics_every=2, lr=0.01)
    return TrainConfig(**{**base, **kw})


@pytest.fixture
def store(tmp_path, tiny_data_dir):
    return RunStore(tmp_path / "runs")


def test_run_persists_metrics_status_and_checkpoints(store):
    jobs = JobManager(store)
    run_id = jobs.submit(small(epochs=2))
    jobs.wait(run_id, timeout=120)
    run = store.read(run_id)
    assert run.state == "finished" and run.progress == 1.0
    assert run.config == small(epochs=2)
    events = [r["event"] for r in run.history]
    assert events.count("epoch") == 2 and events[-1] == "end" and "step" in events
    assert run.status["test_acc"] == run.history[-1]["test_acc"] > 0.1
    names = sorted(p.name for p in run.folder.glob("*.safetensors"))
    assert names == ["best.safetensors", "epoch-1.safetensors", "epoch-2.safetensors", "last.safetensors"]
    assert run.checkpoint.name == "last.safetensors"


def test_queue_runs_in_order_one_at_a_time(store):
    jobs = JobManager(store, max_concurrent=1)
    ids = [jobs.submit(small(seed=i)) for i in range(3)]
    assert jobs.queue_position(ids[0]) is None  # started at once
    assert [jobs.queue_position(i) for i in ids[1:]] == [1, 2]
    for run_id in ids:
        jobs.wait(run_id, timeout=120)
    runs = [store.read(i) for i in ids]
    assert all(r.state == "finished" for r in runs)
    starts = [r.status["started"] for r in runs]
    ends = [r.status["finished"] for r in runs]
    assert starts == sorted(starts) and ends[0] <= starts[1] and ends[1] <= starts[2]


def test_two_runs_at_once(store):
    jobs = JobManager(store, max_concurrent=2)
    a, b = jobs.submit(small(epochs=2)), jobs.submit(small(epochs=2, seed=1))
    assert jobs.queue_position(a) is None and jobs.queue_position(b) is None
    jobs.wait(a, timeout=120)
    jobs.wait(b, timeout=120)
    ra, rb = store.read(a), store.read(b)
    assert ra.state == rb.state == "finished"
    assert ra.status["started"] < rb.status["finished"] and rb.status["started"] < ra.status["finished"]


def test_runs_at_once_share_the_cores_instead_of_oversubscribing_them():
    assert [threads_for(n, cores=8) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert threads_for(1, cores=2) == 2 and threads_for(2, cores=2) == 1


def test_each_worker_trains_with_its_share_of_threads(store, monkeypatch):
    seen = []

    def fake_fit(config, callbacks, stop):
        seen.append(torch.get_num_threads())  # in the worker thread, as the real fit's ops would see it

    monkeypatch.setattr("cnn_core.jobs.fit", fake_fit)
    before = torch.get_num_threads()
    jobs = JobManager(store, max_concurrent=2, threads_per_run=1)
    for run_id in [jobs.submit(small()), jobs.submit(small(seed=1))]:
        jobs.wait(run_id, timeout=60)
    assert seen == [1, 1]
    assert torch.get_num_threads() == before  # the caller's thread keeps its own setting
    assert JobManager(store).threads_per_run == threads_for(1)


def test_cancel_running_and_waiting(store, monkeypatch):
    started = threading.Event()
    release = threading.Event()

    class Gate(Callback):  # holds the first run at its first reported step until the test says go
        def on_step(self, state):
            started.set()
            release.wait(10)

    import cnn_core.jobs as jobs_module

    real_fit = jobs_module.fit
    monkeypatch.setattr(jobs_module, "fit", lambda cfg, cbs, stop: real_fit(cfg, [*cbs, Gate()], stop=stop))
    jobs = JobManager(store, max_concurrent=1)
    running, waiting = jobs.submit(small(epochs=5)), jobs.submit(small())
    assert started.wait(60)
    jobs.cancel(waiting)
    jobs.cancel(running)
    release.set()
    jobs.wait(running, timeout=60)
    assert store.read(waiting).state == "cancelled"
    run = store.read(running)
    assert run.state == "stopped" and run.status["step"] == 2  # stopped at the next step
    assert run.checkpoint is not None


def test_restart_lists_past_runs_and_marks_interrupted(store):
    jobs = JobManager(store)
    done = jobs.submit(small())
    jobs.wait(done, timeout=120)
    ghost = store.create(small())  # as if the process died while it trained
    store.set_status(ghost, status="running", pid=2**22 + 12345)
    fresh = JobManager(RunStore(store.root))
    runs = {r.id: r.state for r in fresh.store.list()}
    assert runs == {done: "finished", ghost: "interrupted"}


def test_bad_config_is_rejected_before_anything_is_written(store):
    jobs = JobManager(store)
    with pytest.raises(ConfigError, match="Epochs"):
        jobs.submit(small(epochs=0))
    assert store.list() == []


def test_failed_run_reports_why(store):
    jobs = JobManager(store)
    run_id = jobs.submit(small(dataset="fashion-mnist", model="custom",
                               model_args={"layers": [{"type": "conv", "channels": 2, "kernel": 99}]}))
    jobs.wait(run_id, timeout=60)
    run = store.read(run_id)
    assert run.state == "failed" and "Layer 1" in run.status["error"]


def test_owner_filter_and_delete(store):
    jobs = JobManager(store)
    mine, theirs = jobs.submit(small(), owner="me"), jobs.submit(small(), owner="you")
    jobs.wait(mine, timeout=120)
    jobs.wait(theirs, timeout=120)
    assert [r.id for r in store.list(owner="me")] == [mine]
    store.delete(theirs)
    assert [r.id for r in store.list()] == [mine]
    assert json.loads((store.folder(mine) / "config.json").read_text())["model"] == "mlp"
