"""The view of one run: live curves drawn in the browser while it trains; status, metrics and curves once it ended."""

from __future__ import annotations

import streamlit as st

from cnn_core import presets
from cnn_core.classroom import ClassStore
from cnn_core.layer_stats import vanishing_hint
from cnn_core.plots.training import curves_figure, layer_steps, layers_figure, weight_hist_figure
from cnn_core.runs import JobManager, RunInfo, RunStatus, runs_dir
from ui.jobs import access, classroom, readable_run, visitor
from ui.live_chart import live_curves
from ui.live_controls import live_controls
from ui.model_picker import open_run_in
from ui.viewport import is_phone, plotly_chart


def _fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _reported(run: RunInfo) -> tuple[float | None, str]:
    """What the tutorial behind the run's recipe reported (the recipe is recorded with the run), and who did."""
    return presets.reported(run.recipe)


def _eta(run: RunInfo) -> str:
    eta = run.eta_s
    return "" if eta is None else f" · about {eta:.0f} s left"


def _render(jobs: JobManager, run: RunInfo, owner: bool) -> None:
    state = run.state
    position = jobs.queue_position(run.id)
    by = f" · by **{run.name}**" if run.name else ""
    st.markdown(f"**{state.icon} {state}** · `{run.id}`{by}" + (f" · waiting, #{position} in the queue" if position else ""))
    epoch = run.status.get("epoch", 0)
    st.progress(run.progress, text=f"epoch {epoch}/{run.config.epochs} · step {run.status.get('step', 0)}/"
                                   f"{run.status.get('total_steps', '?')}{_eta(run)}")
    if state is RunStatus.FAILED:
        st.error(f"The run failed: {run.status.get('error', 'unknown error')}")
    if state is RunStatus.DIVERGED:
        st.warning("The loss became NaN or infinite: the learning rate is probably too high. Try 10x smaller.")
    if state is RunStatus.INTERRUPTED:
        st.warning("The app stopped while this run trained. It can continue from the end of its last whole epoch.")
    if owner and state.resumable:
        _resume_button(jobs, run)
    history = run.history
    phone = is_phone()  # four tiles in two rows of two, not one under the other
    cols = [st.container(horizontal=True)] * 4 if phone else st.columns(4)
    test_acc, (reported, reported_by) = history.test_acc, _reported(run)
    versus = f"{(test_acc - reported) * 100:+.2f} pts" if reported and test_acc is not None else None
    tile = {"width": 160} if phone else {}
    cols[0].metric("best val accuracy", _fmt_pct(history.best_val_acc), **tile)
    cols[1].metric("test accuracy", _fmt_pct(test_acc), delta=versus, **tile,
                   help=f"The delta compares with the {reported:.2%} reported with this recipe." if reported else None)
    speed = history.images_per_s
    cols[2].metric("images / s", f"{speed:.0f}" if speed else "—", **tile)
    cols[3].metric("seconds", f"{run.status.get('elapsed', 0):.1f}", **tile)
    if reported:
        st.caption(f"{reported_by} **{reported:.2%}** test accuracy"
                   + (f"; this run reached **{test_acc:.2%}**." if test_acc is not None else "."))
    if run.history:
        figure = curves_figure(run.history, height=860, columns=1) if phone else curves_figure(run.history)
        plotly_chart(figure, key=f"curves_{run.id}")
        _layers(run)
    elif state.is_active:
        st.info("Loading data and starting: the first points appear after the first few steps.")


def _layers(run: RunInfo) -> None:
    """Its layers' gradient and weight norms, the hint if its gradients had vanished, a chosen layer's weights."""
    steps = layer_steps(run.history)
    if not steps:
        return
    st.markdown("**Gradients and weights per layer**")
    if hint := vanishing_hint(steps[-1].vanishing or []):
        st.warning(hint, icon="⚠️")
    plotly_chart(layers_figure(run.history), key=f"layers_{run.id}")
    layer = st.selectbox("Weights of layer", list(steps[-1].weight_hist or {}), key=f"hist_layer_{run.id}")
    if layer:
        plotly_chart(weight_hist_figure(run.history, layer), key=f"hist_{run.id}")


