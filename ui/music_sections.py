"""Sections of the Music analysis page: one function per view, each drawing from the shared,
cached `MusicAnalysis` so that moving a display control only redraws.

Widget keys carry the page prefix `music_`.
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from core.audio.clip import AudioClip
from core.audio.levels import encode_wav
from core.music import (
    DEFAULT_PROFILES,
    HOP_CHOICES,
    MEAN_OF_ALL,
    N_FFT_CHOICES,
    PROFILE_CHOICES,
    SPECTROGRAM_SCALES,
    WINDOWS,
    AnalysisConfig,
    MusicAnalysis,
    NotComputable,
    export_csv,
    export_json,
    prepare_signal,
    profile_template,
)
from core.viz import music as viz
from ui.audio_input import builtin_clips
from ui.fingerprint import fingerprint

CONFIG = AnalysisConfig()
VIEWS = (
    "Waveform",
    "Spectrogram",
    "Chroma & MFCC",
    "Spectral features",
    "Rhythm",
    "Key",
    "Pitch",
    "Harmonic / percussive",
    "Structure",
)
COLORSCALES = ("Magma", "Viridis", "Cividis", "Greys", "Turbo")
SCALE_LABELS = {"linear": "linear", "log": "log-frequency", "mel": "mel", "cqt": "CQT"}
Range = tuple[float, float]


@st.cache_resource(max_entries=4, show_spinner=False)
def _shared_analysis(digest: str, config: AnalysisConfig, _y: np.ndarray) -> MusicAnalysis:
    # One lazily filled analysis per (clip, config), shared read-only by every session: its
    # features are pure functions of the clip, and it guards itself with a lock.
    return MusicAnalysis(_y, config)


def default_to_music_clip() -> None:
    """Open on a short musical clip (the first built-in is speech); the student can change it."""
    labels = [label for label in builtin_clips() if "trumpet" in label.lower()]
    if labels:
        st.session_state.setdefault("music_audio_builtin", labels[0])


def analysis_for(clip: AudioClip) -> MusicAnalysis | None:
    """The cached analysis of the picked clip, or None after showing why there is none."""
    try:
        y, notices = prepare_signal(clip.samples, clip.sample_rate, CONFIG)
    except NotComputable as error:
        st.error(str(error))
        return None
    for notice in notices:
        st.info(notice)
    digest = fingerprint(y)
    return _shared_analysis(digest, CONFIG, y)


@st.cache_data(max_entries=16, show_spinner=False)
def _wav(digest: str, sample_rate: int, _samples: np.ndarray) -> bytes:
    return encode_wav(_samples, sample_rate)


def play(samples: np.ndarray, sample_rate: int, tag: str, x_range: Range, caption: str) -> None:
    """st.audio of samples from the zoom start; WAV bytes are cached by content."""
    # A strided fingerprint: hashing every sample of a long clip would cost each rerun.
    digest = fingerprint(samples, max_values=65536) + tag
    st.caption(caption)
    st.audio(_wav(digest, sample_rate, samples), format="audio/wav", start_time=int(x_range[0]))


def _chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config={"displaylogo": False})


def chosen_key_profiles() -> str:
    """The profile family picked in the Key view (the default until the student picks one).

    Streamlit drops a widget's value on a run that does not draw it, so the choice is
    written back here, before the Key view draws its selectbox: it survives a visit to
    another view, and the summary card shows the key of the family the student chose.
    """
    choice = st.session_state.get("music_key_profiles", DEFAULT_PROFILES)
    choice = choice if choice in PROFILE_CHOICES else DEFAULT_PROFILES
    st.session_state["music_key_profiles"] = choice
    return choice


def summary_card(analysis: MusicAnalysis) -> None:
    """Duration, tempo, key, loudness, then CSV / JSON downloads built only when clicked.

    The key is the one found with the profile family chosen in the Key view.
    """
    profiles = chosen_key_profiles()
    summary = analysis.summary(key_profiles=profiles)
    with st.container(border=True):
        cols = st.columns(4)
        cols[0].metric("Duration", f"{summary['duration_seconds']:.1f} s")
        cols[1].metric(
            "Tempo", "—" if summary["tempo_bpm"] is None else f"{summary['tempo_bpm']:.1f} BPM"
        )
        key = "—" if summary["key"] is None else summary["key"]
        conf = summary["key_confidence"]
        cols[2].metric(
            "Key",
            key,
            None if conf is None else f"confidence {conf:.2f}" + (" (low)" if conf < 0.5 else ""),
            delta_color="off",
            delta_arrow="off",
            help=f"Found with the {profiles} key profiles and the opening and final bass "
            "(choose the profiles in the Key view).",
        )
        cols[3].metric(
            "Loudness (RMS)",
            f"{summary['rms_dbfs']:.1f} dBFS",
            f"peak {summary['peak_dbfs']:.1f} dBFS",
            delta_color="off",
            delta_arrow="off",
        )
        for sentence in analysis.limitations().values():
            st.caption(f":material/info: {sentence}")
        left, right = st.columns(2)
        left.download_button(
            "Download features (CSV)",
            functools.partial(export_csv, analysis),
            "music_features.csv",
            mime="text/csv",
            key="music_download_csv",
        )
        right.download_button(
            "Download features (JSON)",
            functools.partial(export_json, analysis, profiles),
            "music_features.json",
            mime="application/json",
            key="music_download_json",
        )


def display_controls(analysis: MusicAnalysis) -> tuple[Range, str]:
    """Zoom (a time range shared by every view) and colour scale: display only."""
    duration = max(round(analysis.duration_seconds, 1), 0.1)
    left, right = st.columns([3, 1])
    x_range = left.slider(
        "Zoom (seconds)", 0.0, duration, (0.0, duration), step=0.1, key="music_zoom"
    )
    colors = right.selectbox("Colour scale", COLORSCALES, key="music_colors")
    if x_range[1] - x_range[0] < 0.1:
        x_range = (x_range[0], x_range[0] + 0.1)
    return (float(x_range[0]), float(x_range[1])), colors


def waveform(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    st.caption(
        "The RMS envelope is the loudness over time: the root mean square of each 93 ms frame."
    )
    _chart(
        viz.waveform_figure(analysis.y, analysis.sr, analysis.rms, analysis.times, x_range),
        "music_fig_wave",
    )


def spectrogram(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    c1, c2, c3, c4 = st.columns(4)
    n_fft = c1.select_slider(
        "n_fft (window length)", N_FFT_CHOICES, value=CONFIG.n_fft, key="music_n_fft"
    )
    hop = c2.select_slider("hop", HOP_CHOICES, value=CONFIG.hop_length, key="music_hop")
    window = c3.selectbox("Window", WINDOWS, key="music_window")
    scale = c4.radio(
        "Frequency scale",
        SPECTROGRAM_SCALES,
        format_func=SCALE_LABELS.get,
        horizontal=True,
        key="music_scale",
    )
    try:
        view = analysis.spectrogram_view(n_fft, hop, window, scale)
    except NotComputable as error:
        st.error(str(error))
        return
    for notice in view.notices:
        st.info(notice)
    m1, m2, m3 = st.columns(3)
    m1.metric("Δt between frames", f"{view.frame_step_seconds * 1000:.1f} ms")
    m2.metric("Window span (time smear)", f"{view.window_seconds * 1000:.1f} ms")
    m3.metric(
        "Δf between bins", "varies (constant-Q)" if view.scale == "cqt" else f"{view.bin_hz:.1f} Hz"
    )
    st.caption(
        "The trade-off: a window of n_fft samples lasts n_fft / sr seconds and splits frequency "
        "into bins sr / n_fft Hz apart. Doubling n_fft halves Δf (sharper pitch) but doubles the "
        "time smear (blurrier onsets). The hop only sets how often a frame is taken. The CQT "
        "gives each bin a window matched to its frequency: long for bass, short for treble."
    )
    _chart(viz.spectrogram_figure(view, x_range, colors), "music_fig_spec")


def chroma_mfcc(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    st.caption(
        "Chroma folds every octave onto the 12 pitch classes; CENS smooths and quantises it, "
        "which makes it robust for matching. MFCC summarise the spectral envelope (timbre)."
    )
    t = analysis.times
    for name, chroma in (
        ("STFT", analysis.chroma_stft),
        ("CQT", analysis.chroma_cqt),
        ("CENS", analysis.chroma_cens),
    ):
        _chart(
            viz.chroma_figure(chroma, t, f"Chroma ({name})", x_range, colors),
            f"music_fig_chroma_{name}",
        )
    _chart(viz.mfcc_figure(analysis.mfcc, t, x_range), "music_fig_mfcc")


def spectral(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    st.caption(
        "Centroid: the spectrum's centre of mass (brightness). Bandwidth: its spread. Roll-off: "
        f"the frequency below which {CONFIG.rolloff_percent:.0%} of the energy lies. Flatness: 1 "
        "for noise, near 0 for tones. ZCR: how often the waveform crosses zero."
    )
    view = analysis.spectrogram_view(CONFIG.n_fft, CONFIG.hop_length, CONFIG.window, "linear")
    fig = viz.spectral_features_figure(
        view, analysis.spectral_features(), analysis.times, x_range, colors
    )
    _chart(fig, "music_fig_spectral")


def rhythm(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    try:
        choice = analysis.tempo_levels
    except NotComputable as error:
        st.warning(str(error))
        choice = None
    onsets = analysis.onset_times if not analysis.is_silent else np.array([])
    beats, shown, other = None, None, None
    if choice is not None:
        levels = choice.levels
        cols = st.columns(len(levels))
        for col, level, label in zip(
            cols, levels, ("Beat (picked)", "Other metrical level"), strict=False
        ):
            col.metric(
                label,
                f"{level.bpm:.1f} BPM",
                f"pulse strength {level.strength:.3f}",
                delta_color="off",
                delta_arrow="off",
            )
        st.caption(choice.reason())
        index = st.radio(
            "Metrical level to click",
            range(len(levels)),
            format_func=lambda i: f"{levels[i].bpm:.1f} BPM" + (" (picked)" if i == 0 else ""),
            horizontal=True,
            key="music_metrical_level",
        )
        shown = levels[index].bpm
        other = levels[1 - index].bpm if len(levels) == 2 else None
        try:
            beats = analysis.beats_at(shown)
        except NotComputable as error:
            st.warning(str(error))
        if beats is not None:
            st.markdown(f"**{shown:.1f} BPM**: {beats.size} beats tracked, {onsets.size} onsets.")
            play(
                analysis.with_clicks(bpm=shown),
                analysis.sr,
                f"clicks{shown:.3f}",
                x_range,
                f"The clip with a click on every beat at {shown:.1f} BPM: do they line up?",
            )
    _chart(
        viz.onset_figure(analysis.times, analysis.onset_envelope, onsets, beats, x_range),
        "music_fig_onsets",
    )
    _chart(
        viz.tempogram_figure(
            analysis.tempogram,
            analysis.times,
            analysis.tempogram_bpm,
            shown,
            x_range,
            colors,
            other_level_bpm=other,
        ),
        "music_fig_tempogram",
    )


def key(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    left, right = st.columns([2, 1])
    profiles = left.selectbox(
        "Key profiles",
        PROFILE_CHOICES,
        key="music_key_profiles",
        help="Each family says how much each scale degree belongs to a key.",
    )
    window = right.slider("Key-gram window (s)", 4, 30, 8, key="music_keygram_window")
    try:
        estimate = analysis.key_for(profiles)
    except NotComputable as error:
        st.warning(str(error))
        return
    text = f"**{estimate.name}** (confidence {estimate.confidence:.2f}, {profiles} profiles)"
    if estimate.is_confident:
        st.success(text, icon=":material/music_note:")
    else:
        st.warning(
            f"{text}: low confidence. The clip's pitch classes are nearly uniform or match no key "
            "profile well, so treat this key as a guess (noise, speech and drums have no key)."
        )
    with st.expander("Why this key?", key="music_why_key", icon=":material/help:"):
        decided = (
            "averaged over every family"
            if profiles == MEAN_OF_ALL
            else f"with the {profiles} profiles"
        )
        st.markdown(
            "The clip's notes are found first: the harmonic part of the CQT (drum hits filtered "
            "out) is explained as notes with decaying overtones (non-negative least squares), so "
            "a C's overtone on G does not count as a G. Summed over the clip this gives one "
            "number per pitch class. Each of the 24 keys has a profile of how much each pitch "
            "class belongs to it; each key's profile is correlated with the clip's (Pearson r, "
            f"{decided}). A minor key and its relative major use the same seven notes, so the "
            "lowest note at the start and at the end (where pieces sit on their tonic) adds a "
            "bonus to the keys on it; the best total wins."
        )
        st.markdown(estimate.reason())
        st.dataframe(estimate.candidates(3), hide_index=True, key="music_key_candidates")
        st.caption(
            f"Best r = {estimate.correlation:.2f}, margin over the runner-up "
            f"{estimate.margin:.2f}, tonal strength of the profile {estimate.tonal_strength:.2f}."
        )
        template = profile_template(profiles, minor=estimate.key_index >= 12)
        _chart(
            viz.key_profile_figure(estimate.profile, estimate.key_index, template),
            "music_fig_key_profile",
        )
        _chart(
            viz.key_correlation_figure(estimate.correlations, estimate.key_index),
            "music_fig_key_corr",
        )
    try:
        gram = analysis.keygram(profiles, float(window))
    except NotComputable as error:
        st.caption(f":material/info: {error}")
        return
    regions = [f"{a:.0f}-{b:.0f} s {name}" for a, b, name in gram.regions() if b - a >= window / 2]
    st.markdown(
        "**Key over time** (a modulating piece changes colour): "
        + (", ".join(regions) or "one key")
    )
    _chart(viz.keygram_figure(gram, x_range, colors), "music_fig_keygram")


def pitch(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    # Its own module (pYIN beside the networks, transcription); imported here, not at the top,
    # because ui.music_pitch uses this module's `play`.
    from ui.music_pitch import show

    show(analysis, x_range, colors)


def harmonic_percussive(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    with st.spinner("Separating harmonic and percussive parts..."):
        harmonic, percussive = analysis.hpss
    st.caption(
        "Median filtering the spectrogram along time keeps sustained tones (harmonic); along "
        "frequency it keeps broadband hits (percussive)."
    )
    left, right = st.columns(2)
    with left:
        play(harmonic, analysis.sr, "harmonic", x_range, "Harmonic part")
    with right:
        play(percussive, analysis.sr, "percussive", x_range, "Percussive part")
    _chart(viz.hpss_figure(harmonic, percussive, analysis.sr, x_range), "music_fig_hpss")


def structure(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    try:
        result = analysis.structure
    except NotComputable as error:
        st.warning(str(error))
        return
    st.caption(
        "Each pixel compares two moments (chroma + MFCC, cosine similarity): repeated sections "
        "show as bright blocks and stripes. Novelty peaks where one block ends and another starts."
    )
    st.markdown(
        "Segment boundaries: "
        + (", ".join(f"{b:.1f} s" for b in result.boundaries) or "none found")
    )
    _chart(viz.ssm_figure(result, colors), "music_fig_ssm")
    _chart(viz.novelty_figure(result, x_range), "music_fig_novelty")


RENDERERS = {
    "Waveform": waveform,
    "Spectrogram": spectrogram,
    "Chroma & MFCC": chroma_mfcc,
    "Spectral features": spectral,
    "Rhythm": rhythm,
    "Key": key,
    "Pitch": pitch,
    "Harmonic / percussive": harmonic_percussive,
    "Structure": structure,
}
