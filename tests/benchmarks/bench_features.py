"""Log-mel of 200 one-second clips: the project's batched transform vs a librosa loop (CPU).

Both sides get the same 200 clips (shipped spoken digits, resampled to 16 kHz and padded or
cut to one second) and the same parameters (FeatureConfig defaults: n_fft 512, hop 160,
64 Slaney mel bands, power 2, dB with ref 1.0 and top_db 80). Goal: the batched transform at
least 5x faster, outputs within 0.01 dB.

Two rounds: with the libraries' default threads, then with one thread on each side (numpy's
BLAS through threadpoolctl, torch through set_num_threads), which compares the work itself,
core for core. Each round runs every contender once to warm up, then `REPEATS` times,
interleaved (librosa, ours, librosa, ...) so a busy spell on a shared machine slows both
alike; the best time counts. CPU seconds are printed beside wall seconds: on a machine shared
with other jobs, wall time says as much about the neighbours as about the code.

The BLAS settings are printed first because they move the librosa side: OPENBLAS_CORETYPE
picks OpenBLAS's kernels by name (an older core's kernels are slower), OPENBLAS_L2_SIZE sizes
its blocking. Compare with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m
tests.benchmarks features`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import librosa
import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from core import paths
from core.audio.features import FeatureConfig, LogMelSpectrogram
from core.audio.io import load_audio

N_CLIPS = 200
REPEATS = 3
BLAS_ENVIRONMENT = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def one_second_clips(config: FeatureConfig, n: int = N_CLIPS) -> np.ndarray:
    """(n, sample_rate) float32: shipped digits, resampled, zero-padded or cut to 1 s."""
    files = paths.builtin_digit_files()
    step = max(1, len(files) // n)
    clips = np.zeros((n, config.sample_rate), dtype=np.float32)
    for row, path in enumerate(files[::step][:n]):
        y = load_audio(path, sample_rate=config.sample_rate).samples[: config.sample_rate]
        clips[row, : y.size] = y
    return clips


def librosa_log_mel(clips: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The loop a student would write first: one librosa call per clip."""
    out = []
    for y in clips:
        mel = librosa.feature.melspectrogram(
            y=y,
            sr=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            window=config.window,
            center=config.center,
            pad_mode="constant",
            power=config.power,
            n_mels=config.n_mels,
            fmin=config.f_min,
            fmax=config.f_max,
            htk=config.mel_scale == "htk",
            norm=config.mel_norm,
        )
        out.append(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=config.top_db))
    return np.stack(out)


def blas_settings() -> list[str]:
    """Lines describing the thread pools and BLAS overrides this process runs with."""
    env = ", ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in BLAS_ENVIRONMENT)
    lines = [f"environment: {env}"]
    for pool in threadpool_info():
        lines.append(
            f"threadpoolctl: {pool['user_api']}/{pool['internal_api']} {pool.get('version')} "
            f"({pool['prefix']}), {pool['num_threads']} threads"
            + (f", kernels for {pool['architecture']}" if pool.get("architecture") else "")
        )
    lines.append(
        f"torch: {torch.get_num_threads()} threads, MKL {torch.backends.mkl.is_available()}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return lines


def best_times(contenders: dict[str, Callable[[], np.ndarray]], repeats: int = REPEATS):
    """{name: (best wall s, best CPU s, result)}, the contenders interleaved repeat by repeat."""
    results = {name: fn() for name, fn in contenders.items()}  # warm-up: allocations, caches
    wall = dict.fromkeys(contenders, float("inf"))
    cpu = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeats):
        for name, fn in contenders.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
            wall[name] = min(wall[name], time.perf_counter() - start_wall)
    return {name: (wall[name], cpu[name], results[name]) for name in contenders}


def one_round(clips: np.ndarray, config: FeatureConfig, label: str) -> None:
    """Time librosa and ours side by side with the thread settings now in force; print."""
    transform = LogMelSpectrogram(config)
    batch = torch.from_numpy(clips)

    def ours_batched() -> np.ndarray:
        with torch.inference_mode():
            return transform(batch).numpy()

    def ours_one_by_one() -> np.ndarray:
        with torch.inference_mode():
            return np.stack([transform(row).numpy() for row in batch])

    timed = best_times(
        {
            "librosa loop (melspectrogram + power_to_db)": lambda: librosa_log_mel(clips, config),
            "ours, one clip at a time": ours_one_by_one,
            "ours, one batch": ours_batched,
        }
    )
    print(f"\n{label} (torch threads {torch.get_num_threads()}), best of {REPEATS}:")
    for name, (wall, cpu, _) in timed.items():
        print(f"  {name:44s}: {wall * 1000:8.1f} ms wall {cpu * 1000:8.1f} ms CPU")
    (t_librosa, c_librosa, reference), (t_loop, _, looped), (t_batched, c_batched, batched) = (
        timed.values()
    )
    ratio = t_librosa / t_batched
    print(
        f"  speed-up of the batch over librosa: {ratio:.1f}x wall, "
        f"{c_librosa / c_batched:.1f}x CPU ({'meets' if ratio >= 5 else 'MISSES'} the 5x goal)"
    )
    print(f"  batching alone: {t_loop / t_batched:.1f}x over our own per-clip loop")
    print(
        f"  max |ours - librosa| = {float(np.abs(batched - reference).max()):.5f} dB; "
        f"per-clip loop vs batch = {float(np.abs(looped - batched).max()):.5f} dB"
    )


def main() -> None:
    config = FeatureConfig()
    clips = one_second_clips(config)
    print(
        f"{N_CLIPS} clips x 1 s at {config.sample_rate} Hz -> log-mel (n_fft={config.n_fft} "
        f"hop={config.hop_length} n_mels={config.n_mels} top_db={config.top_db})"
    )
    for line in blas_settings():
        print(line)
    one_round(clips, config, "default threads")
    default_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with threadpool_limits(limits=1):
            one_round(clips, config, "one thread each (numpy BLAS and torch)")
    finally:
        torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
