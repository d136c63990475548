"""What the audio layer hands out: `AudioClip` (samples + rate + what was done to them),
`AudioInfo` (a file's header) and `AudioError` (a problem with a sentence for the student),
with the limits every decode respects (length, upload size, rates, channels; env overridable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


DEFAULT_MAX_SECONDS: float = _env_float("AUDIO_DL_MAX_SECONDS", 600.0)
MAX_SOURCE_BYTES: int = int(_env_float("AUDIO_DL_MAX_UPLOAD_MB", 200.0) * 1024 * 1024)
MIN_SAMPLE_RATE = 2_000  # below this nothing audible is left (1 kHz bandwidth)
MAX_SAMPLE_RATE = 384_000  # the highest rate studio converters use
DEFAULT_MAX_CHANNELS = 8  # 7.1 surround; more is a multitrack session, not a clip
SILENCE_PEAK = 10 ** (-80 / 20)  # peak below -80 dBFS (about 3 steps of 16-bit) is silence
FFMPEG_TIMEOUT_SECONDS = 120.0
DECODE_BLOCK_FRAMES = 1 << 20  # about 20 s at 48 kHz per libsndfile call
SALVAGE_BLOCK_FRAMES = 4096  # one FLAC block: the granularity of recovery after damage

# Containers that libsndfile cannot read but ffmpeg can; used for the ffmpeg fallback and to
# tell "needs ffmpeg" apart from "not audio".
FFMPEG_EXTENSIONS = frozenset(
    {
        ".m4a",
        ".mp4",
        ".aac",
        ".m4b",
        ".3gp",
        ".3g2",
        ".mov",
        ".webm",
        ".mkv",
        ".mka",
        ".weba",
        ".wma",
        ".asf",
        ".amr",
        ".ac3",
        ".opus",
    }
)
UPLOAD_TYPES = ("wav", "flac", "ogg", "mp3", "m4a", "webm")

ERROR_CODES = (
    "not_audio",
    "corrupt",
    "empty",
    "silent",
    "too_long",
    "too_large",
    "bad_sample_rate",
    "non_finite",
    "too_many_channels",
    "needs_ffmpeg",
    "not_found",
)


class AudioError(ValueError):
    """A source that cannot be used; `str(error)` is the sentence to show the student.

    `code` is one of ERROR_CODES so code (and tests) can react to the case, not the wording.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown AudioError code {code!r}")
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding the samples."""

    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel in the whole file
    duration_seconds: float
    format: str  # container, e.g. "WAV", "FLAC", "OGG", "MP3", "M4A (ffmpeg)"
    subtype: str = ""  # sample encoding, e.g. "PCM_16", "FLOAT", "VORBIS"


@dataclass(frozen=True, eq=False)
class AudioClip:
    """Decoded audio ready for features and playback.

    samples: float32 in [-1, 1] (mostly); shape (n,) when mono, (channels, n) otherwise.
    sample_rate: Hz of `samples` (after resampling). info: the header of the source.
    notices: sentences worth showing the student (trimmed, truncated, resampled...).
    """

    samples: np.ndarray
    sample_rate: int
    name: str
    info: AudioInfo
    notices: tuple[str, ...] = field(default=())

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[0])

    @property
    def duration_seconds(self) -> float:
        return self.num_samples / self.sample_rate
