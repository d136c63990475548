"""MusicAnalysis: the lazy, shared analysis of one clip (see the package docstring).

The class is built on two floors kept in their own modules (each under ~500 lines):
core.music.session_base (settings, signal, memo, frame grid) and core.music.session_spectra
(STFT and CQT families, the spectrogram view). This module adds the musical readings (key,
rhythm, HPSS, pitch, structure) and the reports.
"""

from __future__ import annotations

from collections.abc import Callable
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
from core.music.session_base import (
    AnalysisConfig,
    NotComputable,
    clip_too_short_message,
    prepare_signal,
)
from core.music.session_spectra import SpectralAnalysis
from core.music.spectral import harmonic_mask
from core.music.structure import Structure, compute_structure

__all__ = [
    "AnalysisConfig",
    "MusicAnalysis",
    "NotComputable",
    "clip_too_short_message",
    "prepare_signal",
    "try_get",
]

TEMPO_WINDOW_SECONDS = 8.0  # librosa.feature.tempo's ac_size: the autocorrelation window


class MusicAnalysis(SpectralAnalysis):
    """Lazily computed, shared music features of one mono clip.

    y: float32 waveform, shape (samples,), at config.sample_rate (use `prepare_signal`).
    Every frame-wise feature uses the same grid: frame i is centred at
    i * hop_length / sample_rate seconds (`times`). Properties compute on first use and are
    kept; a lock makes a shared instance safe when two sessions ask at once.
    """

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
