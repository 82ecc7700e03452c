"""CNN studio: the Streamlit entry point. The shell (page config, navigation, sidebar status), then the page."""

from ui.navigation import app_shell

app_shell().run()
