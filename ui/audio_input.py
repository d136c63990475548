"""The shared "built-in clip / upload / record" audio picker used by every audio page.

`audio_source_picker` returns a validated `core.audio.clip.AudioClip` or None. Every problem with a
student's file is shown in the page (st.error with the AudioError's sentence) and the picker
returns None, so the page simply stops at `if clip is None: st.stop()`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from core.audio.clip import DEFAULT_MAX_SECONDS, UPLOAD_TYPES, AudioClip, AudioError
from core.audio.io import load_audio
from core.audio.levels import dbfs, encode_wav, peak
from ui.fingerprint import fingerprint

BUILTIN, UPLOAD, RECORD = "Built-in clip", "Upload a file", "Record"
# st.audio_input records at one of these rates; any other request lets the browser choose.
RECORD_RATES = frozenset({8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000})
SPOKEN_DIGITS_SHOWN = ("0_george_0", "3_jackson_0", "7_lucas_0", "9_nicolas_0")
# Decoded clips kept per server. A 600 s clip at 44.1 kHz is 106 MB of float32, so the byte
# cap, not the entry count, is what protects a class server's memory.
CACHE_ENTRIES = 16
CACHE_MAX_SIZE = "512MB"


def builtin_clips() -> dict[str, Path]:
    """Display label -> path of the built-in choices: the music clips, then a few digits."""
    choices = {_music_label(path): path for path in paths.builtin_music_clips()}
    for stem in SPOKEN_DIGITS_SHOWN:
        path = paths.DIGITS_DIR / f"{stem}.wav"
        if path.exists():
            digit, speaker, _take = stem.split("_")
            choices[f"Spoken digit {digit} ({speaker})"] = path
    return choices


def _music_label(path: Path) -> str:
    label = path.stem.replace("_", " ").replace(" - ", " · ")
    return label if len(label) <= 60 else label[:57] + "..."


@st.cache_data(max_entries=CACHE_ENTRIES, max_size=CACHE_MAX_SIZE, show_spinner="Decoding audio...")
def _decode_cached(
    digest: str, name: str, sample_rate: int | None, max_seconds: float, _data: bytes
) -> AudioClip:
    # Keyed by the bytes' digest (the leading underscore keeps Streamlit from hashing the
    # bytes again); AudioError is raised, not cached, so a bad file is re-checked each run.
    return load_audio(_data, name=name, sample_rate=sample_rate, max_seconds=max_seconds)


def decode_upload(
    data: bytes, name: str, *, sample_rate: int | None = None, max_seconds: float | None = None
) -> AudioClip:
    """Decode an uploaded or recorded file through the cache; raises AudioError."""
    digest = fingerprint(data)
    limit = DEFAULT_MAX_SECONDS if max_seconds is None else float(max_seconds)
    return _decode_cached(digest, name, sample_rate, limit, data)


@st.cache_data(max_entries=CACHE_ENTRIES, max_size=CACHE_MAX_SIZE, show_spinner=False)
def load_builtin(
    path: str, sample_rate: int | None = None, max_seconds: float | None = None
) -> AudioClip:
    """Decode a shipped clip (cached by path and settings)."""
    limit = DEFAULT_MAX_SECONDS if max_seconds is None else float(max_seconds)
    return load_audio(path, sample_rate=sample_rate, max_seconds=limit)


def audio_source_picker(
    key_prefix: str,
    *,
    sample_rate: int | None = None,
    allow_record: bool = True,
    allow_builtin: bool = True,
    max_seconds: float | None = None,
) -> AudioClip | None:
    """Let the student pick a clip; show its player and facts; return it (or None).

    key_prefix: the page's widget-key prefix (keys become f"{key_prefix}_audio_source", ...).
    sample_rate: resample the clip to this rate in Hz (None keeps the file's rate).
    max_seconds: decode at most this many seconds (None: core.audio.clip.DEFAULT_MAX_SECONDS).
    """
    options = [BUILTIN] * allow_builtin + [UPLOAD] + [RECORD] * allow_record
    source = options[0]
    if len(options) > 1:
        source = st.segmented_control(
            "Audio source",
            options,
            default=options[0],
            required=True,
            key=f"{key_prefix}_audio_source",
        )
    try:
        picked = _pick(key_prefix, source, sample_rate, max_seconds)
    except AudioError as error:
        st.error(str(error))
        return None
    if picked is None:
        return None
    clip, cache_key = picked
    show_clip(clip, cache_key=cache_key)
    return clip


def _pick(
    key_prefix: str, source: str | None, sample_rate: int | None, max_seconds: float | None
) -> tuple[AudioClip, str] | None:
    """The chosen clip and a short key naming its decoded content (for the player's cache)."""
    if source == BUILTIN:
        choices = builtin_clips()
        label = st.selectbox("Built-in clip", list(choices), key=f"{key_prefix}_audio_builtin")
        path = choices[label]
        clip = load_builtin(str(path), sample_rate, max_seconds)
        credit = paths.clip_attribution(path)
        if credit:
            st.caption(credit.splitlines()[0])
        return clip, f"builtin:{path}:{sample_rate}:{max_seconds}"
    if source == UPLOAD:
        upload = st.file_uploader(
            "Upload a sound file",
            type=list(UPLOAD_TYPES),
            key=f"{key_prefix}_audio_upload",
            help="WAV, FLAC, OGG and MP3 always work; M4A and WebM need ffmpeg on the server.",
        )
        if upload is None:
            st.caption("Choose a file to analyse it.")
            return None
        return _decode_with_key(upload.getvalue(), upload.name, sample_rate, max_seconds)
    record_rate = sample_rate if sample_rate in RECORD_RATES else None
    recording = st.audio_input(
        "Record from your microphone", sample_rate=record_rate, key=f"{key_prefix}_audio_record"
    )
    if recording is None:
        st.caption("Press the microphone to record, press it again to stop.")
        return None
    return _decode_with_key(recording.getvalue(), "Your recording", sample_rate, max_seconds)


def _decode_with_key(
    data: bytes, name: str, sample_rate: int | None, max_seconds: float | None
) -> tuple[AudioClip, str]:
    digest = fingerprint(data)
    limit = DEFAULT_MAX_SECONDS if max_seconds is None else float(max_seconds)
    clip = _decode_cached(digest, name, sample_rate, limit, data)
    return clip, f"upload:{digest}:{sample_rate}:{limit}"


@st.cache_data(max_entries=CACHE_ENTRIES, max_size=CACHE_MAX_SIZE, show_spinner=False)
def _player_wav(cache_key: str, _clip: AudioClip) -> bytes:
    # Keyed by what was decoded (not the samples, which would be hashed on every rerun), so
    # a page's reruns reuse the player's WAV instead of encoding minutes of audio again.
    return encode_wav(_clip.samples, _clip.sample_rate)


def show_clip(clip: AudioClip, *, cache_key: str | None = None) -> None:
    """Notices, a player and one line of facts about the clip.

    cache_key: names the decoded content (source, settings); when given, the player's WAV
    bytes are encoded once and reused on every rerun.
    """
    for notice in clip.notices:
        st.info(notice)
    wav = _player_wav(cache_key, clip) if cache_key else encode_wav(clip.samples, clip.sample_rate)
    st.audio(wav, format="audio/wav")
    channels = "mono" if clip.channels == 1 else f"{clip.channels} channels"
    st.caption(
        f"{clip.name} · {clip.duration_seconds:.2f} s · {clip.sample_rate} Hz · {channels} · "
        f"peak {dbfs(peak(clip.samples)):.1f} dBFS"
    )
