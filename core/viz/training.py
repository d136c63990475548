"""Plot builders for the Train page: curves, confusion matrix, embeddings, per-class scores.

Pure functions: metric records, counts or arrays in, a plotly Figure (or a pandas table) out.
A metric record is one line of a run's metrics.jsonl (core.training.trainer.TrainEvent.record()):
{"kind": "step" | "epoch_end" | "evaluation", "step", "epoch", "lr", "loss", "accuracy",
"val_loss", "val_accuracy", ...}; the same builders draw a live job and a finished run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
CORRECT_COLOUR = "#2e7d32"
WRONG_COLOUR = "#c62828"


def _series(records: Sequence[Mapping[str, Any]], kinds: tuple[str, ...], key: str):
    """(steps, values) of `key` over the records of the given kinds, finite values only."""
    points = [
        (float(r.get("step", 0)), float(r[key]))
        for r in records
        if r.get("kind") in kinds and isinstance(r.get(key), int | float) and np.isfinite(r[key])
    ]
    return [p[0] for p in points], [p[1] for p in points]


# The curves' traces in figure order: (column, record kinds, key, trace style). The builder
# and the in-place refill below both follow this list, so the refill fills the right trace.
_CURVE_TRACES = tuple(
    (col, kinds, key, style)
    for col, (train_key, val_key) in enumerate(
        (("loss", "val_loss"), ("accuracy", "val_accuracy")), 1
    )
    for kinds, key, style in (
        (
            ("step",),
            train_key,
            {
                "mode": "lines",
                "name": "train (running)",
                "line": {"color": TRAIN_COLOUR, "width": 1},
                "opacity": 0.5,
                "legendgroup": "run",
            },
        ),
        (
            ("epoch_end",),
            train_key,
            {
                "mode": "lines+markers",
                "name": "train (epoch)",
                "line": {"color": TRAIN_COLOUR},
                "legendgroup": "epoch",
            },
        ),
        (
            ("evaluation",),
            val_key,
            {
                "mode": "lines+markers",
                "name": "validation",
                "line": {"color": VAL_COLOUR},
                "legendgroup": "val",
            },
        ),
    )
)


def training_curves_figure(
    records: Sequence[Mapping[str, Any]], *, height: int = 340, title: str | None = None
) -> go.Figure:
    """Loss (left) and accuracy (right) against optimiser steps, train and validation.

    Train: the running epoch mean logged every few steps (thin line) and each epoch's mean
    (markers); validation: one point per evaluation. Empty records give empty axes. A live
    view refills the same figure with `refill_training_curves` as records arrive.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for col, kinds, key, style in _CURVE_TRACES:
        x, y = _series(records, kinds, key)
        fig.add_trace(go.Scatter(x=x, y=y, showlegend=col == 1, **style), row=1, col=col)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(
        height=height,
        title=title,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def refill_training_curves(fig: go.Figure, records: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Put `records` into a figure made by `training_curves_figure` (in place; returns it).

    The result equals a new `training_curves_figure(records)` with the same height and
    title. Why it exists: building the two subplots costs the web server 100-150 ms of
    Python, refilling six traces about 1 ms, and the Train page's live view redraws once a
    second for every student whose training runs.
    """
    with fig.batch_update():
        for trace, (x, y) in zip(fig.data, training_curve_series(records), strict=True):
            trace.x, trace.y = x, y
    return fig


def training_curve_series(
    records: Sequence[Mapping[str, Any]],
) -> list[tuple[list[float], list[float]]]:
    """(steps, values) of each curve of `training_curves_figure`, in its trace order.

    Each record adds at most one point to one curve, so the series of `records[k:]` are the
    points that follow those of `records[:k]` (the pushed live view sends only those)."""
    return [_series(records, kinds, key) for _, kinds, key, _ in _CURVE_TRACES]


def training_curve_styles() -> list[dict[str, Any]]:
    """How each curve of `training_curves_figure` looks, in its trace order, for a view that
    draws them itself: panel ("loss" | "accuracy"), name, colour, width (px), opacity,
    markers (a dot per point) and legend (named in the legend)."""
    return [
        {
            "panel": ("loss", "accuracy")[col - 1],
            "name": style["name"],
            "colour": style["line"]["color"],
            "width": style["line"].get("width", 2),
            "opacity": style.get("opacity", 1.0),
            "markers": "markers" in style["mode"],
            "legend": col == 1,
        }
        for col, _, _, style in _CURVE_TRACES
    ]


def lr_loss_figure(records: Sequence[Mapping[str, Any]], *, height: int = 300) -> go.Figure:
    """The learning rate (right axis, log scale) and the training loss (left) over steps."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x, y = _series(records, ("step", "epoch_end"), "loss")
    fig.add_trace(
        go.Scatter(x=x, y=y, mode="lines+markers", name="train loss", line={"color": TRAIN_COLOUR}),
        secondary_y=False,
    )
    x, y = _series(records, ("step", "epoch_end"), "lr")
    fig.add_trace(
        go.Scatter(
            x=x, y=y, mode="lines", name="learning rate", line={"color": "#9467bd", "dash": "dot"}
        ),
        secondary_y=True,
    )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="learning rate", type="log", secondary_y=True)
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 50, "t": 20, "b": 40},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def confusion_matrix_figure(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], *, height: int | None = None
) -> go.Figure:
    """Confusion matrix: row = true class, column = predicted class, counts in the cells.

    Colour is the share of the row (recall per cell) so rare classes read as clearly as
    common ones. Cells are square markers of one scatter trace (customdata [true, predicted,
    count]) rather than a heatmap, because plotly can select a clicked marker but not a
    heatmap cell: clicking a cell selects it.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(labels)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must be {k}x{k} for {k} labels, got shape {counts.shape}")
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    names = [str(label) for label in labels]
    size = height or min(640, 160 + 40 * k)
    ii, jj = (grid.ravel() for grid in np.meshgrid(np.arange(k), np.arange(k), indexing="ij"))
    flat = share[ii, jj]
    fig = go.Figure(
        go.Scatter(
            x=[names[j] for j in jj],
            y=[names[i] for i in ii],
            mode="markers+text",
            marker={
                "symbol": "square",
                "size": max(6, int(0.9 * (size - 70) / max(k, 1))),
                "color": flat,
                "colorscale": "Blues",
                "cmin": 0,
                "cmax": 1,
                "colorbar": {"title": "share of row", "tickformat": ".0%"},
                "line": {"width": 0},
            },
            text=[str(c) if c else "" for c in counts[ii, jj]],
            textfont={"color": ["white" if v > 0.5 else "#444" for v in flat]},
            customdata=np.stack([ii, jj, counts[ii, jj]], axis=1),
            hovertemplate="true %{y}, predicted %{x}: %{customdata[2]} clip(s)<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_layout(
        height=size,
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        xaxis={
            "title": "predicted",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": names,
            "showgrid": False,
        },
        yaxis={
            "title": "true",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": names,
            "autorange": "reversed",
            "showgrid": False,
        },
        clickmode="event+select",
    )
    return fig


def embedding_figure(
    xy: np.ndarray,
    true_labels: Sequence[str],
    predicted_labels: Sequence[str],
    names: Sequence[str],
    *,
    height: int = 460,
    title: str | None = None,
) -> go.Figure:
    """2-D map of the network's penultimate-layer embeddings of the validation clips.

    xy: (N, 2) (rows with NaN are left out); colour = true class; a cross marks a clip the
    model got wrong. Each point's customdata is its row index, for click-to-play.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(true_labels):
        raise ValueError(f"xy must be (N, 2) with N = {len(true_labels)}, got shape {xy.shape}")
    fig = go.Figure()
    ok = np.isfinite(xy).all(axis=1)
    for label in dict.fromkeys(str(t) for t in true_labels):
        rows = [i for i, t in enumerate(true_labels) if str(t) == label and ok[i]]
        if not rows:
            continue
        wrong = [str(predicted_labels[i]) != label for i in rows]
        fig.add_trace(
            go.Scatter(
                x=xy[rows, 0],
                y=xy[rows, 1],
                mode="markers",
                name=label,
                marker={
                    "size": [11 if w else 8 for w in wrong],
                    "symbol": ["x" if w else "circle" for w in wrong],
                    "line": {"width": 0},
                },
                customdata=rows,
                text=[f"{names[i]}<br>true {label}, predicted {predicted_labels[i]}" for i in rows],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        height=height,
        title=title,
        legend_title="true class",
        margin={"l": 40, "r": 20, "t": 40 if title else 10, "b": 40},
        xaxis={"showticklabels": False},
        yaxis={"showticklabels": False},
        clickmode="event+select",
    )
    return fig


def per_class_table(
    labels: Sequence[str],
    precision: Sequence[float],
    recall: Sequence[float],
    f1: Sequence[float],
    support: Sequence[int],
) -> pd.DataFrame:
    """One row per class: precision, recall, F1 (0..1) and support (validation clips)."""
    return pd.DataFrame(
        {
            "class": [str(label) for label in labels],
            "precision": list(precision),
            "recall": list(recall),
            "F1": list(f1),
            "clips": [int(s) for s in support],
        }
    )


def per_class_figure(table: pd.DataFrame, *, height: int = 300) -> go.Figure:
    """Grouped bars of precision, recall and F1 per class (from `per_class_table`)."""
    fig = go.Figure()
    for column, colour in (("precision", "#1f77b4"), ("recall", "#ff7f0e"), ("F1", "#2ca02c")):
        fig.add_trace(
            go.Bar(
                x=table["class"].astype(str),
                y=table[column],
                name=column,
                marker_color=colour,
                hovertemplate=f"%{{x}}: {column} %{{y:.0%}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=height,
        yaxis={"range": [0, 1], "tickformat": ".0%"},
        xaxis={"type": "category", "title": "class"},
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def class_counts_figure(
    counts: Mapping[str, int], *, val_counts: Mapping[str, int] | None = None, height: int = 260
) -> go.Figure:
    """Bars of clips per class; with val_counts, stacked training + validation bars."""
    names = [str(k) for k in counts]
    fig = go.Figure()
    if val_counts is None:
        fig.add_trace(
            go.Bar(x=names, y=list(counts.values()), name="clips", marker_color=TRAIN_COLOUR)
        )
    else:
        fig.add_trace(
            go.Bar(x=names, y=list(counts.values()), name="training", marker_color=TRAIN_COLOUR)
        )
        fig.add_trace(
            go.Bar(
                x=names,
                y=[val_counts.get(k, 0) for k in counts],
                name="validation",
                marker_color=VAL_COLOUR,
            )
        )
    fig.update_layout(
        barmode="stack",
        height=height,
        xaxis={"type": "category", "title": "class"},
        yaxis={"title": "clips"},
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        showlegend=val_counts is not None,
    )
    return fig


def compare_curves_figure(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    metric: str = "val_accuracy",
    x: str = "epoch",
    height: int = 340,
) -> go.Figure:
    """One line per run of `metric` (e.g. val_accuracy, val_loss, loss) against epoch or step.

    runs: run label -> its metric records. Validation metrics come from the evaluation
    records, training ones from the epoch_end records.
    """
    kind = "evaluation" if metric.startswith("val_") else "epoch_end"
    fig = go.Figure()
    for label, records in runs.items():
        points = [
            (float(r.get(x, 0)), float(r[metric]))
            for r in records
            if r.get("kind") == kind
            and isinstance(r.get(metric), int | float)
            and np.isfinite(r[metric])
        ]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=str(label),
            )
        )
    fig.update_layout(
        height=height,
        xaxis_title=x,
        yaxis_title=metric.replace("_", " "),
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    if "accuracy" in metric:
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig
