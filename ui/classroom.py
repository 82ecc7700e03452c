"""Class helpers for the pages: the class link and its QR code, who this session is in the class, the teacher
link printed once when the app starts."""

from __future__ import annotations

import io
import socket

import streamlit as st

from cnn_core.access import owner_tag
from cnn_core.classroom import ClassStore, is_teacher_token, teacher_token
from cnn_core.runs import runs_dir
from ui.jobs import classroom, visitor, visitor_key


def lan_host() -> str:
    """This machine's address on the local network (what a student's phone can reach), else localhost."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the outgoing interface
        return probe.getsockname()[0]
    except OSError:
        return "localhost"
    finally:
        probe.close()


def class_link() -> str:
    """The link students open: this server's address as the network sees it (the browser's, when it is not
    this machine's own name)."""
    host = st.context.headers.get("host") or ""
    name = host.split(":")[0]
    if not host or name in ("localhost", "127.0.0.1", "::1", "[::1]"):
        host = f"{lan_host()}:{st.get_option('server.port')}"
    return f"http://{host}/class"


def qr_png(text: str) -> bytes:
    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=10, border=2)
    return out.getvalue()


@st.cache_resource
def announce_teacher_link() -> str:
    """Print the teacher link to the terminal once per process (as Jupyter prints its token)."""
    link = f"http://localhost:{st.get_option('server.port')}/class?teacher={teacher_token(runs_dir())}"
    print(f"\n  CNN studio — to teach a class, open the teacher link:\n  {link}\n", flush=True)
    return link


def becomes_teacher() -> bool:
    """Whether this session opened the teacher link (the token in ?teacher=, compared in constant time)."""
    token = st.query_params.get("teacher")
    if token is not None and is_teacher_token(runs_dir(), token):
        st.session_state["teacher_token_ok"] = True
    return bool(st.session_state.get("teacher_token_ok"))


def is_teacher() -> bool:
    """The class's teacher: the visitor whose cookie key leads the class (ui.jobs.visitor), or who opened the
    teacher link in this session."""
    return becomes_teacher() or visitor().teacher


def class_store() -> ClassStore:
    return ClassStore(runs_dir())


def share_button(image, prediction: str, confidence: float, model: str) -> None:
    """In a class: "Share with the class" puts this drawing and its reading on the class board's wall."""
    room = classroom()
    if room is None or room.name_of(owner_tag(visitor_key())) is None:
        return
    if st.button("Share with the class", icon="📌", key="share_drawing",
                 help="Your drawing and what your model read appear on the class board's drawing wall."):
        class_store().share_drawing(owner_tag(visitor_key()), image, prediction, confidence, model)
        st.toast("On the class board's drawing wall.", icon="📌")
