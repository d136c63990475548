"""Pitch trackers side by side: pYIN, CREPE tiny, CREPE full and PESTO on melodies with a
known pitch, scored with mir_eval.melody, plus their speed on the CPU, in one run.

`python -m tests.benchmarks pitch`. The melodies are synthesized here, so the pitch of every
10 ms frame is known exactly:

- "vibrato": notes from G3 to B4, each with 5.5 Hz vibrato of ±40 cents, and a 0.3 s rest;
- "glides": notes from A2 to A5 joined by 120 ms portamento (the pitch slides through every
  frequency in between), and a 0.3 s rest;

each as 8 decaying partials with an attack and release, then in five conditions: clean, white
noise at 20, 10 and 0 dB SNR, and reverb (an exponentially decaying noise impulse response,
RT60 0.6 s, half wet). The reference stays the dry pitch, so a reverb tail ringing into a rest
counts as a voicing false alarm.

Scores (mir_eval.melody, 50-cent tolerance): raw pitch accuracy (RPA: the share of voiced
reference frames whose estimated pitch is right, whatever the voicing decision), raw chroma
accuracy (RCA: the same, forgiving octave errors), voicing recall (VR) and false alarm (VFA),
overall accuracy (OA: pitch and voicing both right on every frame). Each tracker's voicing is
its default (pYIN's HMM; a network confidence of 0.5): nothing here was tuned on these clips.
Speed is audio seconds per second of wall time on the CPU (x real time), models loaded
beforehand. CREPE full dominates the run time (about 9 s per audio second on a 2-core machine),
which is why the clips are short: 2 melodies x 5 conditions x 1.5 s = 15 s of audio per tracker.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict

import mir_eval
import numpy as np
import scipy.signal
import torch

from core.music.pitch_networks import (
    SAMPLE_RATE,
    TRACKERS,
    PitchTrackerConfig,
    run_tracker,
)

SR = SAMPLE_RATE
HOP = 0.01
SECONDS = 1.5
CONDITIONS = ("clean", "snr 20 dB", "snr 10 dB", "snr 0 dB", "reverb")


def _notes_to_f0(notes: list[tuple[float, float, float]], glide: float = 0.0) -> np.ndarray:
    """Per-sample f0 (Hz, 0 = rest) from (MIDI, start s, end s); glides join touching notes."""
    f0 = np.zeros(int(SECONDS * SR))
    for i, (midi, start, end) in enumerate(notes):
        a, b = int(start * SR), min(int(end * SR), f0.size)
        f0[a:b] = 440.0 * 2 ** ((midi - 69) / 12)
        if glide and i + 1 < len(notes) and abs(notes[i + 1][1] - end) < 1e-9:
            # Slide in log frequency over the last `glide` seconds into the next note.
            g = int(glide * SR)
            target = notes[i + 1][0]
            ramp = np.linspace(midi, target, g)
            f0[b - g : b] = 440.0 * 2 ** ((ramp - 69) / 12)
    return f0


def melodies() -> dict[str, np.ndarray]:
    """Per-sample f0 of each melody, shape (SECONDS * SR,)."""
    t = np.arange(int(SECONDS * SR)) / SR
    # Each melody has a 0.3 s rest: the frames where voicing false alarms are counted (a
    # 64 ms window still hears the note in the rest's first 3 frames, so no tracker gets 0).
    vibrato_notes = [
        (55, 0.05, 0.35),
        (59, 0.35, 0.6),
        (64, 0.6, 0.8),
        (67, 1.1, 1.3),
        (71, 1.3, 1.45),
    ]
    vibrato = _notes_to_f0(vibrato_notes)
    vibrato *= 2 ** (40 / 1200 * np.sin(2 * np.pi * 5.5 * t))
    glide_notes = [(45, 0.05, 0.4), (57, 0.4, 0.7), (64, 1.0, 1.2), (81, 1.2, 1.45)]
    return {"vibrato": vibrato, "glides": _notes_to_f0(glide_notes, glide=0.12)}


def synthesize(f0: np.ndarray) -> np.ndarray:
    """8 partials (amplitude 1/k, under Nyquist) following f0, enveloped per note, float32."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = np.zeros_like(f0)
    for k in range(1, 9):
        y += np.where(k * f0 < SR / 2, np.sin(k * phase) / k, 0.0)
    sounding = (f0 > 0).astype(float)
    # 10 ms attack and release: smooth the on/off gate.
    ramp = np.hanning(int(0.02 * SR))
    envelope = np.convolve(sounding, ramp / ramp.sum(), mode="same")
    return (0.3 * y * envelope).astype(np.float32)


