"""Classify page, Live tab: the microphone classified continuously by the chosen model.

The stream goes through core.inference.streaming.LiveClassifier, which uses the timeline's own
window, feature and normalisation code: what the Live tab says about a sound is what the timeline
says about the same sound uploaded. Detected segments can be filed as training clips for the
Train page's "Record per class" data (st.session_state["train_clips"]).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.audio.clip import AudioError
from core.audio.io import load_audio
from core.audio.levels import encode_wav
from core.inference.classifier import InferenceModel, smooth_probabilities
from core.inference.streaming import (
    ClassifierSnapshot,
    LiveAnswer,
    LiveClassifier,
    LiveClassifierConfig,
)
from core.viz.audio import spectrogram_image
from core.viz.live import live_log_mel, timeline_image
from ui.classify_result import model_key
from ui.fingerprint import fingerprint
from ui.live_push import Shown
from ui.live_stream import LiveHandle, PushedAnswer, live_view, microphone, network_help

TIMELINE_SECONDS = 20.0  # the probability timeline shows the newest 20 s
TIMELINE_PIXELS = 640  # its picture's width without the class names
TRAIN_CLIPS_KEY = "train_clips"  # ui/train_dataset.py's per-class recordings
TRAIN_SEEN_KEY = "train_clips_seen"
TRAIN_NAMES_KEY = "train_rec_names"
TRAIN_RATE = 16000  # the Train page's recording rate
ANSWER_TITLE = "Hearing"  # above the answer, pushed or redrawn


def show_live(prefix: str, model: InferenceModel) -> None:
    """Settings, the microphone, and the live answer / spectrogram / timeline / segments."""
    st.caption(
        f"Press START and allow the microphone: every {model.window_seconds:.2f} s window of "
        "what it hears is classified, a new window every hop, exactly as the timeline "
        "classifies an uploaded clip."
    )
    cols = st.columns(3)
    hop = cols[0].slider(
        "Hop (s)", 0.1, 0.25, 0.25, 0.05, key=f"{prefix}_live_hop", help="A new answer this often."
    )
    smooth = cols[1].slider(
        "Smoothing (windows)",
        1,
        8,
        3,
        key=f"{prefix}_live_smooth",
        help="The answer is the mean of this many newest windows.",
    )
    threshold = cols[2].slider(
        "Segment threshold", 0.0, 1.0, 0.6, 0.05, key=f"{prefix}_live_threshold"
    )
    trim = st.toggle(
        "Trim each window to its sound",
        value=True,
        key=f"{prefix}_live_trim",
        help="As the timeline: models trained on trimmed words (the digits) need "
        "it; switch off for models trained on clips with silence.",
    )
    config = LiveClassifierConfig(
        hop_seconds=float(hop),
        smooth_windows=int(smooth),
        threshold=float(threshold),
        trim_silence=bool(trim),
    )
    # Only the model, hop and trimming change what is computed per window: smoothing and the
    # threshold are read when answers and segments are drawn, so moving them keeps the stream.
    kind = f"{model_key(model)}|hop={config.hop_seconds}|trim={config.trim_silence}"
    handle = microphone(prefix, kind, lambda: LiveClassifier(model, config))
    network_help()
    if handle is None:
        return
    if handle.stream is not None:
        with handle.stream.lock:
            handle.stream.analyser.config = config
    live_view(
        handle,
        _draw_answer,
        lambda snapshot: _draw_history(prefix, handle, snapshot, int(smooth)),
        waiting="Nothing heard yet. Press START, allow the microphone and say a digit.",
        push=PushedAnswer(f"{prefix}_live_answer", ANSWER_TITLE, answer_shown),
    )
    if handle.push_failed:
        st.caption(
            "The answer is redrawn by the page a few times a second: this browser could not "
            f"reach the server's live-answer route ({handle.push_failed})."
        )
    if _streaming(handle):
        _segment_picker(prefix, handle)


def _streaming(handle: LiveHandle) -> bool:
    return handle.stream is not None and handle.stream.running


def _segment_picker(prefix: str, handle: LiveHandle) -> None:
    """While streaming, the segments' picker (play, save as a training clip) in a fragment of
    its own that reruns only when it is used, not with the history every second: redrawn
    each second, its select box, player and text input were 70-85 % of the browser's main
    thread in long tasks (a Chromium trace, 15 s: 2.0-2.8 s with them, 0.3-0.9 s without),
    time in which the pushed answer could not be drawn."""

    @st.fragment
    def picker() -> None:
        st.button("Show the newest segments", key=f"{prefix}_live_segments_refresh")
        snapshot = handle.snapshot
        if snapshot is None or not snapshot.segments:
            st.caption("Segments heard so far can be played and saved here.")
            return
        _segment_controls(prefix, snapshot)

    picker()


def answer_lines(answer: LiveAnswer | None) -> tuple[str, str]:
    """The smoothed answer in a word ("…", "silence", "7", "7?") and the line under it
    ("" when there is nothing to add): the pushed answer and the redrawn one say the same."""
    if answer is None:
        return "…", "The first window needs a full window of audio."
    if answer.silent:
        return answer.headline, ""
    if answer.unsure:
        return answer.headline, f"Unsure: {answer.reason}."
    return answer.headline, f"{answer.confidence:.0%} probability (mean of the newest windows)"


def answer_shown(answer: LiveAnswer | None) -> Shown:
    """The pushed answer's text (ui/live_push.py): answer_lines, no needle."""
    return Shown(*answer_lines(answer))


