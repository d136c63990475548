"""Decoding backends behind `core.audio.io.load_audio`: a source (bytes, path or file-like),
sniffed by content rather than by name, decoded by soundfile, or by the ffmpeg program for
formats soundfile cannot read (M4A/AAC, WebM), with a clear sentence when ffmpeg is missing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.audio.clip import FFMPEG_TIMEOUT_SECONDS, UPLOAD_TYPES, AudioError, AudioInfo

# --- sources


@dataclass(frozen=True)
class Source:
    """A path on disk or bytes in memory, with a display name."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    @property
    def extension(self) -> str:
        return Path(self.name).suffix.lower()

    def head(self, n: int = 65536) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with open(self.path, "rb") as handle:  # type: ignore[arg-type]
            return handle.read(n)

    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore[union-attr]

    def open_for_soundfile(self) -> Any:
        return io.BytesIO(self.data) if self.data is not None else str(self.path)


def as_source(source: Any, name: str | None, max_bytes: int) -> Source:
    """Accept a path, bytes or a file-like upload; refuse empty or oversized sources early."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        display = name or path.name
        if not path.is_file():
            raise AudioError(
                "not_found", f"The file {display} was not found. Check the path and try again."
            )
        src = Source(display, path=path)
    elif isinstance(source, bytes | bytearray | memoryview):
        src = Source(name or "uploaded audio", data=bytes(source))
    elif hasattr(source, "read") or hasattr(source, "getvalue"):
        display = name or Path(str(getattr(source, "name", "uploaded audio"))).name
        size = getattr(source, "size", None)  # Streamlit's UploadedFile knows it before reading
        if isinstance(size, int) and size > max_bytes:
            raise _too_large(display, size, max_bytes)
        if hasattr(source, "getvalue"):
            data = source.getvalue()
        else:
            if hasattr(source, "seek"):
                source.seek(0)
            data = source.read(max_bytes + 1)
        if isinstance(data, str):
            raise AudioError("not_audio", f"{display} is text, not audio. Choose a sound file.")
        src = Source(display, data=bytes(data))
    else:
        raise TypeError(f"cannot read audio from a {type(source).__name__}")
    size = src.size()
    if size == 0:
        raise AudioError(
            "empty",
            f"{src.name} is empty (0 bytes): the upload or recording did not save any sound. "
            "Record or upload it again.",
        )
    # Only in-memory sources are capped: a path is never read whole, only its first frames.
    if src.data is not None and size > max_bytes:
        raise _too_large(src.name, size, max_bytes)
    return src


def _too_large(name: str, size: int, max_bytes: int) -> AudioError:
    return AudioError(
        "too_large",
        f"{name} is {size / 2**20:.0f} MB, more than the {max_bytes / 2**20:.0f} MB this app "
        "accepts. Cut it to a shorter excerpt or save it compressed (FLAC, OGG or MP3).",
    )


def sniff(head: bytes) -> str:
    """A guess at the container from the first bytes: 'wav', 'flac', ..., 'ffmpeg', 'text', ''."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "ffmpeg"  # ADTS AAC: MPEG sync word with layer bits 00 (MP3 has layer 01)
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mpeg-sync"  # 11 bits of MPEG sync: weak evidence, 1 in 2048 random files
    if head[:4] == b"FORM":
        return "aiff"
    if head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or head[:6] == b"#!AMR\n":
        return "ffmpeg"  # MP4/M4A/3GP, Matroska/WebM, AMR
    if head[:16] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c":
        return "ffmpeg"  # ASF/WMA
    sample = head[:4096]
    if sample and _looks_like_text(sample):
        return "text"
    return ""


def _looks_like_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


# --- ffmpeg


def ffmpeg_path() -> str | None:
    """The ffmpeg program to use (AUDIO_DL_FFMPEG, else the one on PATH), or None."""
    configured = os.environ.get("AUDIO_DL_FFMPEG")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("ffmpeg")


def _needs_ffmpeg(src: Source) -> AudioError:
    return AudioError(
        "needs_ffmpeg",
        f"{src.name} is in a format (such as M4A/AAC or WebM) that needs the ffmpeg program, "
        "which is not installed on this computer. Convert it to WAV, FLAC, OGG or MP3, or ask "
        "for ffmpeg to be installed (Debian/Ubuntu: sudo apt install ffmpeg).",
    )


