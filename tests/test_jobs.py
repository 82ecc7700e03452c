"""Background runs: queue order, cancel, persistence and reload, interrupted detection, two at once."""

import json
import threading
import time

import pytest
import torch

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.jobs import JobManager, RunStore, threads_for
from cnn_core.train import Callback
from tests.hammer import failures, hammer


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


# ---------------------------------------------------------------- many sessions at once
# The app's one JobManager (and its RunStore) serves every session from its own thread.


def fake_fit(config, callbacks, stop):
    """A run in a few milliseconds: the RunRecorder's events, each record stamped with the run's seed."""
    from types import SimpleNamespace

    from cnn_core.jobs import RunRecorder

    state = SimpleNamespace(status="running", epoch=1, step=0, total_steps=3, elapsed=0.0, best_val_acc=None,
                            test_acc=None, device="cpu", history=[])
    recorders = [cb for cb in callbacks if isinstance(cb, RunRecorder)]
    for cb in recorders:
        cb.on_train_begin(state)
    for step in range(1, 4):
        if stop.is_set():
            state.status = "stopped"
            break
        state.step = step
        state.history.append({"event": "step", "step": step, "seed": config.seed})
        for cb in recorders:
            cb.on_step(state)
    else:
        state.status = "finished"
    state.history.append({"event": "end", "seed": config.seed})
    for cb in recorders:
        cb.on_train_end(state)


def test_status_updates_from_many_threads_are_all_kept(store):
    run_id = store.create(small())
    results = hammer([lambda i=i: store.set_status(run_id, **{f"field{i}": i}) for i in range(400)], threads=8)
    assert not failures(results), failures(results)
    status = store.read(run_id).status
    lost = [i for i in range(400) if status.get(f"field{i}") != i]
    assert not lost, f"{len(lost)} of 400 status updates were lost (read-merge-write raced)"


def test_run_ids_never_collide_when_many_start_at_once(store):
    results = hammer([lambda: store.create(small()) for _ in range(1500)], threads=8)
    assert not failures(results), failures(results)
    ids = [run_id for run_id, _ in results]
    assert len(set(ids)) == 1500 and len(store.list()) == 1500


def test_listing_while_other_sessions_delete_runs(store):
    ids = [store.create(small(seed=i)) for i in range(300)]
    for i, run_id in enumerate(ids):
        store.append(run_id, {"event": "end", "seed": i})
    calls = [lambda run_id=run_id: store.delete(run_id) for run_id in ids]
    calls += [store.list for _ in range(60)]
    results = hammer(calls[::2] + calls[1::2], threads=8)  # deletes and listings interleaved
    assert not failures(results), failures(results)
    for listing, _ in results:
        for run in listing or []:
            assert run.config.seed == run.history[-1]["seed"]  # a listed run is whole and its own


def test_many_sessions_submit_cancel_delete_and_list_at_once(store, monkeypatch):
    monkeypatch.setattr("cnn_core.jobs.fit", fake_fit)
    jobs = JobManager(store, max_concurrent=2)
    submitted: dict[int, str] = {}

    def whole(run) -> bool:  # a listed run is complete and nobody else's
        ended = run.state in ("finished", "stopped")
        return (all(r["seed"] == run.config.seed for r in run.history)
                and (not ended or (run.history and run.history[-1]["event"] == "end")))

    def session(k: int) -> tuple[str, bool, bool]:
        run_id = submitted[k] = jobs.submit(small(seed=k), owner=f"visitor{k % 8}")
        cancelled = k % 5 == 0
        if cancelled:
            jobs.cancel(run_id)
        jobs.queue_position(run_id)
        earlier = submitted.get(k - 24)  # this visitor deletes a run of theirs from a while ago, if it ended
        deleted = earlier is not None and not jobs.is_active(earlier)
        if deleted:
            jobs.store.delete(earlier)
        broken = [run.id for run in jobs.store.list(owner=f"visitor{k % 8}") if not whole(run)]
        assert not broken, f"listed half-written or mixed runs {broken}"
        return run_id, cancelled, deleted

    results = hammer([lambda k=k: session(k) for k in range(320)], threads=8)
    assert not failures(results), failures(results)
    assert len(set(submitted.values())) == 320
    for run_id in submitted.values():
        jobs.wait(run_id, timeout=60)
    assert jobs.active_runs() == []
    gone = {submitted[k - 24] for k, ((_, _, deleted), _) in enumerate(results) if deleted}
    for k, ((run_id, cancelled, _), _) in enumerate(results):
        if run_id in gone:
            assert not store.folder(run_id).exists()
            continue
        run = store.read(run_id)
        assert run.config.seed == k and run.status["owner"] == f"visitor{k % 8}"
        assert run.state in (("cancelled", "stopped", "finished") if cancelled else ("finished",)), (k, run.state)
        assert whole(run)
    assert len(store.list()) == 320 - len(gone)


def test_reading_the_manager_deletes_nothing_its_housekeeping_does(tmp_path, monkeypatch):
    import os
    import time

    from ui.jobs import job_manager

    runs = tmp_path / "runs"
    old = runs / "20200101-000000-mlp-old"
    old.mkdir(parents=True)
    (old / "config.json").write_text(json.dumps(small().to_dict()))
    (old / "status.json").write_text(json.dumps({"status": "finished"}))
    week_ago = time.time() - 7 * 24 * 3600
    for path in [*old.iterdir(), old]:
        os.utime(path, (week_ago, week_ago))
    monkeypatch.setenv("CNN_HOSTED", "1")
    monkeypatch.setenv("CNN_RUNS_DIR", str(runs))
    for _ in range(3):  # what every session's sidebar does every 2 s
        job_manager()
    assert old.exists(), "reading the job manager deleted a run"

    jobs = JobManager(RunStore(runs), max_run_age_s=3600, housekeeping_every_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old.exists(), "the manager's housekeeping did not delete the week-old run"
    finally:
        jobs.close()


# ---------------------------------------------------------------- the process executor (the app's)


def test_process_executor_trains_in_a_child_process(store):
    import os

    jobs = JobManager(store, executor="process")
    run_id = jobs.submit(small(epochs=2))
    jobs.wait(run_id, timeout=180)
    run = store.read(run_id)
    assert run.state == "finished", run.status.get("error")
    assert run.status["pid"] != os.getpid() and run.status["pid"] == run.status["worker_pid"]
    assert [r["event"] for r in run.history].count("epoch") == 2 and run.checkpoint.name == "last.safetensors"


def test_process_executor_cancel_stops_at_the_next_step_with_a_checkpoint(store):
    jobs = JobManager(store, executor="process")
    run_id = jobs.submit(small(epochs=50))
    deadline = time.monotonic() + 120
    while store.read(run_id).status.get("step", 0) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    jobs.cancel(run_id)
    jobs.wait(run_id, timeout=60)
    run = store.read(run_id)
    assert run.state == "stopped" and run.checkpoint is not None


def test_a_killed_worker_fails_its_run_with_the_reason_and_the_queue_goes_on(store):
    import os
    import signal

    jobs = JobManager(store, executor="process")
    doomed, after = jobs.submit(small(epochs=50)), jobs.submit(small())
    deadline = time.monotonic() + 120
    while store.read(doomed).status.get("step", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(store.read(doomed).status["worker_pid"], signal.SIGKILL)
    jobs.wait(doomed, timeout=60)
    run = store.read(doomed)
    assert run.state == "failed" and "SIGKILL" in run.status["error"], run.status
    jobs.wait(after, timeout=180)
    assert store.read(after).state == "finished"
