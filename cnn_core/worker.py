"""One run trained in a process of its own: `python -m cnn_core.worker RUNS_DIR RUN_ID --threads N`.

The app's JobManager (executor "process") starts one per run, so a run never shares the server's
interpreter with the sessions it serves, and a run that crashes takes only itself down. The worker
writes the run folder as the thread executor does (status, metrics, checkpoints); SIGTERM asks it to
stop at the next step (the run reads `stopped`, with a checkpoint), and it ends with its parent.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import sys
import threading

import torch


def _end_with_parent() -> None:
    """Linux: SIGTERM this process when the thread that started it ends (the app quit or died)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", help="the runs folder")
    parser.add_argument("run_id", help="the run to train (its folder holds config.json)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    _end_with_parent()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.threads:
        torch.set_num_threads(args.threads)

    from cnn_core.jobs import RunStore, train_run

    train_run(RunStore(args.runs_dir), args.run_id, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