def _resume_button(jobs: JobManager, run: RunInfo) -> None:
    if not run.can_resume:
        st.caption("It ended before its first epoch did: there is nothing to continue from. Start it again.")
        return
    done = run.history.epochs[-1].epoch if run.history.epochs else 0
    if st.button(f"Resume from epoch {done}", key=f"resume_{run.id}", icon="▶️",
                 help="Continue with the model, optimizer, schedule and random state saved after that epoch: "
                      "it ends as if it had never stopped."):
        try:
            jobs.resume(run.id)
        except ValueError as e:
            st.error(str(e))
            return
        st.rerun()


def projector_button(room, run_id: str) -> None:
    """The teacher's: put this run on the projector view (the Class board with ?view=projector)."""
    if room.projected == run_id:
        st.caption("📽️ This run is on the projector.")
    elif st.button("Put on the projector", key=f"project_{run_id}", icon="📽️"):
        ClassStore(runs_dir()).project(run_id)
        st.toast("On the projector: the projector view follows.", icon="📽️")


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@st.fragment(run_every=2.0)
def place_in_line(jobs: JobManager, run_id: str) -> None:
    """While the run waits: its place in line and about how long until it starts (refreshed every 2 s)."""
    place = jobs.queue_position(run_id)
    if place is None:
        return
    wait = jobs.wait_estimate(run_id)
    st.info(f"⏳ {ordinal(place)} in line" + (f", about {wait:.0f} s" if wait is not None else "")
            + ": runs take fair turns, each person's first run before anyone's second.")


def live_run(jobs: JobManager, run_id: str) -> None:
    """Show a run this visitor may see (else "no run", as for a deleted one). While it is active the browser
    draws its curves from the run's event stream (no reruns); when it ends the page reruns once and shows the
    results. Only its owner (anyone, locally) gets Cancel, the live controls and the next steps (the teacher too,
    in a class); a share link only looks."""
    run = readable_run(jobs, run_id)
    if run is None:
        st.warning(f"There is no run `{run_id}` (deleted?). Start a new one.")
        return
    rule, me = access(), visitor()
    owner = rule.can_act(me, run.status)
    room = classroom()
    if room is not None and me.teacher:
        projector_button(room, run_id)
    if owner and rule.private:
        st.caption(f"Share this run, read-only: `/train?run={run_id}&share={rule.share_token(run_id)}` "
                   "(whoever opens it sees its curves and results, and cannot change anything).")
    if run.state is RunStatus.UNREADABLE:
        st.error(f"Run `{run_id}` cannot be read: {run.error}")
        return
    if run.state.is_active:
        c = run.config
        by = f" · by **{run.name}**" if run.name else ""
        st.markdown(f"**`{c.model}`** on {c.dataset} · {c.epochs} epochs · batch {c.batch_size} · {c.optimizer} "
                    f"lr {c.lr:g} · `{run_id}`{by}")
        if owner and st.button("Cancel run", key=f"cancel_{run_id}", icon="⏹️"):
            jobs.cancel(run_id)
        place_in_line(jobs, run_id)
        controls_first = owner and not is_phone()  # a phone: the curves right under the run's line, controls below
        if controls_first:
            live_controls(jobs, run_id, c, rule.can_pause(me, run.status), rule.mode)
        live_curves([run_id], key=f"live_{run_id}", epochs=c.epochs, share=me.share if not owner else None)
        if owner and not controls_first:
            live_controls(jobs, run_id, c, rule.can_pause(me, run.status), rule.mode)
        return
    _render(jobs, run, owner)
    if owner and run.checkpoint is not None:
        st.markdown("**Next:** look inside the model you trained, or draw a digit for it.")
        inspect, draw = st.columns(2)
        if inspect.button("Inspect this model", icon="🔬", key="to_inspect", width="stretch"):
            open_run_in("pages/inspect.py", run_id)
        if draw.button("Draw for this model", icon="✏️", key="to_draw", width="stretch"):
            open_run_in("pages/draw.py", run_id)
