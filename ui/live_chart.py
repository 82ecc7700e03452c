"""Live training curves drawn in the browser from the run's event stream (ui/stream.py): no script reruns
while a run trains, one page rerun when it ends. One run's view also draws its layers' gradient and weight
norms, a histogram of a chosen layer's weights, the vanishing-gradient hint, the marks of what was changed by
hand and the last batch stepped by hand (all from the same pushed records)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from cnn_core.layer_stats import HINT
from cnn_core.plots.training import COLORS, LAYER_COLORS
from cnn_core.runs import RunStatus
from ui.viewport import is_phone

CSS = """
.cnn-live { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #31333f); font-size: 14px; }
.cnn-live .status { margin: 2px 0 6px; }
.cnn-live .facts { margin-top: 6px; font-size: 13px; opacity: .8; }
.cnn-live .bar { height: 6px; border-radius: 3px; background: var(--st-secondary-background-color, #f0f2f6); }
.cnn-live .fill { height: 6px; border-radius: 3px; background: var(--st-primary-color, #ff4b4b); transition: width .4s; }
.cnn-live .grid2 { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 8px; }
.cnn-live .title { font-size: 13px; font-weight: 600; fill: currentColor; }
.cnn-live .tick, .cnn-live .empty { font-size: 11px; fill: currentColor; opacity: .7; }
.cnn-live .grid { stroke: currentColor; opacity: .12; }
.cnn-live .legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; opacity: .85; }
.cnn-live .mark { stroke: #7f7f7f; stroke-dasharray: 3 3; stroke-width: 1.2; }
.cnn-live .mark-label { font-size: 10px; fill: currentColor; opacity: .75; }
.cnn-live .hint { margin: 10px 0 4px; padding: 8px 12px; border-radius: 8px; background: rgba(255, 189, 69, .2); }
.cnn-live .hand-step { margin: 10px 0; padding: 8px 12px; border-radius: 8px; border: 1px solid rgba(49, 51, 63, .2); }
.cnn-live .hand-title { font-weight: 600; margin-bottom: 6px; }
.cnn-live .hand-images { display: flex; flex-wrap: wrap; gap: 6px; }
.cnn-live .hand-images figure { margin: 0; text-align: center; font-size: 12px; }
.cnn-live .hand-images canvas { width: 42px; height: 42px; image-rendering: pixelated; border-radius: 3px;
  display: block; }
.cnn-live .hand-images .wrong { color: #d62728; font-weight: 600; }
.cnn-live .layer-pick { display: block; margin-top: 10px; font-size: 13px; }
.cnn-live .layer-pick select { font: inherit; margin-left: 4px; }
"""

HERE = Path(__file__).parent
_component = st.components.v2.component(
    "cnn_live_curves", js=(HERE / "svg_chart.js").read_text() + (HERE / "live_chart.js").read_text(), css=CSS)


def events_url(run_id: str, share: str | None = None) -> str:
    """The run's stream; with a share token for a visitor who opened a read-only link (the cookie identifies
    the owner, so the owner's own pages need none)."""
    return f"/api/runs/{run_id}/events" + (f"?share={share}" if share else "")


def live_curves(run_ids: Sequence[str], *, key: str, epochs: int = 0, labels: Sequence[str] | None = None,
                on_ended: Callable[[], None] | None = None, share: str | None = None) -> None:
    """Mount the live chart: one run (status, progress and loss/accuracy curves) or several overlaid
    (running train loss, validation accuracy); lower panels on a phone, so that both fit on its screen. When
    every run has ended the page reruns once."""
    runs = [{"id": run_id, "url": events_url(run_id, share), "label": label, "color": COLORS[i % len(COLORS)]}
            for i, (run_id, label) in enumerate(zip(run_ids, labels or run_ids))]
    statuses = {"active": [str(s) for s in RunStatus if s.is_active], "icons": {str(s): s.icon for s in RunStatus},
                "waiting": str(RunStatus.QUEUED), "training": str(RunStatus.RUNNING)}
    _component(key=key, data={"mode": "single" if len(runs) == 1 else "overlay", "runs": runs, "epochs": epochs,
                              "phone": is_phone(), "layer_colors": list(LAYER_COLORS), "hint": HINT, **statuses},
               on_ended_change=on_ended or (lambda: None))
