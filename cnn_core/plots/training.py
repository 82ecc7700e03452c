"""Training curves from a run's history (the records `fit` emits): live view and run comparison, the changes made
by hand (marks), and the layers' gradient and weight statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnn_core.runs.records import KINDS, History, Record, StepRecord

Rows = Sequence[Record | Mapping[str, Any]] | History  # a run's records, typed or as read from JSON
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
LAYER_COLORS = ("#0d0887", "#6a00a8", "#b12a90", "#e16462", "#fca636", "#7f7f00", "#2ca02c", "#17becf")  # first → last
MARK = dict(color="#7f7f7f", dash="dot", width=1.2)  # lr or momentum set by hand


def _series(history: Rows, event: str | tuple[str, ...], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key` in the records of `event` (one or several kinds), in step order."""
    kinds = tuple(KINDS[e] for e in ((event,) if isinstance(event, str) else event))
    rows = sorted((r for r in History.parse(history) if isinstance(r, kinds) and getattr(r, key, None) is not None),
                  key=lambda r: r.step)
    return [r.step for r in rows], [getattr(r, key) for r in rows]


def _line_mode(x: Sequence[int]) -> str:
    """A lone point drawn as a line is invisible: markers until there are two."""
    return "lines" if len(x) > 1 else "markers"


def curves_figure(history: Rows, height: int = 520, columns: int = 2) -> go.Figure:
    """Loss and accuracy (running train every N steps, train/val per epoch), learning rate, images/s: 2x2, or
    with `columns=1` one panel under the other (a phone's screen)."""
    rows = math.ceil(4 / columns)
    at = [(i // columns + 1, i % columns + 1) for i in range(4)]  # (row, col) of each panel, in reading order
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=("loss", "accuracy", "learning rate", "images / s"),
                        vertical_spacing=0.28 / rows, horizontal_spacing=0.08)
    for (row, col), metric in zip(at, ("loss", "acc")):
        x, y = _series(history, "step", f"train_{metric}")
        fig.add_trace(go.Scatter(x=x, y=y, name=f"train {metric} (running)", mode=_line_mode(x),
                                 line=dict(color=COLORS[0], width=1.5), legendgroup="train"), row=row, col=col)
        for split, color in (("train", COLORS[0]), ("val", COLORS[1])):
            x, y = _series(history, "epoch", f"{split}_{metric}")
            fig.add_trace(go.Scatter(x=x, y=y, name=f"{split} {metric} (epoch)", mode="lines+markers",
                                     line=dict(color=color, dash="dot" if split == "train" else "solid"),
                                     marker=dict(size=8), legendgroup=split), row=row, col=col)
    x, y = _series(history, ("step", "epoch"), "lr")  # epoch ends too: a short run may report few steps
    fig.add_trace(go.Scatter(x=x, y=y, name="lr", mode=_line_mode(x), line=dict(color=COLORS[2])), *at[2])
    fig.update_yaxes(rangemode="tozero", exponentformat="power", row=at[2][0], col=at[2][1])  # a constant rate too
    x, y = _series(history, "epoch", "images_per_s")
    fig.add_trace(go.Bar(x=x, y=y, name="images/s per epoch", marker_color=COLORS[3]), *at[3])
    for r in History.parse(history).controls:
        if r.action == "set":
            label = f"lr {r.lr:g}" + (f" · m {r.momentum:g}" if r.momentum is not None else "")
            for i, (row, col) in enumerate(at[:3]):  # loss, accuracy, learning rate
                fig.add_vline(x=r.step, line=MARK, row=row, col=col,
                              **({"annotation_text": label, "annotation_position": "top right"} if i == 0 else {}))
    for row, col in at[2:]:
        fig.update_xaxes(title_text="step", row=row, col=col)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.24 / rows),
                      uirevision="keep")  # keep zoom while the live view redraws
    return fig


def layer_steps(history: Rows) -> list[StepRecord]:
    """The step records that carry layer statistics (none for a run recorded before they existed)."""
    return [r for r in History.parse(history).steps if r.grad_norms]


def layers_figure(history: Rows, height: int = 360) -> go.Figure:
    """Per layer, by step: the gradient's L2 norm and the weights' (log scales), one colour per layer."""
    steps = layer_steps(history)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("gradient norm per layer", "weight norm per layer"))
    names = list(steps[-1].grad_norms) if steps else []
    for i, name in enumerate(names):
        for col, key in ((1, "grad_norms"), (2, "weight_norms")):
            rows = [(r.step, getattr(r, key).get(name)) for r in steps if getattr(r, key).get(name)]
            fig.add_trace(go.Scatter(x=[x for x, _ in rows], y=[y for _, y in rows], name=name, legendgroup=name,
                                     mode=_line_mode(rows), showlegend=col == 1,
                                     line=dict(color=LAYER_COLORS[i % len(LAYER_COLORS)])), row=1, col=col)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def weight_hist_figure(history: Rows, layer: str, height: int = 300) -> go.Figure:
    """`layer`'s weight histogram at its first and its last report, overlaid: how training spread its weights."""
    steps = [r for r in layer_steps(history) if r.weight_hist and layer in r.weight_hist]
    fig = go.Figure()
    for record, color, when in ((steps[0], COLORS[7], "first"), (steps[-1], COLORS[0], "last")) if steps else ():
        hist = record.weight_hist[layer]
        n = len(hist["counts"])
        width = (hist["hi"] - hist["lo"]) / n
        fig.add_trace(go.Bar(x=[hist["lo"] + (i + 0.5) * width for i in range(n)], y=hist["counts"], width=width,
                             name=f"step {record.step} ({when} report)", marker_color=color, opacity=0.6))
    fig.update_layout(barmode="overlay", height=height, title=f"{layer}: its weights", xaxis_title="weight",
                      yaxis_title="count", margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def overlay_figure(histories: Mapping[str, Rows], height: int = 420, columns: int = 2) -> go.Figure:
    """Several runs on one chart: running train loss and validation accuracy per epoch, side by side or, with
    `columns=1`, one under the other (a phone's screen)."""
    rows = math.ceil(2 / columns)
    loss_at, acc_at = [(i // columns + 1, i % columns + 1) for i in range(2)]  # (row, col) of each panel
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=("train loss (running)", "validation accuracy"))
    for i, (label, history) in enumerate(histories.items()):
        color = COLORS[i % len(COLORS)]
        x, y = _series(history, "step", "train_loss")
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode=_line_mode(x), line=dict(color=color), legendgroup=label),
                      *loss_at)
        x, y = _series(history, "epoch", "val_acc")
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines+markers", line=dict(color=color),
                                 legendgroup=label, showlegend=False), *acc_at)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2 / rows))
    return fig
