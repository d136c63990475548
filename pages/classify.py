"""Classify: give a trained model audio and see its answer, where in the clip, and why."""

import streamlit as st

from ui.audio_input import audio_source_picker
from ui.classify_batch import show_batch
from ui.classify_card import warn_if_unlike_training
from ui.classify_live import show_live
from ui.classify_model import model_picker
from ui.classify_result import (
    clip_digest,
    model_key,
    show_answer,
    show_saliency,
    start_with_a_spoken_digit,
)
from ui.classify_timeline import show_timeline

st.title("Classify")
st.caption(
    "Upload or record a clip and a trained model names its class. The clip is prepared exactly "
    "as the training clips were: the feature settings and normalisation travel with the model."
)

model = model_picker("classify")
if model is None:
    st.stop()

# The Live tab runs only while it is open: its microphone is a component that reports to the
# server as soon as it is drawn, which reran this page and could swallow a click on another
# page made at that moment (1 in 15 in a real browser; bench_class). A click on a tab reruns.
one_clip, many_clips, live = st.tabs(
    ["One clip", "Many clips", "Live"], key="classify_tab", on_change="rerun"
)

with one_clip:
    start_with_a_spoken_digit("classify")
    # Decoded straight to the model's rate: what you hear is what the model gets.
    clip = audio_source_picker("classify", sample_rate=model.sample_rate)
    if clip is not None:
        warn_if_unlike_training("classify", clip)
        result = show_answer("classify", model, clip)
        key = f"{model_key(model)}|{clip_digest(clip)}"
        show_timeline("classify", model, clip, key)
        show_saliency("classify", model, result, key)

with many_clips:
    show_batch("classify", model)

if live.open:
    with live:
        show_live("classify", model)
