"""Class board: every student's run on one chart and a leaderboard, refreshed every 2 s; with ?view=projector,
the projector view (big type, no sidebar, the run the teacher put on the projector first)."""

import numpy as np
import streamlit as st

from cnn_core.classroom import ClassStore, board, lesson_steps
from cnn_core.plots.classroom import board_figure
from cnn_core.plots.inspect import image_strip
from cnn_core.runs import RunStatus, runs_dir
from ui.jobs import classroom, job_manager
from ui.navigation import through_app
from ui.projector import enter, follow, projected_run

REFRESH_S = 2.0


@st.cache_data(ttl=1.0, show_spinner=False)
def _entries(root: str, class_id: str):
    """The board of the class, read at most once a second for every session watching it."""
    room = classroom()
    if room is None or room.id != class_id:
        return []
    return board(job_manager().store.list(), room)


@st.fragment(run_every=REFRESH_S)
def live_board(class_id: str) -> None:
    entries = _entries(str(job_manager().store.root), class_id)
    room = classroom()
    steps = lesson_steps(room.lesson) if room else []
    shown = st.segmented_control("Step", ["all", *range(len(steps))], default="all", key="board_step",
                                 format_func=lambda i: "all steps" if i == "all" else f"{i + 1}. {steps[i].title}")
    if shown not in (None, "all"):
        entries = [e for e in entries if e.step == shown]
    if not entries:
        st.info("No runs in this class yet: they appear here as soon as students press Train.")
        wall(class_id)
        return
    active = [e for e in entries if RunStatus.parse(e.state).is_active]
    if active:
        st.markdown("**Training and waiting:** " + ", ".join(
            f"{RunStatus.parse(e.state).icon} {e.name} · {e.model}" for e in active))
    st.plotly_chart(board_figure(entries), key="board_chart")
    st.markdown("**Leaderboard** — click a row to open the run")
    rows = [{"rank": i + 1, "step": e.step + 1, "who": e.name + (" (teacher)" if e.teacher and e.name != "teacher" else ""), "model": e.model,
             "test acc": e.test_acc, "best val acc": e.best_val_acc, "what they changed": e.changes,
             "status": e.state} for i, e in enumerate(entries)]
    picked = st.dataframe(rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key="leaderboard",
                          column_config={"test acc": st.column_config.NumberColumn(format="percent"),
                                         "best val acc": st.column_config.NumberColumn(format="percent")})
    wall(class_id)
    chosen = picked.selection.rows if picked else []
    if chosen:
        st.switch_page("pages/train.py", query_params={"run": entries[chosen[0]].run_id})


def wall(class_id: str) -> None:
    """The drawings students shared, with what each one's model read: where models fail, side by side."""
    drawings = ClassStore(runs_dir()).wall(limit=16)
    if not drawings:
        return
    st.markdown("**Drawing wall** — what each student drew and what their model read")
    st.plotly_chart(image_strip([np.array(d.pixels, dtype=np.uint8) for d in drawings],
                                [f"{d.name}: {d.prediction} ({d.confidence:.0%})" for d in drawings], ncols=8),
                    key="drawing_wall")


through_app()
projector = st.query_params.get("view") == "projector"
if projector:
    enter()
st.title("🏆 Class board")
room = classroom()
if projector:
    follow(room.projected if room else None)
if room is None:
    st.info("No class is running: the board shows a class's runs while a teacher runs one (Class page).")
    st.stop()
if projector:
    projected_run(room)
else:
    st.page_link("pages/board.py", label="Projector view (big type, no sidebar)", icon="📽️",
                 query_params={"view": "projector"})
st.caption(f"Class `{room.id}`" + (f" · lesson: **{room.lesson}**" if room.lesson else "")
           + f" · {len(room.students)} students · refreshed every {REFRESH_S:g} s")
live_board(room.id)
