"""Live listening: audio frames from a microphone stream in, answers out, continuously.

The browser sends small frames (10-20 ms, usually 48 kHz, int16 or float, mono or stereo).
Three layers turn them into something a page can draw:

    frames -> `as_mono_float` (any layout, NaN-safe) -> resampled (soxr streaming) to the
    analyser's rate -> `RingBuffer` (the last seconds) -> an analyser:
      `LiveClassifier`: a trained model's window slides over the stream by its hop; every
                        window goes through the model's InputRecipe and the window helpers of
                        core.audio.input_recipe (one code path with the offline timeline), then
                        smoothing, "unsure" and segments as there
      `LiveTuner`:      pitch (YIN) of the newest audio -> note name and cents off, chroma,
                        loudness
    `LiveStream` runs one analyser in its own worker thread: `push` (called from the WebRTC
    thread) only queues a copy of the frame, never waits; the worker analyses; the page
    reads `snapshot()`. `StreamSlots` caps concurrent streams per server process.

Parity with the offline timeline (`core.inference.classifier.classify_windows`): every STFT frame
depends only on its own n_fft samples, so the frames of a window computed from a chunk of
the stream that reaches `n_fft // 2` samples past the window's edges are the frames the
whole-file spectrogram has there. The one thing a stream cannot know is the future: the
offline timeline measures silence against the loudest moment of the whole file, the stream
against the loudest moment so far (`LiveClassifier.loudest_db`). Streamed and uploaded
probabilities of the same audio match within 1e-4 (tests/test_streaming.py).
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import soxr
import torch

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

DEFAULT_HOP_SECONDS = 0.25  # a new answer four times a second
MIN_HOP_SECONDS = 0.1
MAX_HOP_SECONDS = 0.25
HISTORY_SECONDS = 30.0  # audio kept per stream: the scrolling views and the segments to save
MAX_GAP_SECONDS = 2.0  # a longer hole in the frame timestamps is a new start, not silence
DEFAULT_MAX_STREAMS = 8  # streams one server process analyses at once (AUDIO_DL_MAX_STREAMS)
MAX_SEGMENTS = 50  # detected segments (with their audio) remembered per stream, the newest
IDLE_TIMEOUT_SECONDS = 10.0  # no frame for this long: the connection is gone, free everything
ALIVE_CHECK_SECONDS = 0.5  # how often a stream asks whether the page listening to it is still open


class StreamError(ValueError):
    """A stream setting that cannot work; str() is a sentence for the student or teacher."""


# --------------------------------------------------------------------------- frames


def as_mono_float(
    samples: np.ndarray, *, channels: int = 1, interleaved: bool = True
) -> np.ndarray:
    """One frame's samples as float32 mono in [-1, 1] with NaN and inf replaced by 0.

    samples: int16 / int32 / float array, shape (n,), (1, n * channels) interleaved (what
    PyAV gives for packed formats such as s16) or (channels, n) planar (fltp). Integers are
    scaled by their full scale (int16: 32768). Channels are averaged.
    """
    x = np.asarray(samples)
    if x.dtype.kind == "i":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    elif x.dtype.kind == "u":  # unsigned 8-bit PCM is centred on 128
        full = float(np.iinfo(x.dtype).max + 1)
        x = x.astype(np.float32) / (full / 2) - 1.0
    else:
        x = x.astype(np.float32, copy=False)
    channels = max(1, int(channels))
    if x.ndim == 2 and x.shape[0] == channels and channels > 1 and not interleaved:
        x = x.mean(axis=0)
    else:
        x = x.reshape(-1)
        if channels > 1:
            usable = len(x) - len(x) % channels
            x = x[:usable].reshape(-1, channels).mean(axis=1)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)


class StreamResampler:
    """Chunk-by-chunk resampling to `target_rate` (soxr's streaming resampler, HQ).

    A change of input rate mid-stream starts a fresh resampler (its filter state belongs to
    the old rate). Equal rates pass the samples through untouched.
    """

    def __init__(self, target_rate: int) -> None:
        self.target_rate = int(target_rate)
        self._rate: int | None = None
        self._stream: soxr.ResampleStream | None = None

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        if sample_rate <= 0:
            raise StreamError("A frame arrived with a sample rate of 0 Hz.")
        if sample_rate == self.target_rate:
            self._rate, self._stream = sample_rate, None
            return samples
        if sample_rate != self._rate or self._stream is None:
            self._rate = sample_rate
            self._stream = soxr.ResampleStream(
                sample_rate, self.target_rate, 1, dtype="float32", quality="HQ"
            )
        return self._stream.resample_chunk(samples).astype(np.float32, copy=False)

    def flush(self) -> np.ndarray:
        """The samples still inside the filter at the end of the stream (after this the
        output equals resampling the whole recording at once: tested)."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream = None
        return tail.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- ring buffer


class RingBuffer:
    """The newest `capacity` samples of a stream, addressed by absolute sample index.

    `written` counts every sample ever appended; samples [written - capacity, written) are
    still held. Not thread-safe on its own: one writer, readers under the owner's lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise StreamError("A ring buffer needs room for at least one sample.")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.written - self.capacity)

    def append(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size > self.capacity:  # only the newest capacity samples can be kept
            self.written += x.size - self.capacity
            x = x[-self.capacity :]
        start = self.written % self.capacity
        first = min(x.size, self.capacity - start)
        self._data[start : start + first] = x[:first]
        self._data[: x.size - first] = x[first:]
        self.written += x.size

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) as a new float32 array; the part already overwritten or not
        yet written is left out (start is raised to `oldest`, stop lowered to `written`)."""
        start, stop = max(int(start), self.oldest), min(int(stop), self.written)
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        idx = np.arange(start, stop) % self.capacity
        return self._data[idx].copy()

    def latest(self, n: int) -> np.ndarray:
        """The newest n samples (fewer at the start of a stream)."""
        return self.read(self.written - int(n), self.written)

    def release(self) -> None:
        """Drop the storage (a stopped stream keeps no audio)."""
        self._data = np.zeros(0, dtype=np.float32)
        self.capacity = 1
        self.written = 0


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


# --------------------------------------------------------------------------- tuner


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class TunerReading:
    """Pitch and level of the newest audio; note "" when nothing is pitched."""

    time_seconds: float  # stream time of the reading
    frequency_hz: float  # NaN when unvoiced
    note: str  # e.g. "A4"
    cents: float  # -50..+50 from the nearest equal-tempered note (A4 = 440 Hz)
    periodicity: float  # 0..1, normalised autocorrelation at the pitch period (1 = periodic)
    rms_dbfs: float
    chroma: np.ndarray  # (12,) C..B, max 1 (zeros in silence)

    @property
    def headline(self) -> str:
        """The reading in one word: the note ("" when nothing is pitched)."""
        return self.note


def periodicity(y: np.ndarray, period_samples: float) -> float:
    """Normalised autocorrelation of `y` at a lag of one period, 0..1 (1: exactly periodic).

    A sung or played note scores above 0.8, noise near 0: the tuner's "is there a pitch".
    """
    lag = int(round(period_samples))
    if not 0 < lag < len(y) // 2:
        return 0.0
    a, b = np.asarray(y[:-lag], np.float64), np.asarray(y[lag:], np.float64)
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return max(0.0, float(a @ b) / denominator) if denominator > 0 else 0.0


def note_and_cents(frequency_hz: float, *, a4_hz: float = 440.0) -> tuple[str, float]:
    """Nearest equal-tempered note name (scientific pitch, "A4") and cents off it.

    440 Hz -> ("A4", 0.0); 446 Hz -> ("A4", +23.4). ("", NaN) for a non-positive or NaN input.
    """
    if not (math.isfinite(frequency_hz) and frequency_hz > 0):
        return "", math.nan
    midi = 69 + 12 * math.log2(frequency_hz / a4_hz)
    nearest = round(midi)
    return f"{NOTE_NAMES[nearest % 12]}{nearest // 12 - 1}", 100.0 * (midi - nearest)


@dataclass(frozen=True)
class TunerConfig:
    """The live tuner's tracker: YIN pitch and a periodicity check over the newest audio."""

    sample_rate: int = 16000  # Hz the stream is analysed at
    hop_seconds: float = 0.1  # a new reading ten times a second
    frame_length: int = 2048  # YIN frame, samples (128 ms: two periods of C2 fit)
    fmin_hz: float = 65.4  # C2
    fmax_hz: float = 2093.0  # C7
    silence_dbfs: float = -50.0  # quieter than this: no pitch, no chroma
    min_periodicity: float = 0.6  # less periodic than this: noise or a chord, no pitch shown
    history_seconds: float = HISTORY_SECONDS


@dataclass(frozen=True)
class TunerSnapshot:
    """Readings (oldest first) for the pitch line and meters, and the notes held so far."""

    readings: tuple[TunerReading, ...]
    notes: tuple[str, ...]
    stream_seconds: float

    @property
    def current(self) -> TunerReading | None:
        return self.readings[-1] if self.readings else None


class LiveTuner:
    """Pitch (YIN), note and cents, chroma and loudness of a stream, one hop at a time."""

    def __init__(self, config: TunerConfig | None = None) -> None:
        self.config = config or TunerConfig()
        self.sample_rate = self.config.sample_rate
        self.hop = max(1, int(self.config.hop_seconds * self.sample_rate))
        self.buffer = RingBuffer(int(self.config.history_seconds * self.sample_rate))
        self._resample = StreamResampler(self.sample_rate)
        self.readings: deque[TunerReading] = deque(
            maxlen=int(self.config.history_seconds / self.config.hop_seconds)
        )
        self._next_end = self.config.frame_length  # the next reading covers samples up to here
        self.windows_done = 0

    def feed(self, samples: np.ndarray, sample_rate: int) -> int:
        y = self._resample(np.asarray(samples, dtype=np.float32).reshape(-1), int(sample_rate))
        if y.size:
            self.buffer.append(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0))
        done = 0
        while self._next_end <= self.buffer.written:
            if self._next_end - self.config.frame_length < self.buffer.oldest:  # fell behind
                self._next_end = self.buffer.written
            self.readings.append(self._reading(self._next_end))
            self._next_end += self.hop
            done += 1
        self.windows_done += done
        return done

    def finish(self) -> int:
        return 0

    def _reading(self, end: int) -> TunerReading:
        import librosa

        c = self.config
        y = self.buffer.read(end - c.frame_length, end)
        level = float(10 * np.log10(max(np.mean(np.square(y, dtype=np.float64)), 1e-12)))
        t = end / self.sample_rate
        if level < c.silence_dbfs:
            return TunerReading(t, math.nan, "", math.nan, 0.0, level, np.zeros(12, np.float32))
        # YIN (de Cheveigne & Kawahara 2002) with parabolic interpolation: exact cents in
        # 0.2 ms a reading. pYIN's HMM costs 40 ms a reading (a third of a core at ten
        # readings a second) and its pitch states are 10 cents apart: fine for a clip, not
        # for a tuner. Whether the frame is pitched at all is the periodicity at that period.
        hz = float(
            librosa.yin(
                y,
                fmin=c.fmin_hz,
                fmax=c.fmax_hz,
                sr=self.sample_rate,
                frame_length=c.frame_length,
                hop_length=c.frame_length,
                center=False,
            )[-1]
        )
        pitched = periodicity(y, self.sample_rate / hz) if hz > 0 else 0.0
        if pitched < c.min_periodicity:
            hz = math.nan
        note, cents = note_and_cents(hz)
        chroma = librosa.feature.chroma_stft(
            y=y, sr=self.sample_rate, n_fft=c.frame_length, hop_length=c.frame_length, center=False
        )
        return TunerReading(
            t, hz, note, cents, pitched, level, chroma.mean(axis=1).astype(np.float32)
        )

    def current(self) -> TunerReading | None:
        return self.readings[-1] if self.readings else None

    def notes(self, *, min_readings: int = 3) -> list[str]:
        """The sequence of notes held for at least `min_readings` readings in a row (the
        readings still in the history)."""
        names, run, count = [], "", 0
        for r in self.readings:
            if r.note and r.note == run:
                count += 1
            else:
                run, count = r.note, 1
            if run and count == min_readings:
                names.append(run)
        return names

    def recent_audio(self, seconds: float) -> np.ndarray:
        return self.buffer.latest(int(seconds * self.sample_rate))

    def snapshot(self, seconds: float = HISTORY_SECONDS) -> TunerSnapshot:
        """The readings of the last `seconds` and the notes held, copied for drawing."""
        newest = self.readings[-1].time_seconds if self.readings else 0.0
        recent = tuple(r for r in self.readings if r.time_seconds > newest - seconds)
        return TunerSnapshot(recent, tuple(self.notes()), self.buffer.written / self.sample_rate)

    def release(self) -> None:
        self.buffer.release()
        self.readings.clear()


