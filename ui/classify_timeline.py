"""Classify page, parts of a clip: sliding windows, a probability timeline and segments."""

from __future__ import annotations

import streamlit as st

from core.audio.clip import AudioClip
from core.audio.levels import encode_wav
from core.inference.classifier import (
    InferenceModel,
    WindowResult,
    classify_windows,
    find_segments,
    segment_audio,
    smooth_probabilities,
)
from core.viz.classify import timeline_figure


@st.cache_data(max_entries=8, show_spinner="Classifying every window...")
def _windows(
    _model: InferenceModel, _clip: AudioClip, key: str, window: float, hop: float, trim: bool
) -> WindowResult:
    return classify_windows(
        _model,
        _clip.samples,
        _clip.sample_rate,
        window_seconds=window,
        hop_seconds=hop,
        trim_silence=trim,
    )


def show_timeline(prefix: str, model: InferenceModel, clip: AudioClip, cache_key: str) -> None:
    """Window and hop sliders, the heatmap over time, and the segments with players."""
    seen = f"{prefix}_timeline_clip"
    if st.session_state.get(seen) != cache_key:  # a new clip: open the timeline if it is long
        st.session_state[seen] = cache_key
        st.session_state[f"{prefix}_timeline"] = clip.duration_seconds > 1.5 * model.window_seconds
    on = st.toggle(
        "Timeline: classify every part of the clip",
        key=f"{prefix}_timeline",
        help="A window the model's length slides along the clip; each position is classified.",
    )
    if not on:
        return
    full = round(model.window_seconds, 2)
    cols = st.columns(4)
    window = cols[0].slider(
        "Window (s)",
        0.1,
        full,
        full,
        0.05,
        key=f"{prefix}_window",
        help="At most the model's window; shorter windows are padded.",
    )
    hop = cols[1].slider(
        "Hop (s)", 0.02, max(0.05, full), min(0.25, full), 0.01, key=f"{prefix}_hop"
    )
    smooth = cols[2].slider("Smoothing (windows)", 1, 15, 3, key=f"{prefix}_smooth")
    threshold = cols[3].slider(
        "Segment threshold", 0.0, 1.0, 0.6, 0.05, key=f"{prefix}_segment_threshold"
    )
    trim = st.toggle(
        "Trim each window to its sound",
        value=True,
        key=f"{prefix}_trim",
        help="Training clips of spoken digits start and end with the word, and short ones were "
        "padded in the middle: the model never heard silence around a word. Trimming each "
        "window to its sounding frames (then padding it the same way) shows it windows that "
        "look like its training clips. Switch off for models trained on clips with silence.",
    )
    result = _windows(model, clip, cache_key, float(window), float(hop), trim)
    for notice in result.notices:
        st.info(notice)
    segments = find_segments(result, threshold=threshold, smooth_windows=smooth)
    probs = smooth_probabilities(result.probabilities, smooth)
    st.plotly_chart(
        timeline_figure(
            result.centres_seconds,
            probs,
            result.labels,
            silent=result.silent,
            segments=[(s.start_seconds, s.end_seconds, s.label) for s in segments],
        ),
        key=f"{prefix}_timeline_chart",
    )
    st.caption(
        f"{len(result.starts_seconds)} windows of {result.window_seconds:.2f} s every "
        f"{result.hop_seconds:.2f} s; blank columns are silence (quieter than the loudest part "
        "by 45 dB). Spectrogram computed once, windows classified in batches."
    )
    if not segments:
        st.info("No segment reaches the threshold: lower it or the smoothing.")
        return
    rows = [
        {
            "start (s)": round(s.start_seconds, 2),
            "end (s)": round(s.end_seconds, 2),
            "class": s.label,
            "confidence": round(s.confidence, 3),
        }
        for s in segments
    ]
    st.dataframe(rows, key=f"{prefix}_segments", hide_index=False)
    chosen = st.selectbox(
        "Play a segment",
        range(len(segments)),
        key=f"{prefix}_segment_play",
        format_func=lambda i: (
            f"{i}: {segments[i].label} "
            f"{segments[i].start_seconds:.2f}–{segments[i].end_seconds:.2f} s"
        ),
    )
    piece = segment_audio(clip.samples, clip.sample_rate, segments[chosen])
    st.audio(encode_wav(piece, clip.sample_rate), format="audio/wav")
