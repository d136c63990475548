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
    from core.models.layers import LAYER_KINDS

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
    layers: Sequence[tuple[str, np.ndarray]], feature_names: Sequence[str] = ()
) -> go.Figure:
    """Every neuron's function of the plane, as TensorFlow Playground draws them.

    layers: (name, values (units, r, r)) per row: the inputs first, then each hidden layer,
    its neurons left to right. One heatmap trace shows them all tiled, each tile scaled by
    its own largest magnitude so its shape is visible: blue positive, orange negative.
    """
    if not layers:
        return go.Figure()
    r = layers[0][1].shape[-1]
    gap = max(2, r // 6)
    columns = max(values.shape[0] for _, values in layers)
    height, width = len(layers) * (r + gap) - gap, columns * (r + gap) - gap
    mosaic = np.full((height, width), np.nan, np.float32)
    annotations = []
    for row, (name, values) in enumerate(layers):
        y0 = (len(layers) - 1 - row) * (r + gap)  # the inputs on top
        annotations.append(_note(-gap, y0 + r / 2, name, xanchor="right"))
        for unit, tile in enumerate(values):
            x0 = unit * (r + gap)
            scale = float(np.nanmax(np.abs(tile))) or 1.0
            mosaic[y0 : y0 + r, x0 : x0 + r] = tile / scale
            if row == 0 and unit < len(feature_names):
                annotations.append(_note(x0 + r / 2, y0 + r, feature_names[unit], yanchor="bottom"))
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


def _note(x: float, y: float, text: str, **anchor: str) -> dict:
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


# --------------------------------------------------------------------------- deep enough

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
    from plotly.subplots import make_subplots

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


# --------------------------------------------------------------------------- layer values


def feature_maps_figure(
    values: np.ndarray, *, max_channels: int = 16, columns: int = 8, title: str = ""
) -> go.Figure:
    """Channels of one layer's output as images, tiled in a grid, one shared colour scale.

    values: (channels, bins, frames) (or (bins, frames) for one image); the first
    `max_channels` channels are shown, `columns` per row, low bins at the bottom of each
    tile. One shared scale (per layer) shows which filters respond most to this input.
    """
    from core.viz.colors import colorscale

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
            annotations.append(
                _note(x0 + width / 2, y0 + height, f"ch {channel}", yanchor="bottom")
            )
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
