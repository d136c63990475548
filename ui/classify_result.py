"""Classify page, one clip: the answer (model's view, top-k, unsure, warnings) and why."""

from __future__ import annotations

import streamlit as st

from core.audio.clip import AudioClip
from core.audio.levels import encode_wav
from core.inference.classifier import UNSURE_PROBABILITY, ClipResult, InferenceModel, classify_clip
from core.inference.saliency import METHODS, PLAYBACK_MODES, explain, salient_audio
from core.viz.audio import waveform_figure
from core.viz.classify import model_view_figure, saliency_figure, top_k_figure
from ui.audio_input import builtin_clips
from ui.fingerprint import fingerprint

AXES = {"logmel": "mel", "mel": "mel", "stft": "linear", "mfcc": "mfcc"}


def start_with_a_spoken_digit(prefix: str) -> None:
    """Preselect a spoken digit among the built-in clips (the shipped model knows digits)."""
    digits = [label for label in builtin_clips() if label.startswith("Spoken digit")]
    if digits:
        st.session_state.setdefault(f"{prefix}_audio_builtin", digits[0])


def clip_digest(clip: AudioClip) -> str:
    """A short hash of the clip's samples, for cache keys."""
    return fingerprint(clip.samples) + f"@{clip.sample_rate}"


def model_key(model: InferenceModel) -> str:
    return f"{model.origin}:{model.run_id}:{model.device}"


def show_answer(prefix: str, model: InferenceModel, clip: AudioClip) -> ClipResult:
    """Top-k with the unsure verdict beside the waveform and the model's view of the clip."""
    threshold = st.slider(
        "Unsure below",
        0.0,
        1.0,
        UNSURE_PROBABILITY,
        0.05,
        key=f"{prefix}_threshold",
        help="When the most probable class has less than this (or the runner-up is within "
        "15 points), the page says the model is unsure.",
    )
    result = classify_clip(model, clip.samples, clip.sample_rate, threshold=threshold)
    pred = result.prediction
    left, right = st.columns([3, 2])
    with right:
        if pred.unsure:
            st.warning(f"**Unsure** — best guess **{pred.label}**: {pred.reason}.")
        else:
            st.success(f"**{pred.label}** with {pred.confidence:.0%} probability.")
        k = st.slider(
            "Classes shown", 1, model.num_classes, min(5, model.num_classes), key=f"{prefix}_topk"
        )
        st.plotly_chart(
            top_k_figure(pred.top_k(k), unsure=pred.unsure, threshold=threshold),
            key=f"{prefix}_topk_chart",
        )
        for warning in result.warnings:
            st.warning(warning, icon=":material/warning:")
        t = result.timings_ms
        st.caption(
            f"features {t['features']:.0f} ms · model {t['model']:.0f} ms · "
            f"top-k {t['top_k']:.1f} ms"
        )
    with left:
        st.plotly_chart(
            waveform_figure(clip.samples, clip.sample_rate, height=180), key=f"{prefix}_waveform"
        )
        for notice in result.prepared.notices:
            st.info(notice)
        c = model.feature_config
        st.plotly_chart(
            model_view_figure(
                result.prepared.model_input[0, 0].numpy(),
                c.sample_rate,
                c.hop_length,
                frame_offset=result.prepared.frame_offset,
                y_axis=AXES.get(model.feature_kind, "bins"),
                f_min=c.f_min,
                f_max=c.f_max,
                title=f"What the model sees: {model.feature_kind}, normalised "
                f"({model.normalization.mode})",
            ),
            key=f"{prefix}_model_view",
        )
    return result


@st.cache_data(max_entries=16, show_spinner="Explaining the answer...")
def _saliency(_model: InferenceModel, _result: ClipResult, key: str, target: int, method: str):
    return explain(_model, _result.prepared, target=target, method=method)


def show_saliency(prefix: str, model: InferenceModel, result: ClipResult, clip_key: str) -> None:
    """A saliency map over the model's input and a player for only the salient regions."""
    st.subheader("Why this answer?")
    labels = model.labels
    cols = st.columns(3)
    target = cols[0].selectbox(
        "Explain the class",
        range(len(labels)),
        index=result.prediction.best_index,
        format_func=lambda i: labels[i],
        key=f"{prefix}_explain_class",
    )
    method = cols[1].segmented_control(
        "Method",
        METHODS,
        default="grad-cam",
        required=True,
        key=f"{prefix}_saliency_method",
        help="Grad-CAM: where the last convolution's features pushed towards the class. "
        "Occlusion: how much the probability drops when a patch is hidden (slower).",
    )
    keep = cols[2].slider(
        "Keep the most salient", 5, 60, 20, 5, format="%d%%", key=f"{prefix}_saliency_keep"
    )
    try:
        saliency = _saliency(model, result, f"{model_key(model)}|{clip_key}", target, method)
    except ValueError as error:
        st.info(f"{error} Choose occlusion instead.")
        return
    c = model.feature_config
    x = result.prepared.model_input[0, 0].numpy()
    st.plotly_chart(
        saliency_figure(
            x, saliency, c.sample_rate, c.hop_length, frame_offset=result.prepared.frame_offset
        ),
        key=f"{prefix}_saliency_chart",
    )
    mode = st.radio(
        "Play only the salient regions",
        PLAYBACK_MODES,
        horizontal=True,
        key=f"{prefix}_saliency_playback",
        format_func=lambda m: {
            "time": "gate time (keep the salient moments)",
            "time-frequency": "mask the spectrogram (salient cells only)",
        }[m],
    )
    audio = salient_audio(
        result.prepared.samples,
        c,
        saliency,
        keep_fraction=keep / 100,
        frame_offset=result.prepared.frame_offset,
        mode=mode,
        feature_kind=model.feature_kind,
    )
    st.audio(encode_wav(audio, c.sample_rate), format="audio/wav")
    st.caption(
        "Gating time silences every moment where no cell is salient. Masking multiplies the "
        "clip's STFT by the salient mel bands (spread back onto the FFT bins), keeps the "
        "original phase and inverts it, so you hear only those frequencies at those moments."
    )
