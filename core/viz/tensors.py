"""Plot builders for the tensor playground: data in, plotly Figure out (no streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from core.tensors.memory import NameSnapshot
from core.viz.colors import colorscale

MAGMA = colorscale("Magma")
HIGHLIGHT = "#e4572e"
SECOND = "#2e86ab"


def _values(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float64).cpu().numpy()


def _cell_texts(matrix: np.ndarray) -> np.ndarray:
    """Each value as short text ("" for NaN); an empty matrix gives an empty array of str."""
    return np.array(
        ["" if np.isnan(v) else f"{v:.3g}" for v in matrix.ravel()], dtype=object
    ).reshape(matrix.shape)


def _heatmap(matrix: np.ndarray, *, show_text: bool = True) -> go.Heatmap:
    text = _cell_texts(matrix) if show_text else None
    return go.Heatmap(
        z=matrix,
        text=text,
        texttemplate="%{text}" if show_text else None,
        colorscale="Blues",
        showscale=False,
        xgap=2,
        ygap=2,
        hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>",
    )


def _panels(titles: Sequence[str], gap: float = 0.05, shared_y: bool = False) -> go.Figure:
    """A figure with len(titles) side-by-side panels (axes x, x2, ... / y, y2, ...).

    Built from one layout dict: plotly's make_subplots is ~0.1 s per call, paid on every rerun.
    """
    count = len(titles)
    width = (1 - gap * (count - 1)) / count
    layout: dict = {"annotations": []}
    for i, title in enumerate(titles):
        suffix = "" if i == 0 else str(i + 1)
        x0 = i * (width + gap)
        layout[f"xaxis{suffix}"] = {"domain": [x0, x0 + width], "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}"}
        if shared_y and i:
            layout[f"yaxis{suffix}"]["matches"] = "y"
            layout[f"yaxis{suffix}"]["showticklabels"] = False
        layout["annotations"].append(
            {
                "text": title,
                "x": x0 + width / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "yshift": 24,
            }
        )
    return go.Figure(layout=layout)


def _axes(i: int) -> dict:
    suffix = "" if i == 0 else str(i + 1)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def tensor_heatmap(tensor: torch.Tensor, title: str = "", max_slices: int = 6) -> go.Figure:
    """Rank 0: one cell; rank 1: one row; rank 2: the matrix; rank 3: one matrix per slice.

    Ranks above 3 show their first `max_slices` slices of the flattened leading dimensions.
    An empty tensor (a 0 anywhere in its shape) has nothing to draw: the figure says so.
    """
    values = _values(tensor)
    if values.size == 0:
        return empty_tensor_figure(tuple(tensor.shape), title)
    if values.ndim <= 2:
        matrix = values.reshape(1, -1) if values.ndim < 2 else values
        figure = go.Figure(_heatmap(matrix, show_text=matrix.size <= 400))
        figure.update_yaxes(autorange="reversed", title="row" if values.ndim == 2 else None)
        figure.update_xaxes(title="column" if values.ndim == 2 else "index", side="top")
        rows = matrix.shape[0]
    else:
        stack = values.reshape(-1, *values.shape[-2:])
        count = min(len(stack), max_slices)
        figure = _panels([f"[{i}]" for i in range(count)], gap=0.06)
        for i in range(count):
            figure.add_trace(_heatmap(stack[i], show_text=stack[i].size <= 100).update(**_axes(i)))
            figure.layout[f"yaxis{'' if i == 0 else i + 1}"].autorange = "reversed"
        rows = stack.shape[1]
    figure.update_layout(
        title=title, height=min(120 + 40 * rows, 520), margin=dict(l=10, r=10, t=60, b=10)
    )
    return figure


def empty_tensor_figure(shape: tuple[int, ...], title: str = "") -> go.Figure:
    """An empty box for a tensor with no elements, its shape written inside."""
    figure = go.Figure()
    figure.add_shape(
        type="rect", x0=0, x1=1, y0=0, y1=1, line=dict(color=SECOND, width=2, dash="dash")
    )
    figure.add_annotation(
        x=0.5,
        y=0.5,
        text=f"shape {tuple(shape)}: 0 elements, nothing to draw",
        showarrow=False,
        font=dict(size=14),
    )
    figure.update_xaxes(visible=False, range=[-0.05, 1.05])
    figure.update_yaxes(visible=False, range=[-0.05, 1.05])
    figure.update_layout(title=title, height=160, margin=dict(l=10, r=10, t=40, b=10))
    return figure


def matmul_step_figure(
    a: torch.Tensor, b: torch.Tensor, partial: torch.Tensor, row: int | None, col: int | None
) -> go.Figure:
    """A, B and the result so far side by side; row `row` of A, column `col` of B and the cell
    (row, col) of the result outlined. `partial` is (m, p) with NaN where not computed yet."""
    figure = _panels(
        (f"A {tuple(a.shape)}", f"B {tuple(b.shape)}", f"C = A @ B {tuple(partial.shape)}"),
        gap=0.06,
    )
    for i, matrix in enumerate((_values(a), _values(b), _values(partial))):
        figure.add_trace(_heatmap(matrix, show_text=matrix.size <= 144).update(**_axes(i)))
        suffix = "" if i == 0 else str(i + 1)
        figure.layout[f"yaxis{suffix}"].update(autorange="reversed", dtick=1)
        figure.layout[f"xaxis{suffix}"].update(side="top", dtick=1)
    if row is not None and col is not None:
        k = a.shape[1]
        boxes = (
            (1, -0.5, k - 0.5, row - 0.5, row + 0.5),  # row of A
            (2, col - 0.5, col + 0.5, -0.5, k - 0.5),  # column of B
            (3, col - 0.5, col + 0.5, row - 0.5, row + 0.5),  # the cell
        )
        figure.update_layout(
            shapes=[
                dict(
                    type="rect",
                    x0=x0,
                    x1=x1,
                    y0=y0,
                    y1=y1,
                    line=dict(color=HIGHLIGHT, width=4),
                    **{k[0] + "ref": v for k, v in _axes(subplot - 1).items()},
                )
                for subplot, x0, x1, y0, y1 in boxes
            ]
        )
    height = 140 + 42 * max(a.shape[0], b.shape[0])
    figure.update_layout(height=min(height, 560), margin=dict(l=10, r=10, t=70, b=10))
    return figure


def storage_figure(snapshots: Sequence[NameSnapshot], title: str = "") -> go.Figure:
    """Names on the left, one box per distinct storage on the right, arrows between.

    Two names that point at the same box share memory: the same tensor, or a view of it (the
    name then shows its storage offset). The box shows the values of the first name on it.
    """
    names = list(snapshots)
    boxes: dict[int, NameSnapshot] = {}
    for snap in names:
        boxes.setdefault(snap.storage_ptr or snap.data_ptr, snap)
    box_y = {ptr: -i for i, ptr in enumerate(boxes)}
    name_y = {
        snap.name: -i * (len(boxes) - 1) / max(len(names) - 1, 1) for i, snap in enumerate(names)
    }
    figure = go.Figure()
    for ptr, snap in boxes.items():
        y = box_y[ptr]
        figure.add_shape(
            type="rect", x0=1.0, x1=2.6, y0=y - 0.3, y1=y + 0.3, line=dict(color=SECOND, width=2)
        )
        values = ", ".join(f"{v:g}" for v in snap.values[:6]) + (
            " …" if len(snap.values) > 6 else ""
        )
        figure.add_annotation(
            x=1.8,
            y=y,
            text=f"storage at 0x{ptr:x}<br>version {snap.version}<br>[{values}]",
            showarrow=False,
            font=dict(size=12),
        )
    for snap in names:
        y = name_y[snap.name]
        offset = f" (offset {snap.storage_offset})" if snap.storage_offset else ""
        figure.add_annotation(
            x=0.1, y=y, text=f"<b>{snap.name}</b>{offset}", showarrow=False, font=dict(size=16)
        )
        figure.add_annotation(
            x=1.0,
            y=box_y[snap.storage_ptr or snap.data_ptr],
            ax=0.35,
            ay=y,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=3,
            arrowwidth=2,
            arrowcolor=HIGHLIGHT,
            text="",
        )
    figure.update_xaxes(visible=False, range=[-0.3, 2.7])
    figure.update_yaxes(visible=False, range=[-max(len(boxes), 1) + 0.4, 0.5])
    figure.update_layout(
        title=title, height=110 + 80 * max(len(boxes), 1), margin=dict(l=10, r=10, t=40, b=10)
    )
    return figure


def spectrogram_pair_figure(
    before: torch.Tensor, after: torch.Tensor, sample_rate: int, hop_length: int
) -> go.Figure:
    """Two magnitude spectrograms (n_freqs, frames) in dB, before and after a gain."""
    figure = _panels(("before the gain", "after the gain"), shared_y=True)
    n_freqs, n_frames = before.shape
    times = np.arange(n_frames) * hop_length / sample_rate
    freqs = np.linspace(0, sample_rate / 2, n_freqs)
    reference = float(before.max()) or 1.0
    for col, magnitude in enumerate((before, after), start=1):
        # clipped to the colour range: values below zmin would get the theme's out-of-range colour
        db = np.clip(20 * np.log10(np.maximum(_values(magnitude) / reference, 1e-6)), -90, 0)
        # a few hundred rows and columns is all a screen shows, and keeps the page light
        step, fstep = max(n_frames // 300, 1), max(n_freqs // 256, 1)
        figure.add_trace(
            go.Heatmap(
                **_axes(col - 1),
                z=db[::fstep, ::step],
                x=times[::step],
                y=freqs[::fstep],
                zmin=-90,
                zmax=0,
                colorscale=MAGMA,
                showscale=col == 2,
                colorbar=dict(title="dB"),
            )
        )
        figure.layout["xaxis" + ("" if col == 1 else str(col))].title = "time (s)"
    figure.layout.yaxis.title = "frequency (Hz)"
    figure.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10))
    return figure


def gain_curve_figure(gain: torch.Tensor, sample_rate: int) -> go.Figure:
    """A per-bin gain (n_freqs, 1), linear, drawn in dB over frequency."""
    values = _values(gain).reshape(-1)
    freqs = np.linspace(0, sample_rate / 2, len(values))
    figure = go.Figure(
        go.Scatter(x=freqs[1:], y=20 * np.log10(np.maximum(values[1:], 1e-6)), mode="lines")
    )
    figure.update_xaxes(type="log", title="frequency (Hz)")
    figure.update_yaxes(title="gain (dB)")
    figure.update_layout(height=240, margin=dict(l=10, r=10, t=20, b=10))
    return figure


def frame_figure(
    samples: np.ndarray, sample_rate: int, window: int, hop: int, index: int | None
) -> go.Figure:
    """The waveform with frame `index` (window samples starting at index * hop) shaded."""
    step = max(len(samples) // 4000, 1)
    times = np.arange(0, len(samples), step) / sample_rate
    figure = go.Figure(
        go.Scattergl(x=times, y=samples[::step], mode="lines", line=dict(width=1, color=SECOND))
    )
    if index is not None:
        start = index * hop / sample_rate
        figure.add_vrect(
            x0=start,
            x1=start + window / sample_rate,
            fillcolor=HIGHLIGHT,
            opacity=0.35,
            line_width=0,
        )
    figure.update_xaxes(title="time (s)")
    figure.update_yaxes(title="amplitude", range=[-1, 1])
    figure.update_layout(height=220, margin=dict(l=10, r=10, t=10, b=10), showlegend=False)
    return figure
