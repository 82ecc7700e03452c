"""The process-wide job manager (one per runs folder) and the sidebar's device/active-run status."""

from __future__ import annotations

import os

import streamlit as st
import torch

from cnn_core.jobs import JobManager, RunStore, runs_dir


@st.cache_resource
def _manager(root: str, max_concurrent: int) -> JobManager:
    return JobManager(RunStore(root), max_concurrent=max_concurrent)


def job_manager() -> JobManager:
    """Shared by every session of this process; the runs folder is $CNN_RUNS_DIR (default runs/)."""
    return _manager(str(runs_dir().resolve()), int(os.environ.get("CNN_MAX_CONCURRENT", "1")))


def device_label() -> str:
    if torch.cuda.is_available():
        return f"GPU · {torch.cuda.get_device_name(0)}"
    return f"CPU · {torch.get_num_threads()} threads"


@st.fragment(run_every=2.0)
def sidebar_status() -> None:
    """Device, and the active run with its progress (refreshed every 2 s)."""
    st.caption(f"Device: **{device_label()}**")
    jobs = job_manager()
    for run_id in jobs.active_runs()[:3]:
        run = jobs.store.read(run_id)
        position = jobs.queue_position(run_id)
        label = f"waiting · #{position} in queue" if position else f"{run.state} · epoch {run.status.get('epoch', 0)}"
        st.progress(run.progress, text=f"[{run.config.model}]({_run_link(run_id)}) {label}")


def _run_link(run_id: str) -> str:
    return f"/train?run={run_id}"
