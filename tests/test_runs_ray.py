"""The Ray executor on a real local Ray (2 CPUs): runs stream into the store as they train, two at once; a run is
steered (pause, a step by hand, lr, resume) through the run board; a cancel ends a run STOPPED, with its last
checkpoint when it stops at a step and by Ray's own cancel otherwise; a Ray worker killed mid-run fails its run
with the reason."""

from __future__ import annotations

import os
import signal
import time

import pytest
import ray

from cnn_core.config import TrainConfig
from cnn_core.runs import JobManager, RunStore
from cnn_core.runs.ray_executor import RayExecutor
from tests.conftest import write_dataset

STEPS_PER_EPOCH = 16  # 600 tiny train images less 100 for validation, in batches of 32


def run_config(epochs: int, seed: int = 0) -> TrainConfig:
    return TrainConfig(model="lenet5_bn", epochs=epochs, batch_size=32, val_size=100, metrics_every=2, seed=seed,
                       device="cpu")


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    """A RayExecutor that starts its own local Ray (2 CPUs); its workers inherit the tiny data set's env."""
    data = tmp_path_factory.mktemp("ray-data")
    write_dataset(data / "mnist")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CNN_DATA_DIR", str(data))  # set before Ray starts: its workers inherit it
        env.setenv("CNN_DATA_VERIFY", "0")
        executor = RayExecutor(num_cpus=2, stop_grace_s=20)
        try:
            yield executor
        finally:
            executor.close()
    assert not ray.is_initialized()  # the executor started this Ray, so it shut it down


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def wait_until(condition, timeout: float = 60, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} not met within {timeout} s")


def streaming(store: RunStore, run_id: str) -> bool:
    """The run is training and its step records are in the store already."""
    run = store.read(run_id)
    return run.state == "running" and any(r.event == "step" for r in run.history)


def checkpoints(run) -> list[str]:
    return sorted(p.name for p in run.folder.path.glob("*.safetensors"))


def test_two_runs_stream_at_once_one_stopped_one_finished(executor, store):
    jobs = JobManager(store, executor=executor, max_concurrent=2)
    cancelled = jobs.submit(run_config(epochs=500))
    wait_until(lambda: streaming(store, cancelled), what="the first run streaming")
    finished = jobs.submit(run_config(epochs=25, seed=1))
    wait_until(lambda: streaming(store, finished) and streaming(store, cancelled), what="both runs streaming at once")
    workers = {store.read(r).status["worker_pid"] for r in (cancelled, finished)}
    assert len(workers) == 2 and os.getpid() not in workers  # each in a Ray worker process of its own

    jobs.cancel(cancelled)
    jobs.wait(cancelled, timeout=30)
    run = store.read(cancelled)
    assert run.state == "stopped" and run.status.get("error") is None
    assert run.history[-1].event == "end" and run.history[-1].status == "stopped"
    assert "last.safetensors" in checkpoints(run)  # it stopped at a step, so it sent its last checkpoint

    jobs.wait(finished, timeout=60)
    run = store.read(finished)
    assert run.state == "finished" and run.progress == 1.0
    assert run.status["total_steps"] == 25 * STEPS_PER_EPOCH  # trained on the tiny data: the workers saw the env
    assert {"best.safetensors", "epoch-25.safetensors", "last.safetensors"} <= set(checkpoints(run))


def test_ray_cancel_stops_a_running_run(executor, store):
    impatient = RayExecutor(stop_grace_s=0)  # joins the running Ray; a stop is Ray's cancel at once
    assert not impatient.started
    jobs = JobManager(store, executor=impatient, max_concurrent=1)
    run_id = jobs.submit(run_config(epochs=500))
    wait_until(lambda: streaming(store, run_id), what="the run streaming")
    jobs.cancel(run_id)
    jobs.wait(run_id, timeout=30)
    run = store.read(run_id)
    assert run.state == "stopped" and run.status.get("error") is None
    assert all(r.event != "end" for r in run.history) and "last.safetensors" not in checkpoints(run)  # Ray ended it
    os.kill(run.status["worker_pid"], 0)  # Ray's cancel interrupted the task; its worker lives on
    impatient.close()
    assert ray.is_initialized()  # a Ray it only joined goes on


def test_ray_cancel_takes_a_run_waiting_for_a_slot_out(executor, store):
    jobs = JobManager(store, executor=executor, max_concurrent=3, threads_per_run=1)  # Ray has 2 CPUs: one waits
    ids = [jobs.submit(run_config(epochs=500, seed=i)) for i in range(3)]
    wait_until(lambda: sum(streaming(store, r) for r in ids) == 2, what="two runs streaming")
    waiting = next(r for r in ids if store.read(r).state == "queued")
    time.sleep(0.5)
    assert store.read(waiting).state == "queued"  # submitted to Ray, no CPU free: it has not begun
    jobs.cancel(waiting)
    jobs.wait(waiting, timeout=30)
    assert store.read(waiting).state == "stopped" and checkpoints(store.read(waiting)) == []
    for run_id in ids:
        jobs.cancel(run_id)
    for run_id in ids:
        jobs.wait(run_id, timeout=30)
    assert [store.read(r).state for r in ids if r != waiting] == ["stopped", "stopped"]


def test_a_killed_ray_worker_fails_its_run_with_the_reason(executor, store):
    jobs = JobManager(store, executor=executor, max_concurrent=2)
    run_id = jobs.submit(run_config(epochs=500))
    wait_until(lambda: streaming(store, run_id), what="the run streaming")
    pid = store.read(run_id).status["worker_pid"]
    os.kill(pid, signal.SIGKILL)
    jobs.wait(run_id, timeout=30)
    run = store.read(run_id)
    assert run.state == "failed"
    assert f"The Ray worker training this run (pid {pid}) died" in run.status["error"]
    after = jobs.submit(run_config(epochs=1))  # Ray goes on: the next run trains in a new worker
    jobs.wait(after, timeout=60)
    assert store.read(after).state == "finished"


def test_ray_steers_a_run_through_the_run_board(executor, store):
    from tests.test_runs_manager import steer_a_run

    steer_a_run(JobManager(store, executor=executor), store, timeout=180)
