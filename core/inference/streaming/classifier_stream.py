"""Live listening, a trained model on a stream: `LiveClassifier` slides the model's window over
the stream by its hop, through the model's InputRecipe and the window helpers of
core.audio.input_recipe, exactly as the offline timeline (`classify_windows`) does; smoothing,
"unsure" and segments as there. Parity with the offline timeline is explained in
core/inference/streaming/__init__.py.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from core.audio.input_recipe import cut_by_edge, silent_windows, sounding_span
from core.inference.classifier import (
    UNSURE_MARGIN,
    UNSURE_PROBABILITY,
    InferenceModel,
    Segment,
    WindowResult,
    find_segments,
    unsure_reason,
)
from core.inference.streaming.frames import (
    HISTORY_SECONDS,
    RingBuffer,
    StreamError,
    StreamResampler,
)

DEFAULT_HOP_SECONDS = 0.25  # a new answer four times a second
MIN_HOP_SECONDS = 0.1
MAX_HOP_SECONDS = 0.25
MAX_SEGMENTS = 50  # detected segments (with their audio) remembered per stream, the newest


# --------------------------------------------------------------------------- live classifier


@dataclass(frozen=True)
class LiveAnswer:
    """The smoothed answer now: label ("" while silent), whether unsure and why."""

    label: str
    confidence: float
    unsure: bool
    reason: str
    silent: bool
    probabilities: np.ndarray  # (classes,) the smoothed probabilities behind the answer
    time_seconds: float  # stream time of the newest window's end

    @property
    def headline(self) -> str:
        """The answer in one word, as the Live tab shows it: "silence", "7", "7?" (unsure)."""
        if self.silent:
            return "silence"
        return f"{self.label}?" if self.unsure else self.label


@dataclass(frozen=True)
class LiveClassifierConfig:
    """How the stream is classified; defaults are the Classify page's timeline defaults."""

    hop_seconds: float = DEFAULT_HOP_SECONDS  # step between windows, 0.1-0.25 s
    smooth_windows: int = 3  # windows averaged for the current answer and the segments
    threshold: float = 0.6  # a segment's windows need this (smoothed) top probability
    min_windows: int = 1  # shorter runs of one class are not segments
    trim_silence: bool = True  # cut each window to its sound, as the timeline's default
    silence_gate_db: float = 45.0  # below the loudest moment so far: silence
    # Windows whose loudest frame is under this are silence whatever came before: a muted
    # microphone is not "a quiet sound" (a file is only ever judged against itself).
    silence_floor_dbfs: float = -70.0
    history_seconds: float = HISTORY_SECONDS  # audio and windows kept for views and segments

    def __post_init__(self) -> None:
        hop = float(self.hop_seconds)
        if not (math.isfinite(hop) and MIN_HOP_SECONDS - 1e-9 <= hop <= MAX_HOP_SECONDS + 1e-9):
            raise StreamError(
                f"The hop must be between {MIN_HOP_SECONDS:g} and {MAX_HOP_SECONDS:g} s "
                f"(got {self.hop_seconds})."
            )
        if self.smooth_windows < 1:
            raise StreamError("Smoothing needs at least 1 window.")
        if not 0.0 <= self.threshold <= 1.0:
            raise StreamError("The segment threshold is a probability between 0 and 1.")


@dataclass(frozen=True)
class ClassifierSnapshot:
    """A copy of a LiveClassifier's state for drawing.

    result: the windows in the history (WindowResult, times in stream seconds). answer: the
    current answer (None before the first window). segments: (Segment, samples at
    sample_rate) pairs, oldest first. audio: the newest seconds (for the spectrogram).
    """

    result: WindowResult
    answer: LiveAnswer | None
    segments: tuple[tuple[Segment, np.ndarray], ...]
    audio: np.ndarray
    sample_rate: int
    stream_seconds: float
    loudest_db: float

    @property
    def current(self) -> LiveAnswer | None:
        """The answer now (the name TunerSnapshot uses for its newest reading)."""
        return self.answer


