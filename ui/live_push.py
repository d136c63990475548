"""The live answer pushed to the browser: the label changes on screen as soon as the answer is
ready, without a Streamlit rerun.

Why: a fragment redrawn on a timer shows a new answer only at its next tick (up to the whole
period late), and every redraw makes the browser re-render Streamlit's page; on a busy
2-core class server that re-render was most of the delay between a sound and its label
(tests/benchmarks/bench_live_browser.py). Here the label is a tiny component of our own
(ui/push_views/answer.js, plain JavaScript, nothing from a CDN) that asks the server for
the next answer and draws only its own few elements.

How: a long-poll route on the Streamlit server itself (ui/push_route.py),
`<base URL>/audio-dl/live-answer`: `GET ...?token=T&after=N` answers as soon as the stream
behind token T has an answer newer than number N (the stream's `subscribe` wakes it; no
timer), or after LONG_POLL_SECONDS with the current one. The token is a random 128-bit name
for one stream, known only to the page that opened it.

One route and one component for both Live tabs: what a tab shows of an answer is a `Shown`
(the answer in a word, the line under it, for the tuner also the needle's cents and the
chroma / loudness meter), made by the tab's own `describe(answer)`; the component's `look` is
"text" (Classify: the label) or "needle" (Music: the note, Hz and cents, an SVG needle and
meter). Where the route cannot be installed or reached, the page falls back to the redraw
fragment (ui.live_stream.live_view), which shows the same answer, later.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit.components.v1 as components

from core.inference.streaming import LiveStream
from ui import push_route

ROUTE = "audio-dl/live-answer"  # under the server's base URL
LONG_POLL_SECONDS = push_route.LONG_POLL_SECONDS

_live_answer = components.declare_component("live_answer", path=str(push_route.VIEWS_DIR))


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


# token -> the stream it names; channels of streams that have ended are forgotten
_CHANNELS: push_route.Channels[_Channel] = push_route.Channels(
    stale=lambda channel: not channel.stream.running
)


def open_channel(stream: LiveStream, describe: Callable[[Any], Shown]) -> str:
    """Register a stream for the route; returns its token. Channels of streams that have
    ended are forgotten here, so a closed tab leaves nothing behind."""
    return _CHANNELS.open(_Channel(stream, describe))


def close_channel(token: str) -> None:
    _CHANNELS.close(token)


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
    channel = _CHANNELS.ask(token)
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


async def route_answer(token: str, after: int, query) -> dict:
    """What the route answers to ?token=&after= (ui/push_route.py)."""
    return await next_answer(token, after)


def install_route() -> bool:
    """Add the answer route to the server this session runs on; False when that cannot be
    done (the page then redraws the answer with a fragment instead)."""
    return push_route.install_route(ROUTE, route_answer)


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