def _draw_answer(answer: LiveAnswer | None) -> None:
    """The smoothed answer now, when it is not pushed (stopped, or no route to the browser);
    redrawn often, so nothing here may cost more than a metric."""
    headline, detail = answer_lines(answer)
    if answer is None:
        st.metric(ANSWER_TITLE, headline, help=detail)
        return
    st.metric(ANSWER_TITLE, headline)
    if detail:
        st.caption(detail)


def _draw_history(
    prefix: str, handle: LiveHandle, snapshot: ClassifierSnapshot, smooth: int
) -> None:
    """The scrolling spectrogram, the probability timeline and the detected segments (their
    picker too once stopped; while streaming it is a fragment of its own, _segment_picker)."""
    mel = live_log_mel(snapshot.audio, snapshot.sample_rate)
    st.image(spectrogram_image(mel), width="stretch")
    shown_seconds = snapshot.audio.size / snapshot.sample_rate
    st.caption(
        f"The last {shown_seconds:.0f} s ({snapshot.stream_seconds:.1f} s streamed), newest at "
        "the right; mel bands from low (bottom) to high, brighter = louder (black: -100 dBFS, "
        "pale yellow: 0 dBFS)."
    )
    result = snapshot.result
    if len(result.starts_seconds):
        since = snapshot.stream_seconds - TIMELINE_SECONDS
        keep = result.centres_seconds >= since
        centres = result.centres_seconds[keep]
        probs = smooth_probabilities(result.probabilities, smooth)[keep]
        # Each segment as the kept windows whose centres it spans (first, last inclusive).
        spans = [
            (
                int(np.searchsorted(centres, s.start_seconds)),
                int(np.searchsorted(centres, s.end_seconds, side="right")) - 1,
                s.label,
            )
            for s, _ in snapshot.segments
            if s.end_seconds >= since
        ]
        columns = max(1, round(TIMELINE_SECONDS / result.hop_seconds))
        st.image(
            timeline_image(
                probs,
                result.labels,
                silent=result.silent[keep],
                segments=spans,
                columns=columns,
                window_pixels=max(2, round(TIMELINE_PIXELS / columns)),
            )
        )
        st.caption(
            f"Class probabilities over the last {TIMELINE_SECONDS:.0f} s (mean of {smooth} "
            "window(s)), newest at the right: brighter = more probable, dark = silence; red "
            "outlines: the segments heard."
        )
    heard = " · ".join(s.label for s, _ in snapshot.segments) or "nothing yet"
    st.markdown(f"**Heard so far:** {heard}")
    if snapshot.segments and not _streaming(handle):
        _segment_controls(prefix, snapshot)


def _segment_controls(prefix: str, snapshot: ClassifierSnapshot) -> None:
    """Pick a detected segment, play it, file it as a training clip under a class."""
    segments = snapshot.segments
    # Options are start times, not positions: the list is capped, so a position would point
    # at another segment once older ones drop out.
    by_start = {round(s.start_seconds, 3): (s, audio) for s, audio in segments}
    chosen = st.selectbox(
        "Segment",
        list(reversed(by_start)),
        key=f"{prefix}_live_segment",
        format_func=lambda t: (
            f"{by_start[t][0].label} at {t:.2f}–{by_start[t][0].end_seconds:.2f} s "
            f"({by_start[t][0].confidence:.0%})"
        ),
    )
    if chosen not in by_start:
        return
    segment, samples = by_start[chosen]
    if samples.size == 0:
        st.warning("This segment's audio has left the buffer.")
        return
    st.audio(encode_wav(samples, snapshot.sample_rate), format="audio/wav")
    left, right = st.columns([2, 1])
    name = left.text_input(
        "File it under the class",
        value=segment.label,
        # One key per segment: a keyed text input keeps its first value, so a shared key
        # would file every later segment under the first segment's label.
        key=f"{prefix}_live_class_{chosen:.3f}",
        max_chars=40,
    )
    if right.button("Save as a training clip", key=f"{prefix}_live_save"):
        _save_clip(name.strip(), samples, snapshot.sample_rate)


def _save_clip(name: str, samples: np.ndarray, sample_rate: int) -> None:
    """Add the clip to the Train page's "Record per class" data under `name`."""
    if not name:
        st.error("Give the class a name first.")
        return
    wav = encode_wav(samples, sample_rate)
    digest = fingerprint(wav)
    try:
        clip = load_audio(wav, name=f"live-{name}-{digest[:6]}.wav", sample_rate=TRAIN_RATE)
    except AudioError as error:
        st.error(f"The segment could not be saved: {error}")
        return
    clips = st.session_state.setdefault(TRAIN_CLIPS_KEY, {}).setdefault(name, {})
    st.session_state.setdefault(TRAIN_SEEN_KEY, {}).setdefault(name, set()).add(digest)
    clips[digest] = clip
    names = [n.strip() for n in st.session_state.get(TRAIN_NAMES_KEY, "").split(",") if n.strip()]
    if name not in names:
        st.session_state[TRAIN_NAMES_KEY] = ", ".join([*names, name])
    st.success(
        f"Saved: class '{name}' has {len(clips)} clip(s) on the Train page "
        "(data source: Record per class)."
    )
