"""The pushed live answer (ui/live_push.py): a stream's answers reach a long-polling browser the
moment they are ready, through a route on the Streamlit server's own Starlette app.

Real streams of shipped recordings, a real Starlette app driven through its ASGI interface."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
import soundfile as sf

from core import paths
from core.inference.classifier import model_from_loaded_run, shipped_store
from core.inference.streaming import (
    NOTE_NAMES,
    LiveClassifier,
    LiveClassifierConfig,
    LiveStream,
    LiveTuner,
    TunerConfig,
    stream_file,
)
from tests.asgi_helpers import get, run
from ui import live_push, push_route
from ui.classify_live import answer_lines, answer_shown
from ui.music_live import tuner_shown


@pytest.fixture(scope="module")
def shipped():
    return model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")


@pytest.fixture(scope="module")
def seven() -> tuple[np.ndarray, int]:
    y, rate = sf.read(paths.DIGITS_DIR / "6_jackson_7.wav", dtype="float32")
    silence = np.zeros(int(0.5 * rate), np.float32)
    return np.concatenate([silence, y, silence]), rate


@pytest.fixture
def stream(shipped):
    stream = LiveStream(LiveClassifier(shipped, LiveClassifierConfig(hop_seconds=0.25)))
    yield stream
    stream.stop()


def test_a_stream_tells_its_listeners_of_each_answer_and_of_its_end(stream, seven):
    y, rate = seven
    heard = []
    unsubscribe = stream.subscribe(lambda: heard.append(stream.published[1]))
    stream_file(stream, y, rate)
    assert stream.wait_idle(30)
    answers = [clock.answers for clock in heard]
    assert answers == list(range(1, len(answers) + 1))  # every answer, in order, once
    assert answers[-1] == stream.clock.answers >= 3
    current, clock = stream.published
    assert clock is stream.clock
    assert current.headline == stream.latest()[0].headline
    np.testing.assert_array_equal(current.probabilities, stream.latest()[0].probabilities)
    unsubscribe()
    stream_file(stream, y, rate)
    assert stream.wait_idle(30)
    assert len(heard) == len(answers)  # unsubscribed: no more calls
    ended = []
    stream.subscribe(lambda: ended.append(stream.running))
    stream.stop()
    assert ended == [False]  # told once, when it had stopped


def test_a_poll_gets_a_newer_answer_at_once_and_says_what_the_page_says(stream, seven):
    y, rate = seven
    stream_file(stream, y, rate)
    assert stream.wait_idle(30)
    token = live_push.open_channel(stream, answer_shown)
    started = time.perf_counter()
    payload = run(live_push.next_answer(token, after=0, timeout=5))
    assert time.perf_counter() - started < 0.5
    current, clock = stream.latest()
    assert (payload["headline"], payload["detail"]) == answer_lines(current)
    assert payload["answers"] == payload["clock"]["answers"] == clock.answers
    assert payload["clock"]["heardAt"] == pytest.approx(clock.heard_at, abs=1e-3)
    assert payload["clock"]["headlineHeardAt"] <= payload["clock"]["heardAt"]
    assert payload["sentAt"] >= payload["clock"]["readyAt"] >= payload["clock"]["heardAt"]
    assert payload["cents"] is None and payload["inTune"] is False  # a label, no needle
    # The answer was ready before the poll came: nothing to wake, no notice.
    poll = payload["poll"]
    assert poll["notifiedAt"] is None
    assert payload["clock"]["readyAt"] <= poll["arrivedAt"] <= poll["wokeAt"] <= payload["sentAt"]
    json.dumps(payload, allow_nan=False)  # what the route sends (Starlette refuses NaN)
    live_push.close_channel(token)


def test_a_waiting_poll_returns_when_the_next_answer_is_ready_not_at_its_timeout(stream, seven):
    y, rate = seven
    stream_file(stream, y[: rate // 2], rate)
    assert stream.wait_idle(30)
    token = live_push.open_channel(stream, answer_shown)
    known = stream.clock.answers if stream.clock is not None else 0

    async def poll_while_audio_arrives():
        poll = asyncio.ensure_future(live_push.next_answer(token, after=known, timeout=10))
        await asyncio.sleep(0.2)
        assert not poll.done()  # nothing new yet: the poll waits
        sent = time.perf_counter()
        await asyncio.to_thread(stream_file, stream, y[rate // 2 :], rate)
        payload = await poll
        return payload, time.perf_counter() - sent

    payload, waited = run(poll_while_audio_arrives())
    assert payload["answers"] > known
    assert waited < 3  # woken by the answer (the timeout was 10 s)
    # The worker told the waiting poll, which ran again: the stamps of that wait, in order.
    poll, ready = payload["poll"], payload["clock"]["readyAt"]
    assert poll["arrivedAt"] <= ready <= poll["notifiedAt"] <= poll["wokeAt"]
    assert poll["wokeAt"] <= payload["sentAt"]
    # With nothing new the poll gives the current answer back after its timeout.
    assert stream.wait_idle(30)
    now = stream.clock.answers
    started = time.perf_counter()
    payload = run(live_push.next_answer(token, after=now, timeout=0.3))
    assert payload["answers"] == now
    assert 0.25 < time.perf_counter() - started < 2


def test_a_poll_ends_when_its_stream_ends_and_unknown_tokens_learn_nothing(stream, seven):
    token = live_push.open_channel(stream, answer_shown)

    async def poll_then_stop():
        poll = asyncio.ensure_future(live_push.next_answer(token, after=10**6, timeout=10))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        stream.stop(timeout=0)
        payload = await poll
        return payload, time.perf_counter() - started

    payload, waited = run(poll_then_stop())
    assert payload["ended"] is True and waited < 1
    assert "headline" not in payload
    guessed = run(live_push.next_answer("not-a-token", after=-1, timeout=1))
    assert guessed["ended"] is True and "headline" not in guessed
    # A stream that has ended is forgotten when the next one opens a channel.
    live_push.open_channel(stream, answer_shown)
    assert token not in live_push._CHANNELS


def test_the_route_is_added_first_to_a_starlette_app_once(stream, seven):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def catch_all(request):  # like Streamlit's static files: every path answers
        return PlainTextResponse("<html>app</html>")

    app = Starlette(routes=[Route("/{path:path}", catch_all)])
    assert push_route.route_path(live_push.ROUTE) == "/audio-dl/live-answer"
    push_route.add_route(app, live_push.ROUTE, live_push.route_answer)
    push_route.add_route(app, live_push.ROUTE, live_push.route_answer)
    assert [r.path for r in app.router.routes].count("/audio-dl/live-answer") == 1
    y, rate = seven
    stream_file(stream, y, rate)
    assert stream.wait_idle(30)
    token = live_push.open_channel(stream, answer_shown)
    status, headers, body = get(app, "/audio-dl/live-answer", f"token={token}&after=0")
    assert status == 200 and headers[b"cache-control"] == b"no-store"
    payload = json.loads(body)
    assert payload["headline"] == stream.latest()[0].headline
    assert payload["answers"] == stream.clock.answers
    status, _, body = get(app, "/audio-dl/live-answer", f"token={token}&after=oops")
    assert status == 200 and json.loads(body)["answers"] == stream.clock.answers
    assert get(app, "/elsewhere", "")[2] == b"<html>app</html>"  # the app's own paths


def test_outside_a_server_the_route_cannot_be_installed_and_the_page_falls_back():
    assert live_push.install_route() is False  # no script context, no websocket


def _tone(hz: float, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_a_tuner_reading_is_pushed_as_its_note_hz_needle_and_meter_silence_as_no_note():
    """The Music tab's needle (look "needle"): what the route sends of a live tuner's
    readings, from a real stream of tones."""
    stream = LiveStream(LiveTuner(TunerConfig()), idle_timeout_seconds=600)
    token = live_push.open_channel(stream, tuner_shown)
    try:
        assert run(live_push.next_answer(token, after=-1, timeout=0.1))["headline"] == "…"
        seen = 0
        for hz, note, cents, in_tune in (
            (446.0, "A4", 23.4, False),  # 446 Hz: A4 + 23.4 cents
            (261.63, "C4", 0.0, True),  # middle C, in tune
            (0.0, "no note", None, False),  # silence: no note, the needle parked
        ):
            samples = _tone(hz, 0.6) if hz else np.zeros(8000, np.float32)
            stream_file(stream, samples, 16000)
            assert stream.wait_idle(30)
            payload = run(live_push.next_answer(token, after=seen, timeout=5))
            seen = payload["answers"]
            assert payload["headline"] == note, payload
            assert payload["inTune"] is in_tune
            json.dumps(payload, allow_nan=False)
            reading = stream.latest()[0]
            # The meter: the reading's chroma (strongest = the note's pitch class) and level.
            assert payload["chroma"] == pytest.approx(list(reading.chroma), abs=1e-3)
            assert payload["levelDbfs"] == round(reading.rms_dbfs, 1)
            if cents is None:
                assert payload["cents"] is None and max(payload["chroma"]) == 0
                assert payload["detail"] == "Play, sing or hum a note."
                continue
            assert NOTE_NAMES[int(np.argmax(payload["chroma"]))] == note[:-1]
            assert payload["levelDbfs"] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.5)
            assert payload["cents"] == pytest.approx(cents, abs=3.0)  # YIN: 1.7 cents at C4
            assert payload["cents"] == round(reading.cents, 1)
            assert (
                payload["detail"] == f"{reading.frequency_hz:.1f} Hz · {reading.cents:+.0f} cents"
            )
            assert reading.frequency_hz == pytest.approx(hz, rel=0.003)
    finally:
        stream.stop()
        live_push.close_channel(token)


def test_numbers_that_are_not_finite_are_sent_as_none_and_chroma_within_0_to_1():
    """Starlette's JSON refuses NaN: a reading without a pitch must never reach it as NaN."""
    nan = float("nan")
    payload = live_push.Shown(
        "A4", "", cents=nan, in_tune=True, chroma=(nan, 0.5, 2.0), level_dbfs=nan
    ).payload()
    assert payload["cents"] is None and payload["inTune"] is False
    assert payload["chroma"] == [0.0, 0.5, 1.0] and payload["levelDbfs"] is None
    json.dumps(payload, allow_nan=False)
    assert live_push.Shown("7").payload()["chroma"] is None  # a label: no meter


def test_the_reply_leaves_without_nagle_on_a_socket_bound_as_streamlit_binds_it():
    """Streamlit binds its listening socket without naming the protocol, so asyncio leaves
    Nagle's algorithm on for its connections (it sets TCP_NODELAY only when proto is TCP), and
    a pushed reply's body waited ~40 ms for the browser's delayed acknowledgement of its
    headers. The route switches Nagle off on its own connection: a real uvicorn server on
    such a socket, a real HTTP request."""
    import http.client
    import socket
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def nodelay(request) -> int:
        transport = push_route._transport_behind(request._send)
        return transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    async def probe(request):
        before = nodelay(request)
        done = push_route.send_without_delay(request._send)
        return JSONResponse({"before": before, "done": done, "after": nodelay(request)})

    listener = socket.socket(family=socket.AF_INET)  # as Streamlit's _bind_socket: proto 0
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    app = Starlette(routes=[Route("/probe", probe)])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[listener]),))
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1])
        connection.request("GET", "/probe")
        reply = json.loads(connection.getresponse().read())
        connection.close()
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
    assert reply == {"before": 0, "done": True, "after": 1}
    assert push_route.send_without_delay(None) is False  # nothing behind it: nothing done
