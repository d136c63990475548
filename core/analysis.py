"""Music analysis that computes each shared representation once and reuses it.

`MusicAnalysis(y, config)` is lazy: a property is computed the first time it is asked for and
kept. Every representation is derived from the one it depends on, never from the waveform
again:

    waveform ─ STFT ─┬─ magnitude ─ centroid, bandwidth, roll-off, flatness, RMS, tuning
                     ├─ power ─ mel ─ log-mel ─┬─ MFCC
                     │                         └─ onset strength ─┬─ onsets
                     │                                            ├─ tempogram ─ tempo
                     │                                            └─ beats (given the tempo)
                     ├─ chroma (STFT)
                     └─ HPSS masks ─ harmonic / percussive waveforms
    waveform ─ CQT (tuned by the STFT's tuning) ─ chroma (CQT) ─┬─ key profile ─ key
                                                                 ├─ chroma (CENS)
                                                                 └─ (with MFCC) self-similarity ─ novelty ─ segments

librosa computes each step; the saving comes from handing it the shared intermediate
(`S=`, `C=`, `onset_envelope=`, `tg=`) instead of the waveform. Features that a clip cannot
support (tempo of silence, structure of 0.2 s) raise `NotComputable` with a sentence for the
student; `MusicAnalysis.limitations()` lists them without raising.
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import librosa
import numpy as np
from scipy import signal as sps

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Key profiles: how strongly each scale degree (tonic first) belongs to a key.
# Krumhansl & Kessler (1982), probe-tone ratings.
KRUMHANSL_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KRUMHANSL_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
# Temperley (2007), pitch-class frequencies in the Kostka-Payne textbook corpus.
TEMPERLEY_MAJOR = (
    0.748,
    0.060,
    0.488,
    0.082,
    0.670,
    0.460,
    0.096,
    0.715,
    0.104,
    0.366,
    0.057,
    0.400,
)
TEMPERLEY_MINOR = (
    0.712,
    0.084,
    0.474,
    0.618,
    0.049,
    0.460,
    0.105,
    0.747,
    0.404,
    0.067,
    0.133,
    0.330,
)
KEY_PROFILE_SETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "Krumhansl-Schmuckler": (KRUMHANSL_MAJOR, KRUMHANSL_MINOR),
    "Temperley": (TEMPERLEY_MAJOR, TEMPERLEY_MINOR),
}

SPECTROGRAM_SCALES = ("linear", "log", "mel", "cqt")
WINDOWS = ("hann", "hamming", "blackman", "boxcar")
N_FFT_CHOICES = (256, 512, 1024, 2048, 4096, 8192)
HOP_CHOICES = (64, 128, 256, 512, 1024, 2048)


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


@dataclass(frozen=True)
class KeyEstimate:
    """The key found by correlating the clip's chroma profile with 24 key profiles.

    profile: the clip's pitch-class distribution, shape (12,), sums to 1 (C first).
    correlations: {profile set name: array (24,)}: Pearson r with C major..B major,
        then C minor..B minor.
    key_index: 0..23 into KEY_NAMES (argmax of the mean correlation over profile sets).
    confidence: 0..1: the best mean correlation, scaled down when the profile is flat
        (noise has no key: its profile barely departs from uniform).
    """

    profile: np.ndarray
    correlations: dict[str, np.ndarray]
    key_index: int
    correlation: float
    margin: float  # best minus second-best mean correlation
    tonal_strength: float  # 0..1, how far the profile is from flat
    confidence: float

    @property
    def name(self) -> str:
        return KEY_NAMES[self.key_index]

    @property
    def is_confident(self) -> bool:
        return self.confidence >= 0.5


KEY_NAMES = tuple(f"{p} major" for p in PITCH_CLASSES) + tuple(f"{p} minor" for p in PITCH_CLASSES)


@dataclass(frozen=True)
class SpectrogramView:
    """A spectrogram ready to draw, with the resolution it buys.

    db: shape (bins, frames), dB re the clip's maximum (top 80 dB kept).
    times: frame centres in seconds, shape (frames,). freqs: bin centres in Hz, shape (bins,).
    """

    db: np.ndarray
    times: np.ndarray
    freqs: np.ndarray
    scale: str
    n_fft: int
    hop_length: int
    window: str
    frame_step_seconds: float  # Δt between columns = hop / sr
    window_seconds: float  # the time span each column smears over = n_fft / sr
    bin_hz: float  # Δf between linear-frequency bins = sr / n_fft (0 for CQT)
    notices: tuple[str, ...] = field(default=())


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


class MusicAnalysis:
    """Lazily computed, shared music features of one mono clip.

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
        level = float(np.sqrt(np.mean(np.square(self.y, dtype=np.float64))))
        return 20 * math.log10(level) if level > 0 else -120.0

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
        return self.stft.shape[1]

    @property
    def times(self) -> np.ndarray:
        """Frame centres in seconds, shape (frames,)."""
        return librosa.frames_to_time(
            np.arange(self.n_frames), sr=self.sr, hop_length=self.config.hop_length
        )

    # ------------------------------------------------------------------ STFT family
    @property
    def stft(self) -> np.ndarray:
        """Complex STFT, shape (1 + n_fft // 2, frames), complex64."""
        c = self.config
        return self._cached(
            "stft",
            lambda: librosa.stft(self.y, n_fft=c.n_fft, hop_length=c.hop_length, window=c.window),
        )

    @property
    def magnitude(self) -> np.ndarray:
        """|STFT|, shape (bins, frames)."""
        return self._cached("magnitude", lambda: np.abs(self.stft))

    @property
    def power(self) -> np.ndarray:
        """|STFT|², shape (bins, frames)."""
        return self._cached("power", lambda: np.square(self.magnitude))

    @property
    def freqs(self) -> np.ndarray:
        """STFT bin centres in Hz, shape (bins,)."""
        return librosa.fft_frequencies(sr=self.sr, n_fft=self.config.n_fft)

    @property
    def mel_power(self) -> np.ndarray:
        """Mel power spectrogram, shape (n_mels, frames)."""
        return self._cached(
            "mel_power",
            lambda: librosa.feature.melspectrogram(
                S=self.power, sr=self.sr, n_mels=self.config.n_mels
            ),
        )

    @property
    def log_mel(self) -> np.ndarray:
        """Mel spectrogram in dB re its maximum, shape (n_mels, frames)."""
        return self._cached("log_mel", lambda: librosa.power_to_db(self.mel_power, ref=np.max))

    @property
    def mfcc(self) -> np.ndarray:
        """MFCC, shape (n_mfcc, frames)."""
        return self._cached(
            "mfcc",
            lambda: librosa.feature.mfcc(
                S=librosa.power_to_db(self.mel_power), sr=self.sr, n_mfcc=self.config.n_mfcc
            ),
        )

    @property
    def tuning(self) -> float:
        """Deviation from A440 tuning in fractions of a bin (12 bins per octave)."""
        return self._cached(
            "tuning",
            lambda: (
                0.0
                if self.is_silent
                else float(librosa.estimate_tuning(S=self.magnitude, sr=self.sr))
            ),
        )

    @property
    def rms(self) -> np.ndarray:
        """Frame RMS level, shape (frames,)."""
        return self._cached(
            "rms",
            lambda: librosa.feature.rms(S=self.magnitude, frame_length=self.config.n_fft)[0],
        )

    def spectral_features(self) -> dict[str, np.ndarray]:
        """Centroid, bandwidth, roll-off (Hz), flatness (0..1), ZCR (crossings per sample).

        Each is shape (frames,); all but ZCR come from the shared magnitude spectrogram.
        """

        def frame_wise(s: np.ndarray) -> np.ndarray:
            centroid = librosa.feature.spectral_centroid(S=s, sr=self.sr)
            bandwidth = librosa.feature.spectral_bandwidth(S=s, sr=self.sr, centroid=centroid)
            rolloff = librosa.feature.spectral_rolloff(
                S=s, sr=self.sr, roll_percent=self.config.rolloff_percent
            )
            flatness = librosa.feature.spectral_flatness(S=s)
            return np.vstack([centroid, bandwidth, rolloff, flatness])

        def compute() -> dict[str, np.ndarray]:
            c = self.config
            rows = blockwise(frame_wise, self.magnitude)
            zcr = librosa.feature.zero_crossing_rate(
                self.y, frame_length=c.n_fft, hop_length=c.hop_length
            )[0]
            names = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness")
            return dict(zip(names, rows, strict=True)) | {"zcr": zcr}

        return self._cached("spectral", compute)

    @property
    def chroma_stft(self) -> np.ndarray:
        """Chroma from the STFT power, shape (12, frames), each frame's max is 1."""
        return self._cached(
            "chroma_stft",
            lambda: blockwise(
                lambda s: librosa.feature.chroma_stft(S=s, sr=self.sr, tuning=self.tuning),
                self.power,
            ),
        )

    # ------------------------------------------------------------------ CQT family
    @property
    def cqt_magnitude(self) -> np.ndarray:
        """|CQT| tuned to the clip, shape (octaves * bins_per_octave, frames)."""
        c = self.config

        def compute() -> np.ndarray:
            with warnings.catch_warnings():
                # Short clips: librosa warns that the low octaves' filters outlast the signal;
                # those bins are zero-padded, which is what we want.
                warnings.simplefilter("ignore", UserWarning)
                return _cqt()

        def _cqt() -> np.ndarray:
            cqt = librosa.cqt(
                self.y,
                sr=self.sr,
                hop_length=c.hop_length,
                fmin=c.cqt_fmin_hz,
                n_bins=c.cqt_octaves * c.cqt_bins_per_octave,
                bins_per_octave=c.cqt_bins_per_octave,
                tuning=self.tuning,
            )
            return np.abs(cqt)[:, : self.n_frames]

        return self._cached("cqt", compute)

    @property
    def cqt_freqs(self) -> np.ndarray:
        c = self.config
        return librosa.cqt_frequencies(
            n_bins=c.cqt_octaves * c.cqt_bins_per_octave,
            fmin=c.cqt_fmin_hz * 2 ** (self.tuning / 12),
            bins_per_octave=c.cqt_bins_per_octave,
        )

    def _chroma_kwargs(self) -> dict[str, Any]:
        c = self.config
        return dict(
            sr=self.sr,
            hop_length=c.hop_length,
            fmin=c.cqt_fmin_hz,
            bins_per_octave=c.cqt_bins_per_octave,
            n_octaves=c.cqt_octaves,
        )

    @property
    def chroma_energy(self) -> np.ndarray:
        """Un-normalised CQT chroma (energy per pitch class), shape (12, frames)."""
        return self._cached(
            "chroma_energy",
            lambda: librosa.feature.chroma_cqt(
                C=self.cqt_magnitude, norm=None, **self._chroma_kwargs()
            ),
        )

    @property
    def chroma_cqt(self) -> np.ndarray:
        """CQT chroma, shape (12, frames), each frame's max is 1 (as librosa's default)."""
        return self._cached(
            "chroma_cqt", lambda: librosa.util.normalize(self.chroma_energy, norm=np.inf, axis=0)
        )

    @property
    def chroma_cens(self) -> np.ndarray:
        """Chroma energy normalised statistics (smoothed, quantised), shape (12, frames)."""
        return self._cached(
            "chroma_cens",
            lambda: librosa.feature.chroma_cens(C=self.cqt_magnitude, **self._chroma_kwargs()),
        )

    # ------------------------------------------------------------------ key
    @property
    def key(self) -> KeyEstimate:
        """Key from the clip's CQT chroma profile (see `estimate_key`)."""

        def compute() -> KeyEstimate:
            self._require_sound("key")
            return estimate_key(self.chroma_energy.sum(axis=1))

        return self._cached("key", compute)

    # ------------------------------------------------------------------ rhythm
    @property
    def onset_envelope(self) -> np.ndarray:
        """Onset strength (spectral flux of the log-mel), shape (frames,)."""
        return self._cached(
            "onset_envelope",
            lambda: librosa.onset.onset_strength(
                S=librosa.power_to_db(self.mel_power), sr=self.sr, hop_length=self.config.hop_length
            ),
        )

    @property
    def onset_times(self) -> np.ndarray:
        """Detected onsets in seconds, shape (onsets,)."""

        def compute() -> np.ndarray:
            self._require_sound("onsets")
            return librosa.onset.onset_detect(
                onset_envelope=self.onset_envelope,
                sr=self.sr,
                hop_length=self.config.hop_length,
                units="time",
            )

        return self._cached("onsets", compute)

    @property
    def tempogram(self) -> np.ndarray:
        """Autocorrelation tempogram, shape (384, frames); row k is a lag of k frames."""
        return self._cached(
            "tempogram",
            lambda: librosa.feature.tempogram(
                onset_envelope=self.onset_envelope, sr=self.sr, hop_length=self.config.hop_length
            ).astype(np.float32),  # float64 would double the largest rhythm array
        )

    @property
    def tempogram_bpm(self) -> np.ndarray:
        """Tempo in BPM of each tempogram row, shape (384,) (row 0 is infinite)."""
        return librosa.tempo_frequencies(
            self.tempogram.shape[0], sr=self.sr, hop_length=self.config.hop_length
        )

    def _require_rhythm(self, feature: str) -> None:
        if self.is_silent:
            raise NotComputable(f"No {feature}: the clip is silent.")
        self._require_seconds(feature, self.config.min_tempo_seconds)
        if float(np.max(self.onset_envelope)) <= 0:
            raise NotComputable(f"No {feature}: the clip has no onsets (its sound never changes).")

    @property
    def tempo_bpm(self) -> float:
        """Global tempo in beats per minute."""

        def compute() -> float:
            self._require_rhythm("tempo")
            hop = self.config.hop_length
            coarse = librosa.feature.tempo(
                onset_envelope=self.onset_envelope, tg=self.tempogram, sr=self.sr, hop_length=hop
            )[0]
            return refine_tempo(self.tempogram.mean(axis=1), float(coarse), self.sr, hop)

        return self._cached("tempo", compute)

    @property
    def beat_times(self) -> np.ndarray:
        """Beat positions in seconds, shape (beats,), tracked at the global tempo."""

        def compute() -> np.ndarray:
            self._require_rhythm("beats")
            _, beats = librosa.beat.beat_track(
                onset_envelope=self.onset_envelope,
                sr=self.sr,
                hop_length=self.config.hop_length,
                bpm=self.tempo_bpm,
                units="time",
            )
            return drop_off_grid_edge_beats(beats, 60.0 / self.tempo_bpm)

        return self._cached("beats", compute)

    def with_clicks(self, click_gain: float = 0.5) -> np.ndarray:
        """The clip with a click on every beat, shape (samples,), peak ≤ 1 (see `mix_clicks`)."""
        return mix_clicks(self.y, self.sr, self.beat_times, click_gain=click_gain)

    # ------------------------------------------------------------------ HPSS
    @property
    def hpss(self) -> tuple[np.ndarray, np.ndarray]:
        """(harmonic, percussive) waveforms, each shape (samples,); they sum to y.

        librosa's median-filter HPSS with soft masks, computed in blocks of frames so a long
        clip never holds more than one block's filter outputs (the time filter reaches only
        kernel // 2 frames, so blocks with that much overlap give the same masks). The soft
        masks sum to one, so the percussive part is y minus the harmonic part: one inverse
        STFT instead of two.
        """

        def compute() -> tuple[np.ndarray, np.ndarray]:
            c = self.config
            mask = harmonic_mask(self.magnitude, c.hpss_kernel)
            harmonic = librosa.istft(
                self.stft * mask, hop_length=c.hop_length, window=c.window, length=self.y.size
            )
            return harmonic, self.y - harmonic

        return self._cached("hpss", compute)

    # ------------------------------------------------------------------ pitch
    @property
    def pitch(self) -> PitchContour:
        """pYIN f0 over the first config.pitch_max_seconds (see `PitchContour`)."""

        def compute() -> PitchContour:
            self._require_sound("pitch")
            c = self.config
            n = min(self.y.size, int(c.pitch_max_seconds * self.sr))
            f0, voiced, prob = librosa.pyin(
                self.y[:n],
                fmin=c.pitch_fmin_hz,
                fmax=c.pitch_fmax_hz,
                sr=self.sr,
                frame_length=c.n_fft,
                hop_length=c.hop_length,
            )
            times = librosa.times_like(f0, sr=self.sr, hop_length=c.hop_length)
            return PitchContour(times, f0, voiced, prob, truncated=n < self.y.size)

        return self._cached("pitch", compute)

    # ------------------------------------------------------------------ structure
    @property
    def structure(self) -> Structure:
        """Self-similarity of pooled chroma + MFCC, Foote novelty and segment boundaries."""

        def compute() -> Structure:
            self._require_sound("structure")
            self._require_seconds("structure", self.config.min_structure_seconds)
            return compute_structure(
                self.chroma_cqt, self.mfcc, self.times, self.config.ssm_max_frames,
                self.config.novelty_kernel_seconds,
            )  # fmt: skip

        return self._cached("structure", compute)

    # ------------------------------------------------------------------ explorer
    def spectrogram_view(
        self, n_fft: int, hop_length: int, window: str, scale: str
    ) -> SpectrogramView:
        """A spectrogram at the student's own settings; the shared STFT is reused when they match.

        Kept per setting (at most 6), so moving back to a setting redraws without recomputing.
        """
        key = f"view:{n_fft}:{hop_length}:{window}:{scale}"
        with self._lock:
            views = [k for k in self._memo if k.startswith("view:")]
            if key not in self._memo and len(views) >= 6:
                del self._memo[views[0]]
        return self._cached(key, lambda: self._spectrogram_view(n_fft, hop_length, window, scale))

    def _spectrogram_view(
        self, n_fft: int, hop_length: int, window: str, scale: str
    ) -> SpectrogramView:
        if scale not in SPECTROGRAM_SCALES:
            raise NotComputable(
                f"Unknown scale {scale!r}; choose one of {', '.join(SPECTROGRAM_SCALES)}."
            )
        if window not in WINDOWS:
            raise NotComputable(f"Unknown window {window!r}; choose one of {', '.join(WINDOWS)}.")
        if n_fft not in N_FFT_CHOICES or hop_length not in HOP_CHOICES:
            raise NotComputable("Choose n_fft and hop from the offered values.")
        notices = []
        if hop_length > n_fft:
            notices.append(
                f"hop {hop_length} is longer than the window {n_fft}: samples between frames are skipped."
            )
        # Bound the picture: frames x bins beyond ~8 M cells is too heavy to compute and draw.
        asked_hop = hop_length
        while (self.y.size // hop_length + 1) * (
            n_fft // 2 + 1
        ) > 8_000_000 and hop_length < HOP_CHOICES[-1]:
            hop_length *= 2
        if hop_length != asked_hop:
            notices.append(
                f"hop raised from {asked_hop} to {hop_length} so that this long clip's picture fits in memory."
            )
        c, sr = self.config, self.sr
        common = dict(
            scale=scale, n_fft=n_fft, hop_length=hop_length, window=window,
            frame_step_seconds=hop_length / sr, window_seconds=n_fft / sr,
        )  # fmt: skip
        if scale == "cqt":
            cqt = self.cqt_magnitude if hop_length == c.hop_length else np.abs(
                librosa.cqt(self.y, sr=sr, hop_length=hop_length, fmin=c.cqt_fmin_hz,
                            n_bins=c.cqt_octaves * c.cqt_bins_per_octave,
                            bins_per_octave=c.cqt_bins_per_octave, tuning=self.tuning)
            )  # fmt: skip
            notices.append("The CQT ignores n_fft and window: each bin has its own window length.")
            db = librosa.amplitude_to_db(cqt, ref=np.max)
            times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sr, hop_length=hop_length)
            return SpectrogramView(
                db, times, self.cqt_freqs, bin_hz=0.0, notices=tuple(notices), **common
            )
        if (n_fft, hop_length, window) == (c.n_fft, c.hop_length, c.window):
            power = self.power
        else:
            power = (
                np.abs(librosa.stft(self.y, n_fft=n_fft, hop_length=hop_length, window=window)) ** 2
            )
        freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
        if scale == "mel":
            n_mels = min(c.n_mels, n_fft // 4)  # fewer mel bands than FFT bins leaves empty bands
            power = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=n_mels)
            freqs = librosa.mel_frequencies(n_mels=n_mels, fmax=sr / 2)
        db = (
            librosa.power_to_db(power, ref=np.max)
            if power.max() > 0
            else np.full(power.shape, -80.0)
        )
        times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sr, hop_length=hop_length)
        return SpectrogramView(
            db.astype(np.float32), times, freqs, bin_hz=sr / n_fft, notices=tuple(notices), **common
        )

    # ------------------------------------------------------------------ reporting
    def limitations(self) -> dict[str, str]:
        """{feature: sentence} for every feature this clip cannot support."""
        probes = {
            "tempo": lambda: self.tempo_bpm,
            "beats": lambda: self.beat_times,
            "key": lambda: self.key,
            "structure": lambda: self.structure,
        }
        found = {}
        for name, probe in probes.items():
            try:
                probe()
            except NotComputable as error:
                found[name] = str(error)
        return found

    def summary(self) -> dict[str, Any]:
        """Duration, tempo, key and loudness: JSON-ready; unavailable entries are None."""
        tempo = _try(lambda: self.tempo_bpm)
        key = _try(lambda: self.key)
        return {
            "duration_seconds": round(self.duration_seconds, 3),
            "tempo_bpm": None if tempo is None else round(tempo, 2),
            "key": None if key is None else key.name,
            "key_confidence": None if key is None else round(key.confidence, 3),
            "rms_dbfs": round(self.rms_dbfs, 2),
            "peak_dbfs": round(self.peak_dbfs, 2),
        }

    def compute_all(self, skip: tuple[str, ...] = ()) -> None:
        """Compute every feature now (what the benchmark times); unavailable ones are skipped.

        skip: names among rms, spectral, chroma_stft, chroma_cqt, chroma_cens, mfcc, log_mel,
        onsets, tempogram, beats, key, hpss, pitch, structure.
        """
        getters = {
            "rms": lambda: self.rms,
            "spectral": self.spectral_features,
            "chroma_stft": lambda: self.chroma_stft,
            "chroma_cqt": lambda: self.chroma_cqt,
            "chroma_cens": lambda: self.chroma_cens,
            "mfcc": lambda: self.mfcc,
            "log_mel": lambda: self.log_mel,
            "onsets": lambda: self.onset_times,
            "tempogram": lambda: self.tempogram,
            "beats": lambda: self.beat_times,
            "key": lambda: self.key,
            "hpss": lambda: self.hpss,
            "pitch": lambda: self.pitch,
            "structure": lambda: self.structure,
        }
        for name, get in getters.items():
            if name not in skip:
                _try(get)


