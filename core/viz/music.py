"""Plot builders for the Music analysis page: arrays in, plotly Figures out.

Every time axis is in seconds and takes the same `x_range` (start, end), so the views line
up when the student zooms. Large matrices are max-pooled to at most MAX_COLUMNS columns
before drawing: the browser gets a light figure and peaks (onsets, clicks) stay visible.
"""

from __future__ import annotations

import librosa
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.music import (
    KEY_NAMES,
    PITCH_CLASSES,
    KeyGram,
    PitchContour,
    SpectrogramView,
    Structure,
)
from core.viz.audio import pool_frames, waveform_envelope
from core.viz.colors import colorscale as safe_colorscale

MAX_COLUMNS = 600  # heatmap columns sent to the browser (after cropping to the zoom)
MAX_ROWS = 320  # linear / log spectrogram rows sent to the browser
MAX_POINTS = 3000  # waveform buckets (each drawn as its min and max)
HEIGHT = 320


def _layout(
    fig: go.Figure, title: str, x_range: tuple[float, float] | None, height: int = HEIGHT
) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=60, r=20, t=40, b=40),
        legend=dict(orientation="h", y=1.12),
    )
    fig.update_xaxes(title_text="time (s)")
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def frame_span(times: np.ndarray, x_range: tuple[float, float] | None) -> slice:
    """Frames inside x_range (plus one on each side), so zooming in sends full detail."""
    if x_range is None or times.size == 0:
        return slice(0, times.size)
    lo = max(int(np.searchsorted(times, x_range[0])) - 1, 0)
    hi = min(int(np.searchsorted(times, x_range[1])) + 1, times.size)
    return slice(lo, max(hi, lo + 1))


