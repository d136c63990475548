"""Plot builders for the learning-paradigm pages (unsupervised explorer, reinforcement learning).

Pure functions: arrays in, plotly Figure out. No streamlit here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz.colors import colorscale

NOISE_COLOR = "#b0b0b0"
MAGMA = colorscale("Magma")


def embedding_map(
    xy: np.ndarray,
    groups: Sequence[str],
    names: Sequence[str],
    *,
    hover_labels: Sequence[str] | None = None,
    legend_title: str = "cluster",
    title: str = "",
) -> go.Figure:
    """Scatter of a 2-D map (n, 2), one trace per group name ("noise" drawn in grey).

    Each point's `customdata` is its clip index, so a selection names clips directly.
    """
    xy = np.asarray(xy)
    groups = np.asarray([str(g) for g in groups])
    hover = list(hover_labels) if hover_labels is not None else [""] * len(names)
    fig = go.Figure()
    for group in sorted(set(groups.tolist()), key=_natural_key):
        index = np.flatnonzero(groups == group)
        noise = group == "noise"
        fig.add_trace(
            go.Scatter(
                x=xy[index, 0],
                y=xy[index, 1],
                mode="markers",
                name=group,
                customdata=index,
                text=[f"{names[i]}<br>{hover[i]}" for i in index],
                hovertemplate="%{text}<extra>%{fullData.name}</extra>",
                marker={"size": 9, "color": NOISE_COLOR} if noise else {"size": 9},
            )
        )
    fig.update_layout(
        title=title,
        height=480,
        xaxis_title="map x",
        yaxis_title="map y",
        legend_title=legend_title,
        margin={"t": 50, "b": 40},
    )
    return fig


def _natural_key(text: str) -> tuple:
    """'cluster 10' after 'cluster 9'; 'noise' last."""
    parts = re.split(r"(\d+)", text)
    return (text == "noise", [int(p) if p.isdigit() else p for p in parts])


def line_curves(
    curves: Mapping[str, np.ndarray],
    *,
    title: str,
    x_title: str,
    y_title: str,
    smooth: int = 1,
    reference: float | None = None,
    reference_name: str = "",
) -> go.Figure:
    """One line per named curve (x = 1..len), optionally a moving average of `smooth` points
    and a dashed horizontal reference line."""
    fig = go.Figure()
    for name, values in curves.items():
        y = np.asarray(values, dtype=np.float64)
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            x = np.arange(smooth, smooth + len(y))
        else:
            x = np.arange(1, len(y) + 1)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name))
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dash", annotation_text=reference_name)
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=340)
    return fig


def bandit_figure(
    cumulative_regret: Mapping[str, np.ndarray], optimal_rate: Mapping[str, np.ndarray]
) -> go.Figure:
    """Two panels: cumulative regret per agent, and the share of runs pulling the best arm."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Cumulative regret (lower is better)", "Best arm chosen")
    )
    colors = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a")
    for i, name in enumerate(cumulative_regret):
        color = colors[i % len(colors)]
        steps = np.arange(1, len(cumulative_regret[name]) + 1)
        fig.add_trace(
            go.Scatter(x=steps, y=cumulative_regret[name], name=name, line={"color": color}),
            row=1,
            col=1,
        )
        rate = np.asarray(optimal_rate[name], dtype=np.float64)
        window = max(1, len(rate) // 50)
        # trailing mean over the last `window` steps: no dip at the edges
        smoothed = np.convolve(rate, np.ones(window) / window, mode="valid")
        fig.add_trace(
            go.Scatter(
                x=steps[window - 1 :],
                y=smoothed,
                name=name,
                showlegend=False,
                line={"color": color},
            ),
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="regret", row=1, col=1)
    fig.update_yaxes(title_text="fraction of runs", range=[0, 1], row=1, col=2)
    fig.update_layout(height=360, margin={"t": 50})
    return fig


def spectrogram_pair(
    original: np.ndarray, reconstruction: np.ndarray, *, frames_per_second: float
) -> go.Figure:
    """Original and reconstructed log-mel patches (n_mels, frames) side by side, same scale."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Original", "Reconstruction"), shared_yaxes=True
    )
    for col, patch in enumerate((original, reconstruction), start=1):
        patch = np.asarray(patch).squeeze()
        times = np.arange(patch.shape[1]) / frames_per_second
        fig.add_trace(
            go.Heatmap(
                z=patch,
                x=times,
                zmin=0,
                zmax=1,
                colorscale=MAGMA,
                showscale=col == 2,
                colorbar={"title": "level"},
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text="time (s)")
    fig.update_yaxes(title_text="mel band", row=1, col=1)
    fig.update_layout(height=320, margin={"t": 40})
    return fig


def piano_roll(
    notes: Sequence[tuple[int, int, int]],
    *,
    low_pitch: int,
    n_pitches: int,
    in_scale: Sequence[bool],
    pitch_names: Sequence[str],
    length: int,
    title: str = "",
) -> go.Figure:
    """Notes `(midi, start_step, n_steps)` as bars on a pitch x step grid; scale rows shaded."""
    fig = go.Figure()
    for row in range(n_pitches):
        if in_scale[row]:
            fig.add_hrect(
                y0=low_pitch + row - 0.5,
                y1=low_pitch + row + 0.5,
                fillcolor="rgba(99, 110, 250, 0.12)",
                line_width=0,
                layer="below",
            )
    for pitch, start, steps in notes:
        name = pitch_names[pitch - low_pitch]
        fig.add_trace(
            go.Bar(
                x=[steps],
                y=[pitch],
                base=[start],
                orientation="h",
                width=0.8,
                marker_color="#636efa",
                name=name,
                showlegend=False,
                textposition="none",
                hovertemplate=f"{name}: step {start + 1}, {steps} step(s)<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        height=320,
        barmode="overlay",
        margin={"t": 40},
        xaxis={"title": "step", "range": [0, length], "dtick": 1},
        yaxis={
            "title": "pitch",
            "range": [low_pitch - 0.5, low_pitch + n_pitches - 0.5],
            "tickvals": list(range(low_pitch, low_pitch + n_pitches)),
            "ticktext": list(pitch_names),
        },
    )
    return fig


def table_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    title: str,
    value_name: str,
) -> go.Figure:
    """A (rows, columns) table as a heatmap, the best column of each row outlined by a dot."""
    values = np.asarray(values, dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(column_labels),
            y=list(row_labels),
            colorscale="Viridis",
            colorbar={"title": value_name},
            hovertemplate="%{y}<br>action %{x}: %{z:.2f}<extra></extra>",
        )
    )
    best = values.argmax(axis=1)
    fig.add_trace(
        go.Scatter(
            x=[column_labels[b] for b in best],
            y=list(row_labels),
            mode="markers",
            marker={"color": "white", "size": 8, "line": {"color": "black", "width": 1}},
            name="greedy choice",
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        title=title,
        height=60 + 32 * len(row_labels) + 80,
        margin={"t": 50},
        yaxis={"autorange": "reversed"},
        xaxis_title="action (next pitch)",
    )
    return fig


def returns_against_optimum(
    episode_returns: Sequence[float],
    evaluated_episodes: Sequence[int],
    evaluated_returns: Sequence[float],
    *,
    optimum: float,
    plan_return: float | None = None,
    smooth: int = 1,
) -> go.Figure:
    """Q-learning's return per episode beside the optimum found by value iteration.

    Lines: the sampled return of each episode (a moving average of `smooth` episodes: slips,
    noise and exploration make single episodes jumpy), the exact expected return of the
    greedy policy at `evaluated_episodes`, the optimum (dashed) and, if given, the expected
    return of the plan that ignores the slips (dotted).
    """
    fig = line_curves(
        {"sampled return while learning": episode_returns},
        title="Cumulative reward per episode against the optimum",
        x_title="episode",
        y_title="return (sum of rewards)",
        smooth=smooth,
    )
    fig.data[0].line.color = "rgba(99, 110, 250, 0.55)"
    fig.add_trace(
        go.Scatter(
            x=list(evaluated_episodes),
            y=list(evaluated_returns),
            mode="lines+markers",
            name="greedy policy, expected return (exact)",
            line={"color": "#ef553b"},
            marker={"size": 5},
        )
    )
    fig.add_hline(
        y=optimum,
        line_dash="dash",
        line_color="#00cc96",
        annotation_text=f"optimum by value iteration ({optimum:.2f})",
    )
    if plan_return is not None:
        fig.add_hline(
            y=plan_return,
            line_dash="dot",
            line_color="#ab63fa",
            annotation_text=f"plan that ignores slips ({plan_return:.2f})",
            annotation_position="bottom right",
        )
    fig.update_layout(height=380, legend={"orientation": "h", "y": -0.25})
    return fig


def policy_maps(
    panels: Sequence[tuple[str, np.ndarray, Sequence[Sequence[str]]]],
    *,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    wrong: np.ndarray | None = None,
) -> go.Figure:
    """Policies side by side over a (rows, columns) state grid: colour = state value, text =
    the action chosen there; NaN values are states left blank (never visited, unreachable).

    `panels` holds (title, values (rows, columns), action labels (rows, columns)); `wrong`
    (rows, columns) bool marks with a cross the cells of the *last* panel whose action is
    not optimal. All panels share one colour scale, so values can be compared by eye.
    """
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[p[0] for p in panels],
        shared_yaxes=True,
        horizontal_spacing=0.04,
    )
    finite = [np.asarray(v, dtype=np.float64) for _, v, _ in panels]
    numbers = np.concatenate([v[np.isfinite(v)] for v in finite]) if finite else np.zeros(1)
    low, high = (float(numbers.min()), float(numbers.max())) if numbers.size else (0.0, 1.0)
    for col, ((_, _, labels), values) in enumerate(zip(panels, finite, strict=True), start=1):
        text = [
            [label if np.isfinite(v) else "" for label, v in zip(row_text, row, strict=True)]
            for row_text, row in zip(labels, values, strict=True)
        ]
        fig.add_trace(
            go.Heatmap(
                z=values,
                x=list(column_labels),
                y=list(row_labels),
                text=text,
                texttemplate="%{text}",
                textfont={"size": 10},
                colorscale="Viridis",
                zmin=low,
                zmax=high,
                showscale=col == len(panels),
                colorbar={"title": "value"},
                hovertemplate="%{x}, after %{y}<br>plays %{text}<br>value %{z:.2f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    if wrong is not None and np.any(wrong):
        rows, cols = np.nonzero(np.asarray(wrong))
        fig.add_trace(
            go.Scatter(
                x=[column_labels[c] for c in cols],
                y=[row_labels[r] for r in rows],
                mode="markers",
                name="not an optimal choice",
                hoverinfo="skip",
                marker={
                    "symbol": "x-thin-open",
                    "size": 9,
                    "color": "#ef553b",
                    "line": {"width": 1.5, "color": "#ef553b"},
                },
            ),
            row=1,
            col=len(panels),
        )
    fig.update_yaxes(autorange="reversed", title_text="last note", row=1, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_layout(
        height=90 + 26 * len(row_labels), margin={"t": 50}, legend={"orientation": "h", "y": -0.15}
    )
    return fig
