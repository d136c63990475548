"""Plot builders for audio: waveform and spectrogram figures (pure functions, plotly out).

Both stay light for long clips: the waveform is reduced to a min/max envelope of at most
`max_points` columns (every peak stays visible, unlike plain subsampling), and spectrogram
frames beyond `max_frames` are max-pooled in time.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.audio.features import hz_to_mel, mel_to_hz
from core.viz.colors import colorscale, colour_table

Y_AXES = ("mel", "linear", "log", "mfcc", "bins")


def waveform_envelope(samples: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(x_index, y) for drawing: raw samples when short, else min/max pairs per bucket.

    samples: shape (n,). Returns sample indices (float) and values, at most 2 * max_points
    points; each bucket contributes its minimum then its maximum so the outline is exact.
    """
    y = np.asarray(samples, dtype=np.float32).reshape(-1)
    n = y.size
    if n <= 2 * max_points:
        return np.arange(n, dtype=np.float64), y
    bucket = int(np.ceil(n / max_points))
    usable = (n // bucket) * bucket
    blocks = y[:usable].reshape(-1, bucket)
    lows, highs = blocks.min(axis=1), blocks.max(axis=1)
    if usable < n:  # the tail that did not fill a bucket
        lows = np.append(lows, y[usable:].min())
        highs = np.append(highs, y[usable:].max())
    starts = np.arange(lows.size, dtype=np.float64) * bucket
    x = np.repeat(starts + bucket / 2, 2)
    values = np.empty(2 * lows.size, dtype=np.float32)
    values[0::2], values[1::2] = lows, highs
    return x, values


def waveform_figure(
    samples: np.ndarray,
    sample_rate: int,
    *,
    title: str | None = None,
    max_points: int = 2000,
    height: int = 240,
) -> go.Figure:
    """Amplitude against time in seconds, decimated to a min/max envelope for long clips.

    samples: float, shape (n,) (a (channels, n) array is averaged to mono for display).
    """
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    x, values = waveform_envelope(y, max_points)
    fig = go.Figure(
        go.Scatter(
            x=x / sample_rate,
            y=values,
            mode="lines",
            line={"width": 1},
            hovertemplate="%{x:.3f} s<br>%{y:.3f}<extra></extra>",
            name="waveform",
        )
    )
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 50, "r": 20, "t": 40 if title else 10, "b": 40},
        xaxis_title="time (s)",
        yaxis_title="amplitude",
        showlegend=False,
    )
    peak = float(np.max(np.abs(values))) if values.size else 1.0
    limit = max(1.0, peak)  # full scale, so a quiet clip looks quiet
    fig.update_yaxes(range=[-limit, limit])
    return fig


def pool_frames(S: np.ndarray, max_frames: int) -> tuple[np.ndarray, int]:
    """Max-pool (rows, frames) along time so at most max_frames columns remain.

    Returns (pooled (rows, <= max_frames), factor): column j of the result is the maximum of
    frames j*factor ... (j+1)*factor - 1; the last column repeats the final frame as padding, so
    no frame is dropped.
    """
    frames = S.shape[1]
    if frames <= max_frames:
        return S, 1
    factor = int(np.ceil(frames / max_frames))
    pad = (-frames) % factor
    if pad:
        S = np.concatenate([S, np.repeat(S[:, -1:], pad, axis=1)], axis=1)
    return S.reshape(S.shape[0], -1, factor).max(axis=2), factor


