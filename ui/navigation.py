"""The app's shell (page config, sectioned navigation, sidebar status, the screen's width), and Streamlit's
pages-folder mode kept out of the way."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

from cnn_core.runtime import serve_threads
from ui.classroom import announce_teacher_link
from ui.jobs import sidebar_status
from ui.viewport import probe

SECTIONS = {
    "": [("home.py", "Home", "🏠")],
    "Learn": [("data.py", "Data", "🔢"), ("conv_lab.py", "Convolution lab", "🧮")],
    "Build": [("train.py", "Train", "🏋️"), ("runs.py", "Runs", "📈")],
    "Explore": [("inspect.py", "Inspect", "🔬"), ("draw.py", "Draw", "✏️"), ("examples.py", "Your examples", "🧑‍🎨")],
    "Teach": [("class.py", "Class", "🧑‍🏫"), ("board.py", "Class board", "🏆")],
}
PAGES = Path(__file__).parents[1] / "pages"


def app_shell() -> StreamlitPage:
    """Page config, the sectioned navigation, the sidebar status and the screen's width (asked once per
    session, ui/viewport.py); returns the page to run."""
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
        probe()
    return page


def without_pages_folder_mode() -> None:
    """Call once, when the server imports app.py. A `pages/` folder beside app.py makes Streamlit start in its
    legacy pages-folder mode, until some session calls `st.navigation`: a fresh server's first visitor who
    deep-linked to a page (`/train`) got the page run alone, and the next run (their first click, or the width
    probe's answer) redrew its widgets as new ones, at their defaults instead of the values the page had set (the
    Train form's learning rate at 0, its Train button disabled). app.py names every page: that mode is never
    wanted."""
    PagesManager.uses_pages_directory = False


def through_app() -> None:
    """Call first in every page. In Streamlit's pages-folder mode (AppTest runs every page in it; a server no
    longer does, see `without_pages_folder_mode`) a page runs on its own: no page config, file-name navigation,
    no sidebar. Then the page draws the app's shell itself, so that it shows the full app."""
    if PagesManager.uses_pages_directory:
        app_shell()
