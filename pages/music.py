"""Music analysis: see and hear what a piece is made of.

One shared, cached analysis per clip feeds every view; the view and display controls only
choose what to draw, so moving them recomputes nothing.
"""

import streamlit as st

from ui import music_sections as sections
from ui.audio_input import audio_source_picker
from ui.music_live import show_live

st.title("Music analysis")
st.markdown(
    "Pick a clip and take it apart: its spectrum, harmony, rhythm, key, melody and structure. "
    "Every view shares one time axis: zoom once, every picture follows."
)

if (
    st.segmented_control(
        "Listen to", ["A clip", "Live"], default="A clip", required=True, key="music_source"
    )
    == "Live"
):
    show_live("music")
    st.stop()

sections.default_to_music_clip()
clip = audio_source_picker(
    "music", sample_rate=sections.CONFIG.sample_rate, max_seconds=sections.CONFIG.max_seconds
)
if clip is None:
    st.stop()

with st.spinner("Analysing..."):
    analysis = sections.analysis_for(clip)
    if analysis is None:
        st.stop()
    sections.summary_card(analysis)

view = st.segmented_control(
    "View", sections.VIEWS, default=sections.VIEWS[0], required=True, key="music_view"
)
x_range, colors = sections.display_controls(analysis)
sections.RENDERERS[view](analysis, x_range, colors)