def _try(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except NotComputable:
        return None


# ---------------------------------------------------------------------- results and helpers
@dataclass(frozen=True)
class PitchContour:
    """pYIN output on the analysis frame grid.

    times: seconds, shape (frames,). f0_hz: Hz, NaN where unvoiced. voiced: bool.
    voiced_probability: 0..1. truncated: only the first pitch_max_seconds were tracked.
    """

    times: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    voiced_probability: np.ndarray
    truncated: bool = False

    def note_names(self) -> np.ndarray:
        """Nearest note name per frame ('' where unvoiced), e.g. 'A4'; shape (frames,)."""
        names = np.full(self.f0_hz.shape, "", dtype=object)
        ok = self.voiced & np.isfinite(self.f0_hz)
        if ok.any():
            midi = np.round(librosa.hz_to_midi(self.f0_hz[ok])).astype(int)
            lookup = {m: librosa.midi_to_note(m, unicode=False) for m in np.unique(midi)}
            names[ok] = [lookup[m] for m in midi]
        return names

    def main_note(self) -> str:
        """The note name that the voiced frames most often sit on ('' if none)."""
        names = [n for n in self.note_names() if n]
        return max(sorted(set(names)), key=names.count) if names else ""

    def resynthesise(self, sample_rate: int, hop_length: int, amplitude: float = 0.3) -> np.ndarray:
        """A sine melody following f0, silent where unvoiced, shape (frames * hop_length,)."""
        n = self.f0_hz.size * hop_length
        frame_pos = np.arange(self.f0_hz.size) * hop_length
        f0 = np.nan_to_num(self.f0_hz, nan=0.0)
        # Hold the last voiced pitch through gaps so the gain fades, not the frequency jumps.
        held = np.where(f0 > 0, f0, np.nan)
        valid = np.isfinite(held)
        if not valid.any():
            return np.zeros(n, dtype=np.float32)
        idx = np.where(valid, np.arange(held.size), 0)
        np.maximum.accumulate(idx, out=idx)
        held = held[idx]
        held[~np.isfinite(held)] = held[valid][0]
        sample_pos = np.arange(n)
        freq = np.interp(sample_pos, frame_pos, held)
        gain = np.interp(sample_pos, frame_pos, self.voiced.astype(np.float64))
        phase = 2 * np.pi * np.cumsum(freq) / sample_rate
        return (amplitude * gain * np.sin(phase)).astype(np.float32)


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


def blockwise(
    frame_wise: Callable[[np.ndarray], np.ndarray], spec: np.ndarray, block_frames: int = 2048
) -> np.ndarray:
    """Apply a per-frame feature to (bins, frames) in blocks of frames and join the results.

    librosa's spectral features make several float64 copies of their whole input; block by
    block those copies stay small, and since each frame is computed on its own the result is
    the same. Returns shape (rows, frames).
    """
    parts = [
        frame_wise(spec[:, i : i + block_frames]) for i in range(0, spec.shape[1], block_frames)
    ]
    return np.concatenate(parts, axis=-1)


def harmonic_mask(magnitude: np.ndarray, kernel: int, block_frames: int = 2048) -> np.ndarray:
    """Soft harmonic mask of librosa's HPSS, shape (bins, frames), values 0..1.

    magnitude: |STFT|, shape (bins, frames). Computed block by block along time with
    kernel // 2 + 1 frames of context on each side, which reproduces the whole-clip result.
    """
    frames = magnitude.shape[1]
    margin = kernel // 2 + 1
    mask = np.empty_like(magnitude)
    for start in range(0, frames, block_frames):
        stop = min(start + block_frames, frames)
        lo, hi = max(0, start - margin), min(frames, stop + margin)
        block_mask, _ = librosa.decompose.hpss(magnitude[:, lo:hi], kernel_size=kernel, mask=True)
        mask[:, start:stop] = block_mask[:, start - lo : stop - lo]
    return mask


def refine_tempo(
    autocorrelation: np.ndarray, bpm: float, sample_rate: int, hop_length: int
) -> float:
    """Sub-frame tempo: follow the autocorrelation peaks at 1, 2, 3... periods.

    librosa picks a whole number of frames as the period, which at hop 512 and 120 BPM is
    2.3 % coarse. The peak near k periods pins the period to 1/k frame; parabolic
    interpolation on each peak refines it further. autocorrelation: shape (lags,), lag in
    frames (the time-averaged tempogram). Returns beats per minute.
    """
    period = 60.0 * sample_rate / (hop_length * bpm)  # frames
    ac = np.asarray(autocorrelation, dtype=np.float64)
    for k in range(1, 9):
        centre = int(round(k * period))
        lo, hi = centre - 2, centre + 3
        if lo < 1 or hi + 1 > ac.size:
            break
        i = lo + int(np.argmax(ac[lo:hi]))
        a, b, c = ac[i - 1], ac[i], ac[i + 1]
        curvature = a - 2 * b + c
        offset = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
        period = (i + float(np.clip(offset, -0.5, 0.5))) / k
    return 60.0 * sample_rate / (hop_length * period)


def drop_off_grid_edge_beats(
    beat_times: np.ndarray, period_seconds: float, tolerance: float = 0.15
) -> np.ndarray:
    """Drop first/last beats that sit less than (1 - tolerance) periods from their neighbour.

    librosa's tracker can put a last beat where the signal ends rather than on the grid (an
    interval of ~0.8 period); a steady pulse never does that, so such edge beats are dropped.
    beat_times: seconds, shape (beats,). Returns a (possibly shorter) copy.
    """
    beats = np.asarray(beat_times, dtype=float)
    limit = (1 - tolerance) * period_seconds
    while beats.size > 2 and beats[-1] - beats[-2] < limit:
        beats = beats[:-1]
    while beats.size > 2 and beats[1] - beats[0] < limit:
        beats = beats[1:]
    return beats.copy()


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


def estimate_key(chroma_profile: np.ndarray) -> KeyEstimate:
    """Key by correlating a pitch-class profile with 24 rotated key profiles per profile set.

    chroma_profile: shape (12,), energy per pitch class with C first (any scale).
    The decision is the argmax of the correlation averaged over KEY_PROFILE_SETS. Confidence
    is that correlation (negative counts as 0) times the profile's tonal strength: its
    coefficient of variation relative to 0.5 (a single triad's profile has ~1.3, broadband
    noise ~0.05), capped at 1.
    """
    profile = np.asarray(chroma_profile, dtype=np.float64)
    total = profile.sum()
    profile = profile / total if total > 0 else np.full(12, 1 / 12)
    correlations = {
        name: _key_correlations(profile, major, minor)
        for name, (major, minor) in KEY_PROFILE_SETS.items()
    }
    mean = np.mean(list(correlations.values()), axis=0)
    order = np.argsort(mean)[::-1]
    best = int(order[0])
    tonal = float(min(1.0, (profile.std() / profile.mean()) / 0.5))
    return KeyEstimate(
        profile=profile,
        correlations=correlations,
        key_index=best,
        correlation=float(mean[best]),
        margin=float(mean[best] - mean[order[1]]),
        tonal_strength=tonal,
        confidence=float(max(0.0, mean[best]) * tonal),
    )


def _key_correlations(
    profile: np.ndarray, major: tuple[float, ...], minor: tuple[float, ...]
) -> np.ndarray:
    """Pearson r of profile with the 12 major then 12 minor rotations, shape (24,)."""
    templates = np.array(
        [np.roll(major, k) for k in range(12)] + [np.roll(minor, k) for k in range(12)]
    )
    t = templates - templates.mean(axis=1, keepdims=True)
    p = profile - profile.mean()
    denom = np.linalg.norm(t, axis=1) * np.linalg.norm(p)
    return (t @ p) / denom if denom.all() else np.zeros(24)


def mix_clicks(
    y: np.ndarray, sample_rate: int, beat_times: np.ndarray, click_gain: float = 0.5
) -> np.ndarray:
    """y plus a 1 kHz click on every beat, shape (samples,), scaled so the peak is at most 1.

    The clicks are set to click_gain of the clip's peak so that both stay audible.
    """
    clicks = librosa.clicks(times=beat_times, sr=sample_rate, length=y.size, click_freq=1000.0)
    ref = float(np.max(np.abs(y))) or 1.0
    mix = y + click_gain * ref * clicks / max(float(np.max(np.abs(clicks))), 1e-9)
    return (mix / max(1.0, float(np.max(np.abs(mix))))).astype(np.float32)


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


def export_json(analysis: MusicAnalysis) -> str:
    """Summary, events (onsets, beats, boundaries), key correlations and frame features as JSON."""
    key = _try(lambda: analysis.key)
    structure = _try(lambda: analysis.structure)
    doc: dict[str, Any] = {
        "config": analysis.config.to_dict(),
        "summary": analysis.summary(),
        "unavailable": analysis.limitations(),
        "onset_times_s": _list(_try(lambda: analysis.onset_times)),
        "beat_times_s": _list(_try(lambda: analysis.beat_times)),
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
