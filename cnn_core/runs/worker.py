"""A worker process of the process executor: `python -m cnn_core.runs.worker [--preload=mnist]`.

It starts ahead of need (torch imported, the preloaded data sets read, one small training step taken), then
trains the jobs that come on stdin one after another (each a frame: header length, resume length, JSON
{run_id, config, threads}, resume bytes), writing each run's messages to stdout as frames
(cnn_core.runs.protocol); it exits at the end of its input. While a run trains, stdin also brings the commands
that steer it (frames with JSON {run_id, command} and no payload: cnn_core.events.Command), read by a thread
of their own and handed to the run's Controls; one for a run it is not training is dropped. It writes nothing
to the run folder: the app does. SIGTERM asks the run training now to stop at its next step; the worker also
gets SIGTERM when the thread that started it ends. Anything printed goes to stderr, which the app keeps as the
run's worker.log.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import queue
import signal
import sys
import threading


def _end_with_parent() -> None:
    """Linux: SIGTERM this process when the thread that started it ends (the app quit or died)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", action="append", default=[], help="a data set to read while waiting")
    args = parser.parse_args(argv)
    _end_with_parent()
    messages = os.fdopen(os.dup(1), "wb")  # frames go to the real stdout …
    os.dup2(2, 1)  # … and whatever else prints goes to stderr
    sys.stdout = sys.stderr

    from cnn_core.data import load_splits
    from cnn_core.events import Stop
    from cnn_core.runs.executors import READY
    from cnn_core.runs.protocol import frame, train_job

    jobs: queue.Queue = queue.Queue()
    current = {"run_id": None, "stop": Stop()}  # the run of the last job read (a fresh Stop and Controls each)
    signal.signal(signal.SIGTERM, lambda *_: current["stop"].request())
    for name in args.preload:
        try:
            load_splits(name)
        except Exception as e:  # noqa: BLE001 - not fetched yet: the run will say so
            print(f"preload {name}: {e}", file=sys.stderr)
    _warm_up()
    print(READY, file=sys.stderr, flush=True)
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            messages.write(frame(message))
            messages.flush()

    threading.Thread(target=_read_input, args=(jobs, current), name="stdin", daemon=True).start()
    while (item := jobs.get()) is not None:  # None: the pool closed, no more jobs
        job, stop, controls = item
        if job.threads:
            import torch

            torch.set_num_threads(job.threads)  # this thread's: the one that trains
        try:
            train_job(job, send, stop, controls=controls)
        except BrokenPipeError:  # the app went away
            return 1
    return 0


def _read_input(jobs: queue.Queue, current: dict) -> None:
    """stdin's frames: a job goes to `jobs` (with its own Stop and Controls, made `current` at once, so that the
    commands right behind it find them), a command to the Controls of the run it names; None at the end."""
    from cnn_core.config import TrainConfig
    from cnn_core.events import Command, Controls, Stop
    from cnn_core.runs.protocol import Job

    while True:
        lengths = sys.stdin.buffer.read(12)
        if len(lengths) < 12:
            jobs.put(None)
            return
        header = json.loads(sys.stdin.buffer.read(int.from_bytes(lengths[:4], "little")))
        payload = sys.stdin.buffer.read(int.from_bytes(lengths[4:], "little")) or None
        if "command" in header:
            if header["run_id"] == current["run_id"]:
                current["controls"].post(Command.from_dict(header["command"]))
            continue
        job = Job(header["run_id"], TrainConfig.from_dict(header["config"]), payload, header.get("threads", 0))
        stop, controls = Stop(), Controls()
        current.update(run_id=job.run_id, stop=stop, controls=controls)
        jobs.put((job, stop, controls))


def _warm_up() -> None:
    """What the first run would otherwise pay for: the training modules imported and one small step of a
    convolutional network taken (the CPU kernels' first-call setup)."""
    import torch

    from cnn_core.models import create_model
    from cnn_core.train import make_optimizer  # noqa: F401 - imports the training loop and its modules
    from cnn_core import checkpoints  # noqa: F401

    model = create_model("lenet5_bn")
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    loss = torch.nn.functional.cross_entropy(model(torch.zeros(8, 1, model.input_size, model.input_size)),
                                             torch.zeros(8, dtype=torch.long))
    loss.backward()
    optimizer.step()


if __name__ == "__main__":
    sys.exit(main())
