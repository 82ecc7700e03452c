"""RunStatus: every state a run can be in, and what each means for the pages and the queue."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status, stored as its value in status.json (a str, so JSON and comparisons stay plain)."""

    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"
    FINISHED = "finished"  # every epoch done
    EARLY_STOPPED = "early_stopped"  # validation accuracy stopped improving
    STOPPED = "stopped"  # asked to stop (Cancel on a running run): it keeps its checkpoints and can resume
    CANCELLED = "cancelled"  # taken out of the queue before it started
    DIVERGED = "diverged"  # the loss became NaN or infinite
    INTERRUPTED = "interrupted"  # the app that ran it went away mid-run: can resume
    FAILED = "failed"  # an error, or its worker died (the reason is in status.json's "error")
    UNREADABLE = "unreadable"  # its folder cannot be read (the reason is in RunInfo.error)

    @property
    def is_active(self) -> bool:
        """Queued or training: a worker owns it, nobody may delete it."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def is_final(self) -> bool:
        """Ended, one way or another: nothing will write to it unless it is resumed."""
        return not self.is_active and self is not RunStatus.UNREADABLE

    @property
    def succeeded(self) -> bool:
        """Trained to its end (all epochs, or until early stopping)."""
        return self in (RunStatus.FINISHED, RunStatus.EARLY_STOPPED)

    @property
    def resumable(self) -> bool:
        """Ended before its last epoch for a reason that resuming can get past."""
        return self in (RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED)

    @property
    def icon(self) -> str:
        return _ICONS[self]

    @classmethod
    def parse(cls, value: object) -> RunStatus:
        """The status a status.json names; UNREADABLE for anything else."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNREADABLE


_ICONS = {RunStatus.QUEUED: "⏳", RunStatus.RUNNING: "🏃", RunStatus.FINISHED: "✅", RunStatus.EARLY_STOPPED: "🛑",
          RunStatus.STOPPED: "⏹️", RunStatus.CANCELLED: "⏹️", RunStatus.DIVERGED: "💥", RunStatus.INTERRUPTED: "⚠️",
          RunStatus.FAILED: "❌", RunStatus.UNREADABLE: "❓"}
ACTIVE = tuple(s for s in RunStatus if s.is_active)