# --------------------------------------------------------------------------- threaded stream


@dataclass
class StreamStats:
    """Counters a page or the benchmark reads (seconds of audio, seconds of wall or CPU time)."""

    received_seconds: float = 0.0
    processed_seconds: float = 0.0
    dropped_seconds: float = 0.0  # thrown away because the worker fell too far behind
    gap_seconds: float = 0.0  # holes in the frame timestamps, filled with silence
    bad_samples: int = 0  # NaN / inf samples replaced by 0
    cpu_seconds: float = 0.0  # worker thread CPU time
    latencies_seconds: deque = field(default_factory=lambda: deque(maxlen=2000))

    @property
    def backlog_seconds(self) -> float:
        return max(0.0, self.received_seconds - self.processed_seconds - self.dropped_seconds)


@dataclass(frozen=True)
class AnswerClock:
    """When the newest answer's sound reached the server and when the answer was ready.

    Times are wall-clock seconds since the epoch (time.time()), so a browser on the same
    machine can set them against its own clock: the live-latency benchmark
    (tests/benchmarks/bench_live_browser.py) reads them from the page next to the label.
    """

    answers: int  # answers (windows or readings) computed so far: a new number, a new answer
    headline: str  # what the newest answer says: "7", "7?", "silence"; a tuner's note
    heard_at: float  # the frame that completed the newest answer reached the server (push)
    ready_at: float  # the newest answer was computed
    # The first answer of the current run of `headline` was heard: when, as far as the
    # server knows, the label on screen should have changed to it.
    headline_heard_at: float


