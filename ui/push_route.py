"""Long-poll routes on the Streamlit server itself, for the views pushed to the browser.

Why: a view redrawn by an st.fragment timer costs a Streamlit script run on the server and a
re-render of Streamlit's page in the browser at every tick, even when nothing changed. A
pushed view is a tiny component of our own (ui/push_views/: plain JavaScript, nothing from a
CDN) that asks one of these routes for the next state and changes only its own elements.
Three use them: the Live tabs' answer (ui/live_push.py), the Train page's progress
(ui/train_push.py) and the sidebar's status lines (ui/status_push.py).

How: a route is `<base URL>/<route>?token=T&after=N` on the app's own server (no other port,
so a class proxy that passes the app passes it too). It is a long poll: the route's `answer`
coroutine replies as soon as what token T names has something newer than number N, or after
a timeout with the current state. The token is a random name known only to the page that
registered it; the browser never names a job or a stream itself.

Streamlit has no public way to add a route to the server `streamlit run` starts
(`st.App(routes=...)` needs the app started as ASGI), so `install_route` reaches the running
Starlette app through this session's websocket (`scope["app"]`, the standard ASGI key). When
that is not possible (another Streamlit version, a test runtime) the caller falls back to its
fragment; so it does when the component reports that the browser cannot reach the route.
`send_without_delay` switches Nagle's algorithm off on each reply's connection. `Channels`
keeps each route's tokens.
"""

from __future__ import annotations

import math
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from streamlit import config

VIEWS_DIR = Path(__file__).resolve().parent / "push_views"  # the component: every look
LONG_POLL_SECONDS = 10.0  # an unanswered poll returns the current state after this long

# answer(token, after, query parameters) -> the reply's JSON, awaited on the server's loop
Answer = Callable[[str, int, Mapping[str, str]], Awaitable[dict]]

_INSTALLED: set[tuple[int, str]] = set()  # (id() of a Starlette app, route) already added
_INSTALL_LOCK = threading.Lock()

Named = TypeVar("Named")


class Channels(Generic[Named]):
    """The tokens a route's pushed views poll with, each naming what a page registered (a
    job's progress, a live stream, a session's status line). A token is a random 128-bit
    name, so the browser never names a job or a stream itself. Thread-safe: pages register
    from their script threads, the route reads on the server's event loop.

    Nothing is forgotten by a timer: each registration (`open`, or `forget_old`) drops what
    is `stale` (an ended job or stream) and what nobody asked about for `forget_seconds` (a
    closed tab), so a server that serves no page keeps nothing it does not need."""

    def __init__(
        self,
        *,
        stale: Callable[[Named], bool] = lambda named: False,
        forget_seconds: float = math.inf,
    ):
        self._stale, self._forget_seconds = stale, forget_seconds
        self._named: dict[str, tuple[Named, float]] = {}  # token -> (named, last asked)
        self._lock = threading.Lock()

    def forget_old(self) -> None:
        """Drop the stale tokens and those nobody asked about for forget_seconds."""
        now = time.monotonic()
        with self._lock:
            for token, (named, asked) in list(self._named.items()):
                if self._stale(named) or now - asked > self._forget_seconds:
                    del self._named[token]

    def open(self, named: Named) -> str:
        """A new token for `named` (old ones forgotten first)."""
        self.forget_old()
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._named[token] = (named, time.monotonic())
        return token

    def ask(self, token: str | None) -> Named | None:
        """What `token` names (None for a token nobody registered), marked as asked now."""
        with self._lock:
            found = self._named.get(token or "")
            if found is None:
                return None
            self._named[token] = (found[0], time.monotonic())
            return found[0]

    def close(self, token: str | None) -> None:
        with self._lock:
            self._named.pop(token or "", None)

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._named

    def named(self) -> list[Named]:
        """What the open tokens name (one entry per token)."""
        with self._lock:
            return [named for named, _ in self._named.values()]


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


def int_parameter(query: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number query parameter; `default` when it is missing or not a number."""
    try:
        return int(query.get(name, default))
    except (TypeError, ValueError):
        return default


def long_poll_endpoint(answer: Answer):
    """A Starlette endpoint that hands ?token=&after= (and the whole query) to `answer` and
    sends its reply as JSON that no cache keeps."""

    async def endpoint(request):
        from starlette.responses import JSONResponse

        send_without_delay(request._send)  # the reply leaves in one go (see its docstring)
        query = request.query_params
        token = query.get("token", "")
        payload = await answer(token, int_parameter(query, "after", -1), query)
        return JSONResponse(payload, headers={"Cache-Control": "no-store"})

    return endpoint


def route_path(route: str) -> str:
    """The route's path on this server, under server.baseUrlPath."""
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{route}" if base else f"/{route}"


def add_route(app, route: str, answer: Answer) -> None:
    """Put `route` first in a Starlette app's routes (once per app and route)."""
    from starlette.routing import Route

    with _INSTALL_LOCK:
        if (id(app), route) in _INSTALLED:
            return
        endpoint = long_poll_endpoint(answer)
        app.router.routes.insert(0, Route(route_path(route), endpoint, methods=["GET"]))
        _INSTALLED.add((id(app), route))


def install_route(route: str, answer: Answer) -> bool:
    """Add `route` to the server this session runs on; False when that cannot be done (the
    page then redraws its view with a fragment instead)."""
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
        add_route(app, route, answer)
        return True
    except Exception:  # another server or Streamlit version: fall back, never fail the page
        return False
