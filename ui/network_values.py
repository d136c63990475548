"""Network builder, part 5: "Layer by layer", the composition f_n ∘ … ∘ f_1 with values.

One clip goes through a network one layer at a time and every intermediate value is drawn:
the spectrogram read as an image, each convolution's feature maps channel by channel,
vectors as strips, the final scores as class probabilities. The network is a trained run
(the shipped digits model or the student's own) or the editor's stack with random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import paths
from core.audio.clip import SILENCE_PEAK, AudioError
from core.audio.levels import peak
from core.inference.classifier import ModelChoice, available_models
from core.lessons.layer_values import (
    ClipTrace,
    LayerValue,
    LayerValuesError,
    trace_clip,
    trace_untrained,
)
from core.models.layers import SpecError
from core.models.spec import ModelSpec
from core.training.runs import WEIGHTS_FILE, RunError, RunStore
from core.viz.layer_values import class_probability_figure, feature_maps_figure, vector_figure
from ui.audio_input import audio_source_picker, load_builtin

TRAINED, EDITOR = "A trained model", "The editor's network (untrained)"
SHIPPED_DIGIT, OWN_CLIP = "A shipped spoken digit", "Your own clip"
SPEAKERS = ("george", "jackson", "lucas", "nicolas")
TAKES = 40  # recordings per digit and speaker in data/digits


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_run(store_root: str, run_id: str, owner: str | None, weights_mtime: float):
    # Shared by every session: only read (layer_outputs runs the network in evaluation
    # mode and never changes it). The owner is in the key, so a session reaches only its
    # own runs; the weights' mtime too, so a retrained run is loaded again.
    return RunStore(store_root).load(run_id, owner=owner)


def _model_choice() -> ModelChoice | None:
    owner = st.session_state.get("session_id", "")
    choices = {f"{c.origin}:{c.run_id}": c for c in available_models(owner)}
    if not choices:
        st.warning("No trained model is available: train one on the Train page.")
        return None
    key = st.selectbox(
        "Model", list(choices), format_func=lambda k: choices[k].label, key="network_values_model"
    )
    return choices.get(key)


def _either(label: str, options: list[str], key: str) -> str:
    """A horizontal radio whose choice survives a visit to another tab or page."""
    return st.radio(label, options, horizontal=True, key=key, persist_state="session")


def _clip() -> tuple[np.ndarray, int] | None:
    source = _either("Clip", [SHIPPED_DIGIT, OWN_CLIP], "network_values_clip_source")
    if source == OWN_CLIP:
        clip = audio_source_picker("network_values", allow_builtin=False, max_seconds=10.0)
        return None if clip is None else (clip.samples, clip.sample_rate)
    c = st.columns(3)
    digit = c[0].selectbox(
        "Digit", range(10), 7, key="network_values_digit", persist_state="session"
    )
    speaker = c[1].selectbox(
        "Speaker", SPEAKERS, key="network_values_speaker", persist_state="session"
    )
    take = c[2].number_input(
        "Take", 0, TAKES - 1, 0, key="network_values_take", persist_state="session"
    )
    path = paths.DIGITS_DIR / f"{digit}_{speaker}_{int(take)}.wav"
    if not path.exists():
        st.error(f"{path.name} is not among the shipped recordings.")
        return None
    try:
        clip = load_builtin(str(path))
        samples, rate = clip.samples, clip.sample_rate
    except AudioError as error:
        st.error(f"{path.name} cannot be decoded: {error}")
        return None
    st.audio(samples, sample_rate=rate)
    return samples, rate


def _trained_run():
    """The chosen run, loaded (as trained: BatchNorm layers not folded), or None."""
    choice = _model_choice()
    if choice is None:
        return None
    owner = None if choice.origin == "shipped" else choice.owner
    weights = Path(choice.store_root) / choice.run_id / WEIGHTS_FILE
    mtime = weights.stat().st_mtime if weights.exists() else 0.0
    try:
        return _load_run(choice.store_root, choice.run_id, owner, mtime)
    except RunError as error:
        st.error(f"This model cannot be loaded: {error}")
    return None


def _member(run) -> int:
    members = len(getattr(run.model, "members", [None]))
    if members == 1:
        return 0
    return int(
        st.selectbox(
            f"Member traced (this model averages {members} networks)",
            range(members),
            key="network_values_member",
        )
    )


def render_layer_values(editor_spec: ModelSpec) -> None:
    """Pick a network and a clip; draw x, f1(x), f2(f1(x)), … down to the class scores."""
    st.markdown(
        "A network is a composition of functions, f = f_n ∘ … ∘ f_1. Here one clip goes "
        "through it one function at a time, and every intermediate value is drawn: the "
        "features the network uncovers from the spectrogram, layer after layer."
    )
    network = _either("Network", [TRAINED, EDITOR], "network_values_network")
    run = _trained_run() if network == TRAINED else None
    if network == TRAINED and run is None:
        return
    member = _member(run) if run is not None else 0
    clip = _clip()
    if clip is None:
        return
    samples, rate = clip
    if samples.size and peak(samples) < SILENCE_PEAK:
        st.warning(
            "This clip is silent: the network still computes something, but it has nothing to hear."
        )
    try:
        if run is None:
            trace = trace_untrained(editor_spec, samples, rate)
        else:
            trace = trace_clip(run, samples, rate, member=member)
    except (LayerValuesError, SpecError) as error:
        st.error(str(error))
        return
    except ValueError as error:  # a feature recipe or input this network cannot take
        st.error(f"This network cannot take the clip: {error}")
        return
    channels = st.slider(
        "Channels shown per layer",
        1,
        64,
        8,
        key="network_values_channels",
        persist_state="session",
        help="A convolution layer has one feature map per filter; the first ones are drawn.",
    )
    _render_trace(trace, channels)


def _render_trace(trace: ClipTrace, channels: int) -> None:
    best = int(np.argmax(trace.probabilities))
    trained = not trace.labels[0].startswith("output ")
    st.metric(
        "Answer" if trained else "Highest output (random weights)",
        trace.labels[best],
        f"probability {trace.probabilities[best]:.1%}",
        delta_color="off",
        delta_arrow="off",
    )
    if trace.members > 1:
        st.caption(
            f"This model averages the probabilities of {trace.members} networks; the layers "
            f"below are those of network {trace.member}."
        )
    _render_summary(trace)
    for value in trace.layers:
        _render_value(value, channels)
    st.markdown("**Class probabilities** (softmax of the last layer's scores)")
    member = trace.member_probabilities if trace.members > 1 else None
    st.plotly_chart(
        class_probability_figure(trace.labels, trace.probabilities, member),
        key="network_values_probabilities",
    )
    if not trained:
        st.caption(
            "These weights are random: the maps are what untrained filters do to the clip, "
            "and the probabilities mean nothing yet. Train the network on the Train page."
        )


def _render_summary(trace: ClipTrace) -> None:
    """The whole composition in one table: each value's shape and range."""
    rows = [(value, value.statistics()) for value in trace.layers]
    table = pd.DataFrame(
        {
            "value": [v.expression for v, _ in rows],
            "layer": [v.kind for v, _ in rows],
            "shape": [" × ".join(map(str, v.shape)) for v, _ in rows],
            "numbers": [v.values.numel() for v, _ in rows],
            "min": [stats["min"] for _, stats in rows],
            "max": [stats["max"] for _, stats in rows],
            "mean": [stats["mean"] for _, stats in rows],
            "zeros": [f"{stats['zeros']:.0%}" for _, stats in rows],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        key="network_values_table",
        column_config={
            "min": st.column_config.NumberColumn(format="%.3f"),
            "max": st.column_config.NumberColumn(format="%.3f"),
            "mean": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    st.caption(
        "Each row is the value after one more function. 'zeros': the share of numbers that are "
        "exactly 0, what a ReLU switches off; pooling shrinks the maps, Flatten only reshapes."
    )


def _render_value(value: LayerValue, channels: int) -> None:
    shape = " × ".join(map(str, value.shape))
    title = f"{value.expression} · {value.description if value.index else 'the input'} · {shape}"
    st.markdown(f"**{title}**")
    values = value.values.numpy()
    key = f"network_values_layer{value.index}"
    if values.ndim == 3:
        if value.index == 0:
            st.caption(
                "The log-mel spectrogram as the network sees it: mel bands up, frames across."
            )
        st.plotly_chart(feature_maps_figure(values, max_channels=channels), key=key)
    elif values.ndim == 2:
        st.plotly_chart(feature_maps_figure(values), key=key)
    else:
        st.plotly_chart(vector_figure(values), key=key)
