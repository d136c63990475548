"""Live listening, the first layer: microphone frames in any layout -> mono float at the
analyser's rate -> the newest seconds in a ring buffer.

`as_mono_float` (int or float, mono or interleaved / planar channels, NaN-safe),
`StreamResampler` (soxr's streaming resampler: the same samples as resampling the whole
recording at once), `RingBuffer` (addressed by absolute sample index, so windows are cut by
stream position, not by what happens to be in memory).
"""

from __future__ import annotations

import numpy as np
import soxr

HISTORY_SECONDS = 30.0  # audio kept per stream: the scrolling views and the segments to save


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
