"""Class board: every student's run on one chart, a leaderboard and the drawing wall, drawn in the browser from
the board's event stream (ui/board_view.py: built once per change for every page); with ?view=projector, the
projector view (big type, no sidebar, the run the teacher put on the projector first)."""

import streamlit as st

from ui.class_board import class_board
from ui.jobs import classroom
from ui.navigation import through_app
from ui.projector import enter, projected_run

through_app()
projector = st.query_params.get("view") == "projector"
if projector:
    enter()
st.title("🏆 Class board")
room = classroom()
if room is None:
    st.info("No class is running: the board shows a class's runs while a teacher runs one (Class page).")
    st.stop()
if projector:
    projected_run(room)
else:
    st.page_link("pages/board.py", label="Projector view (big type, no sidebar)", icon="📽️",
                 query_params={"view": "projector"})
st.caption(f"Class `{room.id}`" + (f" · lesson: **{room.lesson}**" if room.lesson else "")
           + " · updates as students train, within a second")
class_board(key="class_board", big=projector, projected=room.projected, follow_projected=projector)