class LiveStream:
    """One analyser fed from a frame callback in its own worker thread.

    push() is what the WebRTC callback calls: it converts and queues the frame and returns at
    once (never st.*, never the model). The worker feeds the analyser; snapshot readers take
    the same lock. The stream stops itself when `alive()` (asked every ALIVE_CHECK_SECONDS)
    says the page listening to it is gone (a closed tab: at once), after
    `idle_timeout_seconds` without frames (a dropped connection), and on stop(); it then
    releases its buffers and its slot, and `ended` says why.
    """

    def __init__(
        self,
        analyser: LiveClassifier | LiveTuner,
        *,
        max_backlog_seconds: float = 3.0,
        idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS,
        on_stop=None,
        alive: Callable[[], bool] | None = None,
        name: str = "live-stream",
    ) -> None:
        self.analyser = analyser
        self.lock = threading.Lock()
        self.stats = StreamStats()
        self.max_backlog_seconds = max_backlog_seconds
        self.idle_timeout_seconds = idle_timeout_seconds
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._on_stop = on_stop
        self._alive = alive
        self._next_alive_check = time.monotonic() + ALIVE_CHECK_SECONDS
        self.ended = ""  # why the stream stopped by itself, a sentence ("" while running)
        self._expected_time: float | None = None
        self._last_frame = time.monotonic()
        # perf_counter (steady, precise) + this offset = wall clock, for AnswerClock.
        self._wall_offset = time.time() - time.perf_counter()
        self.clock: AnswerClock | None = None  # None before the first answer
        self.error = ""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ---- callback side (WebRTC thread)
    def push(
        self,
        samples: np.ndarray,
        sample_rate: int,
        *,
        channels: int = 1,
        interleaved: bool = True,
        time_seconds: float | None = None,
    ) -> None:
        """Queue one frame (any layout, see as_mono_float). time_seconds: the frame's
        timestamp; a hole of up to MAX_GAP_SECONDS before it is filled with silence so the
        stream's clock stays the microphone's."""
        if self._stop.is_set() or sample_rate <= 0:
            return
        raw = np.asarray(samples)
        bad = int(np.size(raw) - np.count_nonzero(np.isfinite(raw))) if raw.dtype.kind == "f" else 0
        y = as_mono_float(raw, channels=channels, interleaved=interleaved)
        seconds = y.size / sample_rate
        gap = 0.0
        if time_seconds is not None and self._expected_time is not None:
            gap = time_seconds - self._expected_time
            if 1.0 / sample_rate < gap <= MAX_GAP_SECONDS:
                y = np.concatenate([np.zeros(int(round(gap * sample_rate)), np.float32), y])
            else:
                gap = 0.0
        if time_seconds is not None:
            self._expected_time = time_seconds + seconds
        self._last_frame = time.monotonic()
        with self.lock:
            self.stats.received_seconds += y.size / sample_rate
            self.stats.gap_seconds += max(0.0, gap)
            self.stats.bad_samples += bad
        self._queue.put((time.perf_counter(), y, int(sample_rate)))

    # ---- worker
    def _run(self) -> None:
        # One torch thread for this worker (the setting is per thread: other sessions keep
        # theirs). A window is one small forward pass: a second thread saves nothing, and on
        # a busy CPU each pass waits for that thread to be scheduled (answers seconds late
        # with two threads on this 2-core server under load; bench_live_browser).
        torch.set_num_threads(1)
        start_cpu = time.thread_time()
        try:
            while not self._stop.is_set():
                if self._alive is not None and time.monotonic() >= self._next_alive_check:
                    self._next_alive_check = time.monotonic() + ALIVE_CHECK_SECONDS
                    if not self._alive():
                        self.ended = "the page that was listening closed."
                        break
                try:
                    arrived, y, sr = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if time.monotonic() - self._last_frame > self.idle_timeout_seconds:
                        self.ended = (
                            f"no audio arrived for {self.idle_timeout_seconds:g} s (the "
                            "connection dropped)."
                        )
                        break
                    continue
                self._drop_backlog()
                with self.lock:
                    done = self.analyser.feed(y, sr)
                    self.stats.processed_seconds += y.size / sr
                    if done:
                        ready = time.perf_counter()
                        self.stats.latencies_seconds.append(ready - arrived)
                        self._tick_clock(arrived, ready)
                    self.stats.cpu_seconds = time.thread_time() - start_cpu
        except Exception as exc:  # a broken stream says why on the page instead of hanging
            self.error = f"The live analysis stopped: {exc}"
        finally:
            self._stop.set()
            self._release()

    def _tick_clock(self, arrived: float, ready: float) -> None:
        """Stamp the new answer (under the lock): when its sound came and when it was ready."""
        current = self.analyser.current()
        headline = current.headline if current is not None else ""
        heard_at, ready_at = arrived + self._wall_offset, ready + self._wall_offset
        since = heard_at
        if self.clock is not None and self.clock.headline == headline:
            since = self.clock.headline_heard_at
        self.clock = AnswerClock(self.analyser.windows_done, headline, heard_at, ready_at, since)

    def _drop_backlog(self) -> None:
        """Throw away the oldest queued audio while more than max_backlog_seconds wait."""
        while self._queue.qsize() > 1 and self.stats.backlog_seconds > self.max_backlog_seconds:
            try:
                _, y, sr = self._queue.get_nowait()
            except queue.Empty:
                return
            with self.lock:
                self.stats.dropped_seconds += y.size / sr

    def _release(self) -> None:
        with self.lock:
            self.analyser.release()
        while not self._queue.empty():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._on_stop is not None:
            self._on_stop()
            self._on_stop = None

    # ---- page side
    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker, join it and release the buffers and the slot (idempotent).

        timeout: seconds to wait for the worker to end; 0 returns at once (a WebRTC callback
        must not block): the worker ends within its 50 ms poll and releases everything
        itself.
        """
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued frame is analysed (tests and the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = self._queue.empty() and self.stats.backlog_seconds < 1e-6
            if idle or not self.running:
                return idle
            time.sleep(0.005)
        return False

    def snapshot(self):
        """The analyser's snapshot(), taken under the lock (page thread)."""
        with self.lock:
            return self.analyser.snapshot()

    def latest(self) -> tuple[LiveAnswer | TunerReading | None, AnswerClock | None]:
        """The analyser's current answer and its clock: a cheap read for a fast redraw (no
        audio copied, no segments searched)."""
        with self.lock:
            return self.analyser.current(), self.clock

    @property
    def thread(self) -> threading.Thread:
        return self._thread


