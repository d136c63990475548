"""Every feature of an analysis as CSV (frame-wise) or JSON (summary, events, frames)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from core.music.keys import DEFAULT_PROFILES, KEY_NAMES, PITCH_CLASSES
from core.music.session import MusicAnalysis, try_get


def frame_table(analysis: MusicAnalysis) -> dict[str, np.ndarray]:
    """Every frame-wise feature as named columns of equal length (frames,), for CSV export."""
    n = analysis.n_frames
    cols: dict[str, np.ndarray] = {"time_s": analysis.times, "rms": analysis.rms[:n]}
    cols.update({k: v[:n] for k, v in analysis.spectral_features().items()})
    cols["onset_strength"] = analysis.onset_envelope[:n]
    for i, name in enumerate(PITCH_CLASSES):
        cols[f"chroma_{name}"] = analysis.chroma_cqt[i, :n]
    for i in range(analysis.mfcc.shape[0]):
        cols[f"mfcc_{i}"] = analysis.mfcc[i, :n]
    return cols


def export_csv(analysis: MusicAnalysis) -> str:
    """Frame-wise features as CSV text: a header line, then one row per frame."""
    cols = frame_table(analysis)
    data = np.column_stack(list(cols.values()))
    lines = [",".join(cols)] + [",".join(f"{v:.6g}" for v in row) for row in data]
    return "\n".join(lines) + "\n"


def export_json(analysis: MusicAnalysis, key_profiles: str = DEFAULT_PROFILES) -> str:
    """Summary, events (onsets, beats, boundaries), key correlations and frame features as JSON.

    key_profiles: the profile family of the summary's key (the one the page shows).
    """
    key = try_get(lambda: analysis.key_for(key_profiles))
    structure = try_get(lambda: analysis.structure)
    doc: dict[str, Any] = {
        "config": analysis.config.to_dict(),
        "summary": analysis.summary(key_profiles),
        "unavailable": analysis.limitations(),
        "onset_times_s": _list(try_get(lambda: analysis.onset_times)),
        "beat_times_s": _list(try_get(lambda: analysis.beat_times)),
        "segment_boundaries_s": None if structure is None else _list(structure.boundaries),
        "key_correlations": None
        if key is None
        else {
            name: dict(zip(KEY_NAMES, np.round(r, 4).tolist(), strict=True))
            for name, r in key.correlations.items()
        },
        "frames": {k: np.round(v, 6).tolist() for k, v in frame_table(analysis).items()},
    }
    return json.dumps(doc, allow_nan=False, default=float)


def _list(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else [round(float(v), 4) for v in values]
