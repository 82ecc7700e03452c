"""Settings of a serving process (the Streamlit app, the Gradio twin), made once when it starts."""

from __future__ import annotations

import ctypes
import functools
import os
import threading

import torch

SERVE_THREADS_ENV = "CNN_SERVE_THREADS"
MALLOC_ARENAS_ENV = "CNN_MALLOC_ARENAS"
_M_ARENA_MAX = -8  # glibc's mallopt parameter number for MALLOC_ARENA_MAX
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


@functools.cache
def limit_malloc_arenas() -> int | None:
    """Cap glibc's malloc arenas for this process ($CNN_MALLOC_ARENAS, default 2; 0 leaves glibc's default) and
    return the cap, or None where the C library is not glibc.

    A server runs each session's script in a thread of its own, and glibc gives busy threads arenas of their own
    (up to 8 per core) that it rarely returns: measured with thirty class sessions for five minutes, the server's
    memory grew +178 MiB and kept climbing ~3.5 MiB a minute with the default, +130 MiB and flat with 2 arenas, at
    the same CPU and latency. The same as MALLOC_ARENA_MAX=2 in the environment, but it also holds for a plain
    `streamlit run app.py`. Arenas made before the call stay; call it when the process starts (once; later calls
    return the first answer)."""
    value = os.environ.get(MALLOC_ARENAS_ENV, "2")
    if not value.isdigit():
        raise ValueError(f"{MALLOC_ARENAS_ENV} must be a whole number (0 for the C library's default), got {value!r}.")
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: other C libraries number mallopt's parameters otherwise
    except (OSError, AttributeError, TypeError):
        return None
    if int(value) > 0:
        mallopt(_M_ARENA_MAX, int(value))
    return int(value)
