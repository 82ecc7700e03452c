"""Runs: every run on disk, their curves overlaid (live while they train), sweeps ranked, resume, delete, download."""

import streamlit as st

from cnn_core.plots.training import overlay_figure
from cnn_core.runs import RunInfo, RunStatus
from cnn_core.runs.sweep import label, varying
from ui.jobs import access, job_manager, visitor
from ui.live_chart import live_curves
from ui.navigation import through_app
from ui.viewport import is_phone, plotly_chart

PERCENT = {"best val acc": st.column_config.NumberColumn(format="percent"),
           "test acc": st.column_config.NumberColumn(format="percent")}


def name(run: RunInfo) -> str:
    return f"{run.id} ({run.state.icon} {run.state})"


def compare(runs: list[RunInfo], labels: list[str], key: str) -> None:
    """One chart of the runs: live in the browser while any trains (the page reruns when all end)."""
    if any(run.state.is_active for run in runs):
        live_curves([run.id for run in runs], key=f"{key}_live", labels=labels)
    elif runs:
        histories = {lab: run.history for lab, run in zip(labels, runs)}
        figure = overlay_figure(histories, height=600, columns=1) if is_phone() else overlay_figure(histories)
        plotly_chart(figure, key=key)


def sweep(group: str, members: list[RunInfo]) -> None:
    """A sweep: its runs in one chart, labelled by what varies, and ranked by test accuracy."""
    fields = varying([run.config for run in members]) or ["lr"]
    labels = [label(run.config, fields) for run in members]
    done = sum(run.state.is_final for run in members)
    st.subheader(f"Sweep `{group}`")
    st.progress(done / len(members), text=f"{done} of {len(members)} runs ended")
    compare(members, labels, key=f"sweep_{group}")
    ranked = sorted(zip(labels, members), key=lambda p: -(p[1].history.test_acc or -1.0))
    st.dataframe([{"rank": i + 1, "run": lab, "status": f"{run.state.icon} {run.state}",
                   "test acc": run.history.test_acc, "best val acc": run.history.best_val_acc,
                   "seconds": round(run.status.get("elapsed", 0.0), 1), "id": run.id}
                  for i, (lab, run) in enumerate(ranked)], hide_index=True, width="stretch", column_config=PERCENT)


through_app()
st.title("📈 Runs")
jobs = job_manager()
rule, me = access(), visitor()
runs = [run for run in jobs.store.list() if rule.lists(me, run.status)]  # this visitor's (everyone's locally)
if not runs:
    st.info("No runs yet: start one on the Train page.")
    st.page_link("pages/train.py", label="Go to Train", icon="🏋️")
    st.stop()

by_id = {run.id: run for run in runs}
readable = {run.id: run for run in runs if run.config is not None}
groups: dict[str, list[RunInfo]] = {}
for run in readable.values():
    if run.group:
        groups.setdefault(run.group, []).append(run)

if groups:
    wanted = st.query_params.get("group")
    names = list(groups)
    group = st.selectbox("Sweep", names, index=names.index(wanted) if wanted in groups else 0,
                         format_func=lambda g: f"{g} ({len(groups[g])} runs)")
    sweep(group, sorted(groups[group], key=lambda run: run.id))
    st.divider()

st.subheader("All runs")
rows = [run.summary() for run in runs]
columns = list(dict.fromkeys(column for row in rows for column in row))
st.dataframe(rows, hide_index=True, width="stretch", column_config=PERCENT,  # a phone: the long run id last
             column_order=[c for c in columns if c != "run"] + ["run"] if is_phone() else None)
for run in runs:
    if run.state is RunStatus.UNREADABLE:
        st.warning(f"Run folder `{run.id}` cannot be read: {run.error}")

requested = [i for i in st.query_params.get("compare", "").split(",") if i in readable]
chosen = st.multiselect("Compare runs", list(readable), default=requested or list(readable)[:2],
                        format_func=lambda i: name(readable[i]))
compare([readable[i] for i in chosen], [f"{i} ({readable[i].config.model})" for i in chosen], key="overlay")

st.subheader("One run")
run = by_id[st.selectbox("Run", list(by_id), format_func=lambda i: name(by_id[i]))]
owner = rule.can_act(me, run.status)
cols = st.columns(4)
if run.config is not None:
    cols[0].page_link("pages/train.py", label="Open live view", icon="👀", query_params={"run": run.id})
checkpoint = run.checkpoint
if checkpoint is not None:
    cols[1].download_button("Download checkpoint", checkpoint.read_bytes(), file_name=f"{run.id}.safetensors",
                            icon="💾")
if owner and run.can_resume and not jobs.is_active(run.id):
    if cols[2].button("Resume", icon="▶️", help="Continue from the end of its last whole epoch"):
        try:
            jobs.resume(run.id)
        except ValueError as e:
            st.error(str(e))
        else:
            st.switch_page("pages/train.py", query_params={"run": run.id})
if owner and cols[3].button("Delete run", icon="🗑️", disabled=jobs.is_active(run.id),
                            help="Cancel it first" if jobs.is_active(run.id) else "Deletes its folder and checkpoints"):
    jobs.store.delete(run.id)
    st.rerun()
