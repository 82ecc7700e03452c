"""A run's records: what `fit` reports (step, epoch, end), typed, and the one place they are written and parsed.

On disk and on the wire a record is a JSON object with an "event" key ("step", "epoch" or "end"); a value
that is not a finite number (no validation set, a diverged loss) is written as null and read as None.
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


Record = StepRecord | EpochRecord | EndRecord
KINDS: dict[str, type[Record]] = {k.event: k for k in (StepRecord, EpochRecord, EndRecord)}


def to_dict(record: Record) -> dict[str, Any]:
    """The record as written to metrics.jsonl, checkpoints and the live stream."""
    out: dict[str, Any] = {"event": record.event}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        out[f.name] = finite(value) if isinstance(value, float) else value
    return out


def parse(data: Mapping[str, Any]) -> Record:
    """A record from its dict; ValueError for anything that is not one."""
    event = data.get("event") if isinstance(data, Mapping) else None
    kind = KINDS.get(event) if isinstance(event, str) else None
    if kind is None:
        raise ValueError(f"not a run record: {data!r:.80}")
    values = {}
    for f in dataclasses.fields(kind):
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
            if isinstance(row, (StepRecord, EpochRecord, EndRecord)):
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

    def until_epoch(self, epoch: int) -> History:
        """The records up to the end of `epoch` (what a run resumed from that epoch's checkpoint keeps)."""
        kept = []
        for r in self._records:
            if isinstance(r, EndRecord) or r.epoch > epoch:
                break
            kept.append(r)
        return History(kept)
