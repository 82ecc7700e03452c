"""Background runs: queue order, cancel, persistence and reload, interrupted detection, two at once, sweeps,
resume, steering a training run (lr, pause, a step by hand, resume); the process executor (a killed worker
fails only its run, which then resumes to the end; a run steered through the worker's pipe)."""

import json
import os
import signal
import threading
import time

import pytest
import torch

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.events import Callback, Command
from cnn_core.runs import (ControlRecord, EndRecord, HandStepRecord, JobManager, RunStatus, RunStore, StepRecord,
                           threads_for)
from cnn_core.runs.executors import InlineExecutor, ProcessExecutor
from cnn_core.runs.protocol import Began, Ended, Recorded
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
    assert run.state is RunStatus.FINISHED and run.progress == 1.0
    assert run.config == small(epochs=2)
    assert len(run.history.epochs) == 2 and isinstance(run.history[-1], EndRecord) and run.history.steps
    assert run.status["test_acc"] == run.history.test_acc > 0.1
    names = sorted(p.name for p in run.folder.path.glob("*.safetensors"))
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
    assert all(r.state is RunStatus.FINISHED for r in runs)
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
    assert ra.state is rb.state is RunStatus.FINISHED
    assert ra.status["started"] < rb.status["finished"] and rb.status["started"] < ra.status["finished"]


