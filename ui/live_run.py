"""The view of one run: live curves drawn in the browser while it trains; status, metrics and curves once it ended."""

from __future__ import annotations

import streamlit as st

from cnn_core.jobs import ACTIVE_STATUSES, JobManager, RunInfo
from cnn_core.plots.training import curves_figure
from cnn_core.presets import PRESETS
from ui.jobs import access, readable_run, visitor
from ui.live_chart import live_curves
from ui.model_picker import open_run_in

STATUS_ICONS = {"queued": "⏳", "running": "🏃", "finished": "✅", "stopped": "⏹️", "cancelled": "⏹️",
                "diverged": "💥", "early_stopped": "🛑", "interrupted": "⚠️", "failed": "❌"}


def _fmt_pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{x:.2%}"


def _eta(run: RunInfo) -> str:
    eta = run.eta_s
    return "" if eta is None else f" · about {eta:.0f} s left"


def _render(jobs: JobManager, run: RunInfo) -> None:
    icon = STATUS_ICONS.get(run.state, "")
    position = jobs.queue_position(run.id)
    st.markdown(f"**{icon} {run.state}** · `{run.id}`" + (f" · waiting, #{position} in the queue" if position else ""))
    epoch = run.status.get("epoch", 0)
    st.progress(run.progress, text=f"epoch {epoch}/{run.config.epochs} · step {run.status.get('step', 0)}/"
                                   f"{run.status.get('total_steps', '?')}{_eta(run)}")
    if run.state == "failed":
        st.error(f"The run failed: {run.status.get('error', 'unknown error')}")
    if run.state == "diverged":
        st.warning("The loss became NaN or infinite: the learning rate is probably too high. Try 10x smaller.")
    if run.state == "interrupted":
        st.warning("The app stopped while this run trained. Its last checkpoint is kept; start it again to finish.")
    epochs = [r for r in run.history if r["event"] == "epoch"]
    cols = st.columns(4)
    test_acc = run.status.get("test_acc")
    reported = next((p.reported_acc for p in PRESETS.values() if p.config == run.config and p.reported_acc), None)
    versus = f"{(test_acc - reported) * 100:+.2f} pts" if reported and test_acc is not None else None
    cols[0].metric("best val accuracy", _fmt_pct(run.status.get("best_val_acc")))
    cols[1].metric("test accuracy", _fmt_pct(test_acc), delta=versus,
                   help=f"The delta compares with the tutorial's {reported:.2%}." if reported else None)
    cols[2].metric("images / s", f"{epochs[-1]['images_per_s']:.0f}" if epochs else "—")
    cols[3].metric("seconds", f"{run.status.get('elapsed', 0):.1f}")
    if reported:
        st.caption(f"The tutorial behind this recipe reported **{reported:.2%}** test accuracy"
                   + (f"; this run reached **{test_acc:.2%}**." if test_acc is not None else "."))
    if run.history:
        st.plotly_chart(curves_figure(run.history), key=f"curves_{run.id}")
    elif run.state in ACTIVE_STATUSES:
        st.info("Loading data and starting: the first points appear after the first few steps.")


def live_run(jobs: JobManager, run_id: str) -> None:
    """Show a run this visitor may see (else "no run", as for a deleted one). While it is active the browser
    draws its curves from the run's event stream (no reruns); when it ends the page reruns once and shows the
    results. Only its owner (anyone, locally) gets Cancel and the next steps; a share link only looks."""
    run = readable_run(jobs, run_id)
    if run is None:
        st.warning(f"There is no run `{run_id}` (deleted?). Start a new one.")
        return
    rule, me = access(), visitor()
    owner = rule.can_act(me, run.status)
    if owner and rule.private:
        st.caption(f"Share this run, read-only: `/train?run={run_id}&share={rule.share_token(run_id)}` "
                   "(whoever opens it sees its curves and results, and cannot change anything).")
    if run.state in ACTIVE_STATUSES:
        c = run.config
        st.markdown(f"**`{c.model}`** on {c.dataset} · {c.epochs} epochs · batch {c.batch_size} · {c.optimizer} "
                    f"lr {c.lr:g} · `{run_id}`")
        if owner and st.button("Cancel run", key=f"cancel_{run_id}", icon="⏹️"):
            jobs.cancel(run_id)
        live_curves([run_id], key=f"live_{run_id}", epochs=c.epochs, share=me.share if not owner else None)
        return
    _render(jobs, run)
    if owner and run.checkpoint is not None:
        st.markdown("**Next:** look inside the model you trained, or draw a digit for it.")
        inspect, draw = st.columns(2)
        if inspect.button("Inspect this model", icon="🔬", key="to_inspect", width="stretch"):
            open_run_in("pages/inspect.py", run_id)
        if draw.button("Draw for this model", icon="✏️", key="to_draw", width="stretch"):
            open_run_in("pages/draw.py", run_id)
