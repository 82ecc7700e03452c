"""Hammer a shared object from many threads at once: every call's result, or the exception it raised."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def hammer(calls: Sequence[Callable[[], Any]], threads: int) -> list[tuple[Any, BaseException | None]]:
    """Run `calls` on `threads` threads that start together (a barrier), spread round-robin; returns
    (result, None) or (None, exception) per call, in the order of `calls`."""
    barrier = threading.Barrier(threads)
    out: list[tuple[Any, BaseException | None]] = [(None, None)] * len(calls)

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(k, len(calls), threads):
            try:
                out[i] = (calls[i](), None)
            except Exception as e:  # noqa: BLE001 - the test reports every failure
                out[i] = (None, e)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return out


def failures(results: list[tuple[Any, BaseException | None]]) -> list[str]:
    """The distinct exception messages among `hammer`'s results."""
    return sorted({f"{type(e).__name__}: {e}" for _, e in results if e is not None})