# --------------------------------------------------------------------------- server-wide limits


def max_streams() -> int:
    """Concurrent streams a server process accepts: AUDIO_DL_MAX_STREAMS (default 8)."""
    raw = os.environ.get("AUDIO_DL_MAX_STREAMS", "").strip()
    if not raw:
        return DEFAULT_MAX_STREAMS
    try:
        value = int(raw)
    except ValueError as exc:
        raise StreamError(f"AUDIO_DL_MAX_STREAMS must be a whole number (got {raw!r}).") from exc
    if value < 0:
        raise StreamError("AUDIO_DL_MAX_STREAMS must be 0 (live listening off) or more.")
    return value


def rtc_configuration() -> dict:
    """The WebRTC ICE configuration: no outside server unless AUDIO_DL_ICE_SERVERS says so.

    On one network (localhost, a class server on the school LAN) the browser and the server
    reach each other directly: {"iceServers": []}. Across networks set AUDIO_DL_ICE_SERVERS
    to a JSON list, e.g. '[{"urls": ["stun:stun.example.org:3478"]}]' or a TURN server with
    "username" and "credential".
    """
    raw = os.environ.get("AUDIO_DL_ICE_SERVERS", "").strip()
    if not raw:
        return {"iceServers": []}
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StreamError(f"AUDIO_DL_ICE_SERVERS is not valid JSON: {exc.msg}.") from exc
    if not isinstance(servers, list) or not all(
        isinstance(s, dict) and "urls" in s for s in servers
    ):
        raise StreamError(
            'AUDIO_DL_ICE_SERVERS must be a JSON list like [{"urls": ["stun:host:3478"]}].'
        )
    return {"iceServers": servers}


