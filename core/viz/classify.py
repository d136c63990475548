"""Plot builders for the Classify page: top-k bars, the model's view, timelines, saliency.

Pure functions: arrays in, plotly Figure out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.viz.audio import spectrogram_figure

SURE_COLOUR = "#2e7d32"
UNSURE_COLOUR = "#9e9e9e"


def top_k_figure(
    pairs: Sequence[tuple[str, float]], *, unsure: bool = False, threshold: float | None = None
) -> go.Figure:
    """Horizontal bars of the k most probable classes, the most probable on top.

    pairs: (label, probability) in descending order. unsure greys the bars; threshold draws
    the "unsure below" line.
    """
    labels = [label for label, _ in pairs][::-1]
    values = [p for _, p in pairs][::-1]
    colour = UNSURE_COLOUR if unsure else SURE_COLOUR
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker_color=[colour] * (len(values) - 1) + [colour],
            text=[f"{v:.1%}" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    if threshold is not None:
        fig.add_vline(
            x=threshold,
            line_dash="dot",
            line_color="#c62828",
            annotation_text="unsure below",
            annotation_position="top",
        )
    fig.update_layout(
        height=60 + 34 * max(1, len(values)),
        margin={"l": 80, "r": 20, "t": 30, "b": 40},
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"},
        yaxis={"type": "category"},
        showlegend=False,
    )
    return fig


def model_view_figure(
    model_input: np.ndarray,
    sample_rate: int,
    hop_length: int,
    *,
    frame_offset: int = 0,
    y_axis: str = "mel",
    f_min: float = 0.0,
    f_max: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """The network's input (bins, frames) after normalisation, placed at its clip time.

    frame_offset: the clip frame at column 0 (negative when padded), so the axis shows where
    in the clip the model looked.
    """
    fig = spectrogram_figure(
        np.asarray(model_input, dtype=np.float32),
        sample_rate,
        hop_length,
        y_axis=y_axis,
        f_min=f_min,
        f_max=f_max,
        title=title,
        colorbar_title="normalised",
        height=300,
    )
    seconds = frame_offset * hop_length / sample_rate
    fig.data[0].x = np.asarray(fig.data[0].x) + seconds
    return fig


def timeline_figure(
    centres_seconds: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    *,
    silent: np.ndarray | None = None,
    segments: Sequence[tuple[float, float, str]] = (),
) -> go.Figure:
    """Heatmap of class probability (rows) over time (window centres, seconds).

    Silent windows are blanked; segments (start, end, label) are outlined on their row.
    """
    p = np.asarray(probabilities, dtype=np.float32).T.copy()  # (classes, windows)
    if silent is not None and np.any(silent):
        p[:, np.asarray(silent, dtype=bool)] = np.nan
    fig = go.Figure(
        go.Heatmap(
            z=p,
            x=np.asarray(centres_seconds, dtype=np.float64),
            y=list(labels),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar={"title": "probability", "tickformat": ".0%"},
            hovertemplate="%{x:.2f} s<br>%{y}: %{z:.1%}<extra></extra>",
        )
    )
    row = {label: i for i, label in enumerate(labels)}
    # All outlines in one update_layout: add_shape re-validates every shape so far (40 ms for
    # 20 segments, and the Live tab redraws this twice a second).
    outlines = [
        {
            "type": "rect",
            "x0": start,
            "x1": end,
            "y0": row[label] - 0.5,
            "y1": row[label] + 0.5,
            "line": {"color": "#ff5252", "width": 2},
        }
        for start, end, label in segments
        if label in row
    ]
    fig.update_layout(
        shapes=outlines,
        height=120 + 22 * len(labels),
        margin={"l": 80, "r": 20, "t": 20, "b": 40},
        xaxis_title="time (s, window centre)",
        yaxis={"type": "category", "title": "class"},
    )
    return fig


def saliency_figure(
    model_input: np.ndarray,
    saliency: np.ndarray,
    sample_rate: int,
    hop_length: int,
    *,
    frame_offset: int = 0,
    title: str | None = None,
) -> go.Figure:
    """The model's input in grey with the saliency on top in warm colours (low = clear).

    model_input, saliency: (bins, frames) of the same shape; only positive saliency is drawn.
    """
    x_in = np.asarray(model_input, dtype=np.float32)
    s = np.clip(np.asarray(saliency, dtype=np.float32), 0, None)
    top = float(s.max()) if s.size else 0.0
    s = s / top if top > 0 else s
    times = (np.arange(x_in.shape[1]) + frame_offset) * hop_length / sample_rate
    rows = np.arange(x_in.shape[0])
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            z=x_in,
            x=times,
            y=rows,
            colorscale="Greys",
            reversescale=True,
            showscale=False,
            hoverinfo="skip",
        )
    )
    transparent_to_hot = [
        [0.0, "rgba(255,255,0,0)"],
        [0.2, "rgba(255,200,0,0.15)"],
        [0.6, "rgba(255,100,0,0.6)"],
        [1.0, "rgba(220,0,0,0.9)"],
    ]
    fig.add_trace(
        go.Heatmap(
            z=s,
            x=times,
            y=rows,
            zmin=0,
            zmax=1,
            colorscale=transparent_to_hot,
            colorbar={"title": "saliency"},
            hovertemplate="%{x:.2f} s<br>band %{y}<br>saliency %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        height=300,
        margin={"l": 60, "r": 20, "t": 40 if title else 10, "b": 40},
        xaxis_title="time (s)",
        yaxis_title="band (low → high)",
    )
    return fig
