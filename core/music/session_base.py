"""The ground floor of MusicAnalysis (core.music.session): its settings, the signal it is
given, and the memo every feature is kept in.

MusicAnalysis is one class built in three floors, so that no module runs past ~500 lines:
session_base.AnalysisBase (settings, signal, memo, loudness, frame grid) <-
session_spectra.SpectralAnalysis (STFT and CQT families, the student's spectrogram view) <-
session.MusicAnalysis (key, rhythm, HPSS, pitch, structure, reports).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import librosa
import numpy as np


class NotComputable(ValueError):
    """A feature this clip cannot support; `str(error)` is the sentence for the student."""


@dataclass(frozen=True)
class AnalysisConfig:
    """Every setting of the analysis; a cached analysis is keyed by (clip, config)."""

    sample_rate: int = 22050  # Hz the waveform is analysed at
    n_fft: int = 2048  # STFT frame, samples (93 ms at 22050 Hz)
    hop_length: int = 512  # samples between frames (23 ms): every feature shares this grid
    window: str = "hann"  # STFT window
    n_mels: int = 128  # mel bands for MFCC and onset strength
    n_mfcc: int = 20
    cqt_fmin_hz: float = 32.703  # C1, lowest CQT bin
    cqt_bins_per_octave: int = 36  # 3 bins per semitone, so chroma tolerates detuning
    cqt_octaves: int = 7  # C1..B7
    rolloff_percent: float = 0.85  # roll-off: frequency below which this share of energy lies
    hpss_kernel: int = 31  # median filter length (frames and bins) for HPSS
    key_block_frames: int = 20  # NNLS chroma for the key is solved per 20 frames (0.46 s)
    pitch_fmin_hz: float = 65.41  # C2, lowest pYIN candidate
    pitch_fmax_hz: float = 2093.0  # C7, highest pYIN candidate
    pitch_max_seconds: float = 30.0  # pYIN is slow: only this much of the clip is tracked
    ssm_max_frames: int = 400  # self-similarity is (frames x frames): pool down to this many
    novelty_kernel_seconds: float = 6.0  # Foote checkerboard kernel width
    max_seconds: float = 600.0  # longer clips are analysed over their first max_seconds
    silence_dbfs: float = -60.0  # a clip whose RMS is below this is treated as silent
    min_tempo_seconds: float = 2.0  # tempo needs a few beats' worth of audio
    min_structure_seconds: float = 5.0  # a structure needs room for more than one section

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clip_too_short_message(feature: str, need_seconds: float, have_seconds: float) -> str:
    return (
        f"No {feature}: it needs at least {need_seconds:g} s of audio and this clip is "
        f"{have_seconds:.1f} s."
    )


def prepare_signal(
    samples: np.ndarray, sample_rate: int, config: AnalysisConfig
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Mono float32 at config.sample_rate, at most config.max_seconds long, finite.

    samples: shape (n,) or (channels, n). Returns (y of shape (m,), notices).
    Raises NotComputable for empty or non-finite input.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise NotComputable("The clip holds no samples: there is nothing to analyse.")
    if not np.isfinite(x).all():
        raise NotComputable("The clip contains NaN or infinite samples; re-export it as PCM.")
    notices: list[str] = []
    if sample_rate != config.sample_rate:
        x = librosa.resample(x, orig_sr=sample_rate, target_sr=config.sample_rate)
    cap = int(config.max_seconds * config.sample_rate)
    if x.size > cap:
        notices.append(
            f"The clip is {x.size / config.sample_rate / 60:.1f} min long: only the first "
            f"{config.max_seconds / 60:g} min are analysed, to keep memory bounded."
        )
        x = x[:cap]
    return np.ascontiguousarray(x, dtype=np.float32), tuple(notices)


class AnalysisBase:
    """Settings, signal and memo of a MusicAnalysis (see core.music.session.MusicAnalysis).

    y: float32 waveform, shape (samples,), at config.sample_rate (use `prepare_signal`).
    Every frame-wise feature uses the same grid: frame i is centred at
    i * hop_length / sample_rate seconds (`times`). Properties compute on first use and are
    kept; a lock makes a shared instance safe when two sessions ask at once.
    """

    def __init__(self, y: np.ndarray, config: AnalysisConfig | None = None) -> None:
        self.config = config or AnalysisConfig()
        self.y = np.ascontiguousarray(y, dtype=np.float32)
        if self.y.ndim != 1 or self.y.size == 0:
            raise NotComputable("The clip holds no samples: there is nothing to analyse.")
        self.sr = self.config.sample_rate
        self._memo: dict[str, Any] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ plumbing
    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._memo:
                try:
                    self._memo[name] = compute()
                except NotComputable as error:
                    self._memo[name] = error
            value = self._memo[name]
        if isinstance(value, NotComputable):
            raise value
        return value

    @property
    def duration_seconds(self) -> float:
        return self.y.size / self.sr

    @property
    def rms_dbfs(self) -> float:
        """Loudness of the whole clip: RMS level in dB re full scale."""

        def compute() -> float:
            level = float(np.sqrt(np.mean(np.square(self.y, dtype=np.float64))))
            return 20 * math.log10(level) if level > 0 else -120.0

        return self._cached("rms_dbfs", compute)

    @property
    def peak_dbfs(self) -> float:
        level = float(np.max(np.abs(self.y)))
        return 20 * math.log10(level) if level > 0 else -120.0

    @property
    def is_silent(self) -> bool:
        return self.rms_dbfs < self.config.silence_dbfs

    def _require_sound(self, feature: str) -> None:
        if self.is_silent:
            raise NotComputable(f"No {feature}: the clip is silent.")

    def _require_seconds(self, feature: str, seconds: float) -> None:
        if self.duration_seconds < seconds:
            raise NotComputable(clip_too_short_message(feature, seconds, self.duration_seconds))

    @property
    def n_frames(self) -> int:
        return self.stft.shape[1]  # the STFT is the next floor's (SpectralAnalysis)

    @property
    def times(self) -> np.ndarray:
        """Frame centres in seconds, shape (frames,)."""
        return librosa.frames_to_time(
            np.arange(self.n_frames), sr=self.sr, hop_length=self.config.hop_length
        )