class _FfmpegInput:
    """A path ffmpeg can read: the source's own path, or a temporary copy of its bytes.

    A file rather than stdin because phone M4A files often keep their index (moov atom) at the
    end, which ffmpeg can only reach by seeking.
    """

    def __init__(self, src: Source) -> None:
        self.src = src
        self._tmp: str | None = None

    def __enter__(self) -> str:
        if self.src.path is not None:
            return str(self.src.path)
        fd, self._tmp = tempfile.mkstemp(suffix=self.src.extension or ".bin")
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.src.data or b"")
        return self._tmp

    def __exit__(self, *exc: object) -> None:
        if self._tmp:
            os.unlink(self._tmp)


def ffprobe(src: Source) -> AudioInfo:
    """Header of an ffmpeg-only container: decode nothing, read rate/channels/duration."""
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        raise _needs_ffmpeg(src)
    with _FfmpegInput(src) as input_path:
        # `ffmpeg -i` without an output prints the stream layout on stderr and exits 1.
        result = _run([ffmpeg, "-hide_banner", "-nostdin", "-i", input_path], check=False)
    return _parse_ffmpeg_banner(src, result.stderr.decode("utf-8", "replace"))


def _run(cmd: list[str], *, check: bool) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_SECONDS,
            check=check,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise AudioError(
            "corrupt",
            "Decoding this file took too long and was stopped. Convert it to WAV or FLAC and "
            "try again.",
        ) from error


def _parse_ffmpeg_banner(src: Source, banner: str) -> AudioInfo:
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+).*?, (\d+) Hz, ([^,]+)", banner)
    if audio is None and "Stream #" in banner:
        raise AudioError(
            "not_audio",
            f"{src.name} contains no sound track (a video without sound?). Choose an audio "
            f"file ({', '.join(UPLOAD_TYPES).upper()}).",
        )
    if audio is None and sniff(src.head()) == "ffmpeg":
        raise AudioError(
            "corrupt",
            f"{src.name} looks like a {src.extension.lstrip('.').upper() or 'media'} file but "
            "its sound cannot be found: it is damaged or incomplete (cut off during the "
            "upload?). Export or record it again.",
        )
    if audio is None:
        raise AudioError(
            "not_audio",
            f"{src.name} is not an audio file this app can read. Choose a sound file "
            f"({', '.join(UPLOAD_TYPES).upper()}).",
        )
    codec, rate, layout = audio.group(1), int(audio.group(2)), audio.group(3).strip()
    channels = _channels_from_layout(layout)
    duration = 0.0
    match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", banner)
    if match:
        h, m, s = match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    container = src.extension.lstrip(".").upper() or "ffmpeg"
    return AudioInfo(
        sample_rate=rate,
        channels=channels,
        frames=int(round(duration * rate)),
        duration_seconds=duration,
        format=f"{container} (ffmpeg)",
        subtype=codec,
    )


def _channels_from_layout(layout: str) -> int:
    named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}
    base = layout.split("(")[0].strip()
    if base in named:
        return named[base]
    if base.endswith("channels"):
        return int(base.split()[0])
    return 2


def decode_ffmpeg(src: Source, info: AudioInfo, max_seconds: float | None) -> np.ndarray:
    """Decode through ffmpeg to float32 (frames, channels), at most `max_seconds`."""
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        raise _needs_ffmpeg(src)
    with _FfmpegInput(src) as input_path:
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", input_path]
        if max_seconds is not None:
            cmd += ["-t", f"{max_seconds:.6f}"]  # only the first max_seconds are decoded
        cmd += ["-vn", "-ac", str(info.channels), "-ar", str(info.sample_rate)]
        cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
        result = _run(cmd, check=False)
    raw = result.stdout
    if result.returncode != 0 and not raw:
        raise AudioError(
            "corrupt",
            f"{src.name} could not be decoded: the file is damaged or incomplete. "
            "Export or record it again.",
        )
    usable = len(raw) - len(raw) % (4 * info.channels)
    return np.frombuffer(raw[:usable], dtype="<f4").reshape(-1, info.channels)
