"""How long a run will take, estimated from its config before it starts: what the Gradio twin asks ZeroGPU for.

On a ZeroGPU Space each call of the training function holds a GPU for at most the duration it asked for up front
(`spaces.GPU(duration=…)`), and ZeroGPU counts that request against the visitor's daily GPU quota: a short request
queues sooner, one past the visitor's remaining quota is refused by ZeroGPU, one that runs longer than it asked is
cut off. So the twin estimates the run's time from its size (epochs × images ÷ images per second of the device, plus
the evaluation and the start), adds a margin, and refuses a run whose request would pass `ZEROGPU_MAX_S` with a
sentence before it starts.

The speeds are estimates, documented here, not measured on ZeroGPU's cards (no GPU was available while this was
written; docs/performance.md has the CPU figures): they are meant to be on the slow side for the registry's models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnn_core.config import TrainConfig

GPU_IMAGES_PER_S = 20_000.0  # training images/s of a small CNN at batch >= FULL_SPEED_BATCH, data on the GPU (estimate)
CPU_IMAGES_PER_S = 4_000.0  # the same on a laptop's or a Space's CPU (docs/performance.md: 5,000-13,000 on 2 cores)
FULL_SPEED_BATCH = 64  # below it a small CNN's step is bound by kernel launches: images/s falls with the batch
EVAL_SPEEDUP = 4.0  # evaluation (forward only, big batches) goes this many times faster than training
STARTUP_S = 15.0  # a call's start: the GPU worker, CUDA, the data moved to the device, the first steps' set-up
MARGIN = 1.5  # the request is the estimate times this: a slower card or a busier CPU still finishes
ZEROGPU_MAX_S = 120  # the most one run asks ZeroGPU for: well inside a free account's daily quota of a few minutes


def train_images(config: TrainConfig, n_train: int) -> int:
    """Images a run trains on per epoch: the training split less its validation images (make_bundle keeps at
    most half of it for them), only the first `train_subset` of the rest when one is set."""
    rest = n_train - min(config.val_size, n_train // 2)
    return min(rest, config.train_subset) if config.train_subset else rest


def estimate_seconds(config: TrainConfig, n_train: int, n_test: int, gpu: bool) -> float:
    """Seconds the run should take on a GPU (or the CPU): start-up, training, one validation per epoch, the test."""
    speed = (GPU_IMAGES_PER_S if gpu else CPU_IMAGES_PER_S) * min(1.0, config.batch_size / FULL_SPEED_BATCH)
    trained = config.epochs * train_images(config, n_train)
    evaluated = config.epochs * min(config.val_size, n_train // 2) + n_test
    return STARTUP_S + trained / speed + evaluated / (speed * EVAL_SPEEDUP)


@dataclass(frozen=True)
class TimeRequest:
    """What a run asks for: the estimate with its margin, in whole seconds, never above `max_s`."""

    estimate_s: float  # the estimate, without the margin
    wanted_s: int  # the estimate with its margin, rounded up
    max_s: int  # the most a run may ask for

    @property
    def seconds(self) -> int:
        """The duration to ask for (the run is refused when it wants more)."""
        return min(self.wanted_s, self.max_s)

    @property
    def fits(self) -> bool:
        return self.wanted_s <= self.max_s

    def refusal(self, config: TrainConfig, n_images: int) -> str | None:
        """A sentence for the visitor when the run does not fit, else None."""
        if self.fits:
            return None
        return (f"This run would take up to {self.wanted_s} s ({config.epochs} epochs of {n_images:,} images at "
                f"batch {config.batch_size}), more than the {self.max_s} s one run may have here: use fewer epochs "
                "or images, or a bigger batch.")


def time_request(config: TrainConfig, n_train: int, n_test: int, gpu: bool = True,
                 max_s: int = ZEROGPU_MAX_S) -> TimeRequest:
    """The duration to ask for `config`, on a data set of `n_train` training and `n_test` test images."""
    estimate = estimate_seconds(config, n_train, n_test, gpu)
    return TimeRequest(estimate, math.ceil(estimate * MARGIN), max_s)
