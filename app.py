"""CNN studio: the Streamlit entry point.

`streamlit run app.py` finds the `app` below and serves it: Streamlit's pages plus the live-curve stream
(`/api/runs/<id>/events`, ui/stream.py). Each session's script run executes this file as __main__: the
shell (page config, navigation, sidebar status), then the page.
"""

import streamlit as st

from ui.navigation import app_shell
from ui.stream import routes

app = st.App(__file__, routes=routes())

if __name__ == "__main__":
    app_shell().run()
