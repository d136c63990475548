"""Plots of the "Deep enough" experiment: accuracy against depth and the decision boundaries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.network import BLUE, DIVERGING, ORANGE

# --- deep enough

_FAMILY_COLOURS = {"fixed width": "#0877bd", "equal parameters": "#d62728"}


def depth_accuracy_figure(rows: Sequence, chance: float = 0.5) -> go.Figure:
    """Test accuracy against the number of hidden layers: mean ± standard deviation.

    rows: `core.lessons.depth_experiment.SummaryRow`s (family, depth, width, parameters,
    mean/std/min/max test accuracy); one line per family, error bars for the spread
    over seeds, the range (min to max) as a faint band; a dotted line at `chance`.
    """
    traces: list[dict] = []
    for family in dict.fromkeys(r.family for r in rows):
        chosen = sorted((r for r in rows if r.family == family), key=lambda r: r.depth)
        colour = _FAMILY_COLOURS.get(family, "#555555")
        depths = [r.depth for r in chosen]
        traces.append(
            {
                "type": "scatter",
                "x": depths + depths[::-1],
                "y": [r.max_test_accuracy for r in chosen]
                + [r.min_test_accuracy for r in chosen][::-1],
                "fill": "toself",
                "fillcolor": colour,
                "opacity": 0.12,
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": depths,
                "y": [r.mean_test_accuracy for r in chosen],
                "mode": "lines+markers",
                "name": family,
                "line": {"color": colour},
                "error_y": {"type": "data", "array": [r.std_test_accuracy for r in chosen]},
                "customdata": [[r.width, r.parameters, r.seeds] for r in chosen],
                "hovertemplate": "%{x} hidden layers × %{customdata[0]} neurons<br>"
                "%{customdata[1]} parameters<br>test accuracy %{y:.1%} "
                "(mean of %{customdata[2]} seeds)<extra>" + family + "</extra>",
            }
        )
    layout = {
        "height": 320,
        "margin": {"l": 50, "r": 10, "t": 10, "b": 45},
        "xaxis": {"title": {"text": "hidden layers"}, "dtick": 1},
        "yaxis": {"title": {"text": "test accuracy"}, "range": [0, 1.02], "tickformat": ".0%"},
        "legend": {"orientation": "h", "y": 1.12},
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": chance,
                "y1": chance,
                "line": {"dash": "dot", "color": "#888888"},
            }
        ],
    }
    return go.Figure(traces, layout)


def boundaries_figure(
    axis: np.ndarray,
    panels: Sequence[tuple[str, np.ndarray]],
    xy: np.ndarray,
    labels: np.ndarray,
) -> go.Figure:
    """Decision boundaries side by side: one panel (title, p(class 1) (r, r) [y, x]) each,
    the same points (xy (n, 2), labels 0/1) on every panel, the 0.5 contour drawn."""
    n = max(1, len(panels))
    fig = make_subplots(
        rows=1, cols=n, subplot_titles=[t for t, _ in panels], horizontal_spacing=0.02
    )
    for column, (_, probability) in enumerate(panels, start=1):
        fig.add_trace(
            go.Heatmap(
                x=axis,
                y=axis,
                z=probability,
                zmin=0,
                zmax=1,
                colorscale=DIVERGING,
                opacity=0.75,
                showscale=False,
                hovertemplate="p(class 1) %{z:.2f}<extra></extra>",
            ),
            row=1,
            col=column,
        )
        fig.add_trace(
            go.Contour(
                x=axis,
                y=axis,
                z=probability,
                contours={"start": 0.5, "end": 0.5, "coloring": "none"},
                line={"color": "#222222", "width": 2},
                showscale=False,
                hoverinfo="skip",
            ),
            row=1,
            col=column,
        )
        for label, colour in ((0, ORANGE), (1, BLUE)):
            chosen = xy[labels == label]
            fig.add_trace(
                go.Scatter(
                    x=chosen[:, 0],
                    y=chosen[:, 1],
                    mode="markers",
                    showlegend=False,
                    marker={"color": colour, "size": 4, "line": {"color": "white", "width": 0.5}},
                    hoverinfo="skip",
                ),
                row=1,
                col=column,
            )
    extent = [float(axis[0]), float(axis[-1])]
    fig.update_xaxes(range=extent, showticklabels=False, constrain="domain")
    fig.update_yaxes(range=extent, showticklabels=False, scaleanchor="x")
    for column in range(2, n + 1):
        fig.update_yaxes(scaleanchor=f"x{column}", row=1, col=column)
    fig.update_layout(height=260, margin={"l": 5, "r": 5, "t": 30, "b": 5}, showlegend=False)
    return fig
