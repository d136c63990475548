"""An evaluation set with known answers: Bach chorales rendered at chosen tempi and timbres.

Why a set of our own: the shipped clips in data/music are three pieces whose tempo and key we
can only look up, and tuning to them would flatter the page. Here every answer comes from the
score, so it is exact:

- key: the chorale's key from its MusicXML file (music21's bundled corpus), kept only when
  the last bass note is that key's tonic (so modal or oddly notated chorales drop out);
- beats: every quarter note of the score, mapped to seconds by the rendering's time map
  (straight, swung eighths, or rubato: a tempo that breathes ±8 % over four bars);
- tempo: 60 / the median inter-beat interval, in quarter notes per minute.

Timbres: General MIDI instruments through Debian's `fluidsynth` and the FluidR3 soundfont
(`fluid-soundfont-gm`): piano, string ensemble, church organ, piano with a drum kit, choir
("aahs"), and the app's own additive synth (core/audio/synth.py). Nothing is stored in the
repository: the set is rendered into the cache directory on first use (a minute or two of
CPU) and reused afterwards.
Whole chorales (up to 90 s): the key is checked against the last bass note, so the ending
must be heard; a 30 s excerpt often stops in a modulation or before a modal cadence.

    python -m core.music.evalset            # build (or reuse) and list the set
    python -m core.music.evalset --dev      # the development set (other chorales)

music21, mido and fluidsynth are needed only here (benchmarks), not by the app.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from core import paths
from core.audio.synth import SynthConfig, adsr_envelope, midi_to_hz
from core.files import write_json_atomic
from core.music.keys import PITCH_CLASSES

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 22050  # Hz, the analysis rate: rendering there avoids a resample per run
EVALSET_VERSION = 2  # bump when the recipe changes, so a stale cache is rebuilt
# (name, General MIDI program or None for the app's synth, drums?)
TIMBRES = (
    ("piano", 0, False),
    ("strings", 48, False),
    ("organ", 19, False),
    ("piano+drums", 0, True),
    ("app synth", None, False),
    ("choir", 52, False),  # the chorales' own medium: slow attacks, vowel formants
)
FEELS = ("straight", "straight", "swing", "rubato")  # cycled: half straight
TEMPI_BPM = (60, 66, 72, 80, 88, 96, 104, 112, 120, 132, 144, 160, 180)
DEV_FIRST_CHORALE = 200  # the tuning set starts here; the benchmark's 40 end near chorale 100
DEV_PIECES = 80  # the development set is twice the benchmark's: tuning on 40 fits noise


@dataclass(frozen=True)
class EvalPiece:
    """One rendered piece and its known answers (times in seconds, tempo in BPM)."""

    name: str  # e.g. "bwv66.6 strings 72 BPM swing"
    source: str  # music21 corpus path, e.g. "bach/bwv66.6"
    key: str  # mir_eval format: "F# minor"
    tempo_bpm: float  # quarter notes per minute: 60 / median inter-beat interval
    beat_times: tuple[float, ...] = field(repr=False)  # every quarter note of the score
    timbre: str = "piano"
    feel: str = "straight"  # straight | swing | rubato
    wav: str = ""  # file name inside the set's directory


@dataclass(frozen=True)
class ScoreNote:
    quarter_onset: float  # quarter notes from the start of the score
    quarter_length: float
    midi: int
    voice: int  # 0 = soprano ... 3 = bass


def time_map(quarters: np.ndarray, bpm: float, feel: str) -> np.ndarray:
    """Seconds at each score position (quarter notes) for a rendering feel.

    straight: q * 60 / bpm. swing: the off-beat eighth moves from 1/2 to 2/3 of the beat,
    beats stay put. rubato: the local tempo is bpm * (1 + 0.08 sin(2 pi q / 16)), integrated.
    """
    q = np.asarray(quarters, dtype=np.float64)
    beat = 60.0 / bpm
    if feel == "straight":
        return q * beat
    if feel == "swing":
        whole = np.floor(q)
        frac = q - whole
        swung = np.where(frac < 0.5, frac * 4 / 3, 2 / 3 + (frac - 0.5) * 2 / 3)
        return (whole + swung) * beat
    if feel == "rubato":
        grid = np.linspace(0.0, max(float(q.max(initial=0.0)), 1.0) + 1.0, 4096)
        seconds_per_quarter = beat / (1 + 0.08 * np.sin(2 * np.pi * grid / 16))
        elapsed = np.concatenate(
            [
                [0.0],
                np.cumsum(
                    np.diff(grid) * 0.5 * (seconds_per_quarter[1:] + seconds_per_quarter[:-1])
                ),
            ]
        )
        return np.interp(q, grid, elapsed)
    raise ValueError(f"unknown feel {feel!r}")


def chorale_notes(source: str, max_quarters: float) -> tuple[list[ScoreNote], str] | None:
    """The notes of a four-part chorale up to max_quarters, and its key; None if unsuitable.

    Unsuitable: not four parts, not in 4/4 or 3/4, no key in the file, or a last bass note
    that is not the key's tonic.
    """
    from music21 import corpus, key, meter  # only the benchmark needs music21

    score = corpus.parse(source).stripTies()
    parts = list(score.parts)
    if len(parts) != 4:
        return None
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)}
    if not signatures or not signatures <= {"4/4", "3/4"}:
        return None
    keys = list(score.recurse().getElementsByClass(key.Key))
    if not keys:
        return None
    tonic, mode = keys[0].tonic.pitchClass, keys[0].mode
    if mode not in ("major", "minor"):
        return None
    notes = []
    for voice, part in enumerate(parts):
        for n in part.flatten().notes:
            onset = float(n.offset)
            if onset >= max_quarters:
                break
            length = min(float(n.quarterLength), max_quarters - onset)
            for pitch in n.pitches:
                notes.append(ScoreNote(onset, length, int(pitch.midi), voice))
    bass = [n for n in parts[3].flatten().notes]
    if not bass or bass[-1].pitches[0].pitchClass != tonic or not notes:
        return None
    return notes, f"{PITCH_CLASSES[tonic]} {mode}"


def write_midi(
    notes: list[ScoreNote],
    seconds_of: np.ndarray,
    program: int,
    drum_hits: list[tuple[float, int, int]],
    path: Path,
) -> None:
    """A MIDI file whose ticks are absolute time (1 tick = 1/960 s at 120 BPM).

    seconds_of: shape (notes, 2), each note's start and end in seconds. drum_hits:
    (seconds, GM drum note, velocity) on channel 10.
    """
    # Lazy: only the benchmark's MIDI rendering needs mido.
    import mido

    ticks_per_second = 960
    events = []  # (tick, order, message): note-offs sort before note-ons at the same tick
    for n, (start, end) in zip(notes, seconds_of, strict=True):
        velocity = 84 if n.voice == 0 else 70
        channel = n.voice
        events.append(
            (
                int(start * ticks_per_second),
                1,
                mido.Message("note_on", note=n.midi, velocity=velocity, channel=channel),
            )
        )
        events.append(
            (
                int(end * ticks_per_second) - 1,
                0,
                mido.Message("note_off", note=n.midi, velocity=0, channel=channel),
            )
        )
    last = float(seconds_of[:, 1].max())
    for tick, drum, velocity in drum_hits:
        if tick < last:
            events.append(
                (
                    int(tick * ticks_per_second),
                    1,
                    mido.Message("note_on", note=drum, velocity=velocity, channel=9),
                )
            )
            events.append(
                (
                    int(tick * ticks_per_second) + 60,
                    0,
                    mido.Message("note_off", note=drum, velocity=0, channel=9),
                )
            )
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)])
    track += [mido.Message("program_change", program=program, channel=c) for c in range(4)]
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=max(0, tick - now)))
        now = max(now, tick)
    midi = mido.MidiFile(ticks_per_beat=480)  # 480 ticks per 0.5 s beat = 960 per second
    midi.tracks.append(track)
    midi.save(path)


def drum_pattern(
    beat_seconds: np.ndarray, eighth_seconds: np.ndarray
) -> list[tuple[float, int, int]]:
    """Kick on odd beats, snare on even ones, closed hi-hat on every eighth.

    Returns (seconds, MIDI note, velocity) per hit.
    """
    hits = [(float(t), 36 if i % 2 == 0 else 38, 90) for i, t in enumerate(beat_seconds)]
    return hits + [(float(t), 42, 55) for t in eighth_seconds]


def render_fluidsynth(midi_path: Path, wav_path: Path) -> np.ndarray:
    """Render a MIDI file with fluidsynth and the GM soundfont; mono float32 at SAMPLE_RATE."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise RuntimeError(
            "The evaluation set needs Debian's fluidsynth and fluid-soundfont-gm: "
            "apt-get install fluidsynth fluid-soundfont-gm"
        )
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-g",
            "0.6",
            "-r",
            str(SAMPLE_RATE),
            "-F",
            str(wav_path),
            str(SOUNDFONT),
            str(midi_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    audio, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE, rate
    return audio.mean(axis=1)


def render_additive(notes: list[ScoreNote], seconds_of: np.ndarray) -> np.ndarray:
    """The app's own synth (core/audio/synth.py's partials and ADSR) at arbitrary note times."""
    config = SynthConfig(sample_rate=SAMPLE_RATE)
    end = float(seconds_of[:, 1].max()) + 0.5
    out = np.zeros(int(end * SAMPLE_RATE), dtype=np.float64)
    for n, (start, stop) in zip(notes, seconds_of, strict=True):
        first = int(start * SAMPLE_RATE)
        length = max(int((stop - start) * SAMPLE_RATE), 1)
        t = np.arange(length) / SAMPLE_RATE
        f0 = midi_to_hz(n.midi)
        tone = sum(
            a * np.sin(2 * np.pi * k * f0 * t)
            for k, a in enumerate(config.harmonics, start=1)
            if k * f0 < SAMPLE_RATE / 2
        )
        out[first : first + length] += (
            (0.8 if n.voice == 0 else 0.6) * tone * adsr_envelope(length, config)
        )
    return out.astype(np.float32)


def render_piece(
    source: str, bpm: float, timbre_index: int, feel: str, directory: Path, max_seconds: float
) -> EvalPiece | None:
    """Render one chorale and return its known answers; None when the chorale is unsuitable."""
    found = chorale_notes(source, max_quarters=np.floor(max_seconds * bpm / 60))
    if found is None:
        return None
    notes, key_name = found
    timbre, program, drums = TIMBRES[timbre_index]
    quarters = np.array([[n.quarter_onset, n.quarter_onset + n.quarter_length] for n in notes])
    seconds_of = time_map(quarters, bpm, feel)
    # Legato but re-articulated: a repeated note would otherwise merge into one long note.
    seconds_of[:, 1] = np.maximum(seconds_of[:, 0] + 0.05, seconds_of[:, 1] - 0.02)
    last_quarter = int(np.ceil(quarters[:, 1].max()))
    beats = time_map(np.arange(last_quarter), bpm, feel)
    stem = f"{source.split('/')[-1]}_{timbre.replace(' ', '').replace('+', '-')}_{int(bpm)}_{feel}"
    wav_path = directory / f"{stem}.wav"
    if program is None:
        audio = render_additive(notes, seconds_of)
    else:
        eighths = time_map(np.arange(last_quarter) + 0.5, bpm, feel)
        hits = drum_pattern(beats, eighths) if drums else []
        with tempfile.TemporaryDirectory() as tmp:
            midi_path = Path(tmp) / "piece.mid"
            write_midi(notes, seconds_of, program, hits, midi_path)
            audio = render_fluidsynth(midi_path, Path(tmp) / "raw.wav")
    audio = audio[: int((float(seconds_of[:, 1].max()) + 1.0) * SAMPLE_RATE)]
    peak = float(np.abs(audio).max())
    audio = (audio * (0.8 / peak if peak > 0 else 1.0)).astype(np.float32)

    soundfile.write(wav_path, audio, SAMPLE_RATE, subtype="PCM_16")
    tempo = 60.0 / float(np.median(np.diff(beats)))
    return EvalPiece(
        name=f"{source.split('/')[-1]} {timbre} {int(bpm)} BPM {feel}",
        source=source,
        key=key_name,
        tempo_bpm=round(tempo, 3),
        beat_times=tuple(round(float(b), 4) for b in beats),
        timbre=timbre,
        feel=feel,
        wav=wav_path.name,
    )


def feel_index(i: int) -> int:
    """Piece i's index into FEELS: shifted every round of timbres, so each timbre gets every feel.

    (i mod 4 with 6 timbres would tie feel to the timbre's parity: no rubato piano.)
    """
    return (i + i // len(TIMBRES)) % len(FEELS)


def build_evalset(
    n_pieces: int = 40,
    max_seconds: float = 90.0,
    directory: Path | None = None,
    first_chorale: int = 0,
) -> tuple[Path, list[EvalPiece]]:
    """Render (or reuse) the set: n_pieces chorales, half major and half minor.

    Chorales are taken in corpus order from position first_chorale (the benchmark's set
    starts at 0; the development set that estimators were tuned on starts at DEV_FIRST_CHORALE,
    so the two share no chorale); piece i gets tempo TEMPI_BPM[(5 i) mod 13] (so tempo
    is not tied to timbre or mode), timbre i mod 6 and feel `feel_index(i)`. Returns (directory,
    pieces). The manifest (manifest.json) records the recipe; a different recipe rebuilds.
    """
    # Lazy: only the benchmark needs music21 (slow to import).
    from music21 import corpus

    name = "music_evalset" if first_chorale == 0 else f"music_evalset_from_{first_chorale}"
    directory = directory or paths.cache_dir() / name
    recipe = {
        "version": EVALSET_VERSION,
        "n_pieces": n_pieces,
        "max_seconds": max_seconds,
        "first_chorale": first_chorale,
    }
    manifest = directory / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("recipe") == recipe and all(
            (directory / p["wav"]).exists() for p in saved["pieces"]
        ):
            return directory, [
                EvalPiece(**{**p, "beat_times": tuple(p["beat_times"])}) for p in saved["pieces"]
            ]
    directory.mkdir(parents=True, exist_ok=True)
    pieces: list[EvalPiece] = []
    wanted = {"major": n_pieces // 2, "minor": n_pieces - n_pieces // 2}
    sources = sorted(str(p) for p in corpus.getComposer("bach") if p.suffix == ".mxl")
    for path in sources[first_chorale:]:
        if len(pieces) == n_pieces:
            break
        source = "bach/" + Path(path).stem
        i = len(pieces)
        bpm = TEMPI_BPM[(5 * i) % len(TEMPI_BPM)]
        try:
            found = chorale_notes(source, max_quarters=4)
        except Exception:  # a corpus file music21 cannot read is simply not part of the set
            continue
        if found is None or wanted[found[1].split()[1]] == 0:
            continue
        piece = render_piece(
            source, bpm, i % len(TIMBRES), FEELS[feel_index(i)], directory, max_seconds
        )
        if piece is not None:
            wanted[piece.key.split()[1]] -= 1
            pieces.append(piece)
    # Atomic, and written last: a set cut short by a kill has no manifest and is made again.
    write_json_atomic(manifest, {"recipe": recipe, "pieces": [asdict(p) for p in pieces]})
    return directory, pieces


if __name__ == "__main__":
    import sys

    dev = "--dev" in sys.argv
    where, built = (
        build_evalset(n_pieces=DEV_PIECES, first_chorale=DEV_FIRST_CHORALE)
        if dev
        else build_evalset()
    )
    for p in built:
        print(f"{p.name:45s} {p.key:10s} {p.tempo_bpm:7.2f} BPM  {len(p.beat_times)} beats")
    print(f"{len(built)} pieces in {where}")