def test_runs_at_once_share_the_cores_instead_of_oversubscribing_them():
    assert [threads_for(n, cores=8) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert threads_for(1, cores=2) == 2 and threads_for(2, cores=2) == 1
    assert [threads_for(n, cores=8, reserved=1) for n in (1, 2, 8)] == [7, 3, 1]  # a core left to the server
    assert threads_for(1, cores=2, reserved=1) == 1 and threads_for(1, cores=1, reserved=1) == 1


def test_each_worker_trains_with_its_share_of_threads(store, monkeypatch):
    seen = []

    def fake_train_job(job, send, stop, callbacks=None, controls=None):
        seen.append(torch.get_num_threads())  # in the worker thread, as the real fit's ops would see it
        send(Ended(RunStatus.FINISHED))

    monkeypatch.setattr("cnn_core.runs.executors.train_job", fake_train_job)
    before = torch.get_num_threads()
    jobs = JobManager(store, max_concurrent=2, threads_per_run=1)
    for run_id in [jobs.submit(small()), jobs.submit(small(seed=1))]:
        jobs.wait(run_id, timeout=60)
    assert seen == [1, 1]
    assert torch.get_num_threads() == before  # the caller's thread keeps its own setting
    assert JobManager(store).threads_per_run == threads_for(1)


def test_a_class_leaves_a_core_to_the_server(store, monkeypatch):
    seen = []

    def fake_train_job(job, send, stop, callbacks=None, controls=None):
        seen.append(job.threads)
        send(Ended(RunStatus.FINISHED))

    monkeypatch.setattr("cnn_core.runs.executors.train_job", fake_train_job)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    jobs = JobManager(store)
    jobs.wait(jobs.submit(small()), timeout=60)
    jobs.configure(1, 1, 1, {"teacher"}, reserved_cores=1)  # what ui.jobs does while a class runs
    jobs.wait(jobs.submit(small(seed=1)), timeout=60)
    jobs.configure(1, None, None)  # the class ended
    jobs.wait(jobs.submit(small(seed=2)), timeout=60)
    assert seen == [4, 3, 4]


def test_cancel_running_and_waiting(store, monkeypatch):
    started = threading.Event()
    release = threading.Event()

    class Gate(Callback):  # holds the first run at its first reported step until the test says go
        def on_step(self, state):
            started.set()
            release.wait(10)

    jobs = JobManager(store, InlineExecutor([Gate()]), max_concurrent=1)
    running, waiting = jobs.submit(small(epochs=5)), jobs.submit(small())
    assert started.wait(60)
    jobs.cancel(waiting)
    jobs.cancel(running)
    release.set()
    jobs.wait(running, timeout=60)
    assert store.read(waiting).state is RunStatus.CANCELLED
    run = store.read(running)
    assert run.state is RunStatus.STOPPED and run.status["step"] == 2  # stopped at the next step
    assert run.checkpoint is not None


def test_restart_lists_past_runs_and_marks_interrupted(store):
    jobs = JobManager(store)
    done = jobs.submit(small())
    jobs.wait(done, timeout=120)
    ghost = store.create(small())  # as if the process died while it trained
    store.set_status(ghost, RunStatus.RUNNING, pid=2**22 + 12345)
    fresh = JobManager(RunStore(store.root))
    runs = {r.id: r.state for r in fresh.store.list()}
    assert runs == {done: RunStatus.FINISHED, ghost: RunStatus.INTERRUPTED}


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
    assert run.state is RunStatus.FAILED and "Layer 1" in run.status["error"]


def test_owner_filter_and_delete(store):
    jobs = JobManager(store)
    mine, theirs = jobs.submit(small(), owner="me"), jobs.submit(small(), owner="you")
    jobs.wait(mine, timeout=120)
    jobs.wait(theirs, timeout=120)
    assert [r.id for r in store.list() if r.meta["owner"] == "me"] == [mine]
    store.delete(theirs)
    assert [r.id for r in store.list()] == [mine]
    assert json.loads(store.folder(mine).config.read_text())["model"] == "mlp"


# ---------------------------------------------------------------- many sessions at once
# The app's one JobManager (and its RunStore) serves every session from its own thread.


class FakeExecutor:
    """A run in a few milliseconds: Began, three step records stamped with the run's seed (as their lr), the end."""

    name = "fake"

    def run(self, job, send, stop, controls=None):
        seed = float(job.config.seed)
        send(Began(3, "cpu", os.getpid(), 0, 0, 0.0))
        status = RunStatus.FINISHED
        for step in range(1, 4):
            if stop.is_set():
                status = RunStatus.STOPPED
                break
            send(Recorded(StepRecord(1, step, 0.0, None, None, seed)))
        send(Recorded(EndRecord(1, 3, 0.0, status, None, None, 0.0)))
        send(Ended(status))
        return []

    def close(self):
        pass


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
        store.append(run_id, StepRecord(1, 1, 0.0, None, None, float(i)))
    calls = [lambda run_id=run_id: store.delete(run_id) for run_id in ids]
    calls += [store.list for _ in range(60)]
    results = hammer(calls[::2] + calls[1::2], threads=8)  # deletes and listings interleaved
    assert not failures(results), failures(results)
    for listing, _ in results:
        for run in listing or []:
            assert run.config.seed == run.history[-1].lr  # a listed run is whole and its own


def test_many_sessions_submit_cancel_delete_and_list_at_once(store):
    jobs = JobManager(store, FakeExecutor(), max_concurrent=2)
    submitted: dict[int, str] = {}

    def whole(run) -> bool:  # a listed run is complete and nobody else's
        ended = run.state in (RunStatus.FINISHED, RunStatus.STOPPED)
        return (all(r.lr == run.config.seed for r in run.history.steps)
                and (not ended or (run.history and isinstance(run.history[-1], EndRecord))))

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
        broken = [run.id for run in jobs.store.list() if run.meta.get("owner") == f"visitor{k % 8}" and not whole(run)]
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
            assert not store.folder(run_id).path.exists()
            continue
        run = store.read(run_id)
        assert run.config.seed == k and run.status["owner"] == f"visitor{k % 8}"
        ended = (RunStatus.CANCELLED, RunStatus.STOPPED, RunStatus.FINISHED) if cancelled else (RunStatus.FINISHED,)
        assert run.state in ended, (k, run.state)
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
    (old / "status.json").write_text(json.dumps({"status": RunStatus.FINISHED}))
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


@pytest.fixture
def process_jobs(store):
    jobs = JobManager(store, ProcessExecutor(warm=1))
    yield jobs
    jobs.close()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_process_executor_trains_in_a_child_process(store, process_jobs):
    run_id = process_jobs.submit(small(epochs=2))
    process_jobs.wait(run_id, timeout=180)
    run = store.read(run_id)
    assert run.state is RunStatus.FINISHED, run.status.get("error")
    assert run.status["worker_pid"] != os.getpid()
    assert len(run.history.epochs) == 2 and run.checkpoint.name == "last.safetensors"
    assert run.folder.epoch_checkpoints()[-1][0] == 2 and not run.folder.resume_state.exists()  # finished for good


def test_process_executor_cancel_stops_at_the_next_step_with_a_checkpoint(store, process_jobs):
    run_id = process_jobs.submit(small(epochs=50))
    wait_for(lambda: store.read(run_id).status.get("step", 0) >= 4, 120, "the first steps")
    process_jobs.cancel(run_id)
    process_jobs.wait(run_id, timeout=60)
    run = store.read(run_id)
    assert run.state is RunStatus.STOPPED and run.checkpoint is not None


def test_a_killed_worker_fails_only_its_run_which_then_resumes_to_the_end(store, process_jobs):
    config = small(model="lenet_modern", epochs=6, metrics_every=1, batch_size=16)
    whole = JobManager(store).submit(config)  # the same run, unbroken, inline, for the figures to compare
    doomed, after = process_jobs.submit(config), process_jobs.submit(small())
    wait_for(lambda: store.read(doomed).folder.resume_state.is_file(), 180, "the end of the first epoch")
    os.kill(store.read(doomed).status["worker_pid"], signal.SIGKILL)
    process_jobs.wait(doomed, timeout=60)
    run = store.read(doomed)
    assert run.state is RunStatus.FAILED and "SIGKILL" in run.status["error"], run.status
    assert run.can_resume and 1 <= len(run.history.epochs) < 6
    process_jobs.wait(after, timeout=180)
    assert store.read(after).state is RunStatus.FINISHED  # the queue went on

    process_jobs.resume(doomed)
    process_jobs.wait(doomed, timeout=180)
    resumed, unbroken = store.read(doomed), store.read(whole)
    assert resumed.state is RunStatus.FINISHED, resumed.status
    assert [e.epoch for e in resumed.history.epochs] == list(range(1, 7))
    assert [r.step for r in resumed.history] == [r.step for r in unbroken.history]  # the curve goes on, no gap
    assert resumed.history.test_acc == unbroken.history.test_acc
    assert [e.val_acc for e in resumed.history.epochs] == [e.val_acc for e in unbroken.history.epochs]


def steer_a_run(jobs: JobManager, store: RunStore, timeout: float = 120) -> None:
    """Through `jobs`' executor: pause a training run, step one batch by hand, set its lr, resume it, cancel it;
    each change lands in its records and status, in order."""
    run_id = jobs.submit(small(model="lenet_modern", epochs=100))
    wait_for(lambda: store.read(run_id).status.get("step", 0) >= 4, timeout, "the first steps")
    jobs.steer(run_id, Command("pause"))
    assert jobs.paused(run_id)  # as asked, at once (what the page offers next) …
    wait_for(lambda: store.read_status(run_id).get("paused"), timeout, "the pause")  # … and as the run applied it
    paused_at = store.read(run_id).history.controls[-1].step
    time.sleep(0.6)
    assert [r.step for r in store.read(run_id).history if isinstance(r, StepRecord) and r.step > paused_at] == []
    jobs.steer(run_id, Command("step"))
    wait_for(lambda: any(isinstance(r, HandStepRecord) for r in store.read(run_id).history), timeout, "a step")
    [hand] = [r for r in store.read(run_id).history if isinstance(r, HandStepRecord)]
    assert hand.step == paused_at + 1 and hand.update_ratio > 0 and len(hand.labels) == 16
    jobs.steer(run_id, Command("set", lr=0.05))
    jobs.steer(run_id, Command("resume"))
    assert not jobs.paused(run_id)
    wait_for(lambda: any(isinstance(r, StepRecord) and r.step > hand.step for r in store.read(run_id).history),
             timeout, "training again")
    jobs.cancel(run_id)
    jobs.wait(run_id, timeout=60)
    run = store.read(run_id)
    assert run.state is RunStatus.STOPPED and not run.status["paused"] and run.status["lr"] == 0.05
    marks = [(r.action, r.paused, r.lr) for r in run.history if isinstance(r, ControlRecord)]
    assert marks == [("pause", True, 1e-2), ("set", True, 0.05), ("resume", False, 0.05)]
    assert {r.lr for r in run.history.steps if r.step > hand.step} == {0.05}
    with pytest.raises(ValueError, match="not training now"):
        jobs.steer(run_id, Command("pause"))


def test_a_training_run_is_steered_and_a_bad_value_is_refused(store):
    jobs = JobManager(store)
    with pytest.raises(ConfigError, match="Learning rate must be above 0"):
        jobs.steer("no-such-run", Command("set", lr=-1.0))
    steer_a_run(jobs, store)


def test_process_executor_steers_a_run_through_the_workers_pipe(store, process_jobs):
    steer_a_run(process_jobs, store)


def test_resume_refuses_what_cannot_resume(store):
    jobs = JobManager(store)
    done = jobs.submit(small())
    jobs.wait(done, timeout=120)
    with pytest.raises(ValueError, match="only a stopped, interrupted or failed run"):
        jobs.resume(done)
    early = store.create(small())
    store.set_status(early, RunStatus.STOPPED)
    with pytest.raises(ValueError, match="nothing to resume from"):
        jobs.resume(early)


def test_a_sweep_is_one_group_of_runs(store):
    from cnn_core.runs.sweep import grid

    jobs = JobManager(store, max_concurrent=2)
    configs = grid(small(), {"lr": [0.01, 0.03], "batch_size": [32, 64]})
    ids = jobs.submit_group(configs, owner="me")
    for run_id in ids:
        jobs.wait(run_id, timeout=180)
    runs = [store.read(run_id) for run_id in ids]
    assert len({run.group for run in runs}) == 1 and runs[0].group.startswith("sweep-")
    assert [(r.config.lr, r.config.batch_size) for r in runs] == [(0.01, 32), (0.01, 64), (0.03, 32), (0.03, 64)]
    assert all(r.state is RunStatus.FINISHED and r.meta["owner"] == "me" for r in runs)
