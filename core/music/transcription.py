"""Note transcription: a pitch track cut into notes, played back and written as MIDI.

Written here rather than taken from a library because the page teaches the three rules that
turn a wobbly pitch line into notes:

1. **voicing**: only frames the tracker calls voiced can belong to a note;
2. **stable pitch**: the line is smoothed (a running median over `smoothing_seconds`, which
   ignores a stray octave jump) and rounded to the nearest semitone; a note is a run of frames
   on one semitone, so vibrato of a few tens of cents stays one note while a glide passes
   through short runs that are dropped;
3. **minimum length**: runs shorter than `min_note_seconds` are not notes.

A repeated note has no pitch change to cut at: given the clip's onsets (for example
`MusicAnalysis.onset_times`), a run is also cut at each onset inside it.

A note's pitch is the semitone nearest the median of its frames; its onset is its first frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from core.audio.synth import SynthConfig, render_notes
from core.music.pitch_networks import PitchTrack


@dataclass(frozen=True)
class TranscriptionConfig:
    """The rules that cut a pitch track into notes (see the module docstring)."""

    min_note_seconds: float = 0.08  # shorter runs on one semitone are glides or glitches
    smoothing_seconds: float = 0.05  # running-median length over the pitch line
    max_gap_seconds: float = 0.02  # an unvoiced gap this short inside one pitch is bridged
    # An onset this close to a note's start or end is the same attack seen a little late (or
    # the release), not a repeated note.
    onset_margin_seconds: float = 0.1


@dataclass(frozen=True)
class Note:
    """One transcribed note: MIDI pitch (60 = C4), onset and end in seconds, mean confidence."""

    pitch: int
    start_seconds: float
    end_seconds: float
    confidence: float

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    @property
    def name(self) -> str:
        names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
        return f"{names[self.pitch % 12]}{self.pitch // 12 - 1}"


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first index, end index) of each run of equal values in an int array."""
    if values.size == 0:
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [values.size]))
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def transcribe(
    track: PitchTrack,
    config: TranscriptionConfig = TranscriptionConfig(),
    *,
    onset_seconds: np.ndarray | None = None,
) -> list[Note]:
    """Cut a pitch track into notes, in time order.

    track: any tracker's PitchTrack (frames every hop; f0 NaN where unvoiced).
    onset_seconds: optional onset times (s); a note is also cut at an onset inside it when
    both parts last at least onset_margin_seconds and min_note_seconds (repeated notes).
    Returns [Note], empty when nothing is voiced for min_note_seconds.
    """
    if track.times.size < 2:
        return []
    hop = float(track.times[1] - track.times[0])
    midi = track.midi()
    voiced = track.voiced & np.isfinite(midi)
    if not voiced.any():
        return []
    # Smooth over voiced frames only: fill gaps with the nearest voiced pitch first, so the
    # median never mixes a note with the silence around it, then blank the gaps again.
    index = np.arange(midi.size)
    filled = np.interp(index, index[voiced], midi[voiced])
    width = max(1, int(round(config.smoothing_seconds / hop)) | 1)
    smooth = median_filter(filled, size=width, mode="nearest")
    semitone = np.where(voiced, np.round(smooth), -1).astype(int)
    # Bridge short unvoiced gaps between frames of the same semitone (a tracker's dropout).
    max_gap = int(round(config.max_gap_seconds / hop))
    runs = _runs(semitone)
    for i in range(1, len(runs) - 1):
        value, start, end = runs[i]
        if value == -1 and end - start <= max_gap and runs[i - 1][0] == runs[i + 1][0] != -1:
            semitone[start:end] = runs[i - 1][0]
    min_frames = max(1, int(round(config.min_note_seconds / hop)))
    onset_frames = (
        np.array([], dtype=int)
        if onset_seconds is None
        else np.searchsorted(track.times, np.asarray(onset_seconds, dtype=float))
    )
    margin = max(min_frames, int(round(config.onset_margin_seconds / hop)))
    pieces = []
    for value, start, end in _runs(semitone):
        if value < 0 or end - start < min_frames:
            continue
        cut = start
        for onset in onset_frames[(onset_frames > start) & (onset_frames < end)]:
            if onset - cut >= margin and end - onset >= margin:
                pieces.append((cut, int(onset)))
                cut = int(onset)
        pieces.append((cut, end))
    notes = []
    for start, end in pieces:
        inside = voiced[start:end]
        pitch = int(np.round(np.median(midi[start:end][inside])))
        notes.append(
            Note(
                pitch=pitch,
                start_seconds=float(track.times[start]),
                end_seconds=float(track.times[end - 1] + hop),
                confidence=float(np.mean(track.confidence[start:end])),
            )
        )
    return notes


def render_transcription(
    notes: list[Note], sample_rate: int, *, total_seconds: float | None = None
) -> np.ndarray:
    """The notes played by the app's additive synth (core.audio.synth), float32, shape (samples,).

    Timing is kept to 10 ms (the synth's step); total_seconds pads the result to a length.
    """
    step = 0.01
    config = SynthConfig(sample_rate=sample_rate, step_seconds=step)
    steps = [
        (n.pitch, int(round(n.start_seconds / step)), max(1, int(round(n.duration_seconds / step))))
        for n in notes
    ]
    audio = render_notes(steps, config) if steps else np.zeros(1, dtype=np.float32)
    if total_seconds is not None:
        n = int(round(total_seconds * sample_rate))
        audio = np.pad(audio, (0, max(0, n - audio.size)))[:n]
    return audio.astype(np.float32)


def notes_to_midi(notes: list[Note], *, tempo_bpm: float = 120.0, program: int = 0) -> bytes:
    """A standard MIDI file (type 0, one track) of the notes; program is the GM instrument.

    Times are converted to ticks at tempo_bpm (480 ticks per beat), so a DAW shows the notes
    where they were heard.
    """
    # Lazy: mido is needed only for the MIDI download.
    import mido

    ticks_per_beat = 480
    midi_file = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    midi_file.tracks.append(track)
    tempo = mido.bpm2tempo(tempo_bpm)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    events = []
    for note in notes:
        velocity = int(np.clip(40 + 80 * note.confidence, 1, 127))
        events.append((note.start_seconds, 1, note.pitch, velocity))
        events.append((note.end_seconds, 0, note.pitch, 0))
    events.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons at the same time
    now = 0
    for seconds, is_on, pitch, velocity in events:
        tick = int(round(mido.second2tick(seconds, ticks_per_beat, tempo)))
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity, time=max(0, tick - now)))
        now = max(now, tick)
    track.append(mido.MetaMessage("end_of_track", time=0))
    buffer = io.BytesIO()
    midi_file.save(file=buffer)
    return buffer.getvalue()
