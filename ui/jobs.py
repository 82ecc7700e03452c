"""The process-wide job manager (one per runs folder), who this session is (its visitor and the access rule),
and the sidebar's device/active-run status."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import streamlit as st
import torch

from cnn_core.access import VISITOR_COOKIE, Access, Visitor, new_key, owner_tag, server_access
from cnn_core.classroom import SERVER_CORES, Classroom, ClassStore
from cnn_core.hosted import HostedLimits
from cnn_core.runs import JobManager, RunInfo, RunSettings, RunStore, runs_dir
from cnn_core.runs.executors import make_executor


@st.cache_resource
def _manager(root: str, executor: str, warm_workers: int, ray_address: str | None, max_concurrent: int,
             max_run_age_s: float | None) -> JobManager:
    settings = RunSettings(Path(root), executor, max_concurrent, warm_workers, ray_address)
    return JobManager(RunStore(settings.runs_dir), make_executor(settings), max_concurrent=max_concurrent,
                      max_run_age_s=max_run_age_s)


def hosted_limits() -> HostedLimits:
    return HostedLimits.from_env()


def job_manager() -> JobManager:
    """Shared by every session of this process, made from the run settings (cnn_core.runs.settings: the runs
    folder, and the executor: by default each run trains in a process of its own; inline; or Ray).

    Hosted (CNN_HOSTED=1): the hosted concurrency limit, and the manager's own housekeeping deletes runs
    past their age (reading this, as every sidebar refresh does, changes nothing)."""
    limits, s = hosted_limits(), RunSettings.from_env()
    concurrent = limits.max_concurrent_runs if limits.enabled else s.max_concurrent
    jobs = _manager(str(s.runs_dir.resolve()), s.executor, s.warm_workers, s.ray_address, concurrent,
                    limits.max_run_age_s if limits.enabled else None)
    room = classroom()
    if room is None:
        jobs.configure(concurrent, None, None)
    else:  # a class: its runs at once, one training and one waiting per student, the teacher's first; a core
        c = room.limits  # left to the server that thirty sessions keep busy (docs/performance.md, a class)
        jobs.configure(c.runs_at_once, c.running_per_student, c.waiting_per_student, {room.teacher},
                       reserved_cores=SERVER_CORES)
    return jobs


def classroom() -> Classroom | None:
    """The class in progress on this server, if any (read from disk: every process sees the same class)."""
    return ClassStore(runs_dir()).current()


@st.cache_resource
def _access(root: str, hosted: str, private: str, in_class: bool) -> Access:
    return server_access(Path(root))


def access() -> Access:
    """The access rule of this server: local, hosted (CNN_HOSTED=1 with private runs), or a class."""
    root = runs_dir().resolve()
    return _access(str(root), os.environ.get("CNN_HOSTED", "0"), os.environ.get("CNN_PRIVATE_RUNS", "1"),
                   ClassStore(root).path.exists())


def visitor_key() -> str:
    """This visitor's secret key: the cookie's (set by app.py's middleware), else one kept for this session."""
    cookie = st.context.cookies.get(VISITOR_COOKIE)
    return cookie if isinstance(cookie, str) and cookie else st.session_state.setdefault("visitor_key", new_key())


def visitor() -> Visitor:
    """Who this session is: locally nobody in particular; hosted or in a class, the secret key of the visitor's
    cookie, plus the share token of the link, if any; in a class, whether it is the teacher."""
    if not access().private:
        return Visitor()
    return visitor_of(visitor_key(), st.query_params.get("share"))


def visitor_of(key: str | None, share: str | None = None) -> Visitor:
    """The visitor with this secret key (the teacher when it is the class's teacher's key) and share token; also
    for a request outside any session (a route of ui/stream.py), whose key is its cookie's."""
    room = classroom()
    teacher = room is not None and bool(key) and hmac.compare_digest(owner_tag(key), room.teacher)
    return Visitor(key=key or None, teacher=teacher, share=share)


def readable_run(jobs: JobManager, run_id: str) -> RunInfo | None:
    """The run if it exists and this visitor may see it; None otherwise (the same for both: a stranger's run
    id reads as not found)."""
    try:
        run = jobs.store.open(run_id)
    except KeyError:
        return None
    if run.config is None:  # unreadable: shown where nobody owns anything, else nobody can tell whose it is
        return None if access().private else run
    return run if access().can_read(visitor(), run.id, run.status) else None


def device_label() -> str:
    if torch.cuda.is_available():
        return f"GPU · {torch.cuda.get_device_name(0)}"
    return f"CPU · {os.cpu_count()} cores"


SIDEBAR_REFRESH_S = 5.0  # the one timed fragment of every page: cheap, and not a curve (those are pushed)


@st.fragment(run_every=SIDEBAR_REFRESH_S)
def sidebar_status() -> None:
    """Device, and the active runs with their progress (refreshed every few seconds)."""
    st.caption(f"Device: **{device_label()}**")
    jobs, rule, me = job_manager(), access(), visitor()
    mine, others = [], 0
    for run_id in jobs.active_runs():
        try:
            run = jobs.store.read(run_id, history=False)  # a progress line needs no metrics
        except (KeyError, OSError, ValueError):
            continue
        if rule.lists(me, run.status):
            mine.append(run)
        else:
            others += 1
    for run in mine[:3]:
        position = jobs.queue_position(run.id)
        label = f"waiting · #{position} in queue" if position else f"{run.state} · epoch {run.status.get('epoch', 0)}"
        name = run.config.model if run.config else run.id
        st.progress(run.progress, text=f"[{name}]({_run_link(run.id)}) {label}")
    if others:  # other visitors' runs: how busy the queue is, nothing more
        st.caption(f"{others} other run{'s' if others > 1 else ''} training or waiting")


def _run_link(run_id: str) -> str:
    return f"/train?run={run_id}"
