"""Spectrogram views (the student's own n_fft / hop / window / scale) and block-wise helpers
that keep long clips within bounded memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import librosa
import numpy as np

SPECTROGRAM_SCALES = ("linear", "log", "mel", "cqt")


WINDOWS = ("hann", "hamming", "blackman", "boxcar")


N_FFT_CHOICES = (256, 512, 1024, 2048, 4096, 8192)


HOP_CHOICES = (64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class SpectrogramView:
    """A spectrogram ready to draw, with the resolution it buys.

    db: shape (bins, frames), dB re the clip's maximum (top 80 dB kept).
    times: frame centres in seconds, shape (frames,). freqs: bin centres in Hz, shape (bins,).
    """

    db: np.ndarray
    times: np.ndarray
    freqs: np.ndarray
    scale: str
    n_fft: int
    hop_length: int
    window: str
    frame_step_seconds: float  # Δt between columns = hop / sr
    window_seconds: float  # the time span each column smears over = n_fft / sr
    bin_hz: float  # Δf between linear-frequency bins = sr / n_fft (0 for CQT)
    notices: tuple[str, ...] = field(default=())


def blockwise(
    frame_wise: Callable[[np.ndarray], np.ndarray], spec: np.ndarray, block_frames: int = 2048
) -> np.ndarray:
    """Apply a per-frame feature to (bins, frames) in blocks of frames and join the results.

    librosa's spectral features make several float64 copies of their whole input; block by
    block those copies stay small, and since each frame is computed on its own the result is
    the same. Returns shape (rows, frames).
    """
    parts = [
        frame_wise(spec[:, i : i + block_frames]) for i in range(0, spec.shape[1], block_frames)
    ]
    return np.concatenate(parts, axis=-1)


def harmonic_mask(magnitude: np.ndarray, kernel: int, block_frames: int = 2048) -> np.ndarray:
    """Soft harmonic mask of librosa's HPSS, shape (bins, frames), values 0..1.

    magnitude: |STFT|, shape (bins, frames). Computed block by block along time with
    kernel // 2 + 1 frames of context on each side, which reproduces the whole-clip result.
    """
    frames = magnitude.shape[1]
    margin = kernel // 2 + 1
    mask = np.empty_like(magnitude)
    for start in range(0, frames, block_frames):
        stop = min(start + block_frames, frames)
        lo, hi = max(0, start - margin), min(frames, stop + margin)
        block_mask, _ = librosa.decompose.hpss(magnitude[:, lo:hi], kernel_size=kernel, mask=True)
        mask[:, start:stop] = block_mask[:, start - lo : stop - lo]
    return mask
