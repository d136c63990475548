"""Plot builders of the Network builder page: pure functions, data in, figure out.

The playground figures are kept light (one heatmap trace per figure, ≤ 50×50 cells, the
hidden neurons tiled into one mosaic) so that a training step plus a full redraw stays
well under 100 ms on a CPU.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.models.layers import LAYER_KINDS
from core.models.shapes import LayerReport, format_shape
from core.models.spec import ModelSpec

# TensorFlow Playground's palette: orange for class 0 / negative, blue for class 1 / positive.
ORANGE, BLUE, NEUTRAL = "#f59322", "#0877bd", "#e8eaeb"
DIVERGING = [[0.0, ORANGE], [0.5, NEUTRAL], [1.0, BLUE]]
_GROUP_COLOURS = {
    "weights": "#cfe2f3",
    "normalisation": "#d9ead3",
    "pooling": "#fff2cc",
    "shape": "#eeeeee",
    "activation": "#f4cccc",
}


def _human(n: float, unit: str = "") -> str:
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= factor:
            return f"{n / factor:.1f}{suffix}{unit}"
    return f"{n:g} {unit}".rstrip() if unit else f"{n:g}"


def human_bytes(n: int) -> str:
    """1536 -> "1.5 kB"."""
    return _human(n, "B")


def human_count(n: int) -> str:
    """24058 -> "24.1 k"."""
    return _human(n)


def network_dot(spec: ModelSpec, reports: Sequence[LayerReport]) -> str:
    """Graphviz DOT source of the stack: input, one box per layer, shapes on the edges."""
    lines = [
        "digraph network {",
        "  rankdir=TB; nodesep=0.2; ranksep=0.25;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#666666"];',
        f'  input [label="input\\n{format_shape(spec.input_shape)}", fillcolor="#ffffff"];',
    ]
    previous = "input"
    for layer, report in zip(spec.layers, reports, strict=False):
        node = f"l{report.index}"
        group = LAYER_KINDS[layer.kind].group if layer.kind in LAYER_KINDS else "shape"
        detail = f"\\n{human_count(report.parameters)} params" if report.parameters else ""
        label = html.escape(f"{report.index}. {layer.describe()}", quote=True).replace(
            "&#x27;", "'"
        )
        lines.append(f'  {node} [label="{label}{detail}", fillcolor="{_GROUP_COLOURS[group]}"];')
        lines.append(f'  {previous} -> {node} [label=" {format_shape(report.input_shape)}"];')
        previous = node
    out_shape = reports[-1].output_shape if reports else spec.input_shape
    lines.append(f'  output [label="output\\n{format_shape(out_shape)}", fillcolor="#ffffff"];')
    lines.append(f"  {previous} -> output;")
    lines.append("}")
    return "\n".join(lines)


def layer_cost_figure(reports: Sequence[LayerReport]) -> go.Figure:
    """Parameters and multiply-adds per layer (log scale), one group of bars per layer."""
    labels = [f"{r.index}. {r.kind}" for r in reports]
    fig = go.Figure(
        [
            go.Bar(name="parameters", x=labels, y=[max(r.parameters, 0) for r in reports]),
            go.Bar(name="multiply-adds", x=labels, y=[r.multiply_adds for r in reports]),
            go.Bar(name="activation bytes", x=labels, y=[r.activation_bytes for r in reports]),
        ]
    )
    fig.update_layout(
        barmode="group",
        yaxis_type="log",
        height=300,
        margin={"l": 40, "r": 10, "t": 30, "b": 80},
        title="Cost per layer (per example, log scale)",
        legend={"orientation": "h", "y": 1.15},
    )
    return fig


def decision_figure(
    axis: np.ndarray,
    probability: np.ndarray,
    train_xy: np.ndarray,
    train_labels: np.ndarray,
    test_xy: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    *,
    discretize: bool = False,
    axis_names: tuple[str, str] = ("x", "y"),
    class_names: tuple[str, str] = ("class 0", "class 1"),
) -> go.Figure:
    """The network's output over the plane with the points on top.

    probability: (r, r) indexed [y, x] on `axis` (r,); points xy (n, 2) with 0/1 labels;
    test points (optional) are drawn with a dark outline. `discretize` shows the decision
    (probability > 0.5) instead of the probability.
    """
    z = (probability > 0.5).astype(np.float32) if discretize else probability
    # Figures are built from plain dicts in one constructor call: plotly then validates
    # once, several times faster than update_layout and one object per trace.
    traces: list[dict] = [
        {
            "type": "heatmap",
            "x": axis,
            "y": axis,
            "z": z,
            "zmin": 0,
            "zmax": 1,
            "colorscale": DIVERGING,
            "opacity": 0.75,
            "showscale": False,
            "hovertemplate": "x %{x:.2f}<br>y %{y:.2f}<br>p(class 1) %{z:.2f}<extra></extra>",
        }
    ]
    sets = [("train", train_xy, train_labels, "white")]
    if test_xy is not None and test_labels is not None:
        sets.append(("test", test_xy, test_labels, "black"))
    for split, xy, labels, outline in sets:
        for label, colour in ((0, ORANGE), (1, BLUE)):
            chosen = xy[labels == label]
            traces.append(
                {
                    "type": "scatter",
                    "x": chosen[:, 0],
                    "y": chosen[:, 1],
                    "mode": "markers",
                    "name": f"{class_names[label]} ({split})",
                    "marker": {"color": colour, "size": 6, "line": {"color": outline, "width": 1}},
                    "hoverinfo": "skip",
                }
            )
    extent = [float(axis[0]), float(axis[-1])]
    layout = {
        "height": 420,
        "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
        "xaxis": {"range": extent, "title": {"text": axis_names[0]}, "constrain": "domain"},
        "yaxis": {"range": extent, "title": {"text": axis_names[1]}, "scaleanchor": "x"},
        "legend": {"orientation": "h", "y": -0.15},
        "uirevision": "playground",  # keep the user's zoom while the heatmap animates
    }
    return go.Figure(traces, layout)


def neuron_mosaic_figure(
    layers: Sequence[tuple[str, np.ndarray]],
    feature_names: Sequence[str] = (),
    max_tile: int = 25,
) -> go.Figure:
    """Every neuron's function of the plane, as TensorFlow Playground draws them.

    layers: (name, values (units, r, r)) per row: the inputs first, then each hidden layer,
    its neurons left to right. One heatmap trace shows them all tiled, each tile scaled by
    its own largest magnitude so its shape is visible: blue positive, orange negative.
    Tiles are thumbnails: a grid finer than max_tile points a side is thinned to about that
    (every 2nd point of a 50-point grid), a quarter of the full figure's bytes: it is resent
    every frame while the playground plays.
    """
    if not layers:
        return go.Figure()
    stride = max(1, round(layers[0][1].shape[-1] / max_tile))
    layers = [(name, values[:, ::stride, ::stride]) for name, values in layers]
    r = layers[0][1].shape[-1]
    gap = max(2, r // 6)
    columns = max(values.shape[0] for _, values in layers)
    height, width = len(layers) * (r + gap) - gap, columns * (r + gap) - gap
    mosaic = np.full((height, width), np.nan, np.float32)  # sent as base64 float32
    annotations = []
    for row, (name, values) in enumerate(layers):
        y0 = (len(layers) - 1 - row) * (r + gap)  # the inputs on top
        annotations.append(note(-gap, y0 + r / 2, name, xanchor="right"))
        for unit, tile in enumerate(values):
            x0 = unit * (r + gap)
            scale = float(np.nanmax(np.abs(tile))) or 1.0
            mosaic[y0 : y0 + r, x0 : x0 + r] = tile / scale
            if row == 0 and unit < len(feature_names):
                annotations.append(note(x0 + r / 2, y0 + r, feature_names[unit], yanchor="bottom"))
    heatmap = {
        "type": "heatmap",
        "z": mosaic,
        "zmin": -1,
        "zmax": 1,
        "colorscale": DIVERGING,
        "showscale": False,
        "hoverinfo": "skip",
    }
    layout = {
        "height": 40 + 110 * len(layers),
        "margin": {"l": 70, "r": 5, "t": 20, "b": 5},
        "xaxis": {"visible": False, "range": [-gap - 0.5, width], "constrain": "domain"},
        "yaxis": {"visible": False, "scaleanchor": "x"},
        "annotations": annotations,
    }
    return go.Figure([heatmap], layout)


def note(x: float, y: float, text: str, **anchor: str) -> dict:
    return {"x": x, "y": y, "text": text, "showarrow": False, "font": {"size": 10}, **anchor}


def loss_figure(
    epochs: Sequence[float], train_loss: Sequence[float], test_loss: Sequence[float]
) -> go.Figure:
    """Train and test loss (binary cross-entropy) against epochs."""
    traces = [
        {
            "type": "scatter",
            "x": list(epochs),
            "y": list(train_loss),
            "name": "train loss",
            "line": {"color": "#555555"},
        },
        {
            "type": "scatter",
            "x": list(epochs),
            "y": list(test_loss),
            "name": "test loss",
            "line": {"color": "#d62728"},
        },
    ]
    layout = {
        "height": 220,
        "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
        "xaxis": {"title": {"text": "epoch"}},
        "yaxis": {"title": {"text": "cross-entropy"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": 1.2},
    }
    return go.Figure(traces, layout)