class StreamSlots:
    """At most `capacity` live streams at once, one per owner (a browser session)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._streams: dict[str, LiveStream] = {}

    def open(self, owner: str, analyser: LiveClassifier | LiveTuner, **kwargs) -> LiveStream | None:
        """A new stream for `owner` (its previous one is stopped); None when all are taken."""
        self.close(owner)
        with self._lock:
            self._streams = {k: s for k, s in self._streams.items() if s.running}
            if len(self._streams) >= self.capacity:
                return None
            stream = LiveStream(analyser, on_stop=lambda: self._forget(owner, stream), **kwargs)
            self._streams[owner] = stream
            return stream

    def _forget(self, owner: str, stream: LiveStream) -> None:
        with self._lock:
            if self._streams.get(owner) is stream:
                del self._streams[owner]

    def get(self, owner: str) -> LiveStream | None:
        with self._lock:
            stream = self._streams.get(owner)
        return stream if stream is not None and stream.running else None

    def close(self, owner: str) -> None:
        with self._lock:
            stream = self._streams.pop(owner, None)
        if stream is not None:
            stream.stop()

    @property
    def active(self) -> int:
        with self._lock:
            return sum(1 for s in self._streams.values() if s.running)


_SLOTS: StreamSlots | None = None
_SLOTS_LOCK = threading.Lock()


def stream_slots() -> StreamSlots:
    """The process-wide slots (capacity from AUDIO_DL_MAX_STREAMS, read once)."""
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is None:
            _SLOTS = StreamSlots(max_streams())
        return _SLOTS


def stream_file(
    stream: LiveStream | LiveClassifier | LiveTuner,
    samples: np.ndarray,
    sample_rate: int,
    *,
    frame_seconds: float = 0.02,
    frame_sizes: Sequence[int] | None = None,
) -> None:
    """Feed a whole recording in microphone-sized frames (tests, benchmark, journeys).

    frame_sizes: explicit sizes in samples, cycled (irregular frames); default
    `frame_seconds` each.
    """
    sizes = list(frame_sizes or [max(1, int(frame_seconds * sample_rate))])
    i, k = 0, 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        chunk = samples[i : i + n]
        if isinstance(stream, LiveStream):
            stream.push(chunk, sample_rate)
        else:
            stream.feed(chunk, sample_rate)
        i, k = i + n, k + 1


__all__ = [
    "AnswerClock",
    "ClassifierSnapshot",
    "TunerSnapshot",
    "LiveAnswer",
    "LiveClassifier",
    "LiveClassifierConfig",
    "LiveStream",
    "LiveTuner",
    "RingBuffer",
    "StreamError",
    "StreamResampler",
    "StreamSlots",
    "StreamStats",
    "TunerConfig",
    "TunerReading",
    "as_mono_float",
    "max_streams",
    "note_and_cents",
    "periodicity",
    "rtc_configuration",
    "stream_file",
    "stream_slots",
]
