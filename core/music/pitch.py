"""A pYIN pitch contour with note names and a sine resynthesis."""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np


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
