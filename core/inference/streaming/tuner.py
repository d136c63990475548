"""Live listening, the tuner: pitch (YIN) of the newest audio -> note name and cents off, a
periodicity check for "is there a note", chroma and loudness (`LiveTuner`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from core.inference.streaming.frames import (
    HISTORY_SECONDS,
    RingBuffer,
    StreamResampler,
)

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
