"""The class board drawn in the browser from its event stream (ui/board_view.py, ui/class_board.js)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from cnn_core.plots.training import COLORS

BOARD_URL = "/api/class/board/events"

CSS = """
.cnn-board { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #31333f); font-size: 14px; }
.cnn-board .note { font-size: 13px; opacity: .75; margin-bottom: 6px; }
.cnn-board .info { padding: 12px 16px; border-radius: 8px; background: rgba(28, 131, 225, .1); margin: 8px 0; }
.cnn-board .steps { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0 10px; }
.cnn-board .steps button { font: inherit; padding: 4px 12px; border-radius: 16px; cursor: pointer;
  border: 1px solid rgba(49, 51, 63, .2); background: transparent; color: inherit; }
.cnn-board .steps button.on { border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b); }
.cnn-board .active { margin: 4px 0 8px; }
.cnn-board .heading { font-weight: 600; margin: 14px 0 6px; }
.cnn-board .title { font-size: 13px; font-weight: 600; fill: currentColor; }
.cnn-board .tick, .cnn-board .empty { font-size: 11px; fill: currentColor; opacity: .7; }
.cnn-board .grid { stroke: currentColor; opacity: .12; }
.cnn-board .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; opacity: .85; }
@media (max-width: 640px) { .cnn-board .steps button { padding: 10px 14px; } }  /* a thumb's size on a phone */
.cnn-board .scroll { overflow-x: auto; }
.cnn-board table { border-collapse: collapse; width: 100%; font-size: 13px; }
.cnn-board th, .cnn-board td { text-align: left; padding: 4px 8px; border-bottom: 1px solid rgba(49, 51, 63, .1); }
.cnn-board tbody tr { cursor: pointer; } .cnn-board tbody tr:hover { background: rgba(49, 51, 63, .05); }
.cnn-board tr.teacher { font-weight: 600; }
.cnn-board a { color: inherit; }
.cnn-board .wall { display: flex; flex-wrap: wrap; gap: 10px; }
.cnn-board figure { margin: 0; text-align: center; font-size: 12px; }
.cnn-board img { image-rendering: pixelated; border: 1px solid rgba(49, 51, 63, .2); border-radius: 4px; }
.cnn-board.big { font-size: 26px; } .cnn-board.big .note, .cnn-board.big table, .cnn-board.big .legend,
.cnn-board.big figure { font-size: 22px; } .cnn-board.big .title { font-size: 22px; }
.cnn-board.big .tick { font-size: 18px; }
"""

HERE = Path(__file__).parent
_component = st.components.v2.component(
    "cnn_class_board", js=(HERE / "svg_chart.js").read_text() + (HERE / "class_board.js").read_text(), css=CSS)


def class_board(*, key: str, big: bool = False, projected: str | None = None, follow_projected: bool = False,
                on_rerun: Callable[[], None] | None = None) -> None:
    """Mount the live board. The page reruns once when the class ends, and, with `follow_projected`, when the
    teacher projects a run other than `projected`."""
    data = {"url": BOARD_URL, "big": big, "colors": list(COLORS)}
    if follow_projected:
        data["projected"] = projected
    _component(key=key, data=data, on_rerun_change=on_rerun or (lambda: None))
