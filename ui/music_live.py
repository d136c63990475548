"""Music analysis page, Live tab: a tuner, a pitch line and a chroma / loudness meter on the
microphone, from core.inference.streaming.LiveTuner (YIN pitch, a periodicity check for
"is there a note")."""

from __future__ import annotations

import streamlit as st

from core.inference.streaming import LiveTuner, TunerConfig, TunerSnapshot
from core.viz.live import chroma_meter_figure, pitch_line_figure, tuner_figure
from ui.live_stream import LIVE_PLOT, live_view, microphone, network_help

NOTES_SHOWN = 24  # the newest notes listed under the pitch line
# The needle is a plotly gauge: a redraw costs the browser tens of ms, so four a second (a
# reading every 100 ms; guitar tuners move their needle about as often), not ten.
NEEDLE_REFRESH_SECONDS = 0.25


def show_live(prefix: str) -> None:
    """The microphone and the live tuner, pitch line, chroma and loudness."""
    st.caption(
        "Press START and allow the microphone, then sing, hum or play: the tuner shows the "
        "nearest note and how many cents (hundredths of a semitone) you are off it, the pitch "
        "line follows the melody and the meter shows which pitch classes sound and how loud."
    )
    seconds = st.slider("Pitch line (s)", 5, 30, 10, key=f"{prefix}_live_seconds")
    handle = microphone(prefix, "tuner", lambda: LiveTuner(TunerConfig()))
    network_help()
    if handle is None:
        return
    live_view(
        handle,
        lambda reading: st.plotly_chart(
            tuner_figure(reading), key=f"{prefix}_live_tuner", config=LIVE_PLOT
        ),
        lambda snapshot: _draw_history(prefix, snapshot, float(seconds)),
        widths=(1, 2),
        now_every_seconds=NEEDLE_REFRESH_SECONDS,
        waiting="Nothing heard yet. Press START, allow the microphone and play a note.",
    )


def _draw_history(prefix: str, snapshot: TunerSnapshot, seconds: float) -> None:
    """The chroma / loudness meter, the pitch line and the notes held (the tuner's needle
    beside them is redrawn faster by live_view)."""
    reading = snapshot.current
    if reading is not None:
        st.plotly_chart(
            chroma_meter_figure(reading.chroma, reading.rms_dbfs),
            key=f"{prefix}_live_chroma",
            config=LIVE_PLOT,
        )
    newest = reading.time_seconds if reading is not None else 0.0
    recent = [r for r in snapshot.readings if r.time_seconds > newest - seconds]
    st.plotly_chart(pitch_line_figure(recent), key=f"{prefix}_live_pitch", config=LIVE_PLOT)
    notes = " · ".join(snapshot.notes[-NOTES_SHOWN:]) or "none yet"
    st.markdown(f"**Notes held:** {notes}")
    st.caption(
        f"{snapshot.stream_seconds:.1f} s streamed; a note counts once it is held for "
        "three readings (0.3 s)."
    )
