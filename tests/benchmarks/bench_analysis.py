"""Music analysis: the shared MusicAnalysis vs independent librosa calls, display reruns, memory.

1. A 3-minute track (the shipped music clips, concatenated and looped to 180 s at 22050 Hz)
   analysed fully by `MusicAnalysis.compute_all()` and by calling the equivalent librosa
   functions each on the waveform, as a student would, for the same outputs. Goal: ≥ 1.5x.
   pYIN costs the same on both sides (over the first 30 s), so the ratio is also printed
   without it.
2. Moving a display control (zoom, scale, colour) with the analysis cached: the figure
   builders per view on the 3-minute track, and the real page's rerun under AppTest on the
   longest shipped clip. Goal: < 200 ms.
3. Peak memory of a full analysis of a 10-minute track (in a child process: tracemalloc peak
   and the growth of the resident set), and the cap notice for a 12-minute one.
4. What the app finds on the shipped clips with known facts (trumpet loop: F, 90 BPM; Brahms
   Hungarian Dance 5: F sharp minor; Tchaikovsky Sugar Plum Fairy: E minor).
"""

from __future__ import annotations

import subprocess
import sys
import time

import librosa
import numpy as np

from core import paths
from core.audio.io import load_audio
from core.music import (
    KEY_NAMES,
    AnalysisConfig,
    MusicAnalysis,
    compute_structure,
    estimate_key,
    prepare_signal,
)
from core.viz import music as viz

SR = 22050


def looped_track(seconds: float) -> np.ndarray:
    """The shipped music clips (speech excluded) concatenated and looped to `seconds`."""
    parts = [
        load_audio(p, sample_rate=SR).samples
        for p in paths.builtin_music_clips()
        if any(w in p.name for w in ("Hungarian", "Tchaikovsky", "Vibe_Ace", "trumpet"))
    ]
    one = np.concatenate(parts)
    reps = int(np.ceil(seconds * SR / one.size))
    return np.tile(one, reps)[: int(seconds * SR)].astype(np.float32)


def librosa_independent(y: np.ndarray, c: AnalysisConfig, with_pitch: bool = True) -> dict:
    """Every output of compute_all, each librosa call starting from the waveform."""
    sr, cqt_kw = (
        c.sample_rate,
        dict(bins_per_octave=c.cqt_bins_per_octave, n_octaves=c.cqt_octaves, fmin=c.cqt_fmin_hz),
    )
    out = {
        "spectrogram": np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length)),
        "rms": librosa.feature.rms(y=y),
        "centroid": librosa.feature.spectral_centroid(y=y, sr=sr),
        "bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr),
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr),
        "flatness": librosa.feature.spectral_flatness(y=y),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=c.n_fft),
        "chroma_stft": librosa.feature.chroma_stft(y=y, sr=sr),
        "chroma_cqt": librosa.feature.chroma_cqt(y=y, sr=sr, **cqt_kw),
        "chroma_cens": librosa.feature.chroma_cens(y=y, sr=sr, **cqt_kw),
        "cqt": np.abs(
            librosa.cqt(
                y,
                sr=sr,
                fmin=c.cqt_fmin_hz,
                n_bins=c.cqt_octaves * c.cqt_bins_per_octave,
                bins_per_octave=c.cqt_bins_per_octave,
                tuning=None,
            )
        ),
        "log_mel": librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr), ref=np.max),
        "mfcc": librosa.feature.mfcc(y=y, sr=sr, n_mfcc=c.n_mfcc),
        "onset_envelope": librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median),
        "onsets": librosa.onset.onset_detect(y=y, sr=sr, units="time"),
        "tempogram": librosa.feature.tempogram(y=y, sr=sr),
        "tempo": librosa.feature.tempo(y=y, sr=sr),
        "beats": librosa.beat.beat_track(y=y, sr=sr, units="time"),
        "key": estimate_key(
            librosa.feature.chroma_cqt(y=y, sr=sr, norm=None, **cqt_kw).sum(axis=1)
        ),
        "hpss": librosa.effects.hpss(y),
    }
    chroma, mfcc = (
        librosa.feature.chroma_cqt(y=y, sr=sr, **cqt_kw),
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=c.n_mfcc),
    )
    times = librosa.times_like(mfcc, sr=sr)
    out["structure"] = compute_structure(
        chroma, mfcc, times, c.ssm_max_frames, c.novelty_kernel_seconds
    )
    if with_pitch:
        n = int(c.pitch_max_seconds * sr)
        out["pitch"] = librosa.pyin(y[:n], fmin=c.pitch_fmin_hz, fmax=c.pitch_fmax_hz, sr=sr)
    return out