class LiveClassifier:
    """Classifies a stream in the model's windows, one hop at a time.

    model: any InferenceModel (window and features from the model). feed(samples,
    sample_rate) accepts mono float chunks of any length and rate; every window whose audio
    (plus n_fft // 2 samples of context) has arrived is classified at once. Windows start
    at stream frames 0, hop, 2 hop, ... exactly like `classify_windows`' grid; `finish()`
    adds the windows of the stream's end as the offline timeline does for a file's end.
    """

    def __init__(self, model: InferenceModel, config: LiveClassifierConfig | None = None) -> None:
        self.model = model
        self.config = config or LiveClassifierConfig()
        fc = model.feature_config
        self.sample_rate = fc.sample_rate
        self.hop_length = fc.hop_length
        self.window_frames = model.clip_frames
        self.hop_frames = max(1, round(self.config.hop_seconds * self.sample_rate / fc.hop_length))
        # Samples a frame reaches before / after its centre sample t * hop.
        pad = fc.n_fft // 2 if fc.center else 0
        self._before = max(pad, self.hop_length // 2)
        self._after = max(fc.n_fft - pad, self.hop_length - self.hop_length // 2)
        self._context_frames = max(1, math.ceil(self._before / self.hop_length))
        self.buffer = RingBuffer(int(self.config.history_seconds * self.sample_rate))
        self._resample = StreamResampler(self.sample_rate)
        self.loudest_db = -math.inf  # the loudest frame heard so far (the silence reference)
        self.next_start = 0  # stream frame of the next window to classify
        self.finished = False
        history = max(
            8,
            int(self.config.history_seconds / (self.hop_frames * fc.hop_length / self.sample_rate)),
        )
        self.starts: deque[int] = deque(maxlen=history)
        self.probabilities: deque[np.ndarray] = deque(maxlen=history)
        self.silent: deque[bool] = deque(maxlen=history)
        self.cut: deque[bool] = deque(maxlen=history)
        self.windows_done = 0
        self._detected: deque[Segment] = deque(maxlen=MAX_SEGMENTS)
        self._detected_audio: deque[np.ndarray] = deque(maxlen=MAX_SEGMENTS)

    # ---- input
    def feed(self, samples: np.ndarray, sample_rate: int) -> int:
        """Append a chunk (float mono) and classify every window now complete; returns how many."""
        if self.finished:
            return 0
        y = self._resample(np.asarray(samples, dtype=np.float32).reshape(-1), int(sample_rate))
        if y.size:
            self.buffer.append(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0))
        return self._classify_ready()

    def finish(self) -> int:
        """The stream ended: classify the windows at its end as classify_windows does."""
        if self.finished:
            return 0
        tail = self._resample.flush()
        if tail.size:
            self.buffer.append(tail)
        done = self._classify_ready()
        total = self.model.feature_config.num_frames(self.buffer.written)
        starts = []
        if total <= self.window_frames:
            if self.windows_done == 0:
                starts = [0]
        else:
            starts = list(range(self.next_start, total - self.window_frames + 1, self.hop_frames))
            last = starts[-1] if starts else (self.next_start - self.hop_frames)
            if last + self.window_frames < total:
                starts.append(total - self.window_frames)
        for start in starts:
            self._classify(start, stream_end=True)
            done += 1
        self.finished = True
        return done

    def _needed_until(self, start: int) -> int:
        # One frame past the window: whether the window cuts a sound at its end (`cut`)
        # depends on the frame just after it, as it does in the offline timeline.
        return (start + self.window_frames) * self.hop_length + self._after

    def _classify_ready(self) -> int:
        done = 0
        while self._needed_until(self.next_start) <= self.buffer.written:
            self._classify(self.next_start, stream_end=False)
            self.next_start += self.hop_frames
            done += 1
        return done

    def _classify(self, start: int, *, stream_end: bool) -> None:
        """One window at stream frame `start`, through the recipe as the timeline does."""
        first = max(0, start - self._context_frames)  # chunk starts on a frame boundary
        stop = self.buffer.written if stream_end else self._needed_until(start)
        chunk = self.buffer.read(first * self.hop_length, stop)
        if first * self.hop_length < self.buffer.oldest:
            raise StreamError("The stream fell behind its buffer; start it again.")
        recipe = self.model.recipe
        features = recipe.spectrum(chunk)
        level = recipe.frame_levels_db(chunk)
        offset = start - first  # the window's first frame inside the chunk
        valid = slice(0 if first == 0 else 1, offset + self.window_frames)
        if level[valid].size:
            self.loudest_db = max(self.loudest_db, float(level[valid].max()))
        gate = self.config.silence_gate_db
        active = level >= self.loudest_db - gate
        span = sounding_span(
            offset, self.window_frames, active if self.config.trim_silence else None
        )
        x = recipe.window_inputs(features, [span])
        p = self.model.probabilities(x).numpy()[0].astype(np.float32)
        # Silence is judged against the loudest moment of the stream so far, not this chunk's.
        silent = bool(
            silent_windows(level, [offset], self.window_frames, gate, loudest_db=self.loudest_db)[0]
        )
        peak = level[offset : offset + self.window_frames].max(initial=-200.0)
        silent = silent or bool(peak < self.config.silence_floor_dbfs)
        self.starts.append(start)
        self.probabilities.append(p)
        self.silent.append(silent)
        self.cut.append(
            self.config.trim_silence and cut_by_edge(active, span, offset, self.window_frames)
        )
        self.windows_done += 1

    # ---- output
    @property
    def hop_seconds(self) -> float:
        return self.hop_frames * self.hop_length / self.sample_rate

    @property
    def window_seconds(self) -> float:
        return (self.window_frames - 1) * self.hop_length / self.sample_rate

    @property
    def stream_seconds(self) -> float:
        return self.buffer.written / self.sample_rate

    def window_result(self) -> WindowResult:
        """The windows still in the history as the offline timeline's WindowResult."""
        k = len(self.starts)
        return WindowResult(
            starts_seconds=np.asarray(self.starts, dtype=np.float64)
            * self.hop_length
            / self.sample_rate,
            probabilities=np.asarray(self.probabilities, dtype=np.float32).reshape(
                k, self.model.num_classes
            ),
            silent=np.asarray(self.silent, dtype=bool),
            cut=np.asarray(self.cut, dtype=bool) if self.config.trim_silence else None,
            window_seconds=self.window_seconds,
            hop_seconds=self.hop_seconds,
            duration_seconds=self.stream_seconds,
            labels=self.model.labels,
        )

    def current(
        self, *, threshold: float = UNSURE_PROBABILITY, margin: float = UNSURE_MARGIN
    ) -> LiveAnswer | None:
        """The newest answer: the mean of the last `smooth_windows` windows, or None yet."""
        if not self.probabilities:
            return None
        k = self.config.smooth_windows
        recent = np.asarray(list(self.probabilities)[-k:])
        p = recent.mean(axis=0)
        end = (self.starts[-1] + self.window_frames - 1) * self.hop_length / self.sample_rate
        if self.silent[-1]:
            return LiveAnswer("", 0.0, False, "silence", True, p, end)
        reason = unsure_reason(p, threshold=threshold, margin=margin)
        best = int(np.argmax(p))
        return LiveAnswer(
            self.model.labels[best], float(p[best]), bool(reason), reason, False, p, end
        )

    def segments(self) -> list[Segment]:
        """Segments that are over (a later window ended them), in order, since the start.

        find_segments on the history; a run still touching the newest windows may yet grow
        and is left out until it ends (after `finish()` every run has ended).
        """
        result = self.window_result()
        if not len(result.starts_seconds):
            return list(self._detected)
        found = find_segments(
            result,
            threshold=self.config.threshold,
            smooth_windows=self.config.smooth_windows,
            min_windows=self.config.min_windows,
        )
        settle = (self.config.smooth_windows // 2 + 1) * self.hop_seconds
        newest = float(result.centres_seconds[-1])
        last = self._detected[-1].start_seconds if self._detected else -math.inf
        for segment in found:
            over = self.finished or segment.end_seconds + settle <= newest - result.hop_seconds / 2
            if over and segment.start_seconds > last + 1e-9:
                self._detected.append(segment)
                self._detected_audio.append(self.segment_samples(segment))  # kept after stop
                last = segment.start_seconds
        return list(self._detected)

    def segment_samples(self, segment: Segment) -> np.ndarray:
        """The audio of a segment at the model's rate (empty once it left the buffer)."""
        a = int(segment.start_seconds * self.sample_rate)
        b = int(math.ceil(segment.end_seconds * self.sample_rate))
        if a < self.buffer.oldest:
            return np.zeros(0, dtype=np.float32)
        return self.buffer.read(a, b)

    def recent_audio(self, seconds: float) -> np.ndarray:
        """The newest `seconds` of audio at the model's rate."""
        return self.buffer.latest(int(seconds * self.sample_rate))

    def snapshot(self, audio_seconds: float = 6.0) -> ClassifierSnapshot:
        """Everything the Live tab draws, copied (safe to keep after the stream stopped)."""
        segments = self.segments()
        return ClassifierSnapshot(
            result=self.window_result(),
            answer=self.current(),
            segments=tuple(zip(segments, list(self._detected_audio), strict=True)),
            audio=self.recent_audio(audio_seconds),
            sample_rate=self.sample_rate,
            stream_seconds=self.stream_seconds,
            loudest_db=self.loudest_db,
        )

    def release(self) -> None:
        self.buffer.release()
        self._detected_audio.clear()
        self.starts.clear()
        self.probabilities.clear()
        self.silent.clear()
        self.cut.clear()
