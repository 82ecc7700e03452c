"""Runs: the typed run model (status, records, folder layout, settings), the run store, the executors that train
runs (inline, process, ray) and the job manager that queues them. See docs/scale-out.md for Ray."""

from cnn_core.runs.layout import RunFolder
from cnn_core.runs.records import ControlRecord, EndRecord, EpochRecord, HandStepRecord, History, Record, StepRecord
from cnn_core.runs.settings import RunSettings, runs_dir
from cnn_core.runs.status import ACTIVE, RunStatus
from cnn_core.runs.store import RunInfo, RunStore, delete_folder, delete_old_runs

__all__ = ["ACTIVE", "ControlRecord", "EndRecord", "EpochRecord", "HandStepRecord", "History", "JobManager", "Record",
           "RunFolder", "RunInfo", "RunSettings", "RunStatus", "RunStore", "StepRecord", "delete_folder", "delete_old_runs", "runs_dir",
           "threads_for"]


def __getattr__(name: str):
    """JobManager and threads_for load on first use: the manager imports cnn_core.events, which imports the
    records from here (so `import cnn_core.events` first must not need the manager)."""
    if name in ("JobManager", "threads_for"):
        from cnn_core.runs import manager

        return getattr(manager, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
