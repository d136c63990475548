"""Classification speed on the CPU with the shipped digits model.

1. One 10-second clip end to end, warm: decode (a 44.1 kHz WAV from bytes), features
   (resampling to 16 kHz, log-mel, normalisation, crop), model (forward + softmax), top-k.
   Median of 15 runs after 3 warm-ups, split per stage. Goal: ≤ 300 ms.
2. Sliding-window classification of a 10-minute recording (the shipped clips looped):
   `classify_windows` (one spectrogram for the whole file, windows sliced from it and run in
   batches) against the per-window path (`core.training.evaluate.predict_windows`: features and a
   forward pass per window) on the first 60 s, side by side. Goal: ≥ 100x real time.

Wall-clock figures depend on what else the machine runs: the load average is printed, and
for the long file the process CPU time too (on an idle machine the wall time approaches
CPU time / threads).
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch

from core import paths
from core.audio.io import load_audio
from core.audio.levels import encode_wav
from core.inference.classifier import (
    classify_clip,
    classify_windows,
    model_from_loaded_run,
    shipped_store,
)

RATE = 44100


def _music(seconds: float) -> np.ndarray:
    """The shipped music clips, concatenated and looped to `seconds` at 44.1 kHz."""
    clips = [load_audio(p, sample_rate=RATE).samples for p in paths.builtin_music_clips()]
    y = np.concatenate(clips)
    return np.tile(y, int(np.ceil(seconds * RATE / len(y))))[: int(seconds * RATE)]


def _one_clip(model) -> None:
    wav = encode_wav(_music(10.0), RATE)
    stages: dict[str, list[float]] = {"decode": [], "features": [], "model": [], "top_k": []}
    totals = []
    for run in range(18):
        start = time.perf_counter()
        clip = load_audio(wav, name="ten_seconds.wav")
        decoded = time.perf_counter()
        result = classify_clip(model, clip.samples, clip.sample_rate)
        total = time.perf_counter() - start
        if run >= 3:
            stages["decode"].append(1e3 * (decoded - start))
            for stage, ms in result.timings_ms.items():
                stages[stage].append(ms)
            totals.append(1e3 * total)
    median = {stage: statistics.median(values) for stage, values in stages.items()}
    print("1. One 10-second clip (44.1 kHz WAV), end to end, warm, median of 15 runs:")
    for stage, ms in median.items():
        print(f"   {stage:<9} {ms:8.1f} ms")
    total = statistics.median(totals)
    verdict = "meets" if total <= 300 else "MISSES"
    print(f"   total     {total:8.1f} ms  ({verdict} the 300 ms goal)")


def _sliding(model) -> None:
    from core.training.evaluate import predict_windows

    y = _music(600.0)
    hop = model.window_seconds / 4
    classify_windows(model, y[: 10 * RATE], RATE, hop_seconds=hop)  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    result = classify_windows(model, y, RATE, hop_seconds=hop)
    batched = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    excerpt = y[: 60 * RATE]
    start = time.perf_counter()
    classify_windows(model, excerpt, RATE, hop_seconds=hop)
    batched_60 = time.perf_counter() - start
    start = time.perf_counter()
    predict_windows(_loaded_run(), excerpt, RATE, hop_seconds=hop)
    per_window_60 = time.perf_counter() - start
    print(
        f"2. Sliding windows over a 10-minute file: {len(result.starts_seconds)} windows of "
        f"{result.window_seconds:.2f} s every {result.hop_seconds:.2f} s"
    )
    speed = 600.0 / batched
    verdict = "meets" if speed >= 100 else "MISSES"
    print(
        f"   batched, one spectrogram: {batched:6.2f} s = {speed:6.0f}x real time "
        f"({verdict} the 100x goal); CPU time {cpu:.2f} s on {torch.get_num_threads()} "
        f"threads = {600.0 / (cpu / torch.get_num_threads()):.0f}x on an idle machine"
    )
    print(
        f"   first 60 s: batched {batched_60:5.2f} s vs per window {per_window_60:5.2f} s "
        f"= {per_window_60 / batched_60:4.1f}x faster"
    )


def _loaded_run():
    return shipped_store().load("digits-cnn")


def main() -> None:
    model = model_from_loaded_run(_loaded_run(), origin="shipped")
    print(
        f"Model: {model.name}, {model.feature_kind} {model.num_bins} x {model.clip_frames}, "
        f"CPU threads: {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    _one_clip(model)
    _sliding(model)


if __name__ == "__main__":
    main()
