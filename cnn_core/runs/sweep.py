"""Sweeps: a grid over a few fields of a base config (e.g. lr × batch size × model), queued as one group.

    grid(base, {"lr": [1e-3, 3e-3], "batch_size": [64, 128]})  → 4 configs, every combination
    parse_axis("lr=1e-3,3e-3")                                 → ("lr", [0.001, 0.003])   (the CLI's --grid)
    varying(configs)                                            → the fields that differ: how to label the runs
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cnn_core.config import ConfigError, TrainConfig

# The fields a sweep may vary, with how a value is read from text.
SWEEP_FIELDS: dict[str, type] = {"lr": float, "batch_size": int, "model": str, "optimizer": str, "epochs": int,
                                 "weight_decay": float, "schedule": str, "seed": int, "label_smoothing": float}
MAX_RUNS = 64  # a grid larger than this is a typo more often than a plan


def grid(base: TrainConfig, axes: Mapping[str, Sequence[Any]]) -> list[TrainConfig]:
    """Every combination of the axes' values over `base` (the first axis varies slowest), each validated;
    ConfigError for an unknown field, an empty axis, a bad value or more than MAX_RUNS runs."""
    problems = [f"{name!r} cannot be swept: choose among {', '.join(SWEEP_FIELDS)}."
                for name in axes if name not in SWEEP_FIELDS]
    problems += [f"Give {name} at least one value." for name, values in axes.items() if not values]
    if problems:
        raise ConfigError(" ".join(problems))
    names = list(axes)
    combos = list(itertools.product(*(axes[name] for name in names)))
    if len(combos) > MAX_RUNS:
        raise ConfigError(f"That grid makes {len(combos)} runs; at most {MAX_RUNS} go in one sweep.")
    configs = []
    for values in combos:
        config = dataclasses.replace(base, **dict(zip(names, values)))
        # a custom stack's arguments belong to the custom model only; each config its own copy
        config.model_args = {} if config.model != base.model else copy.deepcopy(base.model_args)
        configs.append(config.validate())
    return configs


def new_group() -> str:
    """A fresh group name for a sweep: sweep-<date>-<time>-<random>."""
    return f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """'lr=1e-3,3e-3' → ('lr', [0.001, 0.003]); ConfigError in words for anything else."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in SWEEP_FIELDS:
        raise ConfigError(f"A grid axis reads FIELD=V1,V2,… with FIELD one of {', '.join(SWEEP_FIELDS)} "
                          f"(got {text!r}).")
    kind = SWEEP_FIELDS[name]
    try:
        parsed = [kind(v.strip()) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"The values of {name} must be {kind.__name__}s (got {values!r}).") from None
    if not parsed:
        raise ConfigError(f"Give {name} at least one value.")
    return name, list(dict.fromkeys(parsed))


def varying(configs: Sequence[TrainConfig]) -> list[str]:
    """The sweepable fields whose value differs between the configs, in SWEEP_FIELDS order."""
    return [name for name in SWEEP_FIELDS if len({getattr(c, name) for c in configs}) > 1]


def label(config: TrainConfig, fields: Sequence[str]) -> str:
    """'lr=0.003 · batch_size=128': a run of a sweep by the values it was given."""
    return " · ".join(f"{name}={getattr(config, name):g}" if isinstance(getattr(config, name), float)
                      else f"{name}={getattr(config, name)}" for name in fields)
