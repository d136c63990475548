"""The live answer pushed to the browser: the label changes on screen as soon as the answer is
ready, without a Streamlit rerun.

Why: a fragment redrawn on a timer shows a new answer only at its next tick (up to the whole
period late), and every redraw makes the browser re-render Streamlit's page; on a busy
2-core class server that re-render was most of the delay between a sound and its label
(tests/benchmarks/bench_live_browser.py). Here the label is a tiny component of our own
(ui/live_answer/index.html, plain JavaScript, nothing from a CDN) that asks the server for
the next answer and draws only its own few elements.

How: one extra route on the Streamlit server itself, `<base URL>/audio-dl/live-answer`
(no other port, so a class proxy that passes the app passes it too). It is a long poll:
`GET ...?token=T&after=N` answers as soon as the stream behind token T has an answer newer
than number N (the stream's `subscribe` wakes it; no timer), or after LONG_POLL_SECONDS with
the current one. The token is a random 128-bit name for one stream, known only to the page
that opened it.

One route and one component for both Live tabs: what a tab shows of an answer is a `Shown`
(the answer in a word, the line under it, for the tuner also the needle's cents and the
chroma / loudness meter), made by the tab's own `describe(answer)`; the component's `look` is
"text" (Classify: the label) or "needle" (Music: the note, Hz and cents, an SVG needle and
meter). `send_without_delay` switches Nagle's algorithm off on the reply's connection.

Streamlit has no public way to add a route to the server `streamlit run` starts
(`st.App(routes=...)` needs the app started as ASGI), so `install_route` reaches the running
Starlette app through this session's websocket (`scope["app"]`, the standard ASGI key). When
that is not possible (another Streamlit version, a test runtime) or the browser cannot reach
the route (the component reports it), the page falls back to the redraw fragment
(ui.live_stream.live_view), which shows the same answer, later.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit.components.v1 as components
from streamlit import config

from core.inference.streaming import LiveStream

ROUTE = "audio-dl/live-answer"  # under the server's base URL
LONG_POLL_SECONDS = 10.0  # an unanswered poll returns the current answer after this long
COMPONENT_DIR = Path(__file__).resolve().parent / "live_answer"

_live_answer = components.declare_component("live_answer", path=str(COMPONENT_DIR))


@dataclass(frozen=True)
class Shown:
    """What the browser shows of one answer, exactly what the page's own redraw would show.

    headline: the answer in a word ("7", "silence", "A4"); detail: the line under it;
    cents: the tuner needle's position, -50..+50 cents off the note (None: no needle, no
    note); in_tune: the needle reads in tune (green); chroma: twelve pitch-class strengths
    C..B, 0..1, and level_dbfs the loudness, for the tuner's meter (None: no meter).
    """

    headline: str
    detail: str = ""
    cents: float | None = None
    in_tune: bool = False
    chroma: tuple[float, ...] | None = None
    level_dbfs: float | None = None

    def payload(self) -> dict:
        """The fields as JSON (NaN is not JSON: a number that is not finite is None, a
        chroma value 0)."""
        cents, level = _finite(self.cents), _finite(self.level_dbfs)
        chroma = None
        if self.chroma is not None:
            chroma = [round(min(1.0, max(0.0, _finite(v) or 0.0)), 3) for v in self.chroma]
        return {
            "headline": self.headline,
            "detail": self.detail,
            "cents": None if cents is None else round(cents, 1),
            "inTune": bool(self.in_tune) and cents is not None,
            "chroma": chroma,
            "levelDbfs": None if level is None else round(level, 1),
        }


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass
class _Channel:
    """One stream's answers as the browser reads them: describe(current answer) -> Shown."""

    stream: LiveStream
    describe: Callable[[Any], Shown]


_CHANNELS: dict[str, _Channel] = {}
_CHANNELS_LOCK = threading.Lock()
_INSTALLED: set[int] = set()  # id() of the Starlette apps that have the route
_INSTALL_LOCK = threading.Lock()


def open_channel(stream: LiveStream, describe: Callable[[Any], Shown]) -> str:
    """Register a stream for the route; returns its token. Channels of streams that have
    ended are forgotten here, so a closed tab leaves nothing behind."""
    token = secrets.token_urlsafe(16)
    with _CHANNELS_LOCK:
        for old in [t for t, c in _CHANNELS.items() if not c.stream.running]:
            del _CHANNELS[old]
        _CHANNELS[token] = _Channel(stream, describe)
    return token


def close_channel(token: str) -> None:
    with _CHANNELS_LOCK:
        _CHANNELS.pop(token, None)


def answer_payload(channel: _Channel | None) -> dict:
    """What the browser gets: Shown.payload() of the current answer and the newest answer's
    clock (wall-clock seconds, as in AnswerClock; sentAt = when this reply left the server)."""
    if channel is None or not channel.stream.running:
        return {"ended": True, "sentAt": time.time()}
    current, clock = channel.stream.published
    payload: dict[str, Any] = {"ended": False, **channel.describe(current).payload()}
    if clock is not None:
        payload["clock"] = {
            "answers": clock.answers,
            "headline": clock.headline,
            "heardAt": round(clock.heard_at, 4),
            "readyAt": round(clock.ready_at, 4),
            "headlineHeardAt": round(clock.headline_heard_at, 4),
        }
    payload["answers"] = clock.answers if clock is not None else 0
    payload["sentAt"] = round(time.time(), 4)
    return payload


