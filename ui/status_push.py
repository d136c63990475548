"""The sidebar's live status (memory, the class's trainings, the workers), pushed to the browser.

Why: the sidebar used to redraw these lines with an `st.fragment(run_every=5 s)`. Every open
tab then asked the server for a script run every 5 s, and each run redrew Streamlit's whole
page tree in the browser: an idle tab cost Chromium's main thread 8 ms/s on Home and 28-31 ms/s
on the Network builder and Train pages (about 150 ms per tick on Train; 2-core machine), taken
from the workers of a class that shares the machine. Here the lines are a look of the pushed
views (ui/push_views/status.js) that asks a route on this server every MEMORY_REFRESH_SECONDS
and changes one text; nothing reruns Streamlit.

The route: `<base URL>/audio-dl/status?token=T`. T is a random token the page registers for one
(session id, device): the browser never names either. Where the route cannot be installed
(AppTest, another Streamlit) or the browser cannot reach it, the sidebar falls back to the
fragment (ui/sidebar.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from core.devices import memory_stats
from core.jobs import cluster
from core.jobs.manager import get_job_manager
from ui import push_route

ROUTE = "audio-dl/status"  # under the server's base URL
FORGET_SECONDS = 600.0  # a token nobody asked about for this long (a closed tab) is forgotten
TOKEN_KEY = "status_push_token"  # session state: ((session id, device), token)
FAILED_KEY = "status_push_failed"  # session state: why this browser cannot reach the route

_status_view = components.declare_component("status_view", path=str(push_route.VIEWS_DIR))
# Reading the job folders and the memory off the server's event loop.
_READER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="status-push")
# token -> (session id, device); a closed tab's token is forgotten after FORGET_SECONDS
_CHANNELS: push_route.Channels[tuple[str, str]] = push_route.Channels(forget_seconds=FORGET_SECONDS)


def status_lines(owner: str, device: str) -> list[str]:
    """The sidebar's three lines: memory of `device` (e.g. "cpu", "cuda:0"), the class's
    trainings with the owner's place in the queue, and the workers (never starts Ray)."""
    trainings = get_job_manager().overview(owner).summary()
    info = cluster.connected()
    workers = info.summary() if info else "workers start with the first training"
    return [memory_stats(device).summary(), trainings, workers]


def register(owner: str, device: str) -> str:
    """A token for (owner, device) that the route answers; tokens nobody asked about for
    FORGET_SECONDS are forgotten here."""
    return _CHANNELS.open((owner, device))


async def route_answer(token: str, after: int, query: Mapping[str, str]) -> dict[str, Any]:
    """What the route answers: {"lines": [...], "version": after + 1}, or {"unknown": True}
    for a token nobody registered (the page then registers again). Answers at once: the view
    asks at most every MEMORY_REFRESH_SECONDS itself."""
    channel = _CHANNELS.ask(token)
    if channel is None:
        return {"unknown": True}
    owner, device = channel
    loop = asyncio.get_running_loop()
    try:
        lines = await loop.run_in_executor(_READER, status_lines, owner, device)
    except Exception as error:  # a status that cannot be read is a line, never a failed poll
        lines = [f"status unavailable: {error}"]
    return {"lines": lines, "version": max(after, 0) + 1}


def available() -> bool:
    """Whether this session's status can be pushed: the route is installed and this browser
    has not reported that it cannot reach it."""
    return not st.session_state.get(FAILED_KEY) and push_route.install_route(ROUTE, route_answer)


def status_view(owner: str, device: str, every_seconds: float) -> bool:
    """Draw the pushed status lines for (owner, device), refreshed every `every_seconds`; a new
    token when the session has none the server still knows. False when the browser reported
    it cannot reach the route (remembered: the sidebar then uses its fragment)."""
    known = st.session_state.get(TOKEN_KEY)
    if known is None or known[1] not in _CHANNELS or known[0] != (owner, device):
        known = ((owner, device), register(owner, device))
        st.session_state[TOKEN_KEY] = known
    reply = _status_view(
        key="sidebar_status_view",
        token=known[1],
        route=ROUTE,
        look="status",
        every_ms=int(every_seconds * 1000),
        default=None,
    )
    if isinstance(reply, dict) and reply.get("failed"):
        st.session_state[FAILED_KEY] = str(reply["failed"])
        return False
    return True  # a token the server forgot is replaced above, in the run its report causes
