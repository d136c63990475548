"""Log-mel of 200 one-second clips: the project's batched transform vs a librosa loop (CPU).

Both sides get the same 200 clips (shipped spoken digits, resampled to 16 kHz and padded or
cut to one second) and the same parameters (FeatureConfig defaults: n_fft 512, hop 160,
64 Slaney mel bands, power 2, dB with ref 1.0 and top_db 80). Each side runs once to warm up,
then `REPEATS` times; the best time counts (the machine is shared, the best is the least
disturbed). Goal: the batched transform at least 5x faster, outputs within 0.01 dB.
"""

from __future__ import annotations

import time

import librosa
import numpy as np
import torch

from core import paths
from core.audio import load_audio
from core.features import FeatureConfig, LogMelSpectrogram

N_CLIPS = 200
REPEATS = 3


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
            y=y, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
            win_length=config.win_length, window=config.window, center=config.center,
            pad_mode="constant", power=config.power, n_mels=config.n_mels, fmin=config.f_min,
            fmax=config.f_max, htk=config.mel_scale == "htk", norm=config.mel_norm,
        )  # fmt: skip
        out.append(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=config.top_db))
    return np.stack(out)


def best_time(fn, repeats: int = REPEATS) -> tuple[float, object]:
    result = fn()  # warm-up: allocations, caches, lazy imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    config = FeatureConfig()
    clips = one_second_clips(config)
    transform = LogMelSpectrogram(config)
    batch = torch.from_numpy(clips)

    def ours_batched() -> np.ndarray:
        with torch.inference_mode():
            return transform(batch).numpy()

    def ours_one_by_one() -> np.ndarray:
        with torch.inference_mode():
            return np.stack([transform(row).numpy() for row in batch])

    t_librosa, reference = best_time(lambda: librosa_log_mel(clips, config))
    t_batched, batched = best_time(ours_batched)
    t_loop, looped = best_time(ours_one_by_one)

    max_diff = float(np.abs(batched - reference).max())
    print(f"{N_CLIPS} clips x 1 s at {config.sample_rate} Hz -> {tuple(batched.shape)} log-mel")
    print(f"settings: n_fft={config.n_fft} hop={config.hop_length} n_mels={config.n_mels} "
          f"top_db={config.top_db}; torch threads={torch.get_num_threads()}, best of {REPEATS}")  # fmt: skip
    print(f"librosa loop (melspectrogram + power_to_db): {t_librosa * 1000:8.1f} ms")
    print(f"ours, one clip at a time                   : {t_loop * 1000:8.1f} ms")
    print(f"ours, one batch                            : {t_batched * 1000:8.1f} ms")
    ratio = t_librosa / t_batched
    verdict = "meets" if ratio >= 5 else "MISSES"
    print(f"speed-up of the batch over librosa: {ratio:.1f}x ({verdict} the 5x goal)")
    print(f"batching alone: {t_loop / t_batched:.1f}x over our own per-clip loop")
    print(f"max |ours - librosa| = {max_diff:.5f} dB; per-clip loop vs batch = "
          f"{float(np.abs(looped - batched).max()):.5f} dB")  # fmt: skip


if __name__ == "__main__":
    main()
