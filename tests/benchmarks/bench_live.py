"""Live listening: latency, CPU per stream, four streams in real time, streamed vs offline.

`python -m tests.benchmarks live` (about 4 minutes). Audio is spoken digits from the shipped
recordings, sent the way a browser sends it (48 kHz stereo int16, 20 ms frames) in real time
from files in-process, into core.inference.streaming.LiveStream with the shipped model at hop
250 ms.

- latency: from the frame that completes a window arriving (push) to that window's answer
  being ready in the stream (the page shows it at its next redraw, ui.live_stream
  REFRESH_SECONDS later at most). Goal: p95 <= 300 ms.
- CPU per stream: process CPU time over audio time for one stream. Goal <= 25 % of a core.
- four streams at once for BENCH_LIVE_SECONDS (default 120): the backlog (audio received but
  not yet analysed) must not grow and nothing may be dropped.
- parity: the same file streamed and through the offline timeline, max |p difference|.
- beside a busy page: one stream while another thread of the process runs pure Python (what
  a page's script run does to the server), at Python's GIL switch interval (5 ms) and at the
  streams' (AUDIO_DL_LIVE_GIL_SWITCH_MS, default 1 ms), interleaved, with the load average.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from core import paths
from core.audio.io import load_audio
from core.inference.classifier import classify_windows, model_from_loaded_run, shipped_store
from core.inference.streaming import (
    DEFAULT_GIL_SWITCH_MS,
    LiveClassifier,
    LiveClassifierConfig,
    LiveStream,
    stream_file,
)

MIC_RATE = 48000
FRAME = 960  # 20 ms
WORDS = ("6_jackson_7", "3_jackson_1", "0_george_5", "4_jackson_6", "1_george_4", "7_george_2")


def spoken_digits(rate: int) -> np.ndarray:
    gap = np.zeros(int(0.6 * rate), np.float32)
    parts = [gap[: rate // 5]]
    for name in WORDS:
        parts += [load_audio(paths.DIGITS_DIR / f"{name}.wav", sample_rate=rate).samples, gap]
    return np.concatenate(parts)


def microphone_frames(audio: np.ndarray, seconds: float) -> list[np.ndarray]:
    """(1, 2 * FRAME) int16 interleaved stereo frames covering `seconds` (audio looped)."""
    n = int(seconds * MIC_RATE) // FRAME * FRAME
    y = np.resize(audio, n)
    pcm = np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)
    stereo = np.repeat(pcm, 2)
    return [stereo[2 * i : 2 * (i + FRAME)].reshape(1, -1) for i in range(0, n, FRAME)]


def feed_real_time(streams: list[LiveStream], frames: list[np.ndarray], samples=None) -> None:
    """Push one frame to every stream each 20 ms, on the clock (as the network delivers)."""
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        for stream in streams:
            stream.push(frame, MIC_RATE, channels=2, interleaved=True)
        if samples is not None and i % 50 == 0:  # once a second
            samples.append([s.stats.backlog_seconds for s in streams])
        delay = start + (i + 1) * FRAME / MIC_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def _busy_python(stop: threading.Event, loops: list[int]) -> None:
    """Pure Python until `stop`: holds the GIL except when the interpreter hands it over."""
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i * i
        loops[0] += 1


def beside_a_busy_page(model, config, audio, *, seconds: float = 10.0, rounds: int = 2) -> None:
    """Push -> answer of one real-time stream next to a busy Python thread, at each GIL switch
    interval in turn (rounds x (5 ms, the default)), so both see the same machine."""
    saved = os.environ.get("AUDIO_DL_LIVE_GIL_SWITCH_MS")
    frames = microphone_frames(audio, seconds)
    results: dict[float, list[np.ndarray]] = {}
    try:
        for _ in range(rounds):
            for switch_ms in (5.0, DEFAULT_GIL_SWITCH_MS):
                os.environ["AUDIO_DL_LIVE_GIL_SWITCH_MS"] = str(switch_ms)
                stop, loops = threading.Event(), [0]
                busy = threading.Thread(target=_busy_python, args=(stop, loops))
                busy.start()
                stream = LiveStream(LiveClassifier(model, config))
                feed_real_time([stream], frames)
                stream.wait_idle(30)
                stop.set()
                busy.join()
                stream.stop()
                lat = np.asarray(stream.stats.latencies_seconds) * 1000
                results.setdefault(switch_ms, []).append(lat)
                print(
                    f"  switch {switch_ms:g} ms, load {os.getloadavg()[0]:.1f}: push -> answer "
                    f"p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} "
                    f"ms, max {lat.max():.1f} ms; the busy thread ran "
                    f"{loops[0] / seconds / 1000:.1f}k loops a second",
                    flush=True,
                )
    finally:
        if saved is None:
            os.environ.pop("AUDIO_DL_LIVE_GIL_SWITCH_MS", None)
        else:
            os.environ["AUDIO_DL_LIVE_GIL_SWITCH_MS"] = saved
    for switch_ms, runs in results.items():
        lat = np.concatenate(runs)
        print(
            f"  all runs at {switch_ms:g} ms: p50 {np.percentile(lat, 50):.1f} ms, "
            f"p95 {np.percentile(lat, 95):.1f} ms ({lat.size} answers)"
        )


def main() -> None:
    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    config = LiveClassifierConfig(hop_seconds=0.25)
    audio = spoken_digits(MIC_RATE)
    print(
        f"shipped model: window {model.window_seconds:.2f} s, hop {config.hop_seconds} s; "
        f"torch threads {__import__('torch').get_num_threads()}, cpus {os.cpu_count()}"
    )

    # Warm-up outside the clock: the first windows pay for one-time set-up (mel filterbank,
    # torch's first passes), which a stream running for minutes does not.
    warm = LiveClassifier(model, config)
    stream_file(warm, spoken_digits(MIC_RATE)[: 3 * MIC_RATE], MIC_RATE)

    # 1 + 2: one stream in real time: latency and CPU.
    seconds = 20.0
    stream = LiveStream(LiveClassifier(model, config))
    frames = microphone_frames(audio, seconds)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    feed_real_time([stream], frames)
    stream.wait_idle(30)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    latencies = np.asarray(stream.stats.latencies_seconds) * 1000
    stream.stop()
    print(f"one stream, {seconds:.0f} s of audio in {wall:.1f} s: {len(latencies)} answers")
    print(
        f"  latency push -> answer: p50 {np.percentile(latencies, 50):.1f} ms, "
        f"p95 {np.percentile(latencies, 95):.1f} ms, max {latencies.max():.1f} ms "
        "(goal p95 <= 300 ms)"
    )
    print(
        f"  CPU: {cpu:.2f} s for {seconds:.0f} s of audio = {100 * cpu / seconds:.1f} % of "
        "one core (goal <= 25 %)"
    )

    # 3: four streams at once, real time.
    seconds = float(os.environ.get("BENCH_LIVE_SECONDS", "120"))
    streams = [LiveStream(LiveClassifier(model, config)) for _ in range(4)]
    frames = microphone_frames(audio, seconds)
    backlog: list[list[float]] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    feeder = threading.Thread(target=feed_real_time, args=(streams, frames, backlog))
    feeder.start()
    feeder.join()
    fed_wall = time.perf_counter() - wall0
    b = np.asarray(backlog)
    drained = all(s.wait_idle(60) for s in streams)
    cpu = time.process_time() - cpu0
    half = len(b) // 2
    dropped = sum(s.stats.dropped_seconds for s in streams)
    windows = [s.analyser.windows_done for s in streams]
    latencies = np.concatenate([np.asarray(s.stats.latencies_seconds) for s in streams]) * 1000
    for s in streams:
        s.stop()
    print(f"four streams, {seconds:.0f} s each, fed in {fed_wall:.1f} s: windows {windows}")
    print(
        f"  backlog per stream: mean {b.mean() * 1000:.0f} ms, max {b.max() * 1000:.0f} ms; "
        f"first half mean {b[:half].mean() * 1000:.0f} ms, second half "
        f"{b[half:].mean() * 1000:.0f} ms (no growth = keeping up); dropped {dropped:.2f} s; "
        f"drained {drained}"
    )
    print(
        f"  latency push -> answer: p50 {np.percentile(latencies, 50):.1f} ms, "
        f"p95 {np.percentile(latencies, 95):.1f} ms"
    )
    print(
        f"  CPU: {100 * cpu / seconds:.1f} % of one core for four streams "
        f"({100 * cpu / seconds / 4:.1f} % each)"
    )

    # 4: streamed vs offline on the same file (model rate, irregular frames).
    y = spoken_digits(model.sample_rate)
    offline = classify_windows(model, y, model.sample_rate, hop_seconds=0.25, trim_silence=True)
    live = LiveClassifier(model, config)
    stream_file(live, y, model.sample_rate, frame_sizes=[320, 17, 999, 160])
    live.finish()
    diff = np.abs(live.window_result().probabilities - offline.probabilities).max()
    print(
        f"streamed vs offline: {len(offline.starts_seconds)} windows, max |p difference| "
        f"{diff:.2e} (goal <= 1e-4)"
    )

    # 5: beside a busy page (another Python thread of the same process).
    print("one stream beside a busy Python thread (a page's script run), GIL switch interval:")
    beside_a_busy_page(model, config, audio)


if __name__ == "__main__":
    main()
