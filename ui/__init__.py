"""Streamlit widgets shared by pages (the only UI code outside app.py and pages/)."""
