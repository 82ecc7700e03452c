"""A run's records: what `fit` reports (step, epoch, end), typed, and the one place they are written and parsed.

On disk and on the wire a record is a JSON object with an "event" key ("step", "epoch", "end", and, when someone
steers the run while it trains, "control" and "hand_step"); a value that is not a finite number (no validation
set, a diverged loss) is written as null and read as None. Fields added later have defaults, so older
metrics.jsonl files read as they always did.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from cnn_core.runs.status import RunStatus


def finite(x: float | None) -> float | None:
    """`x` when it is a finite number, else None (NaN, ±inf, missing)."""
    return x if x is not None and math.isfinite(x) else None


def _plain(value: Any) -> Any:
    """`value` with every float in it (in dicts and lists too) finite or None: what JSON can hold."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class StepRecord:
    """Every `metrics_every` optimizer steps: the running train loss/accuracy since the last report."""

    event: ClassVar[str] = "step"
    epoch: int
    step: int
    time: float  # seconds since the run started (its earlier parts included, when resumed)
    train_loss: float | None
    train_acc: float | None
    lr: float
    # per conv/linear layer at this report's step (one batch; cnn_core.layer_stats): the gradient's and the
    # weights' L2 norms, a histogram of the weights ({"lo", "hi", "counts": [HIST_BINS ints]}, equal bins from lo
    # to hi), and the layers whose gradients have almost vanished
    grad_norms: dict[str, float] | None = None
    weight_norms: dict[str, float] | None = None
    weight_hist: dict[str, dict[str, Any]] | None = None
    vanishing: list[str] | None = None


@dataclass(frozen=True)
class EpochRecord:
    """The end of an epoch: its train loss/accuracy, validation loss/accuracy and speed."""

    event: ClassVar[str] = "epoch"
    epoch: int
    step: int
    time: float
    train_loss: float | None
    train_acc: float | None
    val_loss: float | None
    val_acc: float | None
    lr: float
    seconds: float
    images_per_s: float


@dataclass(frozen=True)
class EndRecord:
    """The end of a run: how it ended and its test loss/accuracy."""

    event: ClassVar[str] = "end"
    epoch: int
    step: int
    time: float
    status: RunStatus
    test_loss: float | None
    test_acc: float | None
    seconds: float


@dataclass(frozen=True)
class ControlRecord:
    """A change made by hand while the run trained (cnn_core.events.Controls), applied between two steps: after
    step `step`, the optimizer goes on with `lr` and `momentum`, and training waits while `paused`."""

    event: ClassVar[str] = "control"
    epoch: int
    step: int
    time: float
    action: str  # "set" (lr and/or momentum: the schedule, if any, ends here), "pause" or "resume"
    lr: float
    momentum: float | None  # SGD's momentum or Adam's beta1; None for plain SGD, which has none
    paused: bool


@dataclass(frozen=True)
class HandStepRecord:
    """One batch trained by hand while the run was paused (step `step` is that batch's): its loss and accuracy
    (before the update), how far the update moved the weights (||Δw|| / ||w||), and its first images as the
    model saw them, with their labels and the predictions."""

    event: ClassVar[str] = "hand_step"
    epoch: int
    step: int
    time: float
    loss: float | None
    acc: float | None
    update_ratio: float | None
    batch_size: int
    labels: list[int]  # of the images shown (the batch's first ones)
    predictions: list[int]
    side: int  # the images are (len(labels), side, side) uint8 …
    images: str  # … base64-encoded


Record = StepRecord | EpochRecord | EndRecord | ControlRecord | HandStepRecord
KINDS: dict[str, type[Record]] = {k.event: k for k in (StepRecord, EpochRecord, EndRecord, ControlRecord,
                                                       HandStepRecord)}


def to_dict(record: Record) -> dict[str, Any]:
    """The record as written to metrics.jsonl, checkpoints and the live stream."""
    out: dict[str, Any] = {"event": record.event}
    for f in dataclasses.fields(record):
        out[f.name] = _plain(getattr(record, f.name))
    return out


def parse(data: Mapping[str, Any]) -> Record:
    """A record from its dict; ValueError for anything that is not one."""
    event = data.get("event") if isinstance(data, Mapping) else None
    kind = KINDS.get(event) if isinstance(event, str) else None
    if kind is None:
        raise ValueError(f"not a run record: {data!r:.80}")
    values = {}
    for f in dataclasses.fields(kind):
        if f.name not in data and f.default is not dataclasses.MISSING:
            continue  # a field added later: an older file does not have it
        value = data.get(f.name)
        if f.name == "status":
            value = RunStatus.parse(value)
        elif isinstance(value, float):
            value = finite(value)
        values[f.name] = value
    try:
        return kind(**values)
    except TypeError as e:
        raise ValueError(f"malformed {kind.event} record: {e}") from e


class History(Sequence[Record]):
    """A run's records in order, with what pages ask of them."""

    def __init__(self, records: Iterable[Record] = ()):
        self._records = list(records)

    @classmethod
    def parse(cls, rows: Iterable[Mapping[str, Any] | Record]) -> History:
        """From dicts (a file, a checkpoint) or records; rows that are not records are left out."""
        records = []
        for row in rows:
            if isinstance(row, tuple(KINDS.values())):
                records.append(row)
                continue
            try:
                records.append(parse(row))
            except ValueError:
                continue
        return cls(records)

    def __getitem__(self, i):  # type: ignore[override]
        return self._records[i]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self._records == other._records

    def append(self, record: Record) -> None:
        self._records.append(record)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [to_dict(r) for r in self._records]

    @property
    def steps(self) -> list[StepRecord]:
        return [r for r in self._records if isinstance(r, StepRecord)]

    @property
    def controls(self) -> list[ControlRecord]:
        return [r for r in self._records if isinstance(r, ControlRecord)]

    @property
    def epochs(self) -> list[EpochRecord]:
        return [r for r in self._records if isinstance(r, EpochRecord)]

    @property
    def end(self) -> EndRecord | None:
        ends = [r for r in self._records if isinstance(r, EndRecord)]
        return ends[-1] if ends else None

    @property
    def best_val_acc(self) -> float | None:
        accs = [r.val_acc for r in self.epochs if r.val_acc is not None]
        return max(accs) if accs else None

    @property
    def epochs_since_best(self) -> int:
        """Epochs since the best validation accuracy so far (0: the last epoch was the best, or no validation)."""
        accs = [r.val_acc for r in self.epochs if r.val_acc is not None]
        return len(accs) - 1 - accs.index(max(accs)) if accs else 0

    @property
    def test_acc(self) -> float | None:
        return self.end.test_acc if self.end else None

    @property
    def images_per_s(self) -> float | None:
        """The last whole epoch's speed."""
        return self.epochs[-1].images_per_s if self.epochs else None

    def without_layer_stats(self) -> History:
        """The records without the per-layer norms and histograms (the bulk of a step record; `vanishing` stays)."""
        return History(dataclasses.replace(r, grad_norms=None, weight_norms=None, weight_hist=None)
                       if isinstance(r, StepRecord) and r.grad_norms is not None else r for r in self._records)

    def until_epoch(self, epoch: int) -> History:
        """The records up to the end of `epoch` (what a run resumed from that epoch's checkpoint keeps)."""
        kept = []
        for r in self._records:
            if isinstance(r, EndRecord) or r.epoch > epoch:
                break
            kept.append(r)
        return History(kept)
