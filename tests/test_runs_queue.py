"""FairQueue and the job manager's fair turns: each owner's first run before anyone's second, the teacher's
first, per-owner limits; thirty students pressing Train at once from their own threads."""

import threading
import time

import pytest

from cnn_core.config import TrainConfig
from cnn_core.runs import JobManager, RunStatus, RunStore
from cnn_core.runs.manager import QueueFull
from cnn_core.runs.protocol import Began, Ended
from cnn_core.runs.queue import FairQueue
from tests.hammer import failures, hammer


def drain(queue: FairQueue) -> list[str]:
    out = []
    while (taken := queue.pop()) is not None:
        out.append(taken[0])
    return out


def test_round_robin_between_owners_not_first_come():
    queue = FairQueue()
    for run_id, owner in [("a1", "ann"), ("a2", "ann"), ("a3", "ann"), ("b1", "bob"), ("c1", "cat"), ("b2", "bob")]:
        queue.push(run_id, owner)
    assert queue.order() == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert [queue.position(r) for r in ("a1", "b1", "a3")] == [1, 2, 6]
    assert drain(queue) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_an_owner_served_recently_goes_after_those_not_served_yet():
    queue = FairQueue()
    queue.push("a1", "ann")
    assert queue.pop() == ("a1", "ann")
    queue.push("a2", "ann")  # Ann again, before Bob and Cat had a turn
    queue.push("b1", "bob")
    queue.push("c1", "cat")
    assert drain(queue) == ["b1", "c1", "a2"]


def test_priority_owners_first_and_held_back_owners_skipped():
    queue = FairQueue()
    for run_id, owner in [("a1", "ann"), ("b1", "bob"), ("t1", "teacher"), ("a2", "ann")]:
        queue.push(run_id, owner)
    queue.priority = {"teacher"}
    assert queue.order()[0] == "t1"
    assert queue.pop(lambda owner: owner != "teacher") == ("a1", "ann")  # the teacher's slot is full: next
    assert queue.remove("b1") and not queue.remove("b1") and "b1" not in queue
    assert drain(queue) == ["t1", "a2"]


def test_runs_without_an_owner_are_first_come_first_served():
    queue = FairQueue()
    for i in range(5):
        queue.push(f"r{i}", None)
    assert drain(queue) == [f"r{i}" for i in range(5)]


class HeldExecutor:
    """Runs that train until the test lets them end; records the order in which they started."""

    name = "held"

    def __init__(self):
        self.started: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def run(self, job, send, stop, controls=None):
        with self._lock:
            self.started.append(job.run_id)
        send(Began(1, "cpu", 0, 0, 0, 0.0))
        while not (self.release.is_set() or stop.is_set()):
            stop.wait(0.01)
        send(Ended(RunStatus.FINISHED if self.release.is_set() else RunStatus.STOPPED))
        return []

    def close(self):
        pass


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def test_thirty_students_pressing_train_at_once_each_get_a_first_run_before_any_second(store):
    executor = HeldExecutor()
    jobs = JobManager(store, executor, max_concurrent=1)
    blocker = jobs.submit(TrainConfig(model="mlp"), owner="teacher")  # trains while the class queues
    students = [f"student{i:02d}" for i in range(30)]
    # each student presses Train twice in a row, all from their own sessions' threads at once
    presses = [s for s in students for _ in range(2)]
    results = hammer([lambda s=s: jobs.submit(TrainConfig(model="mlp"), owner=s) for s in presses], threads=8)
    assert not failures(results), failures(results)
    waiting = [run_id for run_id in jobs.active_runs() if run_id != blocker]
    owners = [store.read(run_id).meta["owner"] for run_id in waiting]
    assert len(waiting) == 60
    assert sorted(owners[:30]) == students and sorted(owners[30:]) == students  # first runs, then second runs
    assert [jobs.queue_position(run_id) for run_id in waiting] == list(range(1, 61))
    # as runs end, they start in that order
    executor.release.set()
    for run_id in waiting:
        jobs.wait(run_id, timeout=30)
    assert executor.started == [blocker, *waiting]


def test_per_owner_limits_one_training_one_waiting(store):
    executor = HeldExecutor()
    jobs = JobManager(store, executor, max_concurrent=2, per_owner_running=1, per_owner_waiting=1)
    ann1 = jobs.submit(TrainConfig(model="mlp"), owner="ann")
    ann2 = jobs.submit(TrainConfig(model="mlp"), owner="ann")
    with pytest.raises(QueueFull, match="1 run training and 1 waiting at once; you have 1 training and 1 waiting"):
        jobs.submit(TrainConfig(model="mlp"), owner="ann")
    with pytest.raises(QueueFull):
        jobs.submit_group([TrainConfig(model="mlp")] * 3, owner="bob")  # a sweep bigger than one's room (2)
    bob1 = jobs.submit(TrainConfig(model="mlp"), owner="bob")
    # two slots: Ann's second run waits although a slot is free, Bob's first trains
    assert jobs.queue_position(ann1) is None and jobs.queue_position(bob1) is None
    assert jobs.queue_position(ann2) == 1
    wait_until(lambda: len(executor.started) == 2)
    assert sorted(executor.started) == sorted([ann1, bob1])
    local = [jobs.submit(TrainConfig(model="mlp")) for _ in range(3)]  # no owner: no per-owner limit
    assert len(local) == 3
    executor.release.set()
    for run_id in [ann1, ann2, bob1, *local]:
        jobs.wait(run_id, timeout=30)
    assert store.read(ann2).state is RunStatus.FINISHED


def test_a_waiting_run_knows_its_place_and_about_how_long(store):
    from cnn_core.runs import EndRecord, EpochRecord

    done = store.create(TrainConfig(model="mlp", epochs=2))  # a finished run of the model: 10 s an epoch
    for epoch in (1, 2):
        store.append(done, EpochRecord(epoch, epoch * 10, epoch * 10.0, 0.5, 0.8, 0.5, 0.8, 1e-3, 10.0, 100.0))
    store.append(done, EndRecord(2, 20, 20.0, RunStatus.FINISHED, 0.4, 0.8, 20.0))
    store.set_status(done, RunStatus.FINISHED, elapsed=20.0)
    executor = HeldExecutor()
    jobs = JobManager(store, executor, max_concurrent=1)
    first = jobs.submit(TrainConfig(model="mlp", epochs=3), owner="ann")
    second = jobs.submit(TrainConfig(model="mlp", epochs=2), owner="bob")
    third = jobs.submit(TrainConfig(model="mlp", epochs=2), owner="cat")
    assert jobs.wait_estimate(first) is None  # training, not waiting
    assert jobs.queue_position(third) == 2
    assert jobs.wait_estimate(second) == pytest.approx(30.0)  # the training run's 3 epochs of 10 s
    assert jobs.wait_estimate(third) == pytest.approx(50.0)  # … and the second's 2 epochs
    executor.release.set()
    for run_id in (first, second, third):
        jobs.wait(run_id, timeout=30)
