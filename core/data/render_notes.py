"""Render single instrument notes with General MIDI soundfonts (fluidsynth), one folder per family.

A data set of instrument notes for the recipe benchmark and the shipped instrument model:
each family (piano, strings, brass, reed, flute, guitar) is played by several General MIDI
programs at several pitches and velocities, through one or more soundfonts (Debian's
fluid-soundfont-gm, timgm6mb-soundfont, csound-soundfont and musescore-general-soundfont-small;
licences in data/ATTRIBUTION.md).
Training on some soundfonts and testing on another asks whether a network learnt "a flute",
not "these soundfonts' flute samples".

Files: `<out>/<family>/<program>_<soundfont>_<pitch><velocity>.wav` (mono, 16-bit). The name
follows the digits' `{n}_{group}_{take}` pattern, so `core.data.datasets` files each note under
its soundfont as the group, and a holdout split (`--split holdout --val-groups timgm`) keeps
a soundfont out of training entirely.

    python -m core.data.render_notes --out /tmp/notes [--soundfont
    fluid=/usr/share/sounds/sf2/FluidR3_GM.sf2]

The MIDI file is written by hand below (a header chunk and one track of note events), the
smallest complete example of the format; a library (mido) would do the same.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from core.files import write_json_atomic
from core.paths import cache_dir

# General MIDI program numbers (0-based) per family: four instruments each.
FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 3),  # acoustic grand, bright, electric grand, honky-tonk
    "guitar": (24, 25, 26, 27),  # nylon, steel, jazz, clean electric
    "strings": (40, 41, 42, 48),  # violin, viola, cello, string ensemble
    "brass": (56, 57, 60, 61),  # trumpet, trombone, French horn, brass section
    "reed": (64, 65, 68, 71),  # soprano sax, alto sax, oboe, clarinet
    "flute": (72, 73, 74, 75),  # piccolo, flute, recorder, pan flute
}
# Four General MIDI soundfonts from Debian, made apart (their samples differ; MuseScore
# General borrows some of FluidR3 Mono's), so a network can be trained on some
# and scored on another. The shipped instrument model learnt from all four: more sources per
# instrument is what carried over to an unheard soundfont (docs/ARCHITECTURE.md).
SOUNDFONTS = {
    "fluid": "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian fluid-soundfont-gm (MIT)
    "timgm": "/usr/share/sounds/sf2/TimGM6mb.sf2",  # Debian timgm6mb-soundfont (GPL-2)
    "csound": "/usr/share/sounds/sf2/sf_GMbank.sf2",  # Debian csound-soundfont (public domain)
    # Debian musescore-general-soundfont-small (MIT)
    "musescore": "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
}
# The soundfonts' names for people (cards, benchmark tables).
SOUNDFONT_TITLES = {
    "fluid": "FluidR3",
    "timgm": "TimGM6mb",
    "csound": "Csound GMbank",
    "musescore": "MuseScore General Lite",
}
TICKS_PER_BEAT = 480  # at the MIDI default tempo of 120 bpm a beat is 0.5 s


@dataclass(frozen=True)
class NoteSet:
    """Which notes to render and how long each file is (seconds, Hz)."""

    families: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(FAMILIES))
    pitches: tuple[int, ...] = (48, 53, 57, 60, 64, 67, 72)  # MIDI notes, C3 to C5
    velocities: tuple[int, ...] = (60, 90, 120)
    note_seconds: float = 1.0  # key held this long
    clip_seconds: float = 1.5  # each file: the note and the start of its release
    sample_rate: int = 22050


def _variable_length(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def notes_midi(
    program: int,
    notes: Sequence[tuple[int, int]],
    note_seconds: float,
    gap_seconds: float,
    channel: int = 0,
) -> bytes:
    """A type-0 MIDI file: one program, then each (pitch, velocity) held note_seconds, one
    every gap_seconds (so note k starts at k * gap_seconds). channel 9 (General MIDI's tenth)
    plays drums: the program picks a drum kit and each pitch a drum."""
    ticks = lambda seconds: int(round(seconds * 2 * TICKS_PER_BEAT))  # noqa: E731 (120 bpm)
    events = bytearray(_variable_length(0) + bytes([0xC0 | channel, program]))
    held, rest = ticks(note_seconds), ticks(gap_seconds) - ticks(note_seconds)
    for pitch, velocity in notes:
        events += _variable_length(0) + bytes([0x90 | channel, pitch, velocity])
        events += _variable_length(held) + bytes([0x80 | channel, pitch, 0])
        events += _variable_length(rest) + bytes([0xB0 | channel, 123, 0])  # all notes off
    events += _variable_length(0) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


def render_program(
    soundfont: str,
    program: int,
    notes: Sequence[tuple[int, int]],
    note_set: NoteSet,
    channel: int = 0,
) -> list[np.ndarray]:
    """Render every note of one program (on channel 9: one drum kit) with fluidsynth; one mono
    float32 clip per note. note_set gives the note's and the clip's lengths and the rate."""
    gap = note_set.clip_seconds + 0.5  # the release dies away before the next note
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp, "notes.mid"), Path(tmp, "notes.wav")
        midi.write_bytes(notes_midi(program, notes, note_set.note_seconds, gap, channel))
        # -ni: no shell, no MIDI input; -R 0 -C 0: no reverb or chorus (they would differ
        # between synthesisers, not between instruments); -F: render to a file, fast.
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-q",
                "-R",
                "0",
                "-C",
                "0",
                "-g",
                "0.6",
                "-r",
                str(note_set.sample_rate),
                "-F",
                str(wav),
                soundfont,
                str(midi),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    length = int(note_set.clip_seconds * rate)
    clips = []
    for index in range(len(notes)):
        start = int(round(index * gap * rate))
        clip = mono[start : start + length]
        clips.append(np.pad(clip, (0, length - len(clip))))
    return clips


def render_notes(
    out: str | Path, soundfonts: dict[str, str] | None = None, note_set: NoteSet | None = None
) -> Iterator[str]:
    """Render every family x program x pitch x velocity through every soundfont into `out`.

    Yields one progress line per program rendered. Soundfont names must be letters only
    (they become the examples' group). Notes that a soundfont leaves silent are skipped.
    """
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (Debian: apt-get install fluidsynth).")
    soundfonts = soundfonts or SOUNDFONTS
    note_set = note_set or NoteSet()
    notes = [(p, v) for p in note_set.pitches for v in note_set.velocities]
    for font_name, path in soundfonts.items():
        if not font_name.isalpha():
            raise ValueError(f"Soundfont name {font_name!r} must be letters only.")
        if not Path(path).is_file():
            raise FileNotFoundError(f"Soundfont {path} not found.")
        for family, programs in note_set.families.items():
            folder = Path(out, family)
            folder.mkdir(parents=True, exist_ok=True)
            for program in programs:
                clips = render_program(path, program, notes, note_set)
                for (pitch, velocity), clip in zip(notes, clips, strict=True):
                    if np.abs(clip).max() < 1e-4:
                        continue
                    name = f"{program:03d}_{font_name}_{pitch:03d}{velocity:03d}.wav"
                    sf.write(folder / name, clip, note_set.sample_rate, subtype="PCM_16")
                yield f"{font_name}: {family} program {program}, {len(clips)} notes"


def cached_notes(
    note_set: NoteSet | None = None,
    soundfonts: dict[str, str] | None = None,
    folder_name: str = "rendered_notes",
) -> Path:
    """The folder of rendered notes under the cache (core.paths.cache_dir()/folder_name),
    rendering them first unless its manifest says they are these notes from these soundfonts.

    Rendering all 2016 default notes (four soundfonts) takes about 20-60 s; the benchmark and
    scripts/build_instruments_model.py share the folder.
    """
    note_set = note_set or NoteSet()
    soundfonts = soundfonts or SOUNDFONTS
    manifest = {"note_set": asdict(note_set), "soundfonts": soundfonts}
    return cached_render(folder_name, manifest, lambda out: render_notes(out, soundfonts, note_set))


def cached_render(
    folder_name: str, manifest: dict, render: Callable[[Path], Iterable[str]]
) -> Path:
    """core.paths.cache_dir()/folder_name, filled by render(folder) first unless the folder's
    manifest.json equals `manifest` (what was rendered, from what); the manifest is written
    last, so an interrupted rendering is redone."""
    manifest = json.loads(json.dumps(manifest))  # tuples as lists, as read back
    folder = cache_dir() / folder_name
    manifest_path = folder / "manifest.json"
    try:
        if json.loads(manifest_path.read_text()) == manifest:
            return folder
    except (OSError, ValueError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    for _line in render(folder):
        pass
    write_json_atomic(manifest_path, manifest)
    return folder


def render_command(
    argv: Sequence[str] | None,
    prog: str,
    doc: str,
    render: Callable[[str, dict[str, str] | None], Iterable[str]],
) -> int:
    """The command line of a renderer: --out FOLDER [--soundfont NAME=PATH ...]; render(out,
    soundfonts or None) yields progress lines. Exit 0, or 2 with the error on stderr."""
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    p.add_argument("--out", required=True, help="folder to write <class>/<clip>.wav into")
    p.add_argument(
        "--soundfont",
        action="append",
        default=[],
        help="NAME=PATH (letters-only name); repeat. Default: fluid, timgm and csound.",
    )
    args = p.parse_args(argv)
    fonts = dict(item.split("=", 1) for item in args.soundfont) or None
    try:
        for line in render(args.out, fonts):
            print(line, file=sys.stderr)
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return render_command(argv, "python -m core.data.render_notes", __doc__, render_notes)


if __name__ == "__main__":
    sys.exit(main())
