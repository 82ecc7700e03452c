"""The app's shell (page config, sectioned navigation, sidebar status), and deep links to a fresh server."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

from cnn_core.runtime import serve_threads
from ui.classroom import announce_teacher_link
from ui.jobs import sidebar_status

SECTIONS = {
    "": [("home.py", "Home", "🏠")],
    "Learn": [("data.py", "Data", "🔢"), ("conv_lab.py", "Convolution lab", "🧮")],
    "Build": [("train.py", "Train", "🏋️"), ("runs.py", "Runs", "📈")],
    "Explore": [("inspect.py", "Inspect", "🔬"), ("draw.py", "Draw", "✏️")],
    "Teach": [("class.py", "Class", "🧑‍🏫"), ("board.py", "Class board", "🏆")],
}
PAGES = Path(__file__).parents[1] / "pages"


def app_shell() -> StreamlitPage:
    """Page config, the sectioned navigation and the sidebar status; returns the page to run."""
    st.set_page_config(page_title="CNN studio", page_icon="🧠", layout="wide")
    serve_threads()  # torch's threads for this server process: set by the first run, a no-op after
    announce_teacher_link()  # printed once per process
    nav = {
        section: [st.Page(f"pages/{file}", title=title, icon=icon, default=file == "home.py")
                  for file, title, icon in pages if (PAGES / file).exists()]
        for section, pages in SECTIONS.items()
    }
    page = st.navigation({k: v for k, v in nav.items() if v})
    with st.sidebar:
        sidebar_status()
    return page


def through_app() -> None:
    """Call first in every page. Until some session has called `st.navigation`, Streamlit treats a `pages/`
    folder beside app.py as a legacy multipage app and runs a deep-linked page (`/draw`) on its own: no page
    config, file-name navigation, no sidebar. Then the page draws the app's shell itself (its navigation call
    ends that mode for the whole process), so the first visitor of a cold server sees the full app."""
    if PagesManager.uses_pages_directory:
        app_shell()
