"""Plots of one clip going through a network layer by layer: feature-map grids, vectors and the
class probabilities at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.viz.colors import colorscale
from core.viz.network import BLUE, DIVERGING, ORANGE, note

# --- layer values


def feature_maps_figure(
    values: np.ndarray, *, max_channels: int = 16, columns: int = 8, title: str = ""
) -> go.Figure:
    """Channels of one layer's output as images, tiled in a grid, one shared colour scale.

    values: (channels, bins, frames) (or (bins, frames) for one image); the first
    `max_channels` channels are shown, `columns` per row, low bins at the bottom of each
    tile. One shared scale (per layer) shows which filters respond most to this input.
    """
    maps = np.asarray(values, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    maps = maps[: max(1, max_channels)]
    count, height, width = maps.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    gap = max(1, min(height, width) // 8)
    mosaic = np.full(
        (rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan, np.float32
    )
    annotations = []
    for channel, image in enumerate(maps):
        row, column = divmod(channel, columns)
        y0 = (rows - 1 - row) * (height + gap)  # channel 0 at the top left
        x0 = column * (width + gap)
        mosaic[y0 : y0 + height, x0 : x0 + width] = image
        if count > 1:
            annotations.append(note(x0 + width / 2, y0 + height, f"ch {channel}", yanchor="bottom"))
    finite = mosaic[np.isfinite(mosaic)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    tile_px = 420 if count == 1 else max(60, min(220, 900 // columns))  # one image: larger
    heatmap = {
        "type": "heatmap",
        "z": mosaic,
        "zmin": low,
        "zmax": high if high > low else low + 1,
        "colorscale": colorscale("Magma"),
        "colorbar": {"thickness": 10, "len": 0.9},
        "hovertemplate": "value %{z:.3f}<extra></extra>",
    }
    layout = {
        "height": int(30 + rows * tile_px * height / max(width, 1) + rows * 18),
        "margin": {"l": 5, "r": 5, "t": 24 if title else 14, "b": 5},
        "title": {"text": title, "font": {"size": 12}} if title else None,
        "xaxis": {"visible": False, "constrain": "domain"},
        "yaxis": {"visible": False, "scaleanchor": "x"},
        "annotations": annotations,
    }
    return go.Figure([heatmap], layout)


def vector_figure(values: np.ndarray, *, wrap: int = 64, title: str = "") -> go.Figure:
    """A vector (D,) as bars when short (D ≤ 32), else as a heat strip wrapped `wrap` wide.

    Blue positive, orange negative, on a scale symmetric around zero.
    """
    v = np.asarray(values, dtype=np.float32).ravel()
    limit = float(np.abs(v).max()) if v.size else 1.0
    limit = limit or 1.0
    layout: dict = {
        "margin": {"l": 40, "r": 5, "t": 24 if title else 8, "b": 30},
        "title": {"text": title, "font": {"size": 12}} if title else None,
    }
    if v.size <= 32:
        colours = [BLUE if x >= 0 else ORANGE for x in v]
        trace = {
            "type": "bar",
            "x": list(range(v.size)),
            "y": v,
            "marker": {"color": colours},
            "hovertemplate": "unit %{x}: %{y:.3f}<extra></extra>",
        }
        layout |= {"height": 200, "xaxis": {"title": {"text": "unit"}, "dtick": 1}}
        return go.Figure([trace], layout)
    wrap = max(1, min(wrap, v.size))
    rows = -(-v.size // wrap)
    strip = np.full(rows * wrap, np.nan, np.float32)
    strip[: v.size] = v
    index = np.arange(rows * wrap).reshape(rows, wrap)
    trace = {
        "type": "heatmap",
        "z": strip.reshape(rows, wrap)[::-1],
        "customdata": index[::-1],
        "zmin": -limit,
        "zmax": limit,
        "colorscale": DIVERGING,
        "colorbar": {"thickness": 10},
        "hovertemplate": "unit %{customdata}: %{z:.3f}<extra></extra>",
    }
    layout |= {
        "height": int(60 + min(rows, 48) * 9),
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
    }
    return go.Figure([trace], layout)


def class_probability_figure(
    labels: Sequence[str],
    probabilities: np.ndarray,
    member_probabilities: np.ndarray | None = None,
) -> go.Figure:
    """The final scores as class probabilities (bars), with one member's beside them for an
    ensemble (member_probabilities)."""
    traces = [
        {
            "type": "bar",
            "x": list(labels),
            "y": np.asarray(probabilities, dtype=np.float32),
            "name": "network" if member_probabilities is None else "ensemble (mean)",
            "marker": {"color": BLUE},
            "hovertemplate": "%{x}: %{y:.1%}<extra></extra>",
        }
    ]
    if member_probabilities is not None:
        traces.append(
            {
                "type": "bar",
                "x": list(labels),
                "y": np.asarray(member_probabilities, dtype=np.float32),
                "name": "traced member",
                "marker": {"color": "#9ecae1"},
                "hovertemplate": "%{x}: %{y:.1%}<extra></extra>",
            }
        )
    layout = {
        "height": 240,
        "barmode": "group",
        "margin": {"l": 45, "r": 5, "t": 10, "b": 40},
        "xaxis": {"title": {"text": "class"}, "type": "category"},
        "yaxis": {"title": {"text": "probability"}, "range": [0, 1], "tickformat": ".0%"},
        "legend": {"orientation": "h", "y": 1.15},
    }
    return go.Figure(traces, layout)
