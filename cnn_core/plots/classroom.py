"""The class board's chart: every student's validation accuracy against epoch, one named line each."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from cnn_core.classroom import BoardEntry
from cnn_core.plots.training import COLORS


def board_figure(entries: Sequence[BoardEntry], height: int = 460) -> go.Figure:
    """Validation accuracy by epoch, one line per run named after its student; the teacher's drawn thick."""
    fig = go.Figure()
    for i, e in enumerate(entries):
        fig.add_trace(go.Scatter(
            x=e.epochs, y=e.val_acc, name=f"{e.name} · {e.model}", mode="lines+markers",
            line=dict(color="#111111" if e.teacher else COLORS[i % len(COLORS)], width=5 if e.teacher else 2),
            marker=dict(size=9 if e.teacher else 6),
            hovertemplate=f"{e.name} · {e.model}<br>epoch %{{x}}: %{{y:.2%}}<extra>{e.changes}</extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.15),
                      xaxis=dict(title="epoch", dtick=1), yaxis=dict(title="validation accuracy", tickformat=".0%"))
    return fig
