"""Plot builders for pitch tracking and transcription: pure functions, data in, Figure out.

Pitch is drawn in MIDI numbers (one unit = one semitone) with note names on the axis, so a
semitone is the same height everywhere and the piano roll, the tracks and the networks'
probability images line up.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.music.pitch_networks import PitchTrack
from core.music.transcription import Note
from core.viz.colors import colorscale as safe_colorscale
from core.viz.music import MAX_COLUMNS, _layout, frame_span, pool_columns

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
TRACKER_COLORS = {
    "pYIN": "#636efa",
    "CREPE tiny": "#ef553b",
    "CREPE full": "#ab63fa",
    "PESTO": "#00a884",
}
MAX_INPUT_ROWS = 1024  # rows of a network-input image sent to the browser (CREPE's frame)


def midi_name(midi: int) -> str:
    """'C4' for 60, 'A4' for 69."""
    return f"{NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


def _note_axis(fig: go.Figure, lo: float, hi: float, **where) -> None:
    """MIDI y axis from lo to hi with note names: every semitone when zoomed in, C E G over a
    few octaves, the Cs beyond."""
    lo, hi = float(np.floor(lo)), float(np.ceil(hi))
    span = np.arange(lo, hi + 1)
    if hi - lo <= 14:
        ticks = span
    elif hi - lo <= 40:
        ticks = span[np.isin(span % 12, (0, 4, 7))]
    else:
        ticks = span[span % 12 == 0]
    fig.update_yaxes(
        range=[lo - 0.5, hi + 0.5],
        tickvals=ticks.tolist(),
        ticktext=[midi_name(int(m)) for m in ticks],
        title_text="pitch",
        **where,
    )


def _legend_right(fig: go.Figure) -> go.Figure:
    # The shared layout puts the legend where a long title runs: here it sits right, under it.
    fig.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1.0, xanchor="right"))
    fig.update_layout(margin=dict(t=60))
    return fig


def _voiced_range(tracks: list[PitchTrack], span_of) -> tuple[float, float]:
    values = [t.midi()[span_of(t)] for t in tracks]
    values = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
    if values.size == 0:
        return 48.0, 72.0
    lo, hi = np.percentile(values, [1, 99])
    return float(lo) - 2, float(hi) + 2


def _thin(times: np.ndarray, x_range, *series: np.ndarray) -> list[np.ndarray]:
    span = frame_span(times, x_range)
    step = max(1, int(np.ceil((span.stop - span.start) / (2 * MAX_COLUMNS))))
    return [times[span][::step]] + [s[span][::step] for s in series]


def pitch_comparison_figure(
    tracks: list[PitchTrack], x_range: tuple[float, float] | None = None
) -> go.Figure:
    """Every tracker's pitch (top, MIDI with note names; gaps where unvoiced) and confidence
    (bottom, 0..1, dotted line at each tracker's voicing threshold) on one time axis."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06
    )
    for track in tracks:
        color = TRACKER_COLORS.get(track.tracker)
        times, midi, confidence = _thin(track.times, x_range, track.midi(), track.confidence)
        names = np.array(
            ["" if not np.isfinite(m) else midi_name(int(np.round(m))) for m in midi], dtype=object
        )
        fig.add_scatter(
            x=times,
            y=midi,
            mode="lines",
            name=track.tracker,
            line=dict(color=color, width=2),
            legendgroup=track.tracker,
            text=names,
            hovertemplate="%{x:.2f} s: %{text} (%{y:.2f})<extra>" + track.tracker + "</extra>",
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=times,
            y=confidence,
            mode="lines",
            name=track.tracker,
            showlegend=False,
            legendgroup=track.tracker,
            line=dict(color=color, width=1),
            hovertemplate="%{x:.2f} s: %{y:.2f}<extra>" + track.tracker + "</extra>",
            row=2,
            col=1,
        )
        if track.tracker != "pYIN":
            fig.add_hline(
                y=track.voicing_threshold, line=dict(color=color, dash="dot", width=1), row=2, col=1
            )
    lo, hi = _voiced_range(tracks, lambda t: frame_span(t.times, x_range))
    _note_axis(fig, lo, hi, row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], title_text="confidence", row=2, col=1)
    fig = _layout(fig, "Pitch: " + ", ".join(t.tracker for t in tracks), x_range, height=460)
    fig.update_xaxes(title_text="", row=1, col=1)
    return _legend_right(fig)


