"""CNN studio: the Streamlit entry point.

`streamlit run app.py` finds the `app` below and serves it: Streamlit's pages, the live-curve stream
(`/api/runs/<id>/events`) and, on a hosted server, the visitor's cookie (both in ui/stream.py). Each
session's script run executes this file as __main__: the shell (page config, navigation, sidebar status),
then the page.
"""

import streamlit as st

from cnn_core.runtime import limit_malloc_arenas
from ui.navigation import app_shell, without_pages_folder_mode
from ui.stream import middleware, routes

limit_malloc_arenas()  # before sessions start threads of their own
without_pages_folder_mode()  # before the first session
app = st.App(__file__, routes=routes(), middleware=middleware())

if __name__ == "__main__":
    app_shell().run()
