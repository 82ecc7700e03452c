"""Settings of a serving process (the Streamlit app, the Gradio twin), made once when it starts."""

from __future__ import annotations

import os
import threading

import torch

SERVE_THREADS_ENV = "CNN_SERVE_THREADS"
_lock = threading.Lock()
_serve_threads: int | None = None


def serve_threads() -> int:
    """Set torch's intra-op threads for this process once ($CNN_SERVE_THREADS, default 1) and return the number.

    A page works on one drawing or one small batch at a time: too little to split across cores, and on a
    busy machine the extra OpenMP threads only wait for a free core (measured on 2 cores: a drawing's
    forward ran 10-30x slower with 2 threads than with 1 while a run trained). Sessions run in threads of
    one process and torch's setting is the default of every thread started later, so it is set here, at
    start, and never per request. Later calls return the number without touching torch."""
    global _serve_threads
    with _lock:
        if _serve_threads is None:
            value = os.environ.get(SERVE_THREADS_ENV, "1")
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{SERVE_THREADS_ENV} must be a positive whole number, got {value!r}.")
            _serve_threads = int(value)
            torch.set_num_threads(_serve_threads)
        return _serve_threads
