"""Note transcription: synthesized melodies with known notes come back as those notes; the
rules (voicing, stable pitch, minimum length) on hand-made tracks; MIDI and playback."""

from __future__ import annotations

import io

import librosa
import mido
import numpy as np
import pytest

from core.audio.synth import SynthConfig, render_notes
from core.music.pitch_networks import CREPE_TINY, PESTO, PYIN, PitchTrack, run_tracker
from core.music.transcription import (
    Note,
    TranscriptionConfig,
    notes_to_midi,
    render_transcription,
    transcribe,
)

SR = 22050
STEP = 0.25  # seconds per synth step
# (MIDI pitch, start step, steps): a leap, a repeated G (no pitch change to cut at), a rest.
MELODY = [(60, 0, 2), (64, 2, 1), (67, 3, 1), (67, 4, 2), (65, 7, 2), (62, 9, 1), (57, 10, 3)]


def _track(midi: np.ndarray, hop: float = 0.01, confidence: float = 0.9) -> PitchTrack:
    """A hand-made track: MIDI per frame, NaN = unvoiced."""
    voiced = np.isfinite(midi)
    f0 = np.where(voiced, 440.0 * 2 ** ((midi - 69) / 12), np.nan)
    return PitchTrack(
        tracker="test",
        times=np.arange(midi.size) * hop,
        f0_hz=f0,
        confidence=np.where(voiced, confidence, 0.0),
        voiced=voiced,
        voicing_threshold=0.5,
        audio_seconds=midi.size * hop,
        elapsed_seconds=1.0,
        device="cpu",
    )


@pytest.fixture(scope="module")
def melody() -> np.ndarray:
    return render_notes(MELODY, SynthConfig(sample_rate=SR, step_seconds=STEP))


@pytest.mark.parametrize("tracker", [PYIN, CREPE_TINY, PESTO])
def test_a_synthesized_melody_comes_back_as_its_notes(melody, tracker):
    onsets = librosa.onset.onset_detect(y=melody, sr=SR, units="time")
    notes = transcribe(run_tracker(melody, SR, tracker), onset_seconds=onsets)
    assert [n.pitch for n in notes] == [p for p, _, _ in MELODY]
    for note, (_, start, steps) in zip(notes, MELODY, strict=True):
        assert abs(note.start_seconds - start * STEP) <= 0.05, (note, start * STEP)
        assert abs(note.end_seconds - (start + steps) * STEP) <= 0.1, note


def test_without_onsets_a_repeated_note_is_one_long_note(melody):
    notes = transcribe(run_tracker(melody, SR, CREPE_TINY))
    assert [n.pitch for n in notes] == [60, 64, 67, 65, 62, 57]
    assert notes[2].duration_seconds == pytest.approx(3 * STEP, abs=0.1)


def test_vibrato_stays_one_note_and_a_glide_is_dropped():
    t = np.arange(100) * 0.01
    vibrato = 69 + 0.3 * np.sin(2 * np.pi * 5.5 * t)  # ±30 cents at 5.5 Hz
    glide = np.linspace(69, 76, 15)  # 150 ms up a fifth: 2 frames per semitone
    midi = np.concatenate([vibrato, glide, np.full(60, 76.0)])
    notes = transcribe(_track(midi))
    assert [n.pitch for n in notes] == [69, 76]
    assert notes[0].start_seconds == 0.0
    # The glide is within half a semitone of E5 from its 14th frame (1.13 s).
    assert notes[1].start_seconds == pytest.approx(1.13, abs=0.02)


def test_minimum_length_and_gaps():
    midi = np.concatenate([np.full(5, 60.0), [np.nan] * 10, np.full(20, 62.0)])
    assert [n.pitch for n in transcribe(_track(midi))] == [62]  # 50 ms is shorter than 80 ms
    assert [
        n.pitch for n in transcribe(_track(midi), TranscriptionConfig(min_note_seconds=0.04))
    ] == [60, 62]
    dropout = np.concatenate([np.full(20, 64.0), [np.nan], np.full(20, 64.0)])
    assert len(transcribe(_track(dropout))) == 1  # a 10 ms dropout is bridged
    rest = np.concatenate([np.full(20, 64.0), [np.nan] * 5, np.full(20, 64.0)])
    assert len(transcribe(_track(rest))) == 2  # a 50 ms rest is not


def test_an_octave_glitch_does_not_cut_a_note():
    midi = np.full(40, 57.0)
    midi[20] = 69.0  # one frame an octave up, the typical tracker error
    assert [n.pitch for n in transcribe(_track(midi))] == [57]


def test_nothing_voiced_gives_no_notes():
    assert transcribe(_track(np.full(50, np.nan))) == []
    assert transcribe(_track(np.array([60.0]))) == []


def test_note_names():
    assert Note(60, 0, 1, 1).name == "C4" and Note(69, 0, 1, 1).name == "A4"
    assert Note(58, 0, 1, 1).name == "A#3"


def test_midi_file_holds_the_notes_at_their_times():
    notes = [Note(60, 0.0, 0.5, 0.9), Note(64, 0.5, 0.75, 0.8), Note(67, 1.25, 2.0, 0.5)]
    data = notes_to_midi(notes, tempo_bpm=100)
    midi_file = mido.MidiFile(file=io.BytesIO(data))
    now, found, starts = 0.0, [], {}
    for message in midi_file:  # iterating a MidiFile gives times in seconds
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            starts[message.note] = now
        elif message.type in ("note_off", "note_on"):
            found.append((message.note, starts.pop(message.note), now))
    assert [f[0] for f in found] == [60, 64, 67]
    for (_, start, end), note in zip(found, notes, strict=True):
        assert start == pytest.approx(note.start_seconds, abs=0.002)
        assert end == pytest.approx(note.end_seconds, abs=0.002)


def test_playback_sounds_the_transcribed_pitch_for_the_whole_clip():
    audio = render_transcription([Note(69, 0.5, 1.5, 0.9)], SR, total_seconds=2.0)
    assert audio.dtype == np.float32 and audio.size == 2 * SR
    assert np.abs(audio[: int(0.45 * SR)]).max() == 0.0  # silent before the onset
    body = audio[int(0.6 * SR) : int(1.4 * SR)]
    spectrum = np.abs(np.fft.rfft(body * np.hanning(body.size)))
    assert np.fft.rfftfreq(body.size, 1 / SR)[spectrum.argmax()] == pytest.approx(440.0, abs=2.0)
    assert render_transcription([], SR, total_seconds=1.0).size == SR


def test_piano_roll_draws_one_bar_per_note_at_its_time_and_pitch():
    from core.viz.pitch import piano_roll_figure, pitch_probability_figure

    midi = np.concatenate([np.full(30, 60.0), [np.nan] * 10, np.full(30, 67.0)])
    track = _track(midi)
    notes = transcribe(track)
    bars = piano_roll_figure(notes, track).data[0]
    assert list(bars.y) == [60, 67] and list(bars.text) == ["C4", "G4"]
    assert list(bars.base) == pytest.approx([0.0, 0.4])
    assert list(bars.x) == pytest.approx([0.3, 0.3])
    with pytest.raises(ValueError, match="not a network"):
        pitch_probability_figure(track)  # a hand-made (or pYIN) track has no network output