def degrade(y: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    if condition == "clean":
        return y
    if condition.startswith("snr"):
        snr_db = float(condition.split()[1])
        signal_power = np.mean(y[np.abs(y) > 1e-4] ** 2)
        noise = rng.standard_normal(y.size) * np.sqrt(signal_power / 10 ** (snr_db / 10))
        return (y + noise).astype(np.float32)
    rt60 = 0.6
    n = int(rt60 * SR)
    response = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at rt60
    wet = scipy.signal.fftconvolve(y, response)[: y.size]
    wet *= np.sqrt(np.mean(y**2) / max(np.mean(wet**2), 1e-12))
    return (0.5 * y + 0.5 * wet).astype(np.float32)


def reference_frames(f0: np.ndarray, config: PitchTrackerConfig) -> tuple[np.ndarray, np.ndarray]:
    """(times, Hz) of the reference at the trackers' frame centres (0 Hz = unvoiced)."""
    hop = config.hop_length
    n_frames = 1 + f0.size // hop
    return np.arange(n_frames) * hop / SR, f0[np.minimum(np.arange(n_frames) * hop, f0.size - 1)]


def score(track, ref_times: np.ndarray, ref_hz: np.ndarray) -> dict[str, float]:
    # mir_eval's convention: a negative frequency is a pitch guess in a frame called unvoiced.
    raw = np.nan_to_num(track.raw_f0_hz, nan=0.0)
    est = np.where(track.voiced, raw, -raw)
    with warnings.catch_warnings():
        # "Estimated melody has no voiced frames": a tracker that hears nothing in loud noise;
        # its zero voicing recall in the table says so.
        warnings.simplefilter("ignore", UserWarning)
        return mir_eval.melody.evaluate(ref_times, ref_hz, track.times, est)


def main() -> None:
    config = PitchTrackerConfig()
    rng = np.random.default_rng(0)
    clips = []
    for name, f0 in melodies().items():
        dry = synthesize(f0)
        ref = reference_frames(f0, config)
        for condition in CONDITIONS:
            clips.append((name, condition, degrade(dry, condition, rng), ref))
    audio_seconds = sum(c[2].size for c in clips) / SR
    print(
        f"{len(clips)} clips, {audio_seconds:.0f} s of audio per tracker, "
        f"hop {config.hop_seconds * 1000:.0f} ms, {torch.get_num_threads()} CPU threads"
    )
    warm = synthesize(_notes_to_f0([(60, 0.0, 0.5)]))[: SR // 2]
    results: dict[str, list[dict]] = defaultdict(list)
    speed = {}
    for tracker in TRACKERS:
        run_tracker(warm, SR, tracker, config=config)  # load weights, build kernels
        elapsed = 0.0
        for name, condition, y, (ref_times, ref_hz) in clips:
            started = time.perf_counter()
            track = run_tracker(y, SR, tracker, config=config)
            elapsed += time.perf_counter() - started
            results[tracker].append(
                {"melody": name, "condition": condition, **score(track, ref_times, ref_hz)}
            )
        speed[tracker] = audio_seconds / elapsed
        print(f"  {tracker}: {elapsed:.1f} s", flush=True)

    metrics = (
        "Raw Pitch Accuracy",
        "Raw Chroma Accuracy",
        "Voicing Recall",
        "Voicing False Alarm",
        "Overall Accuracy",
    )
    short = ("RPA", "RCA", "VR", "VFA", "OA")
    print(f"\nAll clips (mean of {len(clips)}):")
    print(
        f"{'':12s}"
        + "".join(f"{s:>7s}" for s in short)
        + f"{'x real time':>13s}{'time / pYIN':>13s}"
    )
    for tracker in TRACKERS:
        means = [np.mean([r[m] for r in results[tracker]]) for m in metrics]
        relative = speed[TRACKERS[0]] / speed[tracker]  # how many times pYIN's wall time
        print(
            f"{tracker:12s}"
            + "".join(f"{v:7.3f}" for v in means)
            + f"{speed[tracker]:12.3f}x{relative:12.1f}x"
        )
    for group, values in (("condition", CONDITIONS), ("melody", tuple(melodies()))):
        print(f"\nRaw pitch accuracy by {group}:")
        print(f"{'':12s}" + "".join(f"{v:>11s}" for v in values))
        for tracker in TRACKERS:
            cells = [
                np.mean([r["Raw Pitch Accuracy"] for r in results[tracker] if r[group] == v])
                for v in values
            ]
            print(f"{tracker:12s}" + "".join(f"{c:11.3f}" for c in cells))
    print("\nVoicing false alarm by condition (reverb tails and noise heard as notes):")
    for tracker in TRACKERS:
        cells = [
            np.mean([r["Voicing False Alarm"] for r in results[tracker] if r["condition"] == v])
            for v in CONDITIONS
        ]
        print(f"{tracker:12s}" + "".join(f"{c:11.3f}" for c in cells))


if __name__ == "__main__":
    main()
