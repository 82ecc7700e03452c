"""Figures for the Learn pages: images side by side, kernels with their numbers, learning curves, data statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnn_core.plots.common import DIVERGING, GRAY

SHOW_VALUES_UP_TO = 12  # pixels per side: smaller panels print their numbers in the cells


def side_by_side(images: Sequence[np.ndarray], titles: Sequence[str], diverging: Sequence[bool] | None = None,
                 widths: Sequence[float] | None = None, height: int = 340) -> go.Figure:
    """(H, W) arrays in one row, each with its own colour range; diverging panels are red/blue around 0.
    Hover shows row, column and value; panels of at most SHOW_VALUES_UP_TO pixels a side show their numbers."""
    arrays = [np.asarray(im, dtype=float) for im in images]
    diverging = diverging if diverging is not None else [bool(np.nanmin(a) < 0) for a in arrays]
    fig = make_subplots(rows=1, cols=len(arrays), subplot_titles=list(titles), column_widths=widths,
                        horizontal_spacing=0.04)
    for i, (a, signed) in enumerate(zip(arrays, diverging, strict=True), 1):
        reach = (float(np.nanmax(np.abs(a))) or 1.0) if signed else None
        small = max(a.shape) <= SHOW_VALUES_UP_TO
        fig.add_trace(go.Heatmap(z=a, colorscale=DIVERGING if signed else GRAY, showscale=False,
                                 zmin=-reach if signed else None, zmax=reach if signed else None,
                                 texttemplate="%{z:.2f}" if small else None,
                                 hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"), row=1, col=i)
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].update(autorange="reversed", scaleanchor=f"x{suffix}", showticklabels=False,
                                            constrain="domain")
        fig.layout[f"xaxis{suffix}"].update(showticklabels=False, constrain="domain")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _shape(a: np.ndarray) -> str:
    return " × ".join(str(n) for n in np.shape(a))


def convolution_figure(image: np.ndarray, kernel: np.ndarray, output: np.ndarray) -> go.Figure:
    """input (H, W), kernel (kH, kW), output (H_out, W_out) side by side, each titled with its shape."""
    return side_by_side([image, kernel, output],
                        [f"input {_shape(image)}", f"kernel {_shape(kernel)}", f"output {_shape(output)}"],
                        diverging=[False, True, bool(np.min(output) < 0)], widths=[0.4, 0.2, 0.4])


def _same_range(fig: go.Figure, low: float, high: float) -> go.Figure:
    """Every heatmap of fig on one colour range, so that equal colours mean equal values across panels."""
    high = high if high > low else low + 1.0
    return fig.update_traces(zmin=low, zmax=high, selector=dict(type="heatmap"))


def hand_vs_torch_figure(by_hand: np.ndarray, by_torch: np.ndarray) -> go.Figure:
    """The hand loop's output, F.conv2d's, and their difference (H_out, W_out) each, all on the outputs' scale:
    a rounding-sized difference stays blank instead of being stretched into noise."""
    by_hand, by_torch = np.asarray(by_hand, dtype=float), np.asarray(by_torch, dtype=float)
    reach = float(max(np.abs(by_hand).max(), np.abs(by_torch).max()))
    fig = side_by_side([by_hand, by_torch, by_hand - by_torch], ["by hand", "F.conv2d", "by hand − F.conv2d"],
                       diverging=[True, True, True])
    return _same_range(fig, -reach, reach)


def pooling_figure(feature_map: np.ndarray, max_pooled: np.ndarray, avg_pooled: np.ndarray) -> go.Figure:
    """A feature map (H, W) next to its max- and average-pooled versions (H_out, W_out), on one colour range."""
    fig = side_by_side([feature_map, max_pooled, avg_pooled],
                       [f"feature map {_shape(feature_map)}", f"max pool {_shape(max_pooled)}",
                        f"average pool {_shape(avg_pooled)}"], widths=[0.4, 0.3, 0.3])
    return _same_range(fig, float(np.min(feature_map)), float(np.max(feature_map)))


def learned_vs_hidden_figure(learned: np.ndarray, hidden: np.ndarray, step: int | None = None) -> go.Figure:
    """Two (kH, kW) kernels with their numbers on one red/blue scale each; `step` names when `learned` was taken."""
    title = "learned" if step is None else f"learned, step {step}"
    return side_by_side([learned, hidden], [title, "hidden"], diverging=[True, True], height=260)


def _mark_step(fig: go.Figure, step: int | None) -> go.Figure:
    """A vertical line at `step` (None: none)."""
    if step is not None:
        fig.add_vline(x=step, line=dict(color="gray", dash="dash", width=1))
    return fig


def loss_curve(losses: Sequence[float], step: int | None = None) -> go.Figure:
    """Loss per step (T,) on a log scale, `step` marked."""
    fig = go.Figure(go.Scatter(y=np.asarray(losses, dtype=float), mode="lines", name="loss",
                               hovertemplate="step %{x}: %{y:.3g}<extra></extra>"))
    fig.update_yaxes(type="log", title="mean squared error", exponentformat="power")
    fig.update_xaxes(title="step")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="Loss")
    return _mark_step(fig, step)


def kernel_convergence(kernels: np.ndarray, target: np.ndarray, step: int | None = None) -> go.Figure:
    """Each entry w[i,j] of a kernel over steps, kernels (T, kH, kW), as a line, its hidden value dotted;
    `step` marked."""
    kernels, target = np.asarray(kernels, dtype=float), np.asarray(target, dtype=float)
    colors = plotly.colors.qualitative.Plotly
    steps = np.arange(len(kernels))
    fig = go.Figure()
    for n, (i, j) in enumerate(np.ndindex(*target.shape)):
        color = colors[n % len(colors)]
        fig.add_trace(go.Scatter(x=steps, y=kernels[:, i, j], mode="lines", name=f"w[{i},{j}]", legendgroup=str(n),
                                 line=dict(color=color),
                                 hovertemplate=f"w[{i},{j}] step %{{x}}: %{{y:.4f}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=steps[[0, -1]], y=[target[i, j]] * 2, mode="lines", name=f"hidden w[{i},{j}]",
                                 legendgroup=str(n), showlegend=False, line=dict(color=color, dash="dot"),
                                 hoverinfo="skip"))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="value")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="Kernel entries (dotted: hidden values)")
    return _mark_step(fig, step)


def class_count_bars(counts: dict[str, np.ndarray], class_names: Sequence[str]) -> go.Figure:
    """Images per class, one bar group per class and one colour per split ({split: (n_classes,)})."""
    fig = go.Figure([go.Bar(x=list(class_names), y=np.asarray(c), name=split, text=np.asarray(c),
                            textposition="outside") for split, c in counts.items()])
    fig.update_layout(barmode="group", height=360, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis_title="images", xaxis_title="class", xaxis_type="category")  # digits are names here
    return fig


def pixel_histogram_figure(counts: np.ndarray, log_y: bool = True) -> go.Figure:
    """Pixels per value, counts (256,) for the values 0..255, as bars (log scale: the background dominates)."""
    fig = go.Figure(go.Bar(x=np.arange(len(counts)), y=np.asarray(counts), marker_line_width=0,
                           hovertemplate="value %{x}: %{y:,} pixels<extra></extra>"))
    fig.update_xaxes(title="pixel value (0 = black, 255 = white)")
    fig.update_yaxes(title="pixels", type="log" if log_y else "linear")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), bargap=0)
    return fig


def _centres(n: int, size: int, gap: int) -> list[float]:
    """Pixel coordinate of the middle of each of n tiles of `size` pixels, `gap` apart."""
    return [i * (size + gap) + (size - 1) / 2 for i in range(n)]


def mosaic(images: np.ndarray, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
           gap: int = 2, cell: int = 56) -> go.Figure:
    """A (R, C, H, W) array of images tiled into one heatmap, `gap` blank pixels apart, rows and columns labelled.
    One heatmap, so it stays fast for a hundred images (a subplot per image does not)."""
    images = np.asarray(images, dtype=float)
    rows, cols, h, w = images.shape
    tiled = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)  # NaN: the gaps stay blank
    for r, c in np.ndindex(rows, cols):
        tiled[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = images[r, c]
    fig = go.Figure(go.Heatmap(z=tiled, colorscale=GRAY, showscale=False, hoverongaps=False,
                               hovertemplate="%{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False, zeroline=False,
                     tickvals=_centres(rows, h, gap) if row_labels else [], ticktext=list(row_labels or []))
    fig.update_xaxes(constrain="domain", showgrid=False, zeroline=False, side="top",
                     tickvals=_centres(cols, w, gap) if col_labels else [], ticktext=list(col_labels or []))
    fig.update_layout(height=rows * cell + 60, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="rgba(0,0,0,0)")
    return fig
