"""Audio files made inside tests: good ones, broken ones and huge-but-cheap ones."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

FFMPEG = shutil.which("ffmpeg")


def wav_bytes(samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """A WAV file in memory; samples shape (n,) or (n, channels) as soundfile expects."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def with_wav_sample_rate(data: bytes, sample_rate: int) -> bytes:
    """The same WAV with its header's sample rate (and byte rate) patched, e.g. to 1 Hz.

    Assumes the canonical layout soundfile writes for PCM: 'fmt ' chunk at byte 12.
    """
    assert data[12:16] == b"fmt ", "expected the fmt chunk right after the RIFF header"
    block_align = struct.unpack_from("<H", data, 32)[0]
    patched = bytearray(data)
    struct.pack_into("<I", patched, 24, sample_rate)
    struct.pack_into("<I", patched, 28, sample_rate * block_align)
    return bytes(patched)


def write_silent_wav(path: Path, seconds: float, sample_rate: int = 16000) -> Path:
    """A valid 16-bit mono WAV of digital silence, written sparsely: instant, no disk used.

    The header is written by soundfile for a short file and then rewritten to claim
    `seconds`; the file is extended with zero bytes by truncate(), which file systems store
    as a hole, so a 2-hour file costs nothing to make.
    """
    frames = int(seconds * sample_rate)
    header = wav_bytes(np.zeros(1, dtype=np.int16), sample_rate)[:44]
    assert header[36:40] == b"data"
    data_bytes = frames * 2
    header = bytearray(header)
    struct.pack_into("<I", header, 4, 36 + data_bytes)
    struct.pack_into("<I", header, 40, data_bytes)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(44 + data_bytes)
    return path


def ffmpeg_encode(
    path: Path, seconds: float, *, frequency: float = 440.0, codec: str = "aac", rate: int = 44100
) -> Path:
    """A sine encoded by ffmpeg (e.g. M4A/AAC or WebM/Opus); needs ffmpeg on PATH."""
    assert FFMPEG, "ffmpeg is not installed"
    cmd = [FFMPEG, "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi"]
    cmd += ["-i", f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}"]
    cmd += ["-c:a", codec, str(path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """Frequency in Hz of the largest FFT bin of a (n,) signal (Hann-windowed)."""
    windowed = samples * np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.argmax(spectrum) * sample_rate / samples.size)