def shared(y: np.ndarray, c: AnalysisConfig, with_pitch: bool = True) -> MusicAnalysis:
    analysis = MusicAnalysis(y, c)
    if with_pitch:
        analysis.compute_all()
    else:
        analysis.compute_all(skip=("pitch",))
    _ = analysis.cqt_magnitude, analysis.spectrogram_view(c.n_fft, c.hop_length, c.window, "linear")
    return analysis


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def bench_full_analysis(y: np.ndarray) -> MusicAnalysis:
    c = AnalysisConfig()
    librosa_independent(y[: 5 * SR], c)  # warm numba and FFT plans on both paths
    shared(y[: 5 * SR], c)
    # Wall time on a shared machine swings with the load; CPU time (all threads) is the work.
    cpu = time.process_time()
    t_ref, _ = timed(librosa_independent, y, c, False)
    cpu_ref = time.process_time() - cpu
    cpu = time.process_time()
    t_ours, analysis = timed(shared, y, c, False)
    cpu_ours = time.process_time() - cpu
    print(
        f"3-min track, without pYIN: librosa independent {t_ref:.1f} s wall / {cpu_ref:.1f} s CPU, "
        f"shared {t_ours:.1f} s wall / {cpu_ours:.1f} s CPU -> {t_ref / t_ours:.2f}x "
        f"faster by wall, {cpu_ref / cpu_ours:.2f}x by CPU (goal >= 1.5x)"
    )
    n = int(c.pitch_max_seconds * SR)
    cpu = time.process_time()
    t_pitch, _ = timed(librosa.pyin, y[:n], fmin=c.pitch_fmin_hz, fmax=c.pitch_fmax_hz, sr=SR)
    cpu_pitch = time.process_time() - cpu
    t_ref_all, t_ours_all = t_ref + t_pitch, t_ours + t_pitch
    print(
        f"3-min track, with pYIN over {c.pitch_max_seconds:g} s ({t_pitch:.1f} s wall on both "
        f"sides): {t_ref_all:.1f} s vs {t_ours_all:.1f} s -> {t_ref_all / t_ours_all:.2f}x "
        f"faster by wall, {(cpu_ref + cpu_pitch) / (cpu_ours + cpu_pitch):.2f}x by CPU"
    )
    return analysis


def bench_display_rerun(analysis: MusicAnalysis) -> None:
    """Time every figure builder on the cached 3-minute analysis, as a display change does."""
    c, x_range = analysis.config, (30.0, 60.0)
    _ = analysis.pitch, analysis.structure
    views = {
        "waveform": lambda: viz.waveform_figure(
            analysis.y, SR, analysis.rms, analysis.times, x_range
        ),
        **{
            f"spectrogram ({s})": lambda s=s: viz.spectrogram_figure(
                analysis.spectrogram_view(c.n_fft, c.hop_length, c.window, s), x_range, "Viridis"
            )
            for s in ("linear", "log", "mel", "cqt")
        },
        "chroma x3 + MFCC": lambda: (
            [
                viz.chroma_figure(m, analysis.times, "c", x_range)
                for m in (analysis.chroma_stft, analysis.chroma_cqt, analysis.chroma_cens)
            ]
            + [viz.mfcc_figure(analysis.mfcc, analysis.times, x_range)]
        ),
        "spectral features": lambda: viz.spectral_features_figure(
            analysis.spectrogram_view(c.n_fft, c.hop_length, c.window, "linear"),
            analysis.spectral_features(),
            analysis.times,
            x_range,
        ),
        "rhythm": lambda: [
            viz.onset_figure(
                analysis.times,
                analysis.onset_envelope,
                analysis.onset_times,
                analysis.beat_times,
                x_range,
            ),
            viz.tempogram_figure(
                analysis.tempogram,
                analysis.times,
                analysis.tempogram_bpm,
                analysis.tempo_bpm,
                x_range,
            ),
        ],
        "key": lambda: viz.key_correlation_figure(
            analysis.key.correlations, analysis.key.key_index
        ),
        "pitch": lambda: viz.pitch_figure(analysis.pitch, x_range),
        "structure": lambda: [
            viz.ssm_figure(analysis.structure),
            viz.novelty_figure(analysis.structure, x_range),
        ],
    }
    for name, build in views.items():
        build()
        walls, cpus = [], []
        for _ in range(3):
            cpu = time.process_time()
            walls.append(timed(lambda b=build: [f.to_json() for f in np.atleast_1d(b())])[0])
            cpus.append(time.process_time() - cpu)
        print(
            f"  redraw {name:26s} wall {min(walls) * 1000:5.0f} ms, CPU {min(cpus) * 1000:5.0f} ms"
        )