def pitch_probability_figure(
    track: PitchTrack, x_range: tuple[float, float] | None = None, colors: str = "Magma"
) -> go.Figure:
    """What the network says: its output probabilities as an image (pitch bins x time), with
    the pitch it chose drawn on top (gaps where the frame is called unvoiced)."""
    if track.probabilities is None or track.bin_midi is None:
        raise ValueError(f"{track.tracker} has no probability output (it is not a network).")
    lo, hi = _voiced_range([track], lambda t: frame_span(t.times, x_range))
    lo, hi = max(lo - 5, float(track.bin_midi[0])), min(hi + 5, float(track.bin_midi[-1]))
    rows = (track.bin_midi >= lo - 0.5) & (track.bin_midi <= hi + 0.5)
    image, times = pool_columns(track.probabilities.T[rows], track.times, x_range)
    fig = go.Figure()
    fig.add_heatmap(
        z=image,
        x=times,
        y=track.bin_midi[rows],
        colorscale=safe_colorscale(colors),
        zmin=0,
        colorbar=dict(title="probability", len=0.9),
        hovertemplate="%{x:.2f} s, MIDI %{y:.2f}: %{z:.2f}<extra></extra>",
    )
    times_line, midi = _thin(track.times, x_range, track.midi())
    fig.add_scatter(
        x=times_line,
        y=midi,
        mode="lines",
        name=f"{track.tracker}'s pitch",
        line=dict(color="#00e5ff", width=2),
        hoverinfo="skip",
    )
    _note_axis(fig, lo, hi)
    title = f"What {track.tracker} says: probability of each pitch, frame by frame"
    return _legend_right(_layout(fig, title, x_range, height=400))


def network_input_figure(
    values: np.ndarray,
    times: np.ndarray,
    axis: np.ndarray,
    *,
    title: str,
    axis_title: str,
    x_range: tuple[float, float] | None = None,
    colors: str = "RdBu_r",
    note_axis: bool = False,
) -> go.Figure:
    """What the network sees, frame by frame: values (frames, features) as an image over time.

    For CREPE: values are the normalised 1024-sample frames (axis: ms within the frame,
    diverging colours around 0). For PESTO: its CQT in dB (axis: MIDI of each bin,
    note_axis=True). Cropped to x_range, pooled to at most MAX_COLUMNS x MAX_INPUT_ROWS cells
    (rows by striding: a pooled waveform would lose its sign).
    """
    span = frame_span(times, x_range)
    values, times = values[span], times[span]
    row_step = max(1, int(np.ceil(values.shape[1] / MAX_INPUT_ROWS)))
    col_step = max(1, int(np.ceil(values.shape[0] / MAX_COLUMNS)))
    image = values[::col_step, ::row_step].T
    fig = go.Figure()
    symmetric = not note_axis
    limit = float(np.percentile(np.abs(image), 99)) if symmetric and image.size else None
    fig.add_heatmap(
        z=image,
        x=times[::col_step],
        y=axis[::row_step],
        colorscale=safe_colorscale(colors),
        zmid=0 if symmetric else None,
        zmin=-limit if limit else None,
        zmax=limit,
        hovertemplate="%{x:.2f} s, %{y:.1f}: %{z:.2f}<extra></extra>",
    )
    if note_axis:
        _note_axis(fig, float(axis[0]), float(axis[-1]))
    else:
        fig.update_yaxes(title_text=axis_title)
    return _layout(fig, title, x_range, height=360)


def input_frame_figure(
    frame: np.ndarray,
    axis: np.ndarray,
    *,
    time_seconds: float,
    axis_title: str,
    value_title: str,
    title: str,
) -> go.Figure:
    """One frame of a network's input as a line (CREPE: 1024 samples; PESTO: one CQT column)."""
    fig = go.Figure()
    fig.add_scatter(x=axis, y=frame, mode="lines", line=dict(width=1), name=f"{time_seconds:.2f} s")
    fig.update_layout(title=title, height=260, margin=dict(l=60, r=20, t=40, b=40))
    fig.update_xaxes(title_text=axis_title)
    fig.update_yaxes(title_text=value_title)
    return fig


def piano_roll_figure(
    notes: list[Note],
    track: PitchTrack | None = None,
    x_range: tuple[float, float] | None = None,
) -> go.Figure:
    """The transcription as a piano roll (one bar per note, colour = confidence), with the
    tracker's pitch line over it so every cut can be checked against what it came from."""
    fig = go.Figure()
    if notes:
        fig.add_bar(
            base=[n.start_seconds for n in notes],
            x=[n.duration_seconds for n in notes],
            y=[n.pitch for n in notes],
            orientation="h",
            width=0.8,
            marker=dict(
                color=[n.confidence for n in notes],
                colorscale=safe_colorscale("Viridis"),
                cmin=0,
                cmax=1,
                colorbar=dict(title="confidence", len=0.9),
            ),
            text=[n.name for n in notes],
            textposition="inside",
            customdata=[[n.name, n.start_seconds, n.end_seconds] for n in notes],
            hovertemplate="%{customdata[0]}: %{customdata[1]:.2f}-%{customdata[2]:.2f} "
            "s<extra></extra>",
            name="notes",
        )
    if track is not None:
        times, midi = _thin(track.times, x_range, track.midi())
        fig.add_scatter(
            x=times,
            y=midi,
            mode="lines",
            name=f"{track.tracker} pitch",
            line=dict(color="#ef553b", width=1),
            hoverinfo="skip",
        )
    pitches = [n.pitch for n in notes]
    if pitches:
        lo, hi = min(pitches) - 2, max(pitches) + 2
    elif track is not None:
        lo, hi = _voiced_range([track], lambda t: frame_span(t.times, x_range))
    else:
        lo, hi = 48, 72
    _note_axis(fig, lo, hi)
    fig.update_layout(bargap=0)
    return _legend_right(_layout(fig, f"Piano roll: {len(notes)} notes", x_range, height=380))
