"""Classifying every part of a long recording: windows over time, then segments.

Long recordings (`classify_windows`): the spectrogram of the whole file is computed once
(`InputRecipe.spectrum`); windows are slices of its frames, each given its own dB floor and
normalisation as if it were a training clip (`InputRecipe.window_inputs`), and the windows
run through the network in batches. Only the STFT frames at a window's edges differ from
computing the window alone (there they see the neighbouring audio instead of zero padding).
The live stream (core.inference.streaming) uses the same recipe methods and window helpers.
Runs of confident windows become labelled time segments (`find_segments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.audio.input_recipe import (
    cut_by_edge,
    silent_windows,
    sounding_span,
    window_starts,
)
from core.inference.clip import UNSURE_PROBABILITY
from core.inference.model import DEFAULT_BATCH, InferenceError, InferenceModel

SILENCE_GATE_DB = 45.0  # windows this far below the recording's loudest part count as silence


@dataclass(frozen=True)
class WindowResult:
    """Class probabilities over time for a long clip.

    starts_seconds: (W,) window starts. probabilities: (W, classes). silent: (W,) bool,
    windows far below the recording's loudest part. window_seconds / hop_seconds: the grid
    actually used (rounded to whole feature frames). cut: (W,) bool or None, set when windows
    were trimmed to their sound: windows whose sound is cut by their edge (a word's tail or
    onset), which `find_segments` skips.
    """

    starts_seconds: np.ndarray
    probabilities: np.ndarray
    silent: np.ndarray
    window_seconds: float
    hop_seconds: float
    duration_seconds: float
    labels: tuple[str, ...]
    notices: tuple[str, ...] = ()
    cut: np.ndarray | None = None

    @property
    def centres_seconds(self) -> np.ndarray:
        return self.starts_seconds + self.window_seconds / 2


def classify_windows(
    model: InferenceModel,
    samples: np.ndarray,
    sample_rate: int,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    silence_gate_db: float = SILENCE_GATE_DB,
    trim_silence: bool = False,
) -> WindowResult:
    """Slide a window over a clip and classify every position.

    samples: float (n,) at `sample_rate` Hz. window_seconds: audio per window (default and
    maximum: the model's window; a shorter window is padded like a short training clip).
    hop_seconds: step between windows (default a quarter window); both are rounded to whole
    feature frames. The spectrogram is computed once for the whole clip; each window gets its
    own dB floor, normalisation and padding as a training clip would, and windows run through
    the network `batch_size` at a time. A clip shorter than one window gives one padded window.
    silence_gate_db: frames this far below the clip's loudest frame are silence; a window of
    silence only is flagged in `silent`. trim_silence: cut each window down to its sounding
    frames before treating it as a clip (so a sound is centred and padded exactly as training
    padded short clips). Models trained on trimmed clips (the spoken digits) have never seen
    silence around a sound and need this; for data sets whose clips contain silence, leave it off.
    With trimming, `cut` flags the windows whose sound runs on past their edge: trimmed and
    stretched, the last 80 ms of a word would fill the model's whole input, a picture no
    training clip ever made (each held a whole word), and be named confidently and wrongly.
    """
    recipe = model.recipe
    y = recipe.to_recipe_rate(samples, sample_rate)
    config = model.feature_config
    hop = config.hop_length
    try:
        window_frames = recipe.window_frames(window_seconds)
    except ValueError as error:
        raise InferenceError(str(error)) from None
    if hop_seconds is not None and not (math.isfinite(hop_seconds) and hop_seconds > 0):
        raise InferenceError("The hop between windows must be longer than 0 s.")
    hop_frames = max(
        1,
        round(
            (hop_seconds or window_frames * hop / config.sample_rate / 4) * config.sample_rate / hop
        ),
    )
    features = recipe.spectrum(y)  # (bins, frames), pre-dB for log-mel
    total = features.shape[-1]
    notices = []
    if total < window_frames:
        notices.append(
            f"The clip is shorter than one window ({len(y) / config.sample_rate:.2f} s < "
            f"{(window_frames - 1) * hop / config.sample_rate:.2f} s): it is classified as "
            "one window, padded with silence."
        )
    starts = window_starts(total, window_frames, hop_frames)
    level = recipe.frame_levels_db(y)
    active = level >= (level.max() if level.size else 0.0) - silence_gate_db
    probabilities, silent, cut = [], [], []
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        spans = [sounding_span(s, window_frames, active if trim_silence else None) for s in chunk]
        x = recipe.window_inputs(features, spans)
        probabilities.append(model.probabilities(x, batch_size).numpy())
        silent.append(silent_windows(level, chunk, window_frames, silence_gate_db))
        cut.append(
            [
                cut_by_edge(active, span, s, window_frames)
                for span, s in zip(spans, chunk, strict=True)
            ]
        )
    return WindowResult(
        starts_seconds=np.asarray(starts, dtype=np.float64) * hop / config.sample_rate,
        probabilities=np.concatenate(probabilities).astype(np.float32),
        silent=np.concatenate(silent),
        window_seconds=(min(window_frames, total) - 1) * hop / config.sample_rate,
        hop_seconds=hop_frames * hop / config.sample_rate,
        duration_seconds=len(y) / config.sample_rate,
        labels=model.labels,
        notices=tuple(notices),
        cut=np.concatenate(cut).astype(bool) if trim_silence else None,
    )


# --------------------------------------------------------------------------- timeline -> segments


def smooth_probabilities(probabilities: np.ndarray, windows: int) -> np.ndarray:
    """Centred moving average over `windows` neighbouring windows, (W, C) -> (W, C).

    The average at the ends uses only the windows that exist (no zero padding), so rows
    still sum to 1. windows <= 1 returns the input unchanged.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if windows <= 1 or p.shape[0] < 2:
        return p.astype(np.float32)
    kernel = np.ones(int(windows))
    # numpy's mode="same" is as long as the longer input: with fewer windows than the kernel
    # (the first windows of a live stream) it would add rows. Cut the centred part ourselves.
    first, n = (kernel.size - 1) // 2, p.shape[0]
    sums = np.apply_along_axis(lambda c: np.convolve(c, kernel)[first : first + n], 0, p)
    counts = np.convolve(np.ones(n), kernel)[first : first + n, None]
    return (sums / counts).astype(np.float32)


@dataclass(frozen=True)
class Segment:
    """A stretch of audio given one class: start and end in seconds, mean probability."""

    start_seconds: float
    end_seconds: float
    label: str
    confidence: float


def find_segments(
    result: WindowResult,
    *,
    threshold: float = UNSURE_PROBABILITY,
    smooth_windows: int = 1,
    min_windows: int = 1,
) -> list[Segment]:
    """Runs of windows with the same confident class, as time segments in order.

    A window counts when it is not silent, does not cut a sound at its edge (`result.cut`,
    with trimming) and its (smoothed) top probability reaches `threshold`. Each window
    stands for the hop-long stretch around its centre, so neighbouring windows tile the
    time axis; runs shorter than `min_windows` are dropped.
    """
    p = smooth_probabilities(result.probabilities, smooth_windows)
    best = p.argmax(axis=1)
    confident = (p.max(axis=1) >= threshold) & ~result.silent
    if result.cut is not None:
        confident &= ~result.cut
    segments, run_start = [], None
    for i in range(len(best) + 1):
        same = (
            i < len(best) and confident[i] and run_start is not None and best[i] == best[run_start]
        )
        if same:
            continue
        if run_start is not None and i - run_start >= min_windows:
            segments.append(_segment(result, p, run_start, i))
        run_start = i if i < len(best) and confident[i] else None
    return segments


def _segment(result: WindowResult, p: np.ndarray, first: int, stop: int) -> Segment:
    half_hop = result.hop_seconds / 2
    centres = result.centres_seconds
    label = int(p[first].argmax())
    return Segment(
        start_seconds=max(0.0, float(centres[first]) - half_hop),
        end_seconds=min(result.duration_seconds, float(centres[stop - 1]) + half_hop),
        label=result.labels[label],
        confidence=float(p[first:stop, label].mean()),
    )


def segment_audio(samples: np.ndarray, sample_rate: int, segment: Segment) -> np.ndarray:
    """The samples of one segment, float32 (m,)."""
    start = max(0, int(segment.start_seconds * sample_rate))
    stop = min(len(samples), int(math.ceil(segment.end_seconds * sample_rate)))
    return np.asarray(samples[start:stop], dtype=np.float32)
