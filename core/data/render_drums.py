"""Render single drum hits with General MIDI soundfonts (fluidsynth), one folder per kind of drum.

A second kind of sound for the recipe benchmark, beside instrument notes and spoken words:
short percussive hits (kick, snare, hi-hat, tom, cymbal, hand drums) with no pitch to speak of,
whose length goes from a 50 ms closed hi-hat to a crash cymbal ringing for seconds. Each kind
is played by several drums (General MIDI key numbers) of several drum kits (the programs of
MIDI channel 10) at several velocities, through the same soundfonts as the notes
(core.data.render_notes). Training on one soundfont's kits and scoring on another's asks
whether the network learnt "a snare", not "this soundfont's snare samples". A soundfont
without a kit plays its standard kit instead (fluidsynth's fallback), which still differs
between soundfonts.

Files: `<out>/<kind>/<key>_<soundfont>_<kit><velocity>.wav` (mono, 16-bit), the same
`{n}_{group}_{take}` pattern as the notes: the soundfont is each hit's group.

    python -m core.data.render_drums --out /tmp/drums
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from core.data.render_notes import (
    SOUNDFONTS,
    NoteSet,
    cached_render,
    render_command,
    render_program,
)

DRUM_CHANNEL = 9  # General MIDI's channel 10, counted from 0
# General MIDI percussion keys per kind of drum.
DRUM_KINDS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),  # acoustic bass drum, bass drum 1
    "snare": (38, 40),  # acoustic snare, electric snare
    "hihat": (42, 44, 46),  # closed, pedal, open
    "tom": (41, 43, 45, 47, 48, 50),  # low floor tom ... high tom
    "cymbal": (49, 51, 52, 55, 57, 59),  # crash 1, ride 1, Chinese, splash, crash 2, ride 2
    "hand": (60, 61, 62, 63, 64),  # high and low bongo, mute / open high conga, low conga
}
# General MIDI (GS) drum kits: standard, room, power, electronic, TR-808, jazz, brush.
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)


@dataclass(frozen=True)
class DrumSet:
    """Which hits to render and how long each file is (seconds, Hz)."""

    kinds: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(DRUM_KINDS))
    kits: tuple[int, ...] = DRUM_KITS
    velocities: tuple[int, ...] = (50, 80, 110, 127)
    hit_seconds: float = 0.2  # key held this long (most drums ignore the release)
    clip_seconds: float = 1.5  # each file: the hit and as much of its ring as fits
    sample_rate: int = 22050


def render_drums(
    out: str | Path, soundfonts: dict[str, str] | None = None, drum_set: DrumSet | None = None
) -> Iterator[str]:
    """Render every kind x drum x kit x velocity through every soundfont into `out`.

    Yields one progress line per soundfont and kit. Soundfont names must be letters only (they
    become the examples' group). Hits that a soundfont leaves silent are skipped.
    """
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (Debian: apt-get install fluidsynth).")
    soundfonts = soundfonts or SOUNDFONTS
    drum_set = drum_set or DrumSet()
    timing = NoteSet(
        note_seconds=drum_set.hit_seconds,
        clip_seconds=drum_set.clip_seconds,
        sample_rate=drum_set.sample_rate,
    )
    hits = [(key, kind) for kind, keys in drum_set.kinds.items() for key in keys]
    notes = [(key, velocity) for key, _ in hits for velocity in drum_set.velocities]
    for kind in drum_set.kinds:
        Path(out, kind).mkdir(parents=True, exist_ok=True)
    for font_name, path in soundfonts.items():
        if not font_name.isalpha():
            raise ValueError(f"Soundfont name {font_name!r} must be letters only.")
        if not Path(path).is_file():
            raise FileNotFoundError(f"Soundfont {path} not found.")
        for kit in drum_set.kits:
            clips = render_program(path, kit, notes, timing, channel=DRUM_CHANNEL)
            kinds = [kind for _, kind in hits for _velocity in drum_set.velocities]
            for (key, velocity), kind, clip in zip(notes, kinds, clips, strict=True):
                if np.abs(clip).max() < 1e-4:
                    continue
                name = f"{key:03d}_{font_name}_{kit:03d}{velocity:03d}.wav"
                sf.write(Path(out, kind, name), clip, drum_set.sample_rate, subtype="PCM_16")
            yield f"{font_name}: kit {kit}, {len(clips)} hits"


def cached_drums(
    drum_set: DrumSet | None = None,
    soundfonts: dict[str, str] | None = None,
    folder_name: str = "rendered_drums",
) -> Path:
    """The folder of rendered drum hits under the cache (core.paths.cache_dir()/folder_name),
    rendering them first unless its manifest says they are these hits from these soundfonts."""
    drum_set = drum_set or DrumSet()
    soundfonts = soundfonts or SOUNDFONTS
    manifest = {"drum_set": asdict(drum_set), "soundfonts": soundfonts}
    return cached_render(folder_name, manifest, lambda out: render_drums(out, soundfonts, drum_set))


def main(argv: Sequence[str] | None = None) -> int:
    return render_command(argv, "python -m core.data.render_drums", __doc__, render_drums)


if __name__ == "__main__":
    sys.exit(main())
