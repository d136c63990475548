"""The spectral floor of MusicAnalysis (core.music.session): the STFT family (magnitude,
power, mel, MFCC, tuning, RMS, spectral features, STFT chroma), the CQT family (CQT, its
chroma, CENS) and the spectrogram at the student's own settings."""

from __future__ import annotations

import warnings
from typing import Any

import librosa
import numpy as np

from core.music.session_base import AnalysisBase, NotComputable
from core.music.spectral import (
    HOP_CHOICES,
    N_FFT_CHOICES,
    SPECTROGRAM_SCALES,
    WINDOWS,
    SpectrogramView,
    blockwise,
)


class SpectralAnalysis(AnalysisBase):
    """STFT and CQT representations of one clip, each computed once (see MusicAnalysis)."""

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
