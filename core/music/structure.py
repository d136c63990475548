"""Structure: self-similarity of pooled chroma + MFCC, Foote novelty, segment boundaries."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps


@dataclass(frozen=True)
class Structure:
    """Self-similarity matrix, novelty curve and boundaries.

    ssm: cosine similarity, shape (blocks, blocks), values -1..1. block_times: block starts
    in seconds, shape (blocks,). novelty: shape (blocks,), 0..1. boundaries: seconds.
    """

    ssm: np.ndarray
    block_times: np.ndarray
    novelty: np.ndarray
    boundaries: np.ndarray


def compute_structure(
    chroma: np.ndarray, mfcc: np.ndarray, times: np.ndarray, max_blocks: int, kernel_seconds: float
) -> Structure:
    """Pool (chroma ⊕ standardised MFCC) into ≤ max_blocks blocks, then SSM and Foote novelty.

    chroma: (12, frames), mfcc: (n_mfcc, frames), times: (frames,) seconds.
    """
    mf = (mfcc - mfcc.mean(axis=1, keepdims=True)) / (mfcc.std(axis=1, keepdims=True) + 1e-8)
    feats = np.vstack([chroma, mf / math.sqrt(mf.shape[0] / chroma.shape[0])])
    block = max(1, math.ceil(feats.shape[1] / max_blocks))
    n_blocks = math.ceil(feats.shape[1] / block)
    pad = n_blocks * block - feats.shape[1]
    pooled = (
        np.pad(feats, ((0, 0), (0, pad)), mode="edge")
        .reshape(feats.shape[0], n_blocks, block)
        .mean(axis=2)
    )
    pooled = pooled / (np.linalg.norm(pooled, axis=0, keepdims=True) + 1e-8)
    ssm = pooled.T @ pooled
    block_seconds = float(times[1] - times[0]) * block if times.size > 1 else 0.0
    block_times = np.arange(n_blocks) * block_seconds
    half = max(2, min(int(round(kernel_seconds / 2 / max(block_seconds, 1e-9))), n_blocks // 4))
    novelty = foote_novelty(ssm, half)
    peaks, _ = sps.find_peaks(novelty, height=novelty.mean() + 0.5 * novelty.std(), distance=half)
    return Structure(ssm.astype(np.float32), block_times, novelty, block_times[peaks])


def foote_novelty(ssm: np.ndarray, half: int) -> np.ndarray:
    """Novelty along the diagonal of ssm with a Gaussian checkerboard kernel of 2*half, 0..1."""
    n = ssm.shape[0]
    ax = np.arange(-half, half) + 0.5
    gauss = np.exp(-0.5 * (ax / (0.5 * half)) ** 2)
    kernel = np.outer(gauss, gauss) * np.outer(np.sign(ax), np.sign(ax))
    padded = np.pad(ssm, half, mode="constant")
    nov = np.array([np.sum(kernel * padded[i : i + 2 * half, i : i + 2 * half]) for i in range(n)])
    nov = np.maximum(nov, 0)
    return nov / nov.max() if nov.max() > 0 else nov
