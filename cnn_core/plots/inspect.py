"""Figures for looking inside a model: kernels, feature maps, confusion, accuracy, probabilities, saliency."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from cnn_core.inspect import kernel_grid, symmetric_limit
from cnn_core.plots.common import DIVERGING, GRAY, image_figure

ACCENT = "#d62728"
BASE = "#1f77b4"
HEAT = [[0.0, "rgba(255,40,0,0)"], [0.3, "rgba(255,40,0,0.25)"], [1.0, "rgba(255,230,0,0.9)"]]  # clear → hot
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                "#17becf")  # one per class, as plotly's default


def _title(layer: str, shape: tuple[int, ...]) -> str:
    return f"{layer} · {' × '.join(map(str, shape))}" if layer else ""


def kernel_figure(weights: np.ndarray, layer: str = "", pixel: int = 14) -> go.Figure:
    """Kernels (C_out, C_in, kH, kW) as one row per output channel and one column per input channel,
    or (C_out, kH, kW) in a square grid; a diverging scale centred at 0 (red +, blue −)."""
    weights = np.asarray(weights, dtype=np.float32)
    title = _title(layer, weights.shape)
    if weights.ndim == 4 and weights.shape[1] == 1:
        weights = weights[:, 0]  # one input channel: a square grid reads better than one long column
    grid = kernel_grid(weights)
    limit = symmetric_limit(grid) or 1.0
    fig = image_figure(grid, title=title, colorscale=DIVERGING, zmid=0.0, hover="%{z:.3f}")
    fig.update_traces(zmin=-limit, zmax=limit, colorbar=dict(title="weight", thickness=12))
    if weights.ndim == 4:
        kh, kw = weights.shape[2:]
        fig.update_xaxes(showticklabels=True, tickmode="array", title="input channel",
                         tickvals=[c * (kw + 1) + (kw - 1) / 2 for c in range(weights.shape[1])],
                         ticktext=[str(c) for c in range(weights.shape[1])])
        fig.update_yaxes(showticklabels=True, tickmode="array", title="output channel",
                         tickvals=[r * (kh + 1) + (kh - 1) / 2 for r in range(weights.shape[0])],
                         ticktext=[str(r) for r in range(weights.shape[0])])
    fig.update_layout(height=int(min(900, max(220, grid.shape[0] * pixel + 60))))
    return fig


def feature_map_figure(maps: np.ndarray, layer: str = "", ncols: int | None = None, pixel: int = 6) -> go.Figure:
    """A layer's output for one image (C, H, W), tiled into one heatmap (⌈√C⌉ per row by default).

    Non-negative maps (after ReLU or pooling) in gray, white = strong; signed ones on the diverging
    scale centred at 0. One shared scale, so channels compare; the hover names the channel."""
    maps = np.asarray(maps, dtype=np.float32)
    grid = kernel_grid(maps, ncols=ncols)
    channels = np.broadcast_to(np.arange(len(maps), dtype=np.float32)[:, None, None], maps.shape)
    signed = bool(np.nanmin(grid) < 0)
    fig = image_figure(grid, title=_title(layer, maps.shape), colorscale=DIVERGING if signed else GRAY,
                       zmid=0.0 if signed else None, hover="channel %{customdata:.0f}: %{z:.3f}")
    limit = symmetric_limit(grid) or 1.0
    fig.update_traces(customdata=kernel_grid(channels, ncols=ncols), zmin=-limit if signed else 0.0, zmax=limit,
                      colorbar=dict(title="activation", thickness=12))
    fig.update_layout(height=int(min(700, max(220, grid.shape[0] * pixel + 60))))
    return fig


def confusion_figure(cm: np.ndarray, classes: Sequence[str], height: int = 520) -> go.Figure:
    """Confusion matrix (K, K), rows true and columns predicted, as a heatmap with the counts written in.

    The colour scale stops at the largest off-diagonal count so that mistakes stand out (the
    diagonal saturates). Plotly heatmaps send no selection events, so an invisible square marker
    sits on every cell: selecting point i means cell (i // K, i % K).
    """
    cm = np.asarray(cm)
    k = len(classes)
    labels = [str(c) for c in classes]
    off = cm[~np.eye(k, dtype=bool)]
    top = max(int(off.max()) if off.size else 0, 1)
    fig = go.Figure(go.Heatmap(z=cm, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=top,
                               text=cm, texttemplate="%{text}", hoverinfo="skip",
                               colorbar=dict(title="images", thickness=12)))
    rows, cols = np.divmod(np.arange(k * k), k)
    fig.add_trace(go.Scatter(
        x=[labels[c] for c in cols], y=[labels[r] for r in rows], mode="markers", showlegend=False,
        customdata=np.stack([rows, cols, cm.ravel()], axis=1),
        marker=dict(symbol="square", size=max(8, int(0.7 * (height - 120) / k)), color=ACCENT, opacity=0),
        selected=dict(marker=dict(opacity=0.35)), unselected=dict(marker=dict(opacity=0)),
        hovertemplate="true %{y}, predicted %{x}: %{customdata[2]} images<extra></extra>",
    ))
    fig.update_xaxes(title="predicted", type="category", side="top")
    fig.update_yaxes(title="true", type="category", autorange="reversed", scaleanchor="x")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10), clickmode="event+select")
    return fig


def class_accuracy_figure(acc: np.ndarray, classes: Sequence[str], height: int = 300) -> go.Figure:
    """Accuracy (recall) per true class (K,) as bars, the weakest class highlighted; NaN → no bar."""
    acc = np.asarray(acc, dtype=float)
    worst = int(np.nanargmin(acc)) if np.isfinite(acc).any() else -1
    colors = [ACCENT if i == worst else BASE for i in range(len(acc))]
    fig = go.Figure(go.Bar(x=[str(c) for c in classes], y=acc, text=[f"{a:.1%}" if a == a else "" for a in acc],
                           textposition="outside", marker_color=colors, hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    low = np.nanmin(acc) if worst >= 0 else 0.0
    fig.update_yaxes(range=[max(0.0, low - 0.1 * (1 - low) - 0.02), 1.01], tickformat=".0%", title="accuracy")
    fig.update_xaxes(type="category", title="true class")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def probability_figure(probs: np.ndarray, classes: Sequence[str], height: int = 260) -> go.Figure:
    """Class probabilities (K,) as bars, the predicted class highlighted."""
    probs = np.asarray(probs, dtype=float)
    top = int(probs.argmax())
    colors = [ACCENT if i == top else BASE for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=[str(c) for c in classes], y=probs, text=[f"{p:.0%}" for p in probs],
                           textposition="outside", marker_color=colors, hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%", title="probability")
    fig.update_xaxes(type="category")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def saliency_figure(image: np.ndarray, heat: np.ndarray, title: str = "", height: int = 320) -> go.Figure:
    """The model input (S, S) in gray with a saliency map (S, S) in [0, 1] laid over it, clear where 0."""
    fig = image_figure(image, title=title, colorscale=GRAY, show_scale=False, height=height, hover="ink %{z:.2f}")
    fig.add_trace(go.Heatmap(z=np.asarray(heat, dtype=float), colorscale=HEAT, zmin=0, zmax=1,
                             colorbar=dict(title="saliency", thickness=12),
                             hovertemplate="row %{y}, col %{x}: saliency %{z:.2f}<extra></extra>"))
    return fig


def png_data_uri(image: np.ndarray) -> str:
    """(H, W) uint8, or float in [0, 1] → a PNG data URI (small to send, whatever the size)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_strip(images: Sequence[np.ndarray], titles: Sequence[str], ncols: int = 8, cell: int = 120) -> go.Figure:
    """Gray images of any sizes (each (H, W), uint8 or float in [0, 1]) in rows of `ncols`, each titled.

    The grid keeps `ncols` columns even for fewer images, so an image's size does not depend on how many there are."""
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=list(titles), horizontal_spacing=0.02,
                        vertical_spacing=0.3 / nrows)
    for i, im in enumerate(images):
        fig.add_trace(go.Image(source=png_data_uri(im), hoverinfo="skip"), row=i // ncols + 1, col=i % ncols + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_layout(height=nrows * cell + 30, margin=dict(l=5, r=5, t=30, b=5))
    fig.update_annotations(font_size=11)
    return fig


def sweep_figure(values: np.ndarray, probs: np.ndarray, classes: Sequence[str], label: str, at: float | None = None,
                 height: int = 320) -> go.Figure:
    """Class probabilities (steps, K) against a transform's values (steps,): a line per class, the classes that
    ever lead drawn thick; `at` marks the slider's value."""
    probs = np.asarray(probs, dtype=float)
    leaders = set(probs.argmax(axis=1).tolist())
    fig = go.Figure()
    for k, name in enumerate(classes):
        lead = k in leaders
        fig.add_trace(go.Scatter(
            x=values, y=probs[:, k], name=str(name), mode="lines", showlegend=lead,
            line=dict(width=3 if lead else 1, color=CLASS_COLORS[k % len(CLASS_COLORS)]), opacity=1 if lead else 0.35,
            hovertemplate=f"{name}: %{{y:.1%}} at {label} %{{x}}<extra></extra>"))
    if at is not None:
        fig.add_vline(x=at, line=dict(color="#7f7f7f", dash="dot", width=1.2))
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title="probability")
    fig.update_xaxes(title=label)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0), hovermode="x")
    return fig
