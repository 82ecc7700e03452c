"""`fit` in a thread of its own, its records handed over as they come: what a generator needs to stream a run
(the Gradio twin's Train tab, on a ZeroGPU GPU or here), where the consumer pulls records instead of being called.

    run = BackgroundFit(config, finish=save)        # starts training at once
    try:
        for record in run.records():                 # dicts, as fit makes them; None while nothing new came
            ...
    finally:
        run.stop()                                   # a consumer that leaves early ends the run at its next step
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from cnn_core.config import TrainConfig
from cnn_core.data import DataBundle
from cnn_core.events import Callback, Stop, TrainState
from cnn_core.runs.records import to_dict
from cnn_core.train import fit

T = TypeVar("T")
LAYER_STATS = ("grad_norms", "weight_norms", "weight_hist", "vanishing")  # per-layer statistics: not streamed
_DONE = object()


class _Handover(Callback):
    """Puts each step, epoch and end record on a queue, as a plain dict without the layer statistics."""

    def __init__(self, out: queue.SimpleQueue) -> None:
        self.out = out

    def _put(self, state: TrainState) -> None:
        self.out.put({k: v for k, v in to_dict(state.last).items() if k not in LAYER_STATS})

    on_step = on_epoch_end = on_train_end = _put


class BackgroundFit(Generic[T]):
    """`fit(config, data=data)` in a daemon thread, started at once. `records()` yields its records as plain dicts
    ({"event": "step" | "epoch" | "end", ...}, cnn_core.runs.records.to_dict) in the order fit makes them;
    `stop()` asks fit to end at its next step (cnn_core.events.Stop). Once fit returned, whatever the ending
    (finished, stopped, diverged), `finish(state)` runs in the training thread and its value becomes `result`
    (without `finish`: the final TrainState). An exception from fit or finish is raised again by `records()`."""

    def __init__(self, config: TrainConfig, finish: Callable[[TrainState], T] | None = None,
                 data: DataBundle | None = None) -> None:
        self.stop_request = Stop()
        self.result: T | TrainState | None = None
        self.error: BaseException | None = None
        self._out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._train, args=(config, finish, data), daemon=True,
                                        name=f"fit-{config.model}")
        self._thread.start()

    def _train(self, config: TrainConfig, finish: Callable[[TrainState], T] | None, data: DataBundle | None) -> None:
        try:
            state = fit(config, [_Handover(self._out)], data=data, stop=self.stop_request)
            self.result = finish(state) if finish is not None else state
        except BaseException as e:  # handed to the consumer, raised again there
            self.error = e
        finally:
            self._out.put(_DONE)

    def records(self, tick: float = 0.5) -> Iterator[dict[str, Any] | None]:
        """Each record as fit makes it; None after `tick` seconds without one (a consumer may show the time or
        leave: a generator that yields often can be closed soon). Ends when the run ended and `finish` returned."""
        while True:
            try:
                item = self._out.get(timeout=tick)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                break
            yield item
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """End the run at its next step (no-op once it ended); `finish` still runs, with the run stopped."""
        self.stop_request.request()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (fit and finish) to end; whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
