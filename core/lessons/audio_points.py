"""Real sounds as points in the plane: two audio features per clip for the 2-D playground.

Each clip (the shipped spoken digits or music windows) becomes (x, y) = two of
`AUDIO_FEATURES` (spectral centroid, loudness, zero-crossing rate, ...), computed with
librosa at `AUDIO_SAMPLE_RATE`, so the playground's network separates sounds a student can
play back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.audio.clip import AudioError
from core.audio.io import load_audio
from core.lessons.playground2d import DOMAIN, PlaygroundError, Points
from core.paths import builtin_digit_files, builtin_music_clips, clip_attribution

# --- audio points

AUDIO_FEATURES = {
    "spectral_centroid": "spectral centroid (Hz)",
    "rms_db": "loudness, RMS (dB)",
    "zero_crossing_rate": "zero-crossing rate",
    "spectral_bandwidth": "spectral bandwidth (Hz)",
    "spectral_rolloff": "spectral roll-off, 85 % (Hz)",
    "spectral_flatness": "spectral flatness",
}
AUDIO_SAMPLE_RATE = 8000  # the spoken digits' rate; music is resampled down to it
_FRAME, _HOP = 256, 128


def clip_audio_features(
    samples: np.ndarray, sample_rate: int = AUDIO_SAMPLE_RATE
) -> dict[str, float]:
    """Per-clip summary features (mean over frames of 32 ms at 8 kHz) of a mono waveform.

    Returns one float per key of AUDIO_FEATURES; librosa computes each.
    """
    # Lazy: librosa takes about a second to import, and no other part of its page needs it.
    import librosa

    y = np.asarray(samples, dtype=np.float32)
    if len(y) < _FRAME:
        y = np.pad(y, (0, _FRAME - len(y)))
    spectrum = np.abs(librosa.stft(y, n_fft=_FRAME, hop_length=_HOP))
    rms = librosa.feature.rms(y=y, frame_length=_FRAME, hop_length=_HOP)
    kw = {"S": spectrum, "sr": sample_rate, "n_fft": _FRAME, "hop_length": _HOP}
    return {
        "spectral_centroid": float(np.mean(librosa.feature.spectral_centroid(**kw))),
        "rms_db": float(20 * np.log10(np.mean(rms) + 1e-6)),
        "zero_crossing_rate": float(
            np.mean(librosa.feature.zero_crossing_rate(y, frame_length=_FRAME, hop_length=_HOP))
        ),
        "spectral_bandwidth": float(np.mean(librosa.feature.spectral_bandwidth(**kw))),
        "spectral_rolloff": float(np.mean(librosa.feature.spectral_rolloff(**kw))),
        "spectral_flatness": float(np.mean(librosa.feature.spectral_flatness(S=spectrum))),
    }


def audio_feature_table(
    paths: Sequence[Path], *, window_seconds: float | None = None, max_windows: int = 60
) -> list[dict[str, float]]:
    """Features of each clip (window_seconds None) or of each window of each clip.

    Clips are decoded with core.audio.io at AUDIO_SAMPLE_RATE; silent windows are skipped.
    At most `max_windows` windows per clip, evenly spread over it.
    """
    rows = []
    for path in paths:
        try:
            clip = load_audio(path, sample_rate=AUDIO_SAMPLE_RATE, max_seconds=180)
        except AudioError:
            continue  # a damaged shipped file must not take the lab down
        if window_seconds is None:
            rows.append(clip_audio_features(clip.samples))
            continue
        size = int(window_seconds * AUDIO_SAMPLE_RATE)
        starts = np.arange(0, max(1, len(clip.samples) - size + 1), size)
        if len(starts) > max_windows:
            starts = starts[np.linspace(0, len(starts) - 1, max_windows).astype(int)]
        for start in starts:
            window = clip.samples[start : start + size]
            if np.sqrt(np.mean(window**2)) > 1e-3:
                rows.append(clip_audio_features(window))
    return rows


def digit_feature_rows(digit: int, max_clips: int = 80) -> list[dict[str, float]]:
    """Per-clip features of up to `max_clips` shipped recordings of one spoken digit.

    The clips are spread evenly over the files, so every speaker is represented.
    """
    files = [f for f in builtin_digit_files() if f.name.split("_")[0] == str(digit)]
    if len(files) > max_clips:
        files = [files[i] for i in np.linspace(0, len(files) - 1, max_clips).astype(int)]
    return audio_feature_table(files)


def speech_and_music_clips() -> tuple[list[Path], list[Path]]:
    """The shipped longer clips split by their attribution: (speech, music and sounds)."""
    clips = builtin_music_clips()
    spoken = [c for c in clips if "speech" in clip_attribution(c).lower()]
    return spoken, [c for c in clips if c not in spoken]


def speech_and_music_rows(
    window_seconds: float = 0.5, max_windows: int = 30, max_digit_clips: int = 120
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(speech rows, music and sound rows) from the shipped clips.

    Speech: spoken-digit clips (one row each) and windows of the clips whose attribution
    says speech; music and sounds: windows of every other shipped clip.
    """
    digits = builtin_digit_files()
    if len(digits) > max_digit_clips:
        digits = [digits[i] for i in np.linspace(0, len(digits) - 1, max_digit_clips).astype(int)]
    spoken, other = speech_and_music_clips()
    windows = {"window_seconds": window_seconds, "max_windows": max_windows}
    speech = audio_feature_table(digits) + audio_feature_table(spoken, **windows)
    return speech, audio_feature_table(other, **windows)


def audio_feature_points(
    class_rows: tuple[list[dict[str, float]], list[dict[str, float]]],
    feature_x: str,
    feature_y: str,
    class_names: tuple[str, str],
    seed: int = 0,
) -> Points:
    """Two classes of feature rows as points: each axis standardised to mean 0, spread ±6.

    Standardising (z-score × 2) puts both features on the playground's scale whatever their
    units (hertz against decibels), as one would before training any network.
    """
    for name in (feature_x, feature_y):
        if name not in AUDIO_FEATURES:
            raise PlaygroundError(f"Unknown audio feature {name!r}.")
    rows0, rows1 = class_rows
    if len(rows0) < 5 or len(rows1) < 5:
        raise PlaygroundError("Each class needs at least 5 clips with sound to make points from.")
    raw = np.array([[r[feature_x], r[feature_y]] for r in (*rows0, *rows1)], dtype=np.float64)
    std = raw.std(axis=0)
    xy = (raw - raw.mean(axis=0)) / np.where(std > 0, std, 1.0) * 2.0
    labels = np.r_[np.zeros(len(rows0)), np.ones(len(rows1))].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    names = (
        f"{AUDIO_FEATURES[feature_x]}, standardised",
        f"{AUDIO_FEATURES[feature_y]}, standardised",
    )
    return Points(
        np.clip(xy[order], -DOMAIN, DOMAIN).astype(np.float32), labels[order], names, class_names
    )
