"""Live controls of a training run (its owner's, or the teacher's in a class): set lr and momentum, pause, step one
batch at a time, resume. Each press reruns this fragment only; the run applies the command between two steps and
the live chart (ui/live_chart.js) draws what changed from the run's pushed records."""

from __future__ import annotations

import streamlit as st

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.events import Command
from cnn_core.runs import JobManager

HELP = ("Changes apply at the next step and are marked on the curves. Setting the learning rate or momentum by "
        "hand ends the schedule, if the run has one: from that step on both stay where you put them. Momentum is "
        "SGD's momentum, or Adam's β1; plain SGD has none.")
NO_PAUSE = {"class": "In a class only the teacher pauses runs: a paused run keeps its training slot while others wait.",
            "hosted": "Pause is not offered on a shared server: a paused run would keep its training slot from "
                      "others."}


def momentum_of(config: TrainConfig, status: dict) -> float | None:
    """The run's momentum as it trains now (SGD's momentum, Adam's β1); None for plain SGD."""
    if config.optimizer == "sgd":
        return None
    if status.get("momentum") is not None:
        return status["momentum"]
    return config.momentum if config.optimizer == "momentum" else 0.9  # torch's default betas: (0.9, 0.999)


def _send(jobs: JobManager, run_id: str, action: str, with_values: bool = False, has_momentum: bool = False) -> None:
    """A button's callback (it runs before the rerun, so the buttons then show the new state): one command to the
    run; a value out of range, or a run that ended meanwhile, is kept as a sentence for the page."""
    lr = momentum = None
    if with_values:
        lr = float(st.session_state[f"steer_lr_{run_id}"])
        momentum = float(st.session_state[f"steer_momentum_{run_id}"]) if has_momentum else None
    try:
        jobs.steer(run_id, Command(action, lr=lr, momentum=momentum))
    except (ConfigError, ValueError) as e:
        st.session_state[f"steer_error_{run_id}"] = str(e)


@st.fragment
def live_controls(jobs: JobManager, run_id: str, config: TrainConfig, can_pause: bool, mode: str) -> None:
    """The controls for one active run: lr and momentum with Apply; Pause, or Step one batch and Resume."""
    try:
        status = jobs.store.read_status(run_id)
    except (KeyError, OSError, ValueError):
        return
    momentum = momentum_of(config, status)
    with st.container(border=True, key=f"controls_{run_id}"):
        st.markdown("**Steer it while it trains**", help=HELP)
        if error := st.session_state.pop(f"steer_error_{run_id}", None):
            st.error(error)
        lr_col, momentum_col, apply_col = st.columns([1.2, 1.2, 1], vertical_alignment="bottom")
        lr_col.number_input("Learning rate", min_value=0.0, max_value=10.0, value=float(status.get("lr") or config.lr),
                            step=1e-4, format="%.5f", key=f"steer_lr_{run_id}")
        momentum_col.number_input(
            "Momentum" if config.optimizer == "momentum" else "Momentum (Adam's β1)", min_value=0.0, max_value=0.99,
            value=float(momentum or 0.0), step=0.05, key=f"steer_momentum_{run_id}", disabled=momentum is None,
            help="Plain SGD has no momentum: train with the momentum optimizer to steer it." if momentum is None
            else None)
        apply_col.button("Apply", key=f"steer_apply_{run_id}", icon="🎛️", width="stretch", on_click=_send,
                         args=(jobs, run_id, "set", True, momentum is not None))
        if not can_pause:
            st.caption(NO_PAUSE.get(mode, ""))
            return
        pause_col, step_col = st.columns(2)
        if jobs.paused(run_id):
            pause_col.button("Resume", key=f"steer_resume_{run_id}", icon="▶️", width="stretch", on_click=_send,
                             args=(jobs, run_id, "resume"))
            step_col.button("Step one batch", key=f"steer_step_{run_id}", icon="⏭️", width="stretch",
                            on_click=_send, args=(jobs, run_id, "step"),
                            help="Train on one batch, then wait again: the chart shows that batch, its loss and how "
                                 "far the step moved the weights.")
        else:
            pause_col.button("Pause", key=f"steer_pause_{run_id}", icon="⏸️", width="stretch", on_click=_send,
                             args=(jobs, run_id, "pause"),
                             help="Training waits after the step in progress (using no CPU) until you resume it.")
