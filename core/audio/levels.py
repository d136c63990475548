"""Signal helpers: resampling, peak / RMS levels in dBFS and WAV encoding."""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile as sf
import soxr

# --- signal helpers


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling with soxr (HQ), along the last axis.

    samples: float32, shape (n,) or (channels, n). Returns float32 of shape
    (..., round(n * target_sr / orig_sr)).
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError("sample rates must be positive")
    samples = np.asarray(samples, dtype=np.float32)
    if orig_sr == target_sr:
        return samples
    if samples.ndim == 1:
        return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32)
    out = soxr.resample(np.ascontiguousarray(samples.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels: (channels, n) -> (n,); (n,) is returned as is."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples if samples.ndim == 1 else samples.mean(axis=0)


def peak(samples: np.ndarray) -> float:
    """Largest absolute sample value (linear, 1.0 = full scale); 0.0 for an empty array."""
    if not np.size(samples):
        return 0.0
    # max and -min instead of abs(): no temporary copy of a 10-minute clip
    return float(max(np.max(samples), -np.min(samples)))


def rms(samples: np.ndarray) -> float:
    """Root-mean-square level (linear, a full-scale sine has 1/sqrt(2))."""
    if not np.size(samples):
        return 0.0
    x = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x)))


def dbfs(level: float, floor_db: float = -120.0) -> float:
    """A linear level (peak or RMS) in dB relative to full scale, floored at floor_db."""
    return max(20.0 * math.log10(level), floor_db) if level > 0 else floor_db


def encode_wav(samples: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16") -> bytes:
    """WAV file bytes for st.audio or a download.

    samples: float, shape (n,) or (channels, n), nominally in [-1, 1] (clipped for PCM).
    subtype: "PCM_16" (small, universally playable) or "FLOAT" (exact).
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.T  # soundfile wants (frames, channels)
    if subtype.startswith("PCM"):
        x = np.clip(np.nan_to_num(x), -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, x, int(sample_rate), format="WAV", subtype=subtype)
    return buffer.getvalue()
