"""The process-wide job manager (one per runs folder) and the sidebar's device/active-run status."""

from __future__ import annotations

import os
import uuid

import streamlit as st
import torch

from cnn_core.hosted import HostedLimits
from cnn_core.jobs import JobManager, RunStore, runs_dir


@st.cache_resource
def _manager(root: str, max_concurrent: int, max_run_age_s: float | None, executor: str) -> JobManager:
    return JobManager(RunStore(root), max_concurrent=max_concurrent, max_run_age_s=max_run_age_s, executor=executor)


def hosted_limits() -> HostedLimits:
    return HostedLimits.from_env()


def job_manager() -> JobManager:
    """Shared by every session of this process; the runs folder is $CNN_RUNS_DIR (default runs/).

    Hosted (CNN_HOSTED=1): the hosted concurrency limit, and the manager's own housekeeping deletes runs
    past their age (reading this, as every sidebar refresh does, changes nothing). Each run trains in a
    process of its own ($CNN_EXECUTOR, default "process"; "thread" trains inside the server)."""
    limits = hosted_limits()
    concurrent = limits.max_concurrent_runs if limits.enabled else int(os.environ.get("CNN_MAX_CONCURRENT", "1"))
    return _manager(str(runs_dir().resolve()), concurrent, limits.max_run_age_s if limits.enabled else None,
                    os.environ.get("CNN_EXECUTOR", "process"))


def visitor() -> str | None:
    """Whose runs this session sees: everyone's locally; hosted with private runs, this visitor's only
    (an id kept in the URL as ?me=…, so a refresh keeps it)."""
    limits = hosted_limits()
    if not (limits.enabled and limits.private_runs):
        return None
    me = st.query_params.get("me") or st.session_state.get("visitor") or uuid.uuid4().hex[:12]
    st.session_state["visitor"] = st.query_params["me"] = me
    return me


def device_label() -> str:
    if torch.cuda.is_available():
        return f"GPU · {torch.cuda.get_device_name(0)}"
    return f"CPU · {os.cpu_count()} cores"


SIDEBAR_REFRESH_S = 5.0  # the one timed fragment of every page: cheap, and not a curve (those are pushed)


@st.fragment(run_every=SIDEBAR_REFRESH_S)
def sidebar_status() -> None:
    """Device, and the active runs with their progress (refreshed every few seconds)."""
    st.caption(f"Device: **{device_label()}**")
    jobs = job_manager()
    for run_id in jobs.active_runs()[:3]:
        run = jobs.store.read(run_id)
        position = jobs.queue_position(run_id)
        label = f"waiting · #{position} in queue" if position else f"{run.state} · epoch {run.status.get('epoch', 0)}"
        st.progress(run.progress, text=f"[{run.config.model}]({_run_link(run_id)}) {label}")


def _run_link(run_id: str) -> str:
    return f"/train?run={run_id}"
