"""Hosted mode (CNN_HOSTED=1, e.g. on a Hugging Face Space): limits that keep a shared CPU box usable.

Training there is clamped (CPU, few epochs, a subset, modest batches and models), runs wait in a short
queue, each visitor sees only their own runs, and old runs are deleted (`JobManager`'s housekeeping). Locally nothing changes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cnn_core.config import ConfigError, TrainConfig

ENV_VARS = {  # HostedLimits field → the environment variable that overrides its default
    "max_epochs": "CNN_MAX_EPOCHS",
    "max_train_subset": "CNN_MAX_TRAIN_SUBSET",
    "max_batch_size": "CNN_MAX_BATCH_SIZE",
    "max_parameters": "CNN_MAX_PARAMETERS",
    "max_concurrent_runs": "CNN_MAX_CONCURRENT_RUNS",
    "max_queued_runs": "CNN_MAX_QUEUED_RUNS",
    "max_run_age_hours": "CNN_RUN_MAX_AGE_HOURS",
}


@dataclass(frozen=True)
class HostedLimits:
    enabled: bool = False  # CNN_HOSTED=1
    max_epochs: int = 3
    max_train_subset: int = 20_000  # images a run may train on
    max_batch_size: int = 512
    max_parameters: int = 2_000_000
    max_concurrent_runs: int = 1  # runs training at once; the others wait in the queue …
    max_queued_runs: int = 3  # … of at most this many
    max_run_age_hours: float = 6.0  # older runs are deleted
    private_runs: bool = True  # each visitor sees only the runs of their own session
    gpu: bool = False  # runs may train on a GPU (the Gradio twin: ZeroGPU lends one per run); else CPU only

    @property
    def max_run_age_s(self) -> float:
        return self.max_run_age_hours * 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, base: HostedLimits | None = None) -> HostedLimits:
        """Read CNN_HOSTED and the CNN_MAX_* overrides of `base`'s limits (default: the Docker Space's above);
        raise ValueError naming a malformed one. A `base` that is enabled stays enabled."""
        env = os.environ if env is None else env
        base = cls() if base is None else base
        values: dict[str, object] = {**dataclasses.asdict(base),
                                     "enabled": base.enabled or env.get("CNN_HOSTED", "0") == "1",
                                     "private_runs": env.get("CNN_PRIVATE_RUNS", "1") != "0"}
        for f in dataclasses.fields(cls):
            var = ENV_VARS.get(f.name)
            if var is None or var not in env:
                continue
            try:
                values[f.name] = type(f.default)(env[var])
            except ValueError:
                values[f.name] = 0
            if values[f.name] <= 0:
                raise ValueError(f"{var} must be a positive {type(f.default).__name__}, got {env[var]!r}.")
        return cls(**values)


# The Gradio twin on a ZeroGPU Space: a GPU per run, so the tutorials' recipes may run as written (10 epochs of all
# 55,000 training images); how long a run may hold the GPU bounds it further (cnn_core.gpu_time).
ZEROGPU_LIMITS = HostedLimits(enabled=True, gpu=True, max_epochs=10, max_train_subset=60_000, max_batch_size=1024)


def apply_limits(config: TrainConfig, limits: HostedLimits | None = None) -> tuple[TrainConfig, list[str]]:
    """Clamp a config to the hosted limits → (the config to run, one sentence per change for the user).

    Raises ConfigError when the model itself is too big to train here. Not hosted: (config, [])."""
    limits = HostedLimits.from_env() if limits is None else limits
    if not limits.enabled:
        return config, []
    from cnn_core.models import count_parameters, create_model

    parameters = count_parameters(create_model(config.model, **config.model_args))
    if parameters > limits.max_parameters:
        raise ConfigError(f"This model has {parameters:,} parameters; the hosted demo trains models up to "
                          f"{limits.max_parameters:,}. Use fewer channels or narrower linear layers, "
                          "or run CNN studio on your own machine.")
    changes: dict[str, object] = {}
    notes = []
    if config.device != "cpu" and not limits.gpu:
        changes["device"] = "cpu"
        if config.device == "cuda":
            notes.append("The hosted demo has no GPU: this run trains on the CPU.")
    if config.epochs > limits.max_epochs:
        changes["epochs"] = limits.max_epochs
        notes.append(f"Epochs lowered from {config.epochs} to {limits.max_epochs}, the most the hosted demo allows.")
    if not 0 < config.train_subset <= limits.max_train_subset:
        changes["train_subset"] = limits.max_train_subset
        notes.append(f"Training uses {limits.max_train_subset:,} images on the hosted demo "
                     f"(instead of {config.train_subset:,})." if config.train_subset else
                     f"Training uses the first {limits.max_train_subset:,} training images on the hosted demo.")
    if config.batch_size > limits.max_batch_size:
        changes["batch_size"] = limits.max_batch_size
        notes.append(f"Batch size lowered from {config.batch_size} to {limits.max_batch_size} on the hosted demo.")
    if notes:
        notes.append("Run CNN studio on your own machine to train without these limits.")
    return dataclasses.replace(config, **changes), notes


def queue_full_message(active_runs: int, limits: HostedLimits | None = None, wanted: int = 1) -> str | None:
    """A sentence for the user when `active_runs` (training + waiting) leave no room for `wanted` more; else None."""
    limits = HostedLimits.from_env() if limits is None else limits
    room = limits.max_concurrent_runs + limits.max_queued_runs
    if not limits.enabled or active_runs + wanted <= room:
        return None
    more = "" if wanted == 1 else f" and {wanted} runs need room together (at most {room} at once)"
    runs = "1 run" if active_runs == 1 else f"{active_runs} runs"
    return (f"The hosted demo is busy ({runs} training or waiting{more}): try again in a few minutes, "
            "or run CNN studio on your own machine.")
