"""Train page: augmentation switches and strengths, with an audition of one augmented clip.

Each augmentation is a checkbox (train_aug_<name>) and a strength slider
(train_aug_<name>_strength). "Audition" applies one of them (or all that are on) to the
data set's first clip: listen to the waveform changes, look at the spectrogram changes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from core.audio.levels import encode_wav
from core.data.augment import AugmentConfig, preview_augmentation
from core.viz.audio import spectrogram_figure

# name: (label, AugmentConfig field, default on, slider (low, high, step, default), help)
AUGMENTS = {
    "gain": ("Gain", "gain_db", False, (1.0, 20.0, 1.0, 6.0), "random loudness change, ± dB"),
    "noise": (
        "Noise",
        "noise_snr_db",
        False,
        (0.0, 40.0, 1.0, 20.0),
        "white noise at this SNR (dB): lower = louder noise",
    ),
    "speed": (
        "Speed",
        "speed",
        False,
        (0.02, 0.3, 0.02, 0.1),
        "play faster or slower by up to this share (pitch too)",
    ),
    "eq": (
        "Equaliser",
        "eq_db",
        True,
        (1.0, 12.0, 1.0, 6.0),
        "log-mel only: a random smooth EQ across the bands, three curves of up to ± this many "
        "dB (another microphone or room), so the network learns the word, not the recording",
    ),
    "freq_warp": (
        "Frequency warp",
        "freq_warp",
        True,
        (0.02, 0.3, 0.02, 0.1),
        "stretch the mel axis by up to this share",
    ),
    "time_stretch": (
        "Time stretch",
        "time_stretch",
        True,
        (0.02, 0.3, 0.02, 0.1),
        "stretch the time axis by up to this share",
    ),
    "time_shift": (
        "Time shift",
        "time_shift",
        True,
        (0.02, 0.5, 0.02, 0.1),
        "shift by up to this share of the clip",
    ),
    "time_masks": (
        "Time masks",
        "time_masks",
        True,
        (1, 4, 1, 2),
        "SpecAugment: blank stretches of frames (count)",
    ),
    "freq_masks": (
        "Frequency masks",
        "freq_masks",
        True,
        (1, 4, 1, 2),
        "SpecAugment: blank bands of mel bins (count)",
    ),
    "mixup": (
        "Mixup",
        "mixup_alpha",
        False,
        (0.1, 1.0, 0.1, 0.2),
        "blend pairs of clips and their labels (α)",
    ),
}
ALL = "all that are on"


def augment_settings(kind: str = "logmel") -> AugmentConfig:
    """The switches and sliders; returns the AugmentConfig they describe.

    kind: the feature kind; the equaliser adds decibels, so it is offered for "logmel" only.
    The widgets keep their values while not drawn (`persist_state`): the page draws them only
    while their expander is open and reads them with `augment_from_session` otherwise.
    """
    _default_widget_values()
    columns = st.columns(3)
    for n, (name, (label, _field, _on, (low, high, step, _default), help_text)) in enumerate(
        AUGMENTS.items()
    ):
        usable = name != "eq" or kind == "logmel"
        with columns[n % 3]:
            enabled = st.checkbox(
                label,
                key=f"train_aug_{name}",
                help=help_text,
                disabled=not usable,
                persist_state="session",
            )
            st.slider(
                f"{label} strength",
                low,
                high,
                step=step,
                key=f"train_aug_{name}_strength",
                disabled=not (enabled and usable),
                label_visibility="collapsed",
                persist_state="session",
            )
    return augment_from_session(kind)


def augment_from_session(kind: str = "logmel") -> AugmentConfig:
    """The AugmentConfig the switches and sliders describe, read from the session (whether
    or not they are drawn in this run)."""
    _default_widget_values()
    values = dataclasses.asdict(AugmentConfig.off())
    for name, (_label, field, *_rest) in AUGMENTS.items():
        usable = name != "eq" or kind == "logmel"
        if usable and st.session_state[f"train_aug_{name}"]:
            values[field] = st.session_state[f"train_aug_{name}_strength"]
            if name in ("time_masks", "freq_masks"):
                values[field.replace("masks", "mask_fraction")] = (
                    0.1 if name == "time_masks" else 0.15
                )
    return AugmentConfig(**values)


def augment_summary(config: AugmentConfig) -> str:
    """The augmentations that are on, by their labels ("none" when every one is off)."""
    on = [label.lower() for label, field, *_rest in AUGMENTS.values() if _is_on(config, field)]
    return ", ".join(on) or "none"


def _default_widget_values() -> None:
    # The widgets take their values from the session (set by the recipe chosen from the data,
    # ui.train_settings.apply_recipe_defaults), falling back to the engine's defaults.
    for key, value in augment_widget_values(AugmentConfig()).items():
        st.session_state.setdefault(key, value)


def augment_widget_values(config: AugmentConfig) -> dict[str, bool | int | float]:
    """The switches and strength sliders that show `config`: {widget key: value}.

    An augmentation that is off keeps its slider at the usual strength, so switching it on
    starts there; a strength outside the slider's range is brought to its nearest end.
    """
    values: dict[str, bool | int | float] = {}
    for name, (_label, field, _on, (low, high, step, default), _help) in AUGMENTS.items():
        enabled = _is_on(config, field)
        strength = getattr(config, field) if enabled else default
        strength = min(high, max(low, strength))
        strength = low + round((strength - low) / step) * step  # on the slider's steps
        values[f"train_aug_{name}"] = enabled
        values[f"train_aug_{name}_strength"] = (
            int(strength) if isinstance(step, int) else round(float(strength), 6)
        )
    return values


def only(config: AugmentConfig, name: str) -> AugmentConfig:
    """`config` with every augmentation but `name` switched off."""
    if name == ALL:
        return config
    field = AUGMENTS[name][1]
    values = dataclasses.asdict(AugmentConfig.off())
    values[field] = getattr(config, field)
    if name in ("time_masks", "freq_masks"):
        fraction = field.replace("masks", "mask_fraction")
        values[fraction] = getattr(config, fraction)
    return AugmentConfig(**values)


def audition(
    config: AugmentConfig,
    samples: np.ndarray | None,
    feature_config,
    kind: str,
    normalization: str,
    clip_frames: int,
) -> None:
    """Pick one augmentation that is on and hear / see it on the first clip."""
    enabled = [name for name, spec in AUGMENTS.items() if _is_on(config, spec[1])]
    if samples is None or not enabled:
        st.caption("Switch an augmentation on to audition it.")
        return
    options = enabled + [ALL]
    labels = {name: AUGMENTS[name][0] for name in enabled} | {ALL: ALL}
    pick = st.segmented_control(
        "Audition", options, format_func=labels.__getitem__, key="train_audition"
    )
    if pick is None:
        st.caption("Choose one to hear and see it on the first clip of the data set.")
        return
    seed = int(st.session_state.get("train_audition_seed", 0))
    if st.button("Another random draw", key="train_audition_again"):
        st.session_state["train_audition_seed"] = seed = seed + 1
    preview = preview_augmentation(
        samples,
        16000,
        augment=only(config, pick),
        feature_config=feature_config,
        kind=kind,
        normalization=normalization,
        clip_frames=clip_frames,
        seed=seed,
    )
    y_axis = "mfcc" if kind == "mfcc" else "mel"
    left, right = st.columns(2)
    for column, title, audio, feats, key in (
        (left, "original", preview.original_audio, preview.original_features, "train_aud_orig"),
        (
            right,
            f"augmented: {labels[pick]}",
            preview.augmented_audio,
            preview.augmented_features,
            "train_aud_aug",
        ),
    ):
        with column:
            st.caption(title)
            st.audio(encode_wav(audio, preview.sample_rate), format="audio/wav")
            figure = spectrogram_figure(
                feats,
                preview.sample_rate,
                feature_config.hop_length,
                y_axis=y_axis,
                height=200,
                colorbar_title="z",
            )
            st.plotly_chart(figure, key=key, config={"displayModeBar": False})
    st.caption(preview.note)


def _is_on(config: AugmentConfig, field: str) -> bool:
    value = getattr(config, field)
    if field == "noise_snr_db":  # 0 dB is a valid (very noisy) setting; None is off
        return value is not None
    return value > 0
