"""Rhythm helpers on top of librosa: sub-frame tempo, edge-beat clean-up, a click-track mix."""

from __future__ import annotations

import librosa
import numpy as np

MULTIPLES = 4  # autocorrelation peaks followed: k periods pin the period to 1/k frame
MAX_SHIFT_FRAMES = 0.6  # refinement fixes librosa's rounding (≤ 0.5 frame), not its choice


def refine_tempo(
    autocorrelation: np.ndarray, bpm: float, sample_rate: int, hop_length: int
) -> float:
    """Sub-frame tempo: interpolate the autocorrelation peaks at 1, 2, ... MULTIPLES periods.

    librosa picks a whole number of frames as the period, which at hop 512 and 120 BPM is
    2.3 % coarse. Parabolic interpolation around librosa's period, then around the peak near
    k periods (which pins the period to 1/k frame), refines it; the result stays within
    MAX_SHIFT_FRAMES of librosa's period, so the tempo librosa chose is kept, only rounded
    better. autocorrelation: shape (lags,), lag in frames (the time-averaged tempogram).
    Returns beats per minute.
    """
    coarse = period = 60.0 * sample_rate / (hop_length * bpm)  # frames
    ac = np.asarray(autocorrelation, dtype=np.float64)
    for k in range(1, MULTIPLES + 1):
        centre = int(round(k * period))
        if centre - 2 < 0 or centre + 2 >= ac.size:
            break
        # At k = 1 interpolate around librosa's own lag; further out, take the local peak.
        i = centre if k == 1 else centre - 1 + int(np.argmax(ac[centre - 1 : centre + 2]))
        a, b, c = ac[i - 1], ac[i], ac[i + 1]
        curvature = a - 2 * b + c
        offset = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
        estimate = (i + float(np.clip(offset, -0.5, 0.5))) / k
        period = float(np.clip(estimate, coarse - MAX_SHIFT_FRAMES, coarse + MAX_SHIFT_FRAMES))
    return 60.0 * sample_rate / (hop_length * period)


def drop_off_grid_edge_beats(
    beat_times: np.ndarray, period_seconds: float, tolerance: float = 0.15
) -> np.ndarray:
    """Drop first/last beats that sit less than (1 - tolerance) periods from their neighbour.

    librosa's tracker can put a last beat where the signal ends rather than on the grid (an
    interval of ~0.8 period); a steady pulse never does that, so such edge beats are dropped.
    beat_times: seconds, shape (beats,). Returns a (possibly shorter) copy.
    """
    beats = np.asarray(beat_times, dtype=float)
    limit = (1 - tolerance) * period_seconds
    while beats.size > 2 and beats[-1] - beats[-2] < limit:
        beats = beats[:-1]
    while beats.size > 2 and beats[1] - beats[0] < limit:
        beats = beats[1:]
    return beats.copy()


def mix_clicks(
    y: np.ndarray, sample_rate: int, beat_times: np.ndarray, click_gain: float = 0.5
) -> np.ndarray:
    """y plus a 1 kHz click on every beat, shape (samples,), scaled so the peak is at most 1.

    The clicks are set to click_gain of the clip's peak so that both stay audible.
    """
    clicks = librosa.clicks(times=beat_times, sr=sample_rate, length=y.size, click_freq=1000.0)
    ref = float(np.max(np.abs(y))) or 1.0
    mix = y + click_gain * ref * clicks / max(float(np.max(np.abs(clicks))), 1e-9)
    return (mix / max(1.0, float(np.max(np.abs(mix))))).astype(np.float32)