def bench_page_rerun() -> None:
    """The real page under AppTest on the longest shipped clip: rerun after a display change."""
    from tests.apptest_helpers import open_page
    from ui.audio_input import builtin_clips

    longest = max(paths.builtin_music_clips(), key=lambda p: load_audio(p).duration_seconds)
    label = next(lb for lb, p in builtin_clips().items() if p == longest)
    app = open_page("pages/music.py")
    app.selectbox(key="music_audio_builtin").set_value(label).run()
    app.segmented_control(key="music_view").set_value("Spectrogram").run()
    t_first, _ = timed(app.radio(key="music_scale").set_value("log").run)
    reruns = []
    for i, (scale, colors) in enumerate(
        [("mel", "Viridis"), ("cqt", "Magma"), ("linear", "Greys"), ("log", "Turbo")]
    ):
        reruns.append(timed(app.radio(key="music_scale").set_value(scale).run)[0])
        reruns.append(timed(app.selectbox(key="music_colors").set_value(colors).run)[0])
        reruns.append(
            timed(app.slider(key="music_zoom").set_value((float(i), float(i) + 20)).run)[0]
        )
    assert not app.exception, app.exception
    print(
        f"Page rerun on {longest.name[:40]} ({load_audio(longest).duration_seconds:.0f} s), "
        f"AppTest: median {np.median(reruns) * 1000:.0f} ms, "
        f"max {max(reruns) * 1000:.0f} ms over {len(reruns)} display changes (first "
        f"log-scale view, computed once: {t_first * 1000:.0f} ms; goal < 200 ms)"
    )


MEMORY_CHILD = """
import resource, sys, time, tracemalloc
import numpy as np
from tests.benchmarks.bench_analysis import looped_track
from core.music import KEY_NAMES, AnalysisConfig, MusicAnalysis, prepare_signal
seconds = float(sys.argv[1])
y0 = looped_track(seconds)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
y, notices = prepare_signal(y0, 22050, AnalysisConfig())
del y0
start = time.perf_counter()
a = MusicAnalysis(y); a.compute_all()
elapsed = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1]
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
minutes = a.duration_seconds / 60
print(f"{seconds / 60:.0f}-min track: analysed {minutes:.1f} min in {elapsed:.0f} s, "
      f"tracemalloc peak {peak / 2**20:.0f} MiB; process peak RSS {rss1 / 1024:.0f} MiB "
      f"(peak before the analysis, loading the clips: {rss0 / 1024:.0f} MiB)"
      + (f"; notice: {notices[0]}" if notices else ""))
"""


def bench_memory() -> None:
    for seconds in ("600", "720"):
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, seconds],
            capture_output=True,
            text=True,
            cwd=paths.REPO_ROOT,
        )
        print(done.stdout.strip() or done.stderr.strip()[-800:])


def known_clips() -> None:
    facts = {
        "trumpet": "F (major/Dorian), 90 BPM",
        "Hungarian": "F# minor",
        "Tchaikovsky": "E minor",
    }
    for path in paths.builtin_music_clips():
        fact = next((v for k, v in facts.items() if k in path.name), None)
        if fact is None:
            continue
        clip = load_audio(path, sample_rate=SR)
        y, _ = prepare_signal(clip.samples, clip.sample_rate, AnalysisConfig())
        analysis = MusicAnalysis(y)
        s, key = analysis.summary(), analysis.key
        print(
            f"  {path.name[:45]:45s} known: {fact:26s} app: "
            f"{s['key']} (confidence {s['key_confidence']:.2f}, "
            f"tuning {analysis.tuning * 100:+.0f} cents), {s['tempo_bpm']} BPM"
        )
        runner_up = np.argsort(np.mean(list(key.correlations.values()), axis=0))[::-1][1]
        print(f"  {'':45s} runner-up key: {KEY_NAMES[runner_up]} (margin {key.margin:.3f})")


def main() -> None:
    y = looped_track(180.0)
    analysis = bench_full_analysis(y)
    print("Redraw after a display change, 3-min track cached:")
    bench_display_rerun(analysis)
    bench_page_rerun()
    bench_memory()
    print("Shipped clips with known facts:")
    known_clips()


if __name__ == "__main__":
    main()
