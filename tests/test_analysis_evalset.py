"""The music evaluation set: its answers come from the score and its audio matches them."""

from __future__ import annotations

import shutil

import librosa
import numpy as np
import pytest
import soundfile

from core.music.evalset import (
    FEELS,
    SOUNDFONT,
    TIMBRES,
    build_evalset,
    chorale_notes,
    feel_index,
    render_piece,
    time_map,
)

pytest.importorskip("music21")


def test_time_map_straight_swing_and_rubato():
    quarters = np.arange(0, 8.5, 0.5)
    straight = time_map(quarters, 120, "straight")
    assert np.allclose(straight, quarters * 0.5)
    swing = time_map(quarters, 120, "swing")
    assert np.allclose(swing[::2], straight[::2])  # beats stay put
    assert np.allclose(swing[1::2] - swing[::2][:-1], 0.5 * 2 / 3)  # off-beats two thirds in
    rubato = time_map(np.arange(33.0), 120, "rubato")
    intervals = np.diff(rubato)
    assert np.all(intervals > 0)
    # ±8 % tempo: intervals between 0.5 / 1.08 and 0.5 / 0.92 s, and they really vary.
    assert intervals.min() > 0.5 / 1.081 and intervals.max() < 0.5 / 0.919
    assert intervals.max() / intervals.min() > 1.12


def test_chorale_key_comes_from_the_score():
    notes, key = chorale_notes("bach/bwv66.6", max_quarters=8)
    assert key == "F# minor"
    assert {n.voice for n in notes} == {0, 1, 2, 3}
    assert max(n.quarter_onset for n in notes) < 8


def test_rendered_piece_has_onsets_on_the_score_beats(tmp_path):
    piece = render_piece("bach/bwv66.6", 100, 4, "straight", tmp_path, max_seconds=10)
    y, sr = soundfile.read(tmp_path / piece.wav, dtype="float32")
    assert sr == 22050 and piece.tempo_bpm == pytest.approx(100)
    assert np.allclose(np.diff(piece.beat_times), 0.6, atol=1e-3)
    onsets = librosa.onset.onset_detect(y=y, sr=sr, units="time")
    # Every detected onset is near a score eighth-note position (chorales move in quarters
    # and eighths), so the audio and the reference times agree.
    grid = np.arange(0, 12, 0.3)
    assert np.max(np.min(np.abs(onsets[:, None] - grid[None, :]), axis=1)) < 0.07


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not SOUNDFONT.exists(),
    reason="needs Debian's fluidsynth and fluid-soundfont-gm (.ci/run installs them)",
)
def test_fluidsynth_rendering_and_manifest_reuse(tmp_path):
    directory, pieces = build_evalset(n_pieces=2, max_seconds=6.0, directory=tmp_path)
    assert sorted(p.key.split()[1] for p in pieces) == ["major", "minor"]
    y, sr = soundfile.read(directory / pieces[0].wav, dtype="float32")
    assert sr == 22050 and 5.0 < y.size / sr < 8.5 and np.abs(y).max() > 0.5
    _, again = build_evalset(n_pieces=2, max_seconds=6.0, directory=tmp_path)
    assert again == pieces  # read back from the manifest, not re-rendered


def test_every_timbre_gets_every_feel():
    rounds = len(TIMBRES) * len(FEELS)
    pairs = {(i % len(TIMBRES), FEELS[feel_index(i)]) for i in range(rounds)}
    assert pairs == {(t, f) for t in range(len(TIMBRES)) for f in set(FEELS)}
