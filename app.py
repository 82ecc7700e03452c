"""CNN studio: the Streamlit entry point. Page config, navigation and the sidebar status, nothing else."""

from pathlib import Path

import streamlit as st

from ui.jobs import sidebar_status

st.set_page_config(page_title="CNN studio", page_icon="🧠", layout="wide")

SECTIONS = {
    "": [("home.py", "Home", "🏠")],
    "Learn": [("data.py", "Data", "🔢"), ("conv_lab.py", "Convolution lab", "🧮")],
    "Build": [("train.py", "Train", "🏋️"), ("runs.py", "Runs", "📈")],
    "Explore": [("inspect.py", "Inspect", "🔬"), ("draw.py", "Draw", "✏️")],
}
PAGES = Path(__file__).parent / "pages"

nav = {
    section: [st.Page(f"pages/{file}", title=title, icon=icon, default=file == "home.py")
              for file, title, icon in pages if (PAGES / file).exists()]
    for section, pages in SECTIONS.items()
}
page = st.navigation({k: v for k, v in nav.items() if v})
with st.sidebar:
    sidebar_status()
page.run()