async def next_answer(token: str, after: int, timeout: float = LONG_POLL_SECONDS) -> dict:
    """The first answer of stream `token` numbered above `after` (at once if there is one),
    or the current one after `timeout` seconds, or {"ended": True} once the stream is gone.
    Runs on the server's event loop; the stream's worker thread wakes it.

    The reply's "poll" says where the wait went (wall-clock seconds; the live benchmark
    splits "answer ready -> sent" with them): arrivedAt (this poll reached the server),
    notifiedAt (the worker told of the newest answer; None when it was ready before the poll
    came), wokeAt (this coroutine ran again after that news: notifiedAt -> wokeAt is the
    event loop's delay).
    """
    with _CHANNELS_LOCK:
        channel = _CHANNELS.get(token)
    if channel is None:
        return answer_payload(None)
    loop = asyncio.get_running_loop()
    news = asyncio.Event()
    arrived = woke = time.time()
    notified = [0.0]

    def tell() -> None:  # in the worker thread: stamp and hand on, never wait
        notified[0] = time.time()
        loop.call_soon_threadsafe(news.set)

    unsubscribe = channel.stream.subscribe(tell)
    try:
        deadline = loop.time() + timeout
        while True:
            # Cleared before looking: news of an answer that arrives after the look wakes
            # the wait (the worker's set() runs on this loop, never between these lines).
            news.clear()
            _, clock = channel.stream.published
            newer = clock is not None and clock.answers > after
            left = deadline - loop.time()
            if newer or not channel.stream.running or left <= 0:
                payload = answer_payload(channel)
                payload["poll"] = {
                    "arrivedAt": round(arrived, 4),
                    "notifiedAt": round(notified[0], 4) if notified[0] else None,
                    "wokeAt": round(woke, 4),
                }
                return payload
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), left)
            woke = time.time()
    finally:
        unsubscribe()


def _transport_behind(send, depth: int = 0, seen: set[int] | None = None):
    """The server's transport behind an ASGI `send`, found through the middlewares' wrappers
    (bound methods and closures: Starlette's, then uvicorn's cycle, which holds it), or None."""
    seen = set() if seen is None else seen
    if send is None or depth > 12 or id(send) in seen:
        return None
    seen.add(id(send))
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is not None and hasattr(transport, "get_extra_info"):
        return transport
    inner = [getattr(owner, "send", None), getattr(owner, "_send", None)]
    inner += [cell.cell_contents for cell in getattr(send, "__closure__", None) or ()]
    for candidate in inner:
        if callable(candidate):
            found = _transport_behind(candidate, depth + 1, seen)
            if found is not None:
                return found
    return None


def send_without_delay(send) -> bool:
    """Switch Nagle's algorithm off on the connection behind `send`; True when done.

    Why: Streamlit binds its listening socket itself without naming the protocol, so asyncio
    does not set TCP_NODELAY on its connections (it only does for sockets whose proto is
    IPPROTO_TCP). uvicorn writes a reply's headers and its body separately; with Nagle on,
    the body waits for the browser to acknowledge the headers, which it delays by ~40 ms:
    every pushed answer arrived 42 ms late (bench_live_browser: "first -> last byte")."""
    transport = _transport_behind(send)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # a closed connection: nothing to speed up
        return False
    return True


async def _endpoint(request):
    from starlette.responses import JSONResponse

    send_without_delay(request._send)  # the reply leaves in one go (see its docstring)
    token = request.query_params.get("token", "")
    try:
        after = int(request.query_params.get("after", "-1"))
    except ValueError:
        after = -1
    payload = await next_answer(token, after)
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})


def route_path() -> str:
    """The route's path on this server, under server.baseUrlPath."""
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{ROUTE}" if base else f"/{ROUTE}"


def add_route(app) -> None:
    """Put the answer route first in a Starlette app's routes (once per app)."""
    from starlette.routing import Route

    with _INSTALL_LOCK:
        if id(app) in _INSTALLED:
            return
        app.router.routes.insert(0, Route(route_path(), _endpoint, methods=["GET"]))
        _INSTALLED.add(id(app))


def install_route() -> bool:
    """Add the route to the server this session runs on; False when that cannot be done
    (the page then redraws the answer with a fragment instead)."""
    try:
        from starlette.applications import Starlette
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        context = get_script_run_ctx()
        if context is None:
            return False
        client = Runtime.instance().get_client(context.session_id)
        websocket = getattr(client, "_websocket", None)  # StarletteSessionClient
        app = websocket.scope.get("app") if websocket is not None else None
        if not isinstance(app, Starlette):  # AppTest's stand-in client, another server
            return False
        add_route(app)
        return True
    except Exception:  # another server or Streamlit version: fall back, never fail the page
        return False


def pushed_answer(
    key: str,
    token: str,
    label: str,
    shown: Shown,
    *,
    look: str = "text",
    dial: dict | None = None,
    height: int = 96,
) -> dict | None:
    """Draw the pushed answer (the component) with `shown` until the first reply; returns what
    it reported: None while it works, {"failed": reason} when the browser could not reach the
    route. look: "text" (the answer in a word) or "needle" (a tuner's note and needle);
    dial: the needle's in-tune band and colours ({"inTuneCents", "inTune", "offTune",
    "band"}) and its meter's ({"names", "chroma", "loudness", "floorDbfs"})."""
    return _live_answer(
        key=key,
        token=token,
        route=ROUTE,
        label=label,
        shown=shown.payload(),
        look=look,
        dial=dial or {},
        height=height,
        default=None,
    )
