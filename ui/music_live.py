"""Music analysis page, Live tab: a tuner, a pitch line and a chroma / loudness meter on the
microphone, from core.inference.streaming.LiveTuner (YIN pitch, a periodicity check for
"is there a note").

The tuner's reading is pushed to the browser (ui/live_push.py, look "needle": the note, its
Hz and cents, an SVG needle and the chroma / loudness meter drawn by the component, no rerun
per reading); where that is not possible the page redraws a plotly gauge with a fragment
and the meter with the history instead."""

from __future__ import annotations

import streamlit as st

from core.inference.streaming import (
    NOTE_NAMES,
    LiveTuner,
    TunerConfig,
    TunerReading,
    TunerSnapshot,
)
from core.viz.live import (
    CHROMA_COLOUR,
    IN_TUNE_BAND,
    IN_TUNE_CENTS,
    IN_TUNE_COLOUR,
    LOUDNESS_COLOUR,
    LOUDNESS_FLOOR_DBFS,
    OFF_TUNE_COLOUR,
    chroma_meter_figure,
    pitch_line_figure,
    pitch_line_image,
    tuner_dial,
    tuner_figure,
)
from ui.live_push import Shown
from ui.live_stream import (
    LIVE_PLOT,
    LiveHandle,
    PushedAnswer,
    live_view,
    microphone,
    network_help,
)

NOTES_SHOWN = 24  # the newest notes listed under the pitch line
# The fallback needle is a plotly gauge: a redraw costs the browser tens of ms, so four a
# second (a reading every 100 ms; guitar tuners move their needle about as often), not ten.
# The pushed needle moves with every reading.
NEEDLE_REFRESH_SECONDS = 0.25
TUNER_TITLE = "Tuner"  # above the pushed needle
NO_NOTE = "no note"  # the pushed headline while nothing is pitched
# The pushed needle's band and colours and its meter's: the plotly gauge's and bars'
# (core.viz.live), so pushed and redrawn read alike.
DIAL = {
    "inTuneCents": IN_TUNE_CENTS,
    "inTune": IN_TUNE_COLOUR,
    "offTune": OFF_TUNE_COLOUR,
    "band": IN_TUNE_BAND,
    "names": list(NOTE_NAMES),
    "chroma": CHROMA_COLOUR,
    "loudness": LOUDNESS_COLOUR,
    "floorDbfs": LOUDNESS_FLOOR_DBFS,
}
# Pixels: the title, the needle's dial, the note, the line under it and the meter.
NEEDLE_HEIGHT = 330


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
        lambda snapshot: _draw_history(prefix, handle, snapshot, float(seconds)),
        widths=(1, 2),
        now_every_seconds=NEEDLE_REFRESH_SECONDS,
        waiting="Nothing heard yet. Press START, allow the microphone and play a note.",
        push=PushedAnswer(
            f"{prefix}_live_needle",
            TUNER_TITLE,
            tuner_shown,
            look="needle",
            dial=DIAL,
            height=NEEDLE_HEIGHT,
        ),
    )
    if handle.push_failed:
        st.caption(
            "The tuner is redrawn by the page four times a second: this browser could not "
            f"reach the server's live-answer route ({handle.push_failed})."
        )


def tuner_shown(reading: TunerReading | None) -> Shown:
    """What the pushed needle shows of a reading: the note, "261.6 Hz · +2 cents", the needle
    and the chroma / loudness meter; "no note" (the needle parked) while nothing is pitched;
    "…" before the first."""
    if reading is None:
        return Shown("…", "The first reading needs 0.13 s of sound.")
    meter = {"chroma": tuple(float(v) for v in reading.chroma), "level_dbfs": reading.rms_dbfs}
    dial = tuner_dial(reading)
    if not dial.pitched:
        return Shown(NO_NOTE, "Play, sing or hum a note.", **meter)
    return Shown(
        dial.note,
        f"{dial.frequency_hz:.1f} Hz · {dial.cents:+.0f} cents",
        cents=dial.cents,
        in_tune=dial.in_tune,
        **meter,
    )


def _meter_pushed(handle: LiveHandle) -> bool:
    """The chroma / loudness meter moves with the pushed needle while the stream runs; the
    page draws it (plotly) only when stopped or when the push is unavailable."""
    stream = handle.stream
    running = stream is not None and stream.running
    return running and handle.push_stream is stream and not handle.push_failed


def _draw_history(prefix: str, handle: LiveHandle, snapshot: TunerSnapshot, seconds: float) -> None:
    """The pitch line and the notes held, and the chroma / loudness meter unless it is pushed
    with the needle (the needle beside them is pushed, or redrawn faster by live_view)."""
    reading = snapshot.current
    if reading is not None and not _meter_pushed(handle):
        st.plotly_chart(
            chroma_meter_figure(reading.chroma, reading.rms_dbfs),
            key=f"{prefix}_live_chroma",
            config=LIVE_PLOT,
        )
    newest = reading.time_seconds if reading is not None else 0.0
    recent = [r for r in snapshot.readings if r.time_seconds > newest - seconds]
    if handle.stream is not None and handle.stream.running:
        # A picture while it moves every second (cheap for the browser, whose main thread
        # also moves the pushed needle); the plotly line, with its hover, once stopped.
        st.image(pitch_line_image(recent, seconds=seconds), width="stretch")
        st.caption(f"Pitch over the last {seconds:.0f} s, newest at the right.")
    else:
        st.plotly_chart(pitch_line_figure(recent), key=f"{prefix}_live_pitch", config=LIVE_PLOT)
    notes = " · ".join(snapshot.notes[-NOTES_SHOWN:]) or "none yet"
    st.markdown(f"**Notes held:** {notes}")
    st.caption(
        f"{snapshot.stream_seconds:.1f} s streamed; a note counts once it is held for "
        "three readings (0.3 s)."
    )