def pool_columns(
    matrix: np.ndarray,
    times: np.ndarray,
    x_range: tuple[float, float] | None = None,
    max_columns: int = MAX_COLUMNS,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop (rows, frames) to x_range, then max-pool along time to ≤ max_columns.

    Returns (matrix (rows, ≤ max_columns) float32, times of the kept columns in seconds).
    """
    span = frame_span(times, x_range)
    pooled, factor = pool_frames(matrix[:, span], max_columns)
    return pooled.astype(np.float32, copy=False), times[span][::factor]


def pool_rows(
    matrix: np.ndarray, freqs: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max over the rows whose frequency falls in each band [edges[i], edges[i+1]) (nearest row
    when a band holds none). Returns (matrix (bands, frames), band centre frequencies)."""
    lo = np.searchsorted(freqs, edges[:-1])
    hi = np.maximum(np.searchsorted(freqs, edges[1:]), lo + 1)
    lo, hi = np.minimum(lo, freqs.size - 1), np.minimum(hi, freqs.size)
    pooled = np.stack([matrix[a:b].max(axis=0) for a, b in zip(lo, hi, strict=True)])
    return pooled, np.sqrt(edges[:-1] * edges[1:]) if edges[0] > 0 else (edges[:-1] + edges[1:]) / 2


def envelope(
    y: np.ndarray,
    sample_rate: int,
    x_range: tuple[float, float] | None = None,
    max_points: int = MAX_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Min/max envelope of the waveform inside x_range: (times (<= 2 * max_points,), values)
    in seconds (`core.viz.audio.waveform_envelope` of the cropped samples)."""
    start = 0 if x_range is None else max(int(x_range[0] * sample_rate), 0)
    stop = y.size if x_range is None else min(int(np.ceil(x_range[1] * sample_rate)), y.size)
    positions, values = waveform_envelope(y[start : max(stop, start + 1)], max_points)
    return (start + positions) / sample_rate, values


def _lines(
    times: np.ndarray, x_range: tuple[float, float] | None, *series: np.ndarray
) -> list[np.ndarray]:
    """Crop time and each series to x_range and keep ≤ MAX_COLUMNS * 2 points of each."""
    span = frame_span(times, x_range)
    step = max(1, int(np.ceil((span.stop - span.start) / (2 * MAX_COLUMNS))))
    return [times[span][::step]] + [s[span][::step] for s in series]


def waveform_figure(
    y: np.ndarray,
    sample_rate: int,
    rms: np.ndarray,
    rms_times: np.ndarray,
    x_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Waveform (min/max envelope) with the frame RMS envelope drawn on both sides."""
    t, v = envelope(y, sample_rate, x_range)
    rt, r = _lines(rms_times, x_range, rms)
    fig = go.Figure()
    fig.add_scatter(x=t, y=v, mode="lines", name="waveform", line=dict(width=1, color="#7f8fa6"))
    fig.add_scatter(x=rt, y=r, mode="lines", name="RMS", line=dict(color="#e1701a", width=2))
    fig.add_scatter(x=rt, y=-r, mode="lines", showlegend=False, line=dict(color="#e1701a", width=2))
    fig.update_yaxes(title_text="amplitude")
    return _layout(fig, "Waveform and RMS envelope", x_range)


def _hz_ticks(freqs: np.ndarray) -> tuple[list[int], list[str]]:
    """Tick positions (bin indices) and labels for a non-linear frequency axis."""
    targets = [32, 64, 125, 250, 500, 1000, 2000, 4000, 8000, 16000]
    idx, labels = [], []
    for hz in targets:
        if freqs[0] <= hz <= freqs[-1]:
            idx.append(int(np.argmin(np.abs(freqs - hz))))
            labels.append(f"{hz // 1000}k" if hz >= 1000 else str(hz))
    return idx, labels


def _linear_rows(db: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if freqs.size <= MAX_ROWS:
        return db, freqs
    return pool_rows(db, freqs, np.linspace(freqs[0], freqs[-1] + 1e-6, MAX_ROWS + 1))


def _log_rows(db: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Log-spaced bands from the first non-zero bin: the bass keeps its few wide bins, the
    # treble's many narrow bins are pooled.
    edges = np.geomspace(max(freqs[1], 20.0), freqs[-1] + 1e-6, min(MAX_ROWS, freqs.size) + 1)
    return pool_rows(db, freqs, edges)


def spectrogram_figure(
    view: SpectrogramView, x_range: tuple[float, float] | None = None, colorscale: str = "Magma"
) -> go.Figure:
    """The view's dB spectrogram on its own frequency scale (linear, log, mel or CQT)."""
    db, times = pool_columns(view.db, view.times, x_range)
    fig = go.Figure()
    colorbar = dict(title="dB")
    if view.scale in ("mel", "cqt"):
        fig.add_heatmap(
            z=db,
            x=times,
            y=np.arange(db.shape[0]),
            colorscale=safe_colorscale(colorscale),
            colorbar=colorbar,
        )
        tickvals, ticktext = _hz_ticks(view.freqs)
        fig.update_yaxes(
            tickvals=tickvals, ticktext=ticktext, title_text=f"frequency (Hz, {view.scale} scale)"
        )
    elif view.scale == "log":
        z, freqs = _log_rows(db, view.freqs)
        fig.add_heatmap(
            z=z, x=times, y=freqs, colorscale=safe_colorscale(colorscale), colorbar=colorbar
        )
        fig.update_yaxes(type="log", title_text="frequency (Hz, log)")
    else:
        z, freqs = _linear_rows(db, view.freqs)
        fig.add_heatmap(
            z=z, x=times, y=freqs, colorscale=safe_colorscale(colorscale), colorbar=colorbar
        )
        fig.update_yaxes(title_text="frequency (Hz)")
    return _layout(fig, f"Spectrogram ({view.scale})", x_range, height=380)


def chroma_figure(
    chroma: np.ndarray,
    times: np.ndarray,
    title: str,
    x_range: tuple[float, float] | None = None,
    colorscale: str = "Viridis",
) -> go.Figure:
    """Chromagram, shape (12, frames), pitch classes C..B bottom to top."""
    z, t = pool_columns(chroma, times, x_range)
    fig = go.Figure(
        go.Heatmap(z=z, x=t, y=list(PITCH_CLASSES), colorscale=safe_colorscale(colorscale))
    )
    fig.update_yaxes(title_text="pitch class")
    return _layout(fig, title, x_range, height=260)


def mfcc_figure(
    mfcc: np.ndarray,
    times: np.ndarray,
    x_range: tuple[float, float] | None = None,
    colorscale: str = "RdBu_r",
) -> go.Figure:
    """MFCC, shape (n_mfcc, frames); coefficient 0 (overall level) at the bottom."""
    z, t = pool_columns(mfcc, times, x_range)
    fig = go.Figure(
        go.Heatmap(
            z=z, x=t, y=np.arange(z.shape[0]), colorscale=safe_colorscale(colorscale), zmid=0
        )
    )
    fig.update_yaxes(title_text="coefficient")
    return _layout(fig, "MFCC", x_range, height=260)


def spectral_features_figure(
    view: SpectrogramView,
    features: dict[str, np.ndarray],
    times: np.ndarray,
    x_range: tuple[float, float] | None = None,
    colorscale: str = "Greys",
) -> go.Figure:
    """Centroid ± bandwidth and roll-off over a linear spectrogram; flatness and ZCR below."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06
    )
    db, t = pool_columns(view.db, view.times, x_range)
    z, freqs = _linear_rows(db, view.freqs)
    fig.add_heatmap(
        z=z, x=t, y=freqs, colorscale=safe_colorscale(colorscale), showscale=False, row=1, col=1
    )
    names = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness", "zcr")
    ts, c, bw, rolloff, flatness, zcr = _lines(times, x_range, *(features[n] for n in names))
    lines = [
        ("centroid", c, "#d62728"),
        ("centroid + bandwidth", c + bw, "#ff9896"),
        ("centroid − bandwidth", np.maximum(c - bw, 0), "#ff9896"),
        ("roll-off", rolloff, "#1f77b4"),
    ]
    for name, values, color in lines:
        fig.add_scatter(
            x=ts, y=values, name=name, mode="lines", line=dict(color=color, width=1.5), row=1, col=1
        )
    fig.add_scatter(x=ts, y=flatness, name="flatness", mode="lines", row=2, col=1)
    fig.add_scatter(x=ts, y=zcr, name="zero-crossing rate", mode="lines", row=2, col=1)
    fig.update_yaxes(title_text="Hz", row=1, col=1)
    fig.update_yaxes(title_text="0..1", row=2, col=1)
    fig = _layout(fig, "Spectral features", None, height=480)
    fig.update_xaxes(title_text="", row=1, col=1)
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def _vertical_lines(xs: np.ndarray, y0: float, y1: float) -> tuple[np.ndarray, np.ndarray]:
    """One trace's x/y for many vertical lines (NaN-separated): far cheaper than add_vline."""
    x = np.repeat(np.asarray(xs, dtype=float), 3)
    y = np.tile([y0, y1, np.nan], len(xs))
    x[2::3] = np.nan
    return x, y


def onset_figure(
    times: np.ndarray,
    onset_envelope: np.ndarray,
    onset_times: np.ndarray,
    beat_times: np.ndarray | None,
    x_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Onset strength curve with detected onsets (dots) and beats (vertical lines)."""
    t, env = _lines(times, x_range, onset_envelope)
    fig = go.Figure()
    fig.add_scatter(x=t, y=env, mode="lines", name="onset strength", line=dict(color="#444"))
    heights = np.interp(onset_times, times, onset_envelope) if onset_times.size else []
    fig.add_scatter(
        x=onset_times,
        y=heights,
        mode="markers",
        name="onsets",
        marker=dict(color="#d62728", size=7),
    )
    if beat_times is not None and beat_times.size:
        top = float(onset_envelope.max()) if onset_envelope.size else 1.0
        xs, ys = _vertical_lines(beat_times, 0.0, top)
        fig.add_scatter(
            x=xs, y=ys, mode="lines", name="beats", line=dict(color="#2ca02c", dash="dot")
        )
    fig.update_yaxes(title_text="strength")
    return _layout(fig, "Onset strength, onsets and beats", x_range)


def tempogram_figure(
    tempogram: np.ndarray,
    times: np.ndarray,
    bpms: np.ndarray,
    tempo_bpm: float | None,
    x_range: tuple[float, float] | None = None,
    colorscale: str = "Magma",
    other_level_bpm: float | None = None,
) -> go.Figure:
    """Autocorrelation tempogram between 30 and 300 BPM (log axis) with the global tempo.

    other_level_bpm: the runner-up metrical level (e.g. double or half), drawn dotted.
    """
    keep = (bpms >= 30) & (bpms <= 300)
    z, t = pool_columns(tempogram[keep], times, x_range)
    fig = go.Figure(
        go.Heatmap(z=z, x=t, y=bpms[keep], colorscale=safe_colorscale(colorscale), showscale=False)
    )
    if tempo_bpm is not None:
        fig.add_hline(
            y=tempo_bpm,
            line=dict(color="#00d4ff", dash="dash"),
            annotation_text=f"{tempo_bpm:.1f} BPM",
        )
    if other_level_bpm is not None:
        fig.add_hline(
            y=other_level_bpm,
            line=dict(color="#7fff7f", dash="dot"),
            annotation_text=f"{other_level_bpm:.1f} BPM",
            annotation_position="bottom right",
        )
    fig.update_yaxes(type="log", title_text="tempo (BPM)")
    return _layout(fig, "Tempogram", x_range)


def key_profile_figure(
    profile: np.ndarray, key_index: int, template: tuple[float, ...] | np.ndarray
) -> go.Figure:
    """The clip's pitch-class profile (bars) against the chosen key's template (line), both sum 1.

    template: the key's profile with the tonic first (C major's or C minor's); it is rotated here.
    """
    tonic = key_index % 12
    rotated = np.roll(np.asarray(template, dtype=float), tonic)
    rotated = rotated / rotated.sum()
    fig = go.Figure()
    fig.add_bar(x=list(PITCH_CLASSES), y=profile, name="this clip", marker_color="#4c78a8")
    fig.add_scatter(
        x=list(PITCH_CLASSES),
        y=rotated,
        name=f"{KEY_NAMES[key_index]} profile",
        mode="lines+markers",
    )
    fig.update_yaxes(title_text="share of energy")
    fig.update_layout(
        title="The clip's chroma profile", height=300, margin=dict(l=60, r=20, t=40, b=40)
    )
    return fig


def key_correlation_figure(correlations: dict[str, np.ndarray], key_index: int) -> go.Figure:
    """One bar chart per profile set: Pearson r of the clip with each of the 24 keys."""
    names = list(correlations)
    fig = make_subplots(
        rows=len(names), cols=1, subplot_titles=names, shared_xaxes=True, vertical_spacing=0.12
    )
    for row, name in enumerate(names, start=1):
        r = correlations[name]
        colors = [
            "#e45756" if i == key_index else ("#4c78a8" if i < 12 else "#72b7b2") for i in range(24)
        ]
        fig.add_bar(
            x=list(KEY_NAMES),
            y=r,
            marker_color=colors,
            showlegend=False,
            row=row,
            col=1,
            hovertemplate="%{x}: r = %{y:.3f}<extra></extra>",
        )
        fig.update_yaxes(title_text="r", range=[-1, 1], row=row, col=1)
    fig.update_layout(
        title="Correlation with the 24 major and minor keys",
        height=520,
        margin=dict(l=60, r=20, t=60, b=90),
    )
    return fig


def keygram_figure(
    gram: KeyGram, x_range: tuple[float, float] | None = None, colorscale: str = "Magma"
) -> go.Figure:
    """Key over time: correlation of each moment's window with the 24 keys, best key marked."""
    z, t = pool_columns(gram.correlations, gram.times, x_range)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=t,
            y=list(KEY_NAMES),
            colorscale=safe_colorscale(colorscale),
            zmin=-1,
            zmax=1,
            colorbar=dict(title="r"),
            hovertemplate="%{x:.1f} s, %{y}: r = %{z:.2f}<extra></extra>",
        )
    )
    best = [KEY_NAMES[i] for i in gram.key_indices]
    fig.add_scatter(
        x=gram.times, y=best, mode="lines", name="best key", line=dict(color="#00d4ff", width=2)
    )
    fig.update_yaxes(title_text="key", categoryorder="array", categoryarray=list(KEY_NAMES))
    title = f"Key-gram ({gram.window_seconds:g} s window, {gram.profiles})"
    return _layout(fig, title, x_range, height=520)


def pitch_figure(contour: PitchContour, x_range: tuple[float, float] | None = None) -> go.Figure:
    """pYIN f0 on a log-frequency axis labelled with note names; unvoiced frames are gaps."""
    span = frame_span(contour.times, x_range)
    f0 = np.where(contour.voiced, contour.f0_hz, np.nan)[span]
    notes = contour.note_names()[span]
    fig = go.Figure()
    fig.add_scatter(
        x=contour.times[span],
        y=f0,
        mode="lines+markers",
        marker=dict(size=3),
        name="f0",
        text=notes.tolist(),
        hovertemplate="%{x:.2f} s: %{y:.1f} Hz (%{text})<extra></extra>",
    )
    voiced = f0[np.isfinite(f0)]
    if voiced.size:
        lo, hi = np.log2(voiced.min()) - 0.1, np.log2(voiced.max()) + 0.1
        midi = np.arange(
            int(np.floor(librosa.hz_to_midi(2**lo))), int(np.ceil(librosa.hz_to_midi(2**hi))) + 1
        )
        step = max(1, midi.size // 14)
        tick_midi = midi[::step]
        fig.update_yaxes(
            type="log",
            tickvals=librosa.midi_to_hz(tick_midi),
            ticktext=[librosa.midi_to_note(m, unicode=False) for m in tick_midi],
        )
    fig.update_yaxes(title_text="pitch")
    return _layout(fig, "Pitch contour (pYIN)", x_range)


def hpss_figure(
    harmonic: np.ndarray,
    percussive: np.ndarray,
    sample_rate: int,
    x_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Harmonic and percussive waveforms, one above the other."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, subplot_titles=("harmonic", "percussive")
    )
    for row, (part, color) in enumerate(((harmonic, "#4c78a8"), (percussive, "#e45756")), start=1):
        t, v = envelope(part, sample_rate, x_range)
        fig.add_scatter(
            x=t,
            y=v,
            mode="lines",
            line=dict(width=1, color=color),
            showlegend=False,
            row=row,
            col=1,
        )
    fig = _layout(fig, "Harmonic / percussive separation", None, height=400)
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def ssm_figure(structure: Structure, colorscale: str = "Viridis") -> go.Figure:
    """Self-similarity matrix (time × time) with the segment boundaries as lines."""
    t = structure.block_times
    fig = go.Figure(
        go.Heatmap(
            z=structure.ssm, x=t, y=t, colorscale=safe_colorscale(colorscale), zmin=0, zmax=1
        )
    )
    lines = dict(color="white", width=1, dash="dot")
    fig.update_layout(
        shapes=[
            dict(type="line", x0=b, x1=b, y0=0, y1=1, yref="paper", line=lines)
            for b in structure.boundaries
        ]
        + [
            dict(type="line", y0=b, y1=b, x0=0, x1=1, xref="paper", line=lines)
            for b in structure.boundaries
        ]
    )
    fig.update_yaxes(title_text="time (s)", scaleanchor="x", autorange="reversed")
    return _layout(fig, "Self-similarity matrix", None, height=520)


def novelty_figure(structure: Structure, x_range: tuple[float, float] | None = None) -> go.Figure:
    """Foote novelty along the diagonal; its peaks are the segment boundaries."""
    fig = go.Figure()
    fig.add_scatter(x=structure.block_times, y=structure.novelty, mode="lines", name="novelty")
    xs, ys = _vertical_lines(structure.boundaries, 0.0, 1.0)
    fig.add_scatter(
        x=xs, y=ys, mode="lines", name="boundaries", line=dict(color="#d62728", dash="dot")
    )
    fig.update_yaxes(title_text="novelty", range=[0, 1.05])
    return _layout(fig, "Novelty and segment boundaries", x_range, height=240)
