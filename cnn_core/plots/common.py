"""Figures every page uses: one image as a heatmap, and a grid of small images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

GRAY = "gray"
DIVERGING = "RdBu_r"


def image_figure(image: np.ndarray, title: str = "", colorscale: str = GRAY, zmid: float | None = None,
                 height: int = 320, show_scale: bool = True, hover: str = "row %{y}, col %{x}: %{z:.3f}") -> go.Figure:
    """(H, W) array → heatmap with row 0 at the top, square pixels, the value under the cursor."""
    fig = go.Figure(go.Heatmap(z=np.asarray(image, dtype=float), colorscale=colorscale, zmid=zmid,
                               showscale=show_scale, hovertemplate=hover + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, constrain="domain")
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 8,
               colorscale: str = GRAY, zmid: float | None = None, cell: int = 90) -> go.Figure:
    """Small (H, W) images in a grid of `ncols`, each with an optional title; one shared colour scale."""
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig = make_subplots(rows=nrows, cols=min(ncols, max(n, 1)), subplot_titles=list(titles) if titles else None,
                        horizontal_spacing=0.01, vertical_spacing=0.04 if nrows < 8 else 0.01)
    finite = [np.asarray(im, dtype=float) for im in images]
    zmax = max((np.nanmax(np.abs(im)) for im in finite), default=1.0) if zmid is not None else None
    for i, im in enumerate(finite):
        r, c = divmod(i, ncols)
        fig.add_trace(go.Heatmap(z=im, colorscale=colorscale, zmid=zmid, zmin=-zmax if zmax else None,
                                 zmax=zmax, showscale=i == 0 and zmid is not None,
                                 hovertemplate="%{z:.3f}<extra></extra>"), row=r + 1, col=c + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    for i in range(1, n + 1):  # square pixels in every cell
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_layout(height=nrows * cell + 40, margin=dict(l=5, r=5, t=30, b=5))
    fig.update_annotations(font_size=11)
    return fig
