"""Runs: every run on disk, their curves overlaid (live while they train), delete, download a checkpoint."""

import streamlit as st

from cnn_core.jobs import ACTIVE_STATUSES
from cnn_core.plots.training import overlay_figure
from ui.jobs import access, job_manager, visitor
from ui.live_chart import live_curves
from ui.navigation import through_app

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
st.dataframe([run.summary() for run in runs], hide_index=True, width="stretch",
             column_config={"best val acc": st.column_config.NumberColumn(format="percent"),
                            "test acc": st.column_config.NumberColumn(format="percent")})

requested = [i for i in st.query_params.get("compare", "").split(",") if i in by_id]
chosen = st.multiselect("Compare runs", list(by_id), default=requested or list(by_id)[:2],
                        format_func=lambda i: f"{i} ({by_id[i].state})")
if any(by_id[i].state in ACTIVE_STATUSES for i in chosen):  # drawn live in the browser; the page reruns when all end
    live_curves(chosen, key="overlay_live", labels=[f"{i} ({by_id[i].config.model})" for i in chosen])
elif chosen:
    st.plotly_chart(overlay_figure({i: by_id[i].history for i in chosen}), key="overlay")

st.subheader("One run")
run = by_id[st.selectbox("Run", list(by_id), format_func=lambda i: f"{i} ({by_id[i].state})")]
cols = st.columns(3)
cols[0].page_link("pages/train.py", label="Open live view", icon="👀", query_params={"run": run.id})
checkpoint = run.checkpoint
if checkpoint is not None:
    cols[1].download_button("Download checkpoint", checkpoint.read_bytes(), file_name=f"{run.id}.safetensors",
                            icon="💾")
if cols[2].button("Delete run", icon="🗑️", disabled=jobs.is_active(run.id),
                  help="Cancel it first" if jobs.is_active(run.id) else "Deletes its folder and checkpoints"):
    jobs.store.delete(run.id)
    st.rerun()
