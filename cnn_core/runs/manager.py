"""JobManager: the queue of runs of one app (or CLI) process and the executor that trains them.

At most `max_concurrent` runs train at once, the rest wait, served in fair turns between their owners
(cnn_core.runs.queue: each owner's first run before anyone's second; `priority` owners first), at most
`per_owner_running` of one owner training and `per_owner_waiting` waiting when set. Each active run has a thread here that
hands its job to the executor and writes what the worker reports into the run store (`RunWriter`): the store is
written by this side only, whichever executor trains. One manager serves every session of the app, from their
threads at once. A training run is steered through `steer` (lr, momentum, pause, resume, a step by hand: its
executor delivers each command to the run's loop).

With `max_run_age_s` a housekeeping thread deletes, every `housekeeping_every_s`, the runs not written to for that
long (never an active one); reading never deletes anything.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.events import Command, Controls, Stop
from cnn_core.runs.executors import Executor, InlineExecutor, WorkerLost
from cnn_core.runs.protocol import Job, RunWriter
from cnn_core.runs.queue import FairQueue
from cnn_core.runs.status import RunStatus
from cnn_core.runs.store import RunInfo, RunStore, delete_old_runs
from cnn_core.runs.sweep import new_group


class QueueFull(ConfigError):
    """This owner may not queue more runs now; the message says why and what to do."""


def threads_for(concurrent_runs: int, cores: int | None = None, reserved: int = 0) -> int:
    """Torch threads per run so that runs training at once do not ask for more threads than there are cores:
    oversubscribed, OpenMP threads wait on each other (measured on 2 cores, two runs of 2 threads each
    trained 4.5x slower in total than two runs of 1 thread). `reserved` cores are left to the app's server
    (a class: thirty sessions keep it busy, and a run whose threads share its core waits at every barrier)."""
    return max(1, ((cores or os.cpu_count() or 1) - reserved) // max(1, concurrent_runs))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobManager:
    def __init__(self, store: RunStore | None = None, executor: Executor | None = None, max_concurrent: int = 1,
                 threads_per_run: int | None = None, max_run_age_s: float | None = None,
                 housekeeping_every_s: float = 60.0, per_owner_running: int | None = None,
                 per_owner_waiting: int | None = None):
        self.store = store or RunStore()
        self.executor = executor or InlineExecutor()
        self.max_concurrent = max_concurrent
        self.threads_per_run = threads_per_run or threads_for(max_concurrent)
        self._lock = threading.Lock()
        self._queue = FairQueue()
        self.per_owner_running, self.per_owner_waiting = per_owner_running, per_owner_waiting
        self._owners: dict[str, str | None] = {}  # active run → its owner
        self._configs: dict[str, TrainConfig] = {}  # queued and active runs' configs (for wait estimates)
        self._epoch_s: dict[str, list[float]] | None = None  # model → seconds per epoch of runs that finished
        self._resume: dict[str, bytes] = {}
        self._active: dict[str, Stop] = {}
        self._controls: dict[str, Controls] = {}  # the active runs' command channels
        self._threads: dict[str, threading.Thread] = {}
        self._closed = threading.Event()
        self.mark_interrupted()
        if max_run_age_s is not None:
            threading.Thread(target=self._housekeeping, args=(max_run_age_s, housekeeping_every_s),
                             name="runs-housekeeping", daemon=True).start()

    def _housekeeping(self, max_age_s: float, every_s: float) -> None:
        while not self._closed.wait(every_s):
            self.delete_old_runs(max_age_s)

    def delete_old_runs(self, max_age_s: float) -> list[str]:
        """Delete the runs not written to for `max_age_s` seconds, except active ones; returns their ids."""
        return delete_old_runs(self.store.root, max_age_s, keep=self.active_runs())

    def close(self) -> None:
        """Stop the housekeeping thread and the executor's idle workers (runs in progress go on)."""
        self._closed.set()
        self.executor.close()

    def mark_interrupted(self) -> list[str]:
        """Runs left queued/running by a process that is gone (or by an earlier manager here) → INTERRUPTED."""
        marked = []
        for run in self.store.list():
            if not run.state.is_active or run.id in self._active or run.id in self._queue:
                continue
            pid = run.status.get("pid")
            if pid == os.getpid() or not (isinstance(pid, int) and _pid_alive(pid)):
                self.store.set_status(run.id, RunStatus.INTERRUPTED)
                marked.append(run.id)
        return marked

    def submit(self, config: TrainConfig, owner: str | None = None, recipe: str | None = None,
               group: str | None = None, **meta) -> str:
        """Validate, persist and queue a run; returns its id at once (raises ConfigError on bad config)."""
        config.validate()
        self._check_room(owner, 1)
        run_id = self.store.create(config, owner, recipe=recipe, group=group, **meta)
        self._enqueue(run_id, owner, config)
        return run_id

    def _check_room(self, owner: str | None, runs: int) -> None:
        """QueueFull when `owner` may not queue `runs` more runs now (owners are limited only when set)."""
        if owner is None or self.per_owner_waiting is None:
            return
        with self._lock:
            running = sum(o == owner for o in self._owners.values())
            waiting = self._queue.waiting(owner)
        room = (self.per_owner_running or 0) + self.per_owner_waiting - running - waiting
        if runs > room:
            limit = self.per_owner_running or 0
            raise QueueFull(f"Each person may have {limit} run{'s' * (limit != 1)} training and "
                            f"{self.per_owner_waiting} waiting at once; you have {running} training and {waiting} "
                            f"waiting, so {runs} more {'do' if runs > 1 else 'does'} not fit. Cancel one, or wait "
                            "for one to end.")

    def configure(self, max_concurrent: int, per_owner_running: int | None, per_owner_waiting: int | None,
                  priority: set[str] = frozenset(), reserved_cores: int = 0) -> None:
        """Change the queue's rules while it serves (a class's limits): runs at once, per owner, who goes first,
        cores left to the server. Runs already training go on; the next ones start under the new rules."""
        with self._lock:
            changed = (max_concurrent, per_owner_running, per_owner_waiting, set(priority)) != (
                self.max_concurrent, self.per_owner_running, self.per_owner_waiting, self._queue.priority)
            self.max_concurrent = max_concurrent
            self.threads_per_run = threads_for(max_concurrent, reserved=reserved_cores)
            self.per_owner_running, self.per_owner_waiting = per_owner_running, per_owner_waiting
            self._queue.priority = set(priority)
        if changed:
            self._dispatch()

    def submit_group(self, configs: Sequence[TrainConfig], owner: str | None = None, group: str | None = None,
                     **meta) -> list[str]:
        """Queue several runs as one group (a sweep): all validated first, then all queued; their ids."""
        for config in configs:
            config.validate()
        self._check_room(owner, len(configs))
        group = group or new_group()
        return [self.submit(config, owner, group=group, **meta) for config in configs]

    def resume(self, run_id: str) -> None:
        """Queue a stopped, interrupted or failed run again, from the end of its last whole epoch; ValueError when
        it cannot resume (it finished, or it never completed an epoch)."""
        run = self.store.read(run_id)
        if not run.state.resumable or self.is_active(run_id):
            raise ValueError(f"Run {run_id} is {run.state}: only a stopped, interrupted or failed run can resume.")
        if not run.folder.resume_state.is_file():
            raise ValueError(f"Run {run_id} ended before its first epoch did: there is nothing to resume from. "
                             "Start it again instead.")
        owner = run.meta.get("owner")
        self._check_room(owner, 1)
        self.store.set_status(run_id, RunStatus.QUEUED, pid=os.getpid(), error=None)
        with self._lock:
            self._resume[run_id] = run.folder.resume_state.read_bytes()
        self._enqueue(run_id, owner, run.config)

    def _enqueue(self, run_id: str, owner: str | None, config: TrainConfig) -> None:
        with self._lock:
            self._queue.push(run_id, owner)
            self._configs[run_id] = config
        self._dispatch()

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None when not waiting."""
        with self._lock:
            return self._queue.position(run_id)

    def wait_estimate(self, run_id: str) -> float | None:
        """Seconds until a waiting run starts, about: what the runs training and the runs ahead of it in line
        have left, shared over the slots, each run's length guessed from this folder's finished runs of its
        model. None when it is not waiting or there is nothing to guess from."""
        with self._lock:
            order = self._queue.order()
            if run_id not in order:
                return None
            before = [(other, self._configs[other]) for other in [*self._active, *order[:order.index(run_id)]]
                      if other in self._configs]
        per_epoch = self._seconds_per_epoch()
        left = 0.0
        for other, config in before:
            try:
                status = self.store.read_status(other)  # the progress alone: no run's metrics are read
            except (KeyError, OSError, ValueError):
                continue
            eta = RunInfo(other, self.store.folder(other), config, status).eta_s
            known = per_epoch.get(config.model)
            guess = eta if eta is not None else (
                sum(known) / len(known) * (config.epochs - status.get("epoch", 0)) if known else None)
            if guess is None:
                return None
            left += guess
        return left / max(1, self.max_concurrent)

    def _seconds_per_epoch(self) -> dict[str, list[float]]:
        """Model → seconds per epoch of the runs that trained to their end: read from the folder once, then
        kept up to date as runs end here."""
        with self._lock:
            if self._epoch_s is not None:
                return {model: list(times) for model, times in self._epoch_s.items()}
        found: dict[str, list[float]] = {}
        for run in self.store.list():
            if run.config is not None and run.state.succeeded and run.history.epochs:
                found.setdefault(run.config.model, []).append(run.status.get("elapsed", 0.0)
                                                              / len(run.history.epochs))
        with self._lock:
            if self._epoch_s is None:
                self._epoch_s = found
            return {model: list(times) for model, times in self._epoch_s.items()}

    def cancel(self, run_id: str) -> None:
        """Stop a running run at its next step (it keeps its checkpoints: STOPPED), or take a waiting one out of the
        queue (CANCELLED)."""
        with self._lock:
            if self._queue.remove(run_id):
                self._resume.pop(run_id, None)
                self._configs.pop(run_id, None)
                self.store.set_status(run_id, RunStatus.CANCELLED)
                return
            if run_id in self._active:
                self._active[run_id].request(RunStatus.STOPPED)

    def steer(self, run_id: str, command: Command) -> None:
        """Send `command` to a run that trains now; its loop applies it between two steps. ConfigError (a
        sentence) for a value out of range, ValueError when the run is not training."""
        command.check()
        with self._lock:
            controls = self._controls.get(run_id)
        if controls is None:
            raise ValueError(f"Run {run_id} is not training now: only a training run can be steered.")
        controls.post(command)

    def paused(self, run_id: str) -> bool:
        """Whether the run was last asked to pause (and not to resume since)."""
        with self._lock:
            controls = self._controls.get(run_id)
        return controls is not None and controls.paused

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._active or run_id in self._queue

    def active_runs(self) -> list[str]:
        with self._lock:
            return list(self._active) + self._queue.order()

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until the run has ended (tests and the CLI)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_active(run_id):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still active after {timeout} s")
            thread = self._threads.get(run_id)
            if thread is not None:
                thread.join(0.05)
            else:
                time.sleep(0.05)

    def _dispatch(self) -> None:
        with self._lock:
            while len(self._active) < self.max_concurrent:
                taken = self._queue.pop(self._may_start)
                if taken is None:
                    return
                run_id, owner = taken
                self._owners[run_id] = owner
                self._active[run_id] = Stop()
                self._controls[run_id] = Controls()
                thread = threading.Thread(target=self._work, args=(run_id, self._resume.pop(run_id, None)),
                                          name=f"train-{run_id}", daemon=True)
                self._threads[run_id] = thread
                thread.start()

    def _may_start(self, owner: str | None) -> bool:
        """Whether one more run of `owner` may train now (under the lock)."""
        if owner is None or self.per_owner_running is None:
            return True
        return sum(o == owner for o in self._owners.values()) < self.per_owner_running

    def _work(self, run_id: str, resume: bytes | None) -> None:
        stop, controls = self._active[run_id], self._controls[run_id]
        writer = RunWriter(self.store, run_id)
        output: list[str] = []
        try:
            self.store.set_status(run_id, dispatched=time.time())  # its turn came: a worker takes it now
            run = self.store.read(run_id)
            if resume is not None:
                from cnn_core.checkpoints import load_resume

                writer.begin(resume_from=load_resume(resume).history)
            output = self.executor.run(Job(run_id, run.config, resume, self.threads_per_run), writer, stop, controls)
        except WorkerLost as e:
            output = e.output
            writer.fail(str(e))
        except Exception as e:  # noqa: BLE001 - the manager lives on for the next run
            writer.fail(f"{type(e).__name__}: {e}")
        finally:
            if output and self.store.folder(run_id).path.is_dir():
                self.store.folder(run_id).log.write_text("\n".join(output) + "\n")
            ended, history = writer.ended, writer.history
            with self._lock:
                self._active.pop(run_id, None)
                self._controls.pop(run_id, None)
                self._threads.pop(run_id, None)
                self._owners.pop(run_id, None)
                config = self._configs.pop(run_id, None)
                if (self._epoch_s is not None and config is not None and ended is not None
                        and ended.status.succeeded and history.epochs):
                    self._epoch_s.setdefault(config.model, []).append(history[-1].time / len(history.epochs))
            self._dispatch()
