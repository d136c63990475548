"""The Live tabs' microphone: a streamlit-webrtc streamer feeding one LiveStream per session.

The browser sends its microphone over WebRTC (SENDONLY: nothing comes back). Each batch of audio
frames reaches `on_frames` in a streamlit-webrtc thread, which only queues it on the session's
`core.inference.streaming.LiveStream` (never st.*: there is no script context there). The
stream's own worker analyses; the page redraws the stream's history from an
`st.fragment(run_every=...)` (live_view) and shows the answer now either pushed to the browser
(ui/live_push.py: the label changes when the answer is ready, no rerun) or, where that is not
possible, redrawn by a second, faster fragment.
The process-wide `stream_slots()` caps concurrent streams (AUDIO_DL_MAX_STREAMS) and keeps
one stream per browser session; ICE servers come from AUDIO_DL_ICE_SERVERS (none by default:
on one network the browser reaches the server directly).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from core.inference.streaming import (
    AnswerClock,
    LiveStream,
    StreamError,
    gil_switch_seconds,
    rtc_configuration,
    stream_slots,
)
from ui import live_push

# How often the live views redraw while the microphone streams (the answer only where it is
# not pushed: the tuner, and the fallback). The answer is a few small
# elements read without copying audio: redrawn every 150 ms, a new answer (one per hop,
# 100-250 ms) reaches the screen ~75 ms later on average plus the page's round trip. Each
# redraw of a fragment costs the browser a re-render of the page (Streamlit's script-run
# state changes twice), so a shorter interval buys little: on this busy 2-core machine the
# browser's own time is most of the delay. The history (spectrogram, timeline, segments)
# costs the server ~25 ms and the browser more: once a second.
# tests/benchmarks/bench_live_browser.py
# measures both in a real browser.
ANSWER_REFRESH_SECONDS = 0.15
HISTORY_REFRESH_SECONDS = 1.0
# Plots redrawn while streaming are pictures, not tools: no hover, zoom or toolbar (a view
# that moves every second cannot be hovered), and no interaction layers to rebuild each time.
LIVE_PLOT = {"staticPlot": True}
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
    # The pushed answer (ui/live_push.py): the route's token for `stream`, and why pushing
    # failed in this browser ("" while it works; then the answer is redrawn by a fragment).
    push_token: str = ""
    push_stream: LiveStream | None = None
    push_failed: str = ""


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


def _track_ender(handle: LiveHandle):
    """The microphone track ended (STOP, a closed tab, a dropped connection, another page):
    keep the last picture and let the stream go now, not IDLE_TIMEOUT_SECONDS later. Runs in
    a WebRTC thread: no st.*, and no waiting (the worker frees its buffers and its slot as
    it ends, within a few hundredths of a second)."""

    def on_ended() -> None:
        stream = handle.stream
        if stream is not None and stream.running:
            handle.snapshot = stream.snapshot()
            stream.stop(timeout=0)

    return on_ended


def microphone(prefix: str, kind: str, make_analyser: Callable[[], Any]) -> LiveHandle | None:
    """START / STOP for the browser's microphone; opens or closes the session's stream.

    Returns the handle (its snapshot may hold the last stream's results) or None when the
    server's network settings are broken (the page shows why).
    """
    handle: LiveHandle = st.session_state.setdefault(f"{prefix}_live_handle", LiveHandle())
    try:
        rtc = rtc_configuration()
        slots = stream_slots()
        gil_switch_seconds()  # a bad AUDIO_DL_LIVE_GIL_SWITCH_MS is told here, not raised later
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
        on_audio_ended=_track_ender(handle),
        media_stream_constraints={"audio": RAW_MICROPHONE, "video": False},
        rtc_configuration=rtc,
    )
    owner = st.session_state.get("session_id", "anonymous")
    if context.state.playing:
        stream = handle.stream
        if stream is None or not stream.running or handle.kind != kind:
            handle.stream = slots.open(owner, make_analyser(), alive=_page_alive())
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
        live_push.close_channel(handle.push_token)
        handle.push_token, handle.push_stream = "", None
    st.caption(f"Microphones streaming on this server: {slots.active} of {slots.capacity}.")
    return handle


def _page_alive() -> Callable[[], bool]:
    """Whether this browser tab is still connected (its websocket open), for the stream's
    worker to ask: a closed tab frees its stream within ALIVE_CHECK_SECONDS instead of
    IDLE_TIMEOUT_SECONDS after its last frame. Runtime.is_active_session is thread-safe."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    runtime, context = Runtime.instance(), get_script_run_ctx()
    if context is None:
        return lambda: True
    session_id = context.session_id
    return lambda: runtime.is_active_session(session_id)


def _browser_session() -> bool:
    """False under AppTest: its runtime is a stand-in without the sessions WebRTC signals to."""
    from streamlit.runtime import Runtime

    try:
        return type(Runtime.instance()) is Runtime
    except RuntimeError:  # bare mode: no runtime at all
        return False


def live_view(
    handle: LiveHandle,
    draw_now: Callable[[Any], None],
    draw_history: Callable[[Any], None],
    *,
    widths: tuple[int, int] = (1, 3),
    waiting: str = "Nothing heard yet. Press START and allow the microphone.",
    now_every_seconds: float = ANSWER_REFRESH_SECONDS,
    push: PushedAnswer | None = None,
) -> None:
    """The answer now (left) and the stream's history (right), each redrawn at its own pace.

    draw_now(current) draws the analyser's current answer (a LiveAnswer or TunerReading, None
    before the first) every `now_every_seconds` while streaming (ANSWER_REFRESH_SECONDS;
    slower for a plotted answer): it reads only that answer (LiveStream.latest, no audio
    copied), so it is cheap enough to run often and the label follows the sound within about
    a hop. draw_history(snapshot) draws the heavier views (spectrogram, timeline, segments)
    every HISTORY_REFRESH_SECONDS. Each once otherwise (the last snapshot stays on screen
    after STOP).

    push: while streaming, the answer is pushed to the browser instead (ui/live_push.py: the
    label changes the moment the answer is ready, no rerun); draw_now draws it whenever
    that is not possible (stopped, no route, the browser cannot reach it).
    """
    streaming = handle.stream is not None and handle.stream.running
    if not streaming and handle.snapshot is None:
        st.info(waiting)
        return

    @st.fragment(run_every=now_every_seconds if streaming else None)
    def _now() -> None:
        stream = handle.stream
        if stream is not None and stream.running:
            current, clock = stream.latest()
            draw_now(current)
            answer_clock(clock)
        elif handle.snapshot is not None:
            draw_now(handle.snapshot.current)

    @st.fragment(run_every=HISTORY_REFRESH_SECONDS if streaming else None)
    def _history() -> None:
        stream = handle.stream
        if stream is not None and stream.running:
            handle.snapshot = stream.snapshot()
        elif stream is not None and stream.error:
            st.error(stream.error)
        elif stream is not None and stream.ended:
            st.warning(f"The microphone stream stopped: {stream.ended} Press STOP, then START.")
        if handle.snapshot is not None:
            draw_history(handle.snapshot)

    now_column, history_column = st.columns(list(widths))
    with now_column:
        if not (streaming and push is not None and _pushed(handle, push)):
            _now()
    with history_column:
        _history()


@dataclass(frozen=True)
class PushedAnswer:
    """The pushed answer's look: key (the component's widget key, page-prefixed), label (the
    title above it, "Hearing"), describe(current answer or None) -> live_push.Shown, exactly
    what draw_now shows; look "text" (a label) or "needle" (a tuner's note and needle, with
    `dial` its in-tune band and colours); height in pixels."""

    key: str
    label: str
    describe: Callable[[Any], live_push.Shown]
    look: str = "text"
    dial: dict | None = None
    height: int = 96


def _pushed(handle: LiveHandle, push: PushedAnswer) -> bool:
    """Draw the pushed answer for the running stream; False when it cannot be pushed."""
    if handle.push_failed or not live_push.install_route():
        return False
    stream = handle.stream
    if handle.push_stream is not stream:
        live_push.close_channel(handle.push_token)
        handle.push_token = live_push.open_channel(stream, push.describe)
        handle.push_stream = stream
    reply = live_push.pushed_answer(
        push.key,
        handle.push_token,
        push.label,
        push.describe(stream.published[0]),
        look=push.look,
        dial=push.dial,
        height=push.height,
    )
    if isinstance(reply, dict) and reply.get("failed"):
        handle.push_failed = str(reply["failed"])
        return False
    return True


def answer_clock(clock: AnswerClock | None) -> None:
    """The newest answer's clock as a hidden element beside the label (nothing visible): a
    browser on the same machine compares it with the moment the label changed
    (tests/benchmarks/bench_live_browser.py measures sound -> label on screen with it).
    drawn-at: when this redraw ran on the server (it changes on every redraw)."""
    if clock is None:
        return
    st.html(
        f'<span hidden class="live-answer-clock" data-answers="{clock.answers}" '
        f'data-headline="{html.escape(clock.headline)}" data-heard-at="{clock.heard_at:.4f}" '
        f'data-ready-at="{clock.ready_at:.4f}" data-drawn-at="{time.time():.4f}" '
        f'data-headline-heard-at="{clock.headline_heard_at:.4f}"></span>'
    )


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
