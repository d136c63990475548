"""Music analysis accuracy on rendered Bach chorales with known key, tempo and beats.

The set is built by core/music/evalset.py (40 whole chorales, at most 90 s each, tempi
60-180 BPM, six timbres, straight / swing / rubato; rendered into the cache on first run,
about a minute).
For every piece, the page's analysis (`MusicAnalysis`) and plain librosa on the same file:

- key: exact accuracy and the MIREX weighted score (`mir_eval.key.weighted_score`: 1 exact,
  0.5 fifth, 0.3 relative, 0.2 parallel); plain librosa = mean `chroma_cqt` correlated with
  the Krumhansl-Kessler profiles; and the page's key for every profile family, with the
  opening / final bass cues and from the profile alone;
- tempo: Acc1 (within 4 % of the score's tempo) and Acc2 (within 4 % of 1/3, 1/2, 1, 2 or 3
  times it); plain librosa = `librosa.beat.beat_track(y=y, sr=sr)`;
- beats: F-measure (±70 ms) and continuity (CMLt, AMLt) from `mir_eval.beat`, the first 5 s
  of each piece ignored as mir_eval does.

Run: `python -m tests.benchmarks music_accuracy` (also part of `make bench`).
`python -m tests.benchmarks.bench_music_accuracy --dev` scores the development set instead
(other chorales, same recipe): the only set the estimators' choices were tuned on.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import librosa
import mir_eval
import numpy as np
import soundfile

from core.music import (
    KEY_NAMES,
    KRUMHANSL_MAJOR,
    KRUMHANSL_MINOR,
    PROFILE_CHOICES,
    AnalysisConfig,
    MusicAnalysis,
    estimate_key,
)
from core.music.evalset import DEV_FIRST_CHORALE, DEV_PIECES, build_evalset

SR = 22050


def tempo_accuracies(estimate: float, reference: float) -> tuple[bool, bool]:
    """(Acc1, Acc2): within 4 % of the reference; of the reference times 1/3, 1/2, 1, 2, 3."""
    acc1 = abs(estimate - reference) <= 0.04 * reference
    acc2 = any(abs(estimate - f * reference) <= 0.04 * f * reference for f in (1 / 3, 0.5, 1, 2, 3))
    return acc1, acc2


def beat_scores(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    ref = mir_eval.beat.trim_beats(np.asarray(reference, dtype=float))
    est = mir_eval.beat.trim_beats(np.asarray(estimate, dtype=float))
    _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
    return {"F": mir_eval.beat.f_measure(ref, est), "CMLt": cmlt, "AMLt": amlt}


def krumhansl_key(y: np.ndarray) -> str:
    """Plain librosa key: mean chroma_cqt correlated with the 24 Krumhansl-Kessler profiles."""
    profile = librosa.feature.chroma_cqt(y=y, sr=SR).mean(axis=1)
    templates = [np.roll(KRUMHANSL_MAJOR, k) for k in range(12)] + [
        np.roll(KRUMHANSL_MINOR, k) for k in range(12)
    ]
    return KEY_NAMES[int(np.argmax([np.corrcoef(profile, t)[0, 1] for t in templates]))]


def evaluate(pieces, directory) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {"app": [], "librosa": []}
    for piece in pieces:
        y, rate = soundfile.read(directory / piece.wav, dtype="float32")
        assert rate == SR
        ref_beats = np.array(piece.beat_times)
        start = time.perf_counter()
        analysis = MusicAnalysis(y, AnalysisConfig())
        app = {
            "key": analysis.key.name,
            "tempo": analysis.tempo_bpm,
            "beats": analysis.beat_times,
        }
        app_seconds = time.perf_counter() - start
        # Every profile family, with the bass cues and from the profile alone (the same chroma).
        profile = analysis.key_chroma.sum(axis=1)
        by_family = {
            family: (analysis.key_for(family).name, estimate_key(profile, family).name)
            for family in PROFILE_CHOICES
        }
        start = time.perf_counter()
        tempo, beats = librosa.beat.beat_track(y=y, sr=SR, units="time")
        plain = {"key": krumhansl_key(y), "tempo": float(np.atleast_1d(tempo)[0]), "beats": beats}
        plain_seconds = time.perf_counter() - start
        for name, found, seconds in (("app", app, app_seconds), ("librosa", plain, plain_seconds)):
            acc1, acc2 = tempo_accuracies(found["tempo"], piece.tempo_bpm)
            rows[name].append(
                {
                    "piece": piece,
                    "key": found["key"],
                    "key_exact": found["key"] == piece.key,
                    "key_weighted": mir_eval.key.weighted_score(piece.key, found["key"]),
                    "tempo": found["tempo"],
                    "acc1": acc1,
                    "acc2": acc2,
                    **beat_scores(ref_beats, found["beats"]),
                    "seconds": seconds,
                    "by_family": by_family if name == "app" else {},
                }
            )
    return rows


def main(dev: bool = False) -> None:
    start = time.perf_counter()
    directory, pieces = (
        build_evalset(n_pieces=DEV_PIECES, first_chorale=DEV_FIRST_CHORALE)
        if dev
        else build_evalset()
    )
    print(
        f"Evaluation set: {len(pieces)} rendered chorales in {directory} "
        f"({time.perf_counter() - start:.0f} s to build or load)"
    )
    rows = evaluate(pieces, directory)
    metrics = ("key_exact", "key_weighted", "acc1", "acc2", "F", "CMLt", "AMLt")
    print(f"\n{'':10s}" + "".join(f"{m:>13s}" for m in metrics) + f"{'s/piece':>10s}")
    for name, found in rows.items():
        means = [np.mean([r[m] for r in found]) for m in metrics]
        print(
            f"{name:10s}"
            + "".join(f"{v:13.3f}" for v in means)
            + f"{np.mean([r['seconds'] for r in found]):10.2f}"
        )
    print("\nKey exact by profile family (app): with the opening / final bass, profile alone")
    for family in PROFILE_CHOICES:
        cued, alone = (
            np.mean([r["by_family"][family][i] == r["piece"].key for r in rows["app"]])
            for i in (0, 1)
        )
        print(f"  {family:22s} {cued:.3f}   {alone:.3f}")
    for group in ("timbre", "feel"):
        print(f"\nBy {group} (app / librosa): key exact, tempo Acc1, beat F")
        split = defaultdict(list)
        for app, plain in zip(rows["app"], rows["librosa"], strict=True):
            split[getattr(app["piece"], group)].append((app, plain))
        for value, pairs in sorted(split.items()):
            cells = [
                f"{np.mean([a[m] for a, _ in pairs]):.2f} / {np.mean([p[m] for _, p in pairs]):.2f}"
                for m in ("key_exact", "acc1", "F")
            ]
            print(f"  {value:12s} n={len(pairs):2d}  " + "   ".join(cells))
    print("\nMisses of the app (piece: reference -> found):")
    for app in rows["app"]:
        piece = app["piece"]
        if not app["key_exact"]:
            print(f"  key   {piece.name}: {piece.key} -> {app['key']}")
        if not app["acc1"]:
            print(f"  tempo {piece.name}: {piece.tempo_bpm:.1f} -> {app['tempo']:.1f} BPM")
        if app["F"] < 0.8:
            print(f"  beats {piece.name}: F = {app['F']:.2f}")


if __name__ == "__main__":
    main(dev="--dev" in sys.argv)
