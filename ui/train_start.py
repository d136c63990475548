"""Train page, section 2: where the network's weights start, random or a ready model's.

Starting from a ready model is transfer learning (core.training.transfer): its layers keep what
they learnt from many sounds and are fine-tuned on the student's clips. The recipe chosen from
the data (core.data.profile) picks the default and says why; the select keeps every choice
open. A ready model reads one input only, so when the feature sliders say otherwise the page
says so, offers to set them, and Start waits.
"""

from __future__ import annotations

import streamlit as st

from core.audio.features import FeatureConfig
from core.data.starting_weights import FINE_TUNE_LEARNING_RATE
from core.training.config import TrainConfig
from core.training.transfer import (
    RANDOM_START,
    ReadyStart,
    StartError,
    check_input,
    load_ready_start,
    ready_names,
)

START_KEY = "train_start_from"
LEARNING_RATE_KEY = "train_lr"  # the learning-rate slider (ui.train_settings.hyperparameters)


@st.cache_resource(show_spinner=False, max_entries=8)
def _ready(name: str) -> ReadyStart:
    """A shipped ready model as a starting point (read once per server: models/ is read-only)."""
    return load_ready_start(name)


def start_choice(
    features: FeatureConfig, kind: str, normalization: str
) -> tuple[ReadyStart | None, str]:
    """The "Start from" select. Returns (the ready model to start from or None for random
    weights, a sentence when the choice cannot train with these settings, else "")."""
    names = [RANDOM_START, *ready_names()]
    if st.session_state.get(START_KEY) not in names:
        st.session_state[START_KEY] = RANDOM_START
    name = st.selectbox(
        "Start from",
        names,
        key=START_KEY,
        on_change=_learning_rate_follows_start,
        format_func=lambda n: f"the ready model {n} (transfer learning)" if n else "random weights",
        help="Random weights learn everything from your clips. A ready model's weights "
        "already know what it learnt from many sounds; training then fine-tunes them on "
        "your clips (transfer learning), which helps most when you have few clips or your "
        "test sounds come from other instruments, voices or microphones.",
    )
    if not name:
        return None, ""
    try:
        start = _ready(name)
        check_input(start, features, kind, normalization)
    except StartError as error:
        st.warning(str(error))
        st.button(
            f"Use {name}'s input settings",
            key="train_start_use_input",
            on_click=_use_input_of,
            args=(name,),
        )
        return None, str(error)
    st.caption(
        f"Starting from {start.describe()}. Every layer starts from its weights; its "
        "classifier layer too if your classes are exactly its own, else that one starts "
        "afresh. The network is the ready model's own."
    )
    return start, ""


def _learning_rate_follows_start() -> None:
    """A new start brings its learning rate: gentler for fine-tuning than from scratch."""
    ready = bool(st.session_state.get(START_KEY))
    rate = FINE_TUNE_LEARNING_RATE if ready else TrainConfig.learning_rate
    st.session_state[LEARNING_RATE_KEY] = rate


def _use_input_of(name: str) -> None:
    """Set the feature sliders to the ready model's input (a callback: runs before the widgets)."""
    start = _ready(name)
    f = start.features
    st.session_state.update(
        {
            "train_feature_kind": start.feature_kind,
            "train_sample_rate": f.sample_rate,
            "train_n_mels": f.n_mels,
            "train_hop_ms": round(1000 * f.hop_length / f.sample_rate),
            "train_win_ms": round(1000 * f.win_length / f.sample_rate),
            "train_normalization": start.normalization,
            "train_clip_seconds": start.clip_seconds,
            "train_trim": start.trim_db is not None,
        }
    )
