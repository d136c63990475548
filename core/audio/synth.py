"""A tiny additive synthesiser: notes in, a float32 waveform out (numpy only).

Used to make the melodies written by the reinforcement-learning agents audible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SynthConfig:
    sample_rate: int = 22050  # Hz
    step_seconds: float = 0.25  # duration of one melody step (a sixteenth at 60 BPM x4)
    attack_seconds: float = 0.01
    decay_seconds: float = 0.08
    sustain_level: float = 0.6  # fraction of the peak held after the decay
    release_seconds: float = 0.08
    harmonics: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)  # amplitude of partial 1, 2, ...
    peak: float = 0.8  # output peak level


def midi_to_hz(midi: float) -> float:
    """Frequency in Hz of a MIDI pitch (69 = A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def adsr_envelope(n_samples: int, config: SynthConfig) -> np.ndarray:
    """Attack-decay-sustain-release envelope, shape (n_samples,); the release fits inside."""
    sr = config.sample_rate
    a = int(config.attack_seconds * sr)
    d = int(config.decay_seconds * sr)
    r = min(int(config.release_seconds * sr), n_samples // 2)
    env = np.full(n_samples, config.sustain_level, dtype=np.float32)
    head = min(a, n_samples)
    env[:head] = np.linspace(0.0, 1.0, head, endpoint=False)
    dec_end = min(a + d, n_samples)
    env[head:dec_end] = np.linspace(1.0, config.sustain_level, dec_end - head, endpoint=False)
    if r:
        env[-r:] *= np.linspace(1.0, 0.0, r)
    return env


def render_notes(
    notes: Sequence[tuple[int, int, int]], config: SynthConfig = SynthConfig()
) -> np.ndarray:
    """Render `(midi_pitch, start_step, n_steps)` notes to audio.

    Returns float32 samples, shape (total_steps * step_seconds * sample_rate,), peak at
    `config.peak` (silence if there are no notes). Partials above Nyquist are left out.
    """
    total_steps = max((start + length for _, start, length in notes), default=0)
    step = int(round(config.step_seconds * config.sample_rate))
    out = np.zeros(max(total_steps, 1) * step, dtype=np.float32)
    for pitch, start, length in notes:
        n = length * step
        t = np.arange(n) / config.sample_rate
        f0 = midi_to_hz(pitch)
        tone = np.zeros(n, dtype=np.float64)
        for k, amplitude in enumerate(config.harmonics, start=1):
            if k * f0 < config.sample_rate / 2:
                tone += amplitude * np.sin(2 * np.pi * k * f0 * t)
        out[start * step : start * step + n] += (tone * adsr_envelope(n, config)).astype(np.float32)
    peak = float(np.abs(out).max())
    return out * (config.peak / peak) if peak > 0 else out