def spectrogram_figure(
    S_db: np.ndarray,
    sample_rate: int,
    hop_length: int,
    *,
    y_axis: str = "mel",
    f_min: float = 0.0,
    f_max: float | None = None,
    mel_scale: str = "slaney",
    title: str | None = None,
    colorbar_title: str = "dB",
    max_frames: int = 1500,
    height: int = 320,
    zmin: float | None = None,
    zmax: float | None = None,
) -> go.Figure:
    """Heatmap of a (bins, frames) feature with time in seconds and frequency in Hz.

    y_axis: "mel" (rows are mel bands between f_min and f_max, ticks in Hz), "linear" (STFT
    bins, y in Hz), "log" (STFT bins on a log-frequency axis), "mfcc" or "bins" (row index).
    Frame t is placed at t * hop_length / sample_rate seconds (centred frames).
    """
    if y_axis not in Y_AXES:
        raise ValueError(f"y_axis must be one of {Y_AXES}, got {y_axis!r}")
    S = np.asarray(S_db, dtype=np.float32)
    if S.ndim != 2:
        raise ValueError(f"expected a (bins, frames) array, got shape {S.shape}")
    S, factor = pool_frames(S, max_frames)
    times = np.arange(S.shape[1]) * factor * hop_length / sample_rate
    n_bins = S.shape[0]
    fig = go.Figure()
    heatmap = {
        "z": S,
        "x": times,
        "colorscale": colorscale("Magma"),
        "zmin": zmin,
        "zmax": zmax,
        "colorbar": {"title": colorbar_title},
    }
    nyquist = sample_rate / 2
    if y_axis in ("linear", "log"):
        freqs = np.linspace(0, nyquist, n_bins)
        if y_axis == "log":  # drop the 0 Hz row, which has no place on a log axis
            freqs, heatmap["z"] = freqs[1:], S[1:]
        heatmap["y"] = freqs
        heatmap["hovertemplate"] = "%{x:.2f} s<br>%{y:.0f} Hz<br>%{z:.1f}<extra></extra>"
        fig.add_trace(go.Heatmap(**heatmap))
        fig.update_yaxes(title="frequency (Hz)", type="log" if y_axis == "log" else "linear")
    elif y_axis == "mel":
        centres = mel_band_centres(n_bins, f_min, nyquist if f_max is None else f_max, mel_scale)
        heatmap["y"] = np.arange(n_bins)
        heatmap["customdata"] = np.repeat(centres[:, None], S.shape[1], axis=1)
        heatmap["hovertemplate"] = "%{x:.2f} s<br>%{customdata:.0f} Hz<br>%{z:.1f}<extra></extra>"
        fig.add_trace(go.Heatmap(**heatmap))
        ticks = np.unique(np.linspace(0, n_bins - 1, min(n_bins, 7)).round().astype(int))
        fig.update_yaxes(
            title="frequency (Hz, mel scale)",
            tickvals=ticks.tolist(),
            ticktext=[_hz_label(centres[i]) for i in ticks],
        )
    else:
        heatmap["y"] = np.arange(n_bins)
        fig.add_trace(go.Heatmap(**heatmap))
        fig.update_yaxes(title="coefficient" if y_axis == "mfcc" else "bin")
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 60, "r": 20, "t": 40 if title else 10, "b": 40},
        xaxis_title="time (s)",
    )
    return fig


def mel_band_centres(
    n_mels: int, f_min: float, f_max: float, mel_scale: str = "slaney"
) -> np.ndarray:
    """Centre frequency in Hz of each of n_mels mel bands between f_min and f_max."""
    edges = mel_to_hz(
        np.linspace(hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale), n_mels + 2), mel_scale
    )
    return edges[1:-1]


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:.1f} k" if hz >= 1000 else f"{hz:.0f}"


def spectrogram_image(
    mel_db: np.ndarray, *, floor_db: float = -100.0, row_pixels: int = 3, scale: str = "Magma"
) -> np.ndarray:
    """A picture of log-mel frames: (bands, frames) dB -> (bands * row_pixels, frames, 3) uint8.

    Low bands at the bottom, oldest frame at the left; colours from `scale` between floor_db
    (dark) and 0 dBFS (bright). The Live tab's scrolling spectrogram is this picture, not a
    plotly heatmap: it is redrawn every second, an image costs the browser nothing to show,
    and a heatmap's layout cost it ~100 ms a redraw on this shared 2-core CPU (measured with
    tests/benchmarks/bench_live_browser.py), time in which the label could not be redrawn.
    """
    S = np.nan_to_num(np.asarray(mel_db, dtype=np.float32), nan=floor_db)
    level = np.clip((S - floor_db) / -floor_db, 0.0, 1.0)
    rgb = colour_table(scale)[np.round(level * 255).astype(np.uint8)]  # (bands, frames, 3)
    return np.repeat(rgb[::-1], max(1, int(row_pixels)), axis=0)


def spectrogram_thumbnail(S_db: np.ndarray, *, width: int = 320, height: int = 128) -> np.ndarray:
    """A small picture of a (bins, frames) dB feature: (height, width, 3) uint8, low bins at
    the bottom, from its quietest (dark) to its loudest value (bright) on Magma, like the
    heatmaps' automatic range. The Train page's class thumbnails are such pictures, not
    plotly heatmaps: four heatmaps took Chromium about 0.3 s of main thread to draw on each
    visit of the page (2-core machine), a picture next to nothing."""
    from PIL import Image

    S = np.nan_to_num(np.asarray(S_db, dtype=np.float32))
    if S.ndim != 2 or S.size == 0:
        raise ValueError(f"expected a non-empty (bins, frames) array, got shape {S.shape}")
    span = float(S.max() - S.min())
    picture = spectrogram_image(S - S.max(), floor_db=-span if span > 0 else -1.0, row_pixels=1)
    resized = Image.fromarray(picture).resize((int(width), int(height)), Image.Resampling.BILINEAR)
    return np.asarray(resized)
