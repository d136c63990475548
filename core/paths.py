"""Where the app finds its shipped data and keeps what it writes.

Environment variables let a teacher move the writable folders on a class server:
AUDIO_DL_RUNS_DIR (trained runs, default ./runs) and AUDIO_DL_CACHE_DIR (feature cache,
default ./.cache).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DIGITS_DIR = DATA_DIR / "digits"  # Free Spoken Digit Dataset subset, {digit}_{speaker}_{take}.wav
MUSIC_DIR = DATA_DIR / "music"  # short music and sound clips, NAME.ogg with NAME.txt attribution
MODELS_DIR = REPO_ROOT / "models"  # ready-made runs shipped with the app


def runs_dir() -> Path:
    """Root of the run store (AUDIO_DL_RUNS_DIR or ./runs)."""
    return Path(os.environ.get("AUDIO_DL_RUNS_DIR", REPO_ROOT / "runs"))


def cache_dir() -> Path:
    """Root of the on-disk feature cache (AUDIO_DL_CACHE_DIR or ./.cache)."""
    return Path(os.environ.get("AUDIO_DL_CACHE_DIR", REPO_ROOT / ".cache"))


def builtin_music_clips() -> list[Path]:
    """The shipped music and sound clips, sorted by file name."""
    return sorted(MUSIC_DIR.glob("*.ogg"))


def builtin_digit_files() -> list[Path]:
    """The shipped spoken-digit recordings, sorted by file name."""
    return sorted(DIGITS_DIR.glob("*.wav"))


def clip_attribution(clip_path: Path) -> str:
    """The source and licence text shipped beside a built-in clip ('' if none)."""
    text_path = clip_path.with_suffix(".txt")
    return text_path.read_text(encoding="utf-8").strip() if text_path.exists() else ""
