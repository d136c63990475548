"""Shared bits of the tensor playground's sections: the console's named tensors and clips."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from core import paths
from core.audio.clip import AudioError
from core.audio.io import load_audio
from core.audio.levels import encode_wav

NAMED_KEY = "tensors_named"  # session key: {name: tensor} that the expression console sees
CLIP_SAMPLE_RATE = 22_050
CLIP_SECONDS = 8.0  # enough to hear a change, short enough for every rerun


def publish(name: str, tensor: torch.Tensor) -> None:
    """Make `tensor` available to the expression console under `name` (read-only there)."""
    st.session_state.setdefault(NAMED_KEY, {})[name] = tensor.detach()


def named_tensors() -> dict[str, torch.Tensor]:
    return dict(st.session_state.get(NAMED_KEY, {}))


def clip_names() -> dict[str, str]:
    """Display name -> path of each built-in clip."""
    return {path.stem.replace("_", " "): str(path) for path in paths.builtin_music_clips()}


@st.cache_data(max_entries=4, show_spinner=False)
def load_clip(path: str) -> tuple[np.ndarray, int]:
    """The first CLIP_SECONDS of a built-in clip, mono float32 at CLIP_SAMPLE_RATE."""
    clip = load_audio(path, sample_rate=CLIP_SAMPLE_RATE, max_seconds=CLIP_SECONDS)
    return clip.samples, clip.sample_rate


class Clip(NamedTuple):
    path: str  # the cache key: the same path always decodes to the same samples
    samples: np.ndarray  # float32 (n,)
    sample_rate: int


def pick_clip(key: str, label: str = "Built-in clip") -> Clip | None:
    """A selectbox of built-in clips; the decoded clip, or None with the reason shown."""
    names = clip_names()
    if not names:
        st.warning("No built-in clips were found in data/music, so this part has no sound.")
        return None
    choice = st.selectbox(label, list(names), key=key)
    try:
        return Clip(names[choice], *load_clip(names[choice]))
    except AudioError as error:
        st.error(str(error))
        return None


@st.cache_data(max_entries=16, show_spinner=False)
def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    return encode_wav(samples, sample_rate)
