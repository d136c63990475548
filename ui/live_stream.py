"""The Live tabs' microphone: a streamlit-webrtc streamer feeding one LiveStream per session.

The browser sends its microphone over WebRTC (SENDONLY: nothing comes back). Each batch of audio
frames reaches `on_frames` in a streamlit-webrtc thread, which only queues it on the session's
`core.inference.streaming.LiveStream` (never st.*: there is no script context there). The stream's own
worker analyses; the page redraws the latest snapshot from an `st.fragment(run_every=...)`.
The process-wide `stream_slots()` caps concurrent streams (AUDIO_DL_MAX_STREAMS) and keeps
one stream per browser session; ICE servers come from AUDIO_DL_ICE_SERVERS (none by default:
on one network the browser reaches the server directly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from core.inference.streaming import LiveStream, StreamError, rtc_configuration, stream_slots

REFRESH_SECONDS = 0.5  # how often the live views redraw while the microphone streams
# The browser's voice-call processing would change what the model hears (training clips had
# none of it) and bend a tuner's pitch: ask for the microphone as it is.
RAW_MICROPHONE = {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False}


@dataclass
class LiveHandle:
    """What a session's Live tab keeps between reruns (a plain object in session_state).

    stream: the running LiveStream or None. kind: what it analyses (model and settings), so a
    change of model or settings starts a fresh analyser. snapshot: the last picture drawn,
    kept after the stream stops so segments can still be played and saved.
    """

    stream: LiveStream | None = None
    kind: str = ""
    snapshot: Any = None


def _frame_pusher(handle: LiveHandle):
    """The queued-frames callback: runs in a WebRTC thread, so it only hands frames on.

    The queued form gets every frame that arrived since the last call; the single-frame
    callback would only see the newest of them (fine for video, holes in audio).
    """

    async def on_frames(frames):
        stream = handle.stream
        if stream is not None:
            for frame in frames:
                stream.push(
                    frame.to_ndarray(),
                    frame.sample_rate,
                    channels=len(frame.layout.channels),
                    interleaved=not frame.format.is_planar,
                    time_seconds=frame.time,
                )
        return frames

    return on_frames


def microphone(prefix: str, kind: str, make_analyser: Callable[[], Any]) -> LiveHandle | None:
    """START / STOP for the browser's microphone; opens or closes the session's stream.

    Returns the handle (its snapshot may hold the last stream's results) or None when the
    server's network settings are broken (the page shows why).
    """
    handle: LiveHandle = st.session_state.setdefault(f"{prefix}_live_handle", LiveHandle())
    try:
        rtc = rtc_configuration()
        slots = stream_slots()
    except StreamError as error:
        st.error(f"Live listening is not available: {error}")
        return None
    if slots.capacity == 0:
        st.info("Live listening is switched off on this server (AUDIO_DL_MAX_STREAMS=0).")
        return handle
    if not _browser_session():
        st.info("The microphone streams from a browser; this session has none (a test run).")
        return handle
    context = webrtc_streamer(
        key=f"{prefix}_live_mic",
        mode=WebRtcMode.SENDONLY,
        queued_audio_frames_callback=_frame_pusher(handle),
        media_stream_constraints={"audio": RAW_MICROPHONE, "video": False},
        rtc_configuration=rtc,
    )
    owner = st.session_state.get("session_id", "anonymous")
    if context.state.playing:
        stream = handle.stream
        if stream is None or not stream.running or handle.kind != kind:
            handle.stream = slots.open(owner, make_analyser())
            handle.kind = kind
            if handle.stream is None:
                st.error(
                    f"The server is already listening to {slots.capacity} microphones, its "
                    "limit (AUDIO_DL_MAX_STREAMS). Press STOP and try again in a minute."
                )
    elif handle.stream is not None:
        if handle.stream.running:
            handle.snapshot = handle.stream.snapshot()  # the last picture stays on screen
        slots.close(owner)
        handle.stream = None
    return handle


def _browser_session() -> bool:
    """False under AppTest: its runtime is a stand-in without the sessions WebRTC signals to."""
    from streamlit.runtime import Runtime

    try:
        return type(Runtime.instance()) is Runtime
    except RuntimeError:  # bare mode: no runtime at all
        return False


def live_view(handle: LiveHandle, draw: Callable[[Any], None]) -> None:
    """Redraw `draw(snapshot)` every REFRESH_SECONDS while streaming, once otherwise."""
    streaming = handle.stream is not None and handle.stream.running

    @st.fragment(run_every=REFRESH_SECONDS if streaming else None)
    def _view() -> None:
        stream = handle.stream
        if stream is not None and stream.running:
            handle.snapshot = stream.snapshot()
        elif stream is not None and stream.error:
            st.error(stream.error)
        draw(handle.snapshot)

    _view()


def network_help() -> None:
    """How the stream reaches the server, for the teacher running a class server."""
    with st.expander("Microphone not connecting? (network settings)"):
        st.markdown(
            "The microphone streams to this server over WebRTC. On `localhost` and on a class "
            "server in the same network it connects directly, without any outside service. "
            "Across networks (students at home, a server in the cloud) the server needs a "
            "STUN or TURN server: start it with `AUDIO_DL_ICE_SERVERS` set to a JSON list such "
            'as `[{"urls": ["stun:stun.example.org:3478"]}]`. `AUDIO_DL_MAX_STREAMS` (default '
            "8) caps how many microphones one server analyses at once. The browser only "
            "allows the microphone on `localhost` or over HTTPS."
        )
