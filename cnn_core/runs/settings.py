"""Where runs live and how they train: read from the environment in this one place.

    CNN_RUNS_DIR         the runs folder (default: runs/ beside cnn_core/, the same for the app, the CLI and Gradio)
    CNN_EXECUTOR         process (the app's default), inline, or ray
    CNN_MAX_CONCURRENT   runs training at once (default 1; ray: RAY_CONCURRENT, Ray queues what the cluster
                         cannot fit yet)
    CNN_WARM_WORKERS     process executor: worker processes kept started and waiting (default CNN_MAX_CONCURRENT)
    RAY_ADDRESS          ray executor: the cluster to join (default: a local one started on first use)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

EXECUTORS = ("inline", "process", "ray")
DEFAULT_RUNS_DIR = Path(__file__).resolve().parents[2] / "runs"
RAY_CONCURRENT = 32  # runs handed to Ray at once by default: it starts each when the cluster has room for it


@dataclass(frozen=True)
class RunSettings:
    runs_dir: Path = DEFAULT_RUNS_DIR
    executor: str = "process"
    max_concurrent: int = 1
    warm_workers: int = 1
    ray_address: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunSettings:
        """The settings the environment gives; ValueError naming a malformed variable."""
        env = os.environ if env is None else env
        executor = env.get("CNN_EXECUTOR", "process")
        if executor == "thread":  # the earlier name of inline
            executor = "inline"
        if executor not in EXECUTORS:
            raise ValueError(f"CNN_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
        concurrent = _whole(env, "CNN_MAX_CONCURRENT", RAY_CONCURRENT if executor == "ray" else 1, least=1)
        warm = _whole(env, "CNN_WARM_WORKERS", concurrent, least=0)
        return cls(Path(env.get("CNN_RUNS_DIR") or DEFAULT_RUNS_DIR), executor, concurrent, warm,
                   env.get("RAY_ADDRESS") or None)


def _whole(env: Mapping[str, str], var: str, default: int, least: int) -> int:
    value = env.get(var, str(default))
    if not value.isdecimal() or int(value) < least:
        raise ValueError(f"{var} must be a whole number of at least {least}, got {value!r}.")
    return int(value)

def runs_dir() -> Path:
    """The runs folder ($CNN_RUNS_DIR, default runs/ beside cnn_core/)."""
    return RunSettings.from_env().runs_dir
