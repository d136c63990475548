"""MusicAnalysis: the lazy, shared analysis of one clip (see the package docstring)."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import librosa
import numpy as np

from core.music.keys import (
    DEFAULT_PROFILES,
    KeyEstimate,
    KeyGram,
    TonicCues,
    estimate_key,
    fold_to_chroma,
    keygram,
    nnls_notes,
    tonic_cues,
)
from core.music.pitch import PitchContour
from core.music.rhythm import (
    TempoChoice,
    beat_tracking_envelope,
    drop_off_grid_edge_beats,
    metrical_levels,
    mix_clicks,
    refine_tempo,
)
from core.music.spectral import (
    HOP_CHOICES,
    N_FFT_CHOICES,
    SPECTROGRAM_SCALES,
    WINDOWS,
    SpectrogramView,
    blockwise,
    harmonic_mask,
)
from core.music.structure import Structure, compute_structure

TEMPO_WINDOW_SECONDS = 8.0  # librosa.feature.tempo's ac_size: the autocorrelation window


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
    def key_notes(self) -> np.ndarray:
        """NNLS note activations of the harmonic CQT, shape (semitones, blocks), C1 first.

        The CQT's harmonic part (median filter along time, as HPSS) drops drum hits; NNLS
        against harmonic tones puts overtones back on their notes (see `nnls_notes`).
        Blocks are config.key_block_frames frames long (`key_block_seconds`).
        """

        def compute() -> np.ndarray:
            # The same soft mask as librosa's HPSS, computed block by block (bounded memory).
            magnitude = self.cqt_magnitude
            harmonic = magnitude * harmonic_mask(magnitude, self.config.hpss_kernel)
            return nnls_notes(
                harmonic, self.config.cqt_bins_per_octave, self.config.key_block_frames
            )

        return self._cached("key_notes", compute)

    @property
    def key_chroma(self) -> np.ndarray:
        """Chroma for the key: `key_notes` folded onto 12 pitch classes, shape (12, blocks)."""
        return self._cached("key_chroma", lambda: fold_to_chroma(self.key_notes))

    @property
    def key_block_seconds(self) -> float:
        return self.config.key_block_frames * self.config.hop_length / self.sr

    @property
    def key(self) -> KeyEstimate:
        """Key with the default profile family (see `key_for`)."""
        return self.key_for(DEFAULT_PROFILES)

    @property
    def tonic_cues(self) -> TonicCues:
        """The bass of the first and last sounding moments (see `tonic_cues`)."""
        return self._cached("tonic_cues", lambda: tonic_cues(self.key_notes))

    def key_for(self, profiles: str) -> KeyEstimate:
        """Key of the whole clip with a profile family: `key_chroma` summed over time, with the
        opening and final bass as tonic cues (see `estimate_key`)."""

        def compute() -> KeyEstimate:
            self._require_sound("key")
            return estimate_key(self.key_chroma.sum(axis=1), profiles, self.tonic_cues)

        return self._cached(f"key:{profiles}", compute)

    def keygram(self, profiles: str = DEFAULT_PROFILES, window_seconds: float = 8.0) -> KeyGram:
        """Key over time (see `keygram`); needs a clip longer than the window.

        Not kept: from the cached `key_chroma` it takes about a millisecond, and keeping one
        per profile family and window would grow the shared analysis with every slider move.
        """
        self._require_sound("key-gram")
        self._require_seconds("key-gram", window_seconds)
        return keygram(self.key_chroma, self.key_block_seconds, window_seconds, profiles)

    # ------------------------------------------------------------------ rhythm
    @property
    def onset_envelope(self) -> np.ndarray:
        """Onset strength (spectral flux of the log-mel, median over bands), shape (frames,).

        The median, as librosa's beat tracker uses: with the mean, a few loud sustained bands
        (strings, organ) made the tempo jump a metrical level (see core/music/rhythm.py).
        """
        return self._cached(
            "onset_envelope",
            lambda: librosa.onset.onset_strength(
                S=librosa.power_to_db(self.mel_power),
                sr=self.sr,
                hop_length=self.config.hop_length,
                aggregate=np.median,
            ),
        )

    @property
    def beat_envelope(self) -> np.ndarray:
        """What the beat tracker follows: onsets plus chord changes, shape (frames,)."""
        return self._cached(
            "beat_envelope",
            lambda: beat_tracking_envelope(self.onset_envelope, self.chroma_energy),
        )

    @property
    def onset_times(self) -> np.ndarray:
        """Detected onsets in seconds, shape (onsets,)."""

        def compute() -> np.ndarray:
            self._require_sound("onsets")
            # librosa's own onset_detect default: the mean over bands, so an onset in a few
            # bands counts (the median `onset_envelope` is for the beat, where it would not).
            envelope = librosa.onset.onset_strength(
                S=librosa.power_to_db(self.mel_power), sr=self.sr, hop_length=self.config.hop_length
            )
            return librosa.onset.onset_detect(
                onset_envelope=envelope,
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
    def tempo_levels(self) -> TempoChoice:
        """The two most likely metrical levels (e.g. 72 and 144 BPM), which is the beat and why."""

        def compute() -> TempoChoice:
            self._require_rhythm("tempo")
            hop = self.config.hop_length
            # librosa.feature.tempo autocorrelates over ac_size = 8 s (344 frames), not the
            # tempogram view's 384: handing it the view's tempogram changed its pick on a
            # broad (rubato) peak. So the tempo gets its own, time-averaged, autocorrelation.
            window = int(librosa.time_to_frames(TEMPO_WINDOW_SECONDS, sr=self.sr, hop_length=hop))
            autocorrelation = librosa.feature.tempogram(
                onset_envelope=self.onset_envelope, sr=self.sr, hop_length=hop, win_length=window
            ).mean(axis=1, keepdims=True)
            coarse = librosa.feature.tempo(
                onset_envelope=self.onset_envelope, tg=autocorrelation, sr=self.sr, hop_length=hop
            )[0]
            bpm = refine_tempo(autocorrelation[:, 0], float(coarse), self.sr, hop)
            return metrical_levels(autocorrelation[:, 0], bpm, self.sr, hop)

        return self._cached("tempo_levels", compute)

    @property
    def tempo_bpm(self) -> float:
        """Global tempo in beats per minute: the chosen metrical level."""
        return self.tempo_levels.chosen.bpm

    @property
    def beat_times(self) -> np.ndarray:
        """Beat positions in seconds, shape (beats,), tracked at the global tempo."""
        return self.beats_at(self.tempo_bpm)

    def beats_at(self, bpm: float) -> np.ndarray:
        """Beats tracked at a given tempo (a metrical level), seconds, shape (beats,)."""

        def compute() -> np.ndarray:
            self._require_rhythm("beats")
            if not (np.isfinite(bpm) and 20.0 <= bpm <= 400.0):
                raise NotComputable(f"No beats at {bpm} BPM: choose a tempo between 20 and 400.")
            _, beats = librosa.beat.beat_track(
                onset_envelope=self.beat_envelope,
                sr=self.sr,
                hop_length=self.config.hop_length,
                bpm=bpm,
                units="time",
            )
            return drop_off_grid_edge_beats(beats, 60.0 / bpm)

        return self._cached(f"beats:{bpm:.3f}", compute)

    def with_clicks(self, click_gain: float = 0.5, bpm: float | None = None) -> np.ndarray:
        """The clip with a click on every beat, shape (samples,), peak ≤ 1 (see `mix_clicks`).

        bpm: the metrical level to click (default: the chosen tempo).
        """
        bpm = self.tempo_bpm if bpm is None else bpm
        return self._cached(
            f"clicks:{click_gain}:{bpm:.3f}",
            lambda: mix_clicks(self.y, self.sr, self.beats_at(bpm), click_gain=click_gain),
        )

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
                self.chroma_cqt,
                self.mfcc,
                self.times,
                self.config.ssm_max_frames,
                self.config.novelty_kernel_seconds,
            )

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
                f"hop {hop_length} is longer than the window {n_fft}: "
                "samples between frames are skipped."
            )
        # Bound the picture: frames x bins beyond ~8 M cells is too heavy to compute and draw.
        asked_hop = hop_length
        while (self.y.size // hop_length + 1) * (
            n_fft // 2 + 1
        ) > 8_000_000 and hop_length < HOP_CHOICES[-1]:
            hop_length *= 2
        if hop_length != asked_hop:
            notices.append(
                f"hop raised from {asked_hop} to {hop_length} "
                "so that this long clip's picture fits in memory."
            )
        c, sr = self.config, self.sr
        common = dict(
            scale=scale,
            n_fft=n_fft,
            hop_length=hop_length,
            window=window,
            frame_step_seconds=hop_length / sr,
            window_seconds=n_fft / sr,
        )
        if scale == "cqt":
            cqt = (
                self.cqt_magnitude
                if hop_length == c.hop_length
                else np.abs(
                    librosa.cqt(
                        self.y,
                        sr=sr,
                        hop_length=hop_length,
                        fmin=c.cqt_fmin_hz,
                        n_bins=c.cqt_octaves * c.cqt_bins_per_octave,
                        bins_per_octave=c.cqt_bins_per_octave,
                        tuning=self.tuning,
                    )
                )
            )
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

    def summary(self, key_profiles: str = DEFAULT_PROFILES) -> dict[str, Any]:
        """Duration, tempo, key and loudness: JSON-ready; unavailable entries are None.

        key_profiles: the profile family the key is found with (see `key_for`).
        """
        tempo = try_get(lambda: self.tempo_bpm)
        key = try_get(lambda: self.key_for(key_profiles))
        return {
            "duration_seconds": round(self.duration_seconds, 3),
            "tempo_bpm": None if tempo is None else round(tempo, 2),
            "key": None if key is None else key.name,
            "key_confidence": None if key is None else round(key.confidence, 3),
            "key_profiles": key_profiles,
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
                try_get(get)


def try_get(get: Callable[[], Any]) -> Any:
    """get(), or None when the clip cannot support that feature (NotComputable)."""
    try:
        return get()
    except NotComputable:
        return None
