"""The Train page's live progress pushed to the browser: no Streamlit rerun per poll.

Why: the live view used to be an st.fragment rerun every POLL_SECONDS (ui/train_live.py). Each
rerun cost the server a script run and the browser a re-render of Streamlit's page: an open
Train tab kept Chromium's main thread busy 163-213 ms of every second at a 2 s poll (270 ms
at 1 s; pushed: 39-88 ms, of which 17-40 are the idle page's own). Here the progress is a
component of our own (ui/push_views/, look "training": plain JavaScript and SVG, nothing from
a CDN) that long-polls a route on the server and changes only its own elements: a text when
it changed, a bar's width, points appended to the curves.

The route (ui/push_route.py): `<base URL>/audio-dl/train-progress?token=T&after=N&points=K`.
T is a random token the page registers for one (job id, owner): the browser never names a
job. The reply comes as soon as the job's progress is newer than version N (or after
LONG_POLL_SECONDS with the current one) and carries the curves' points after the first K
records the browser has. Reading: what core.jobs.manager reads for the fragment (status and
the events since the last read, small files), in a thread, at most every READ_SECONDS per
job however many polls wait on it (`_JobWatch`); the event loop only sleeps between looks.

When the job ends the component tells the page (setComponentValue), which reruns once and
shows the results, as the fragment did with st.rerun.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import Any

import streamlit as st
import streamlit.components.v1 as components

from core.jobs.manager import JobError, JobManager, JobStatus
from core.training.support import records_of
from core.viz.training import training_curve_series, training_curve_styles
from ui import push_route

ROUTE = "audio-dl/train-progress"  # under the server's base URL
LONG_POLL_SECONDS = push_route.LONG_POLL_SECONDS
READ_SECONDS = 0.5  # a job's files are read at most this often, shared by all its polls
FORGET_SECONDS = 600.0  # a channel nobody polled for this long (a closed tab) is forgotten
TOKENS_KEY = "train_push_tokens"  # session state: job id -> the route's token for it
FAILED_KEY = "train_push_failed"  # session state: why this browser cannot reach the route

_train_progress = components.declare_component("train_progress", path=str(push_route.VIEWS_DIR))
# File reads off the event loop; loop-independent futures, shared by a job's waiters.
_READERS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="train-push")


def progress_text(status: JobStatus) -> str:
    """The progress bar's text: state, epoch x/y, %, samples/s, ETA, val accuracy."""
    parts = [f"{status.state}", f"epoch {status.epoch}/{status.epochs}", f"{status.progress:.0%}"]
    if status.samples_per_second:
        parts.append(f"{status.samples_per_second:.0f} samples/s")
    if status.eta_seconds and not status.done:
        parts.append(f"ETA {status.eta_seconds:.0f} s")
    if status.val_accuracy is not None:
        parts.append(f"val accuracy {status.val_accuracy:.1%}")
    return " · ".join(parts)


def queued_line(status: JobStatus) -> str:
    """Where a queued job waits ("" once it runs)."""
    if status.state != "queued":
        return ""
    return (
        f"Queued: waiting for {status.resources or 'a free worker'} for {status.device}; "
        f"you are number {status.queue_position or 1} in the queue."
    )


def started_caption(info: Mapping[str, Any] | None, status: JobStatus) -> str:
    """What the worker said it trains on ("" before it started): clips, parameters, device."""
    if info is None:
        return ""
    return (
        f"{info.get('train_examples')} training / {info.get('val_examples')} validation clips "
        f"· {info.get('parameters', 0):,} parameters · on {info.get('device')} · worker on "
        f"{status.node or 'the cluster'} ({status.resources})"
    )


@dataclasses.dataclass(frozen=True)
class Progress:
    """One reading of a job: version (grows when anything shown changed), its status (None
    when the job is gone: `error` says why), the curve records so far, the started event's
    info and the total optimiser steps (0 before the first step)."""

    version: int = 0
    status: JobStatus | None = None
    records: tuple[dict[str, Any], ...] = ()
    info: Mapping[str, Any] | None = None
    total_steps: int = 0
    error: str = ""

    @property
    def done(self) -> bool:
        return bool(self.error) or (self.status is not None and self.status.done)

    def payload(self, points: int = 0) -> dict[str, Any]:
        """The reply's JSON, with the curve points after the first `points` records (all of
        them when the browser claims more than there are: it then starts again)."""
        start = points if 0 <= points <= len(self.records) else 0
        series = training_curve_series(self.records[start:])
        payload: dict[str, Any] = {
            "version": self.version,
            "done": self.done,
            "error": self.error,
            "totalSteps": self.total_steps,
            "points": {"from": start, "to": len(self.records), "series": series},
            "sentAt": round(time.time(), 4),
        }
        status = self.status
        if status is not None:
            payload.update(
                state=status.state,
                queued=queued_line(status),
                caption=started_caption(self.info, status),
                progress=round(min(1.0, status.progress), 4),
                text=progress_text(status),
            )
        return payload


class _JobWatch:
    """One job's progress as every poll of it sees it: read in a worker thread at most every
    READ_SECONDS, only while someone waits, and only the events not read before."""

    def __init__(self, jobs: JobManager, job_id: str, owner: str):
        self.jobs, self.job_id, self.owner = jobs, job_id, owner
        self.progress = Progress()
        self._events = 0  # events read so far
        self._read_at = -float("inf")  # time.monotonic() of the last read
        self._reading: concurrent.futures.Future | None = None
        self._lock = threading.Lock()
        self.reads = 0  # how often the files were read (the cost the route adds)

    def _read(self) -> Progress:
        """Read the job's files now (in the caller's thread: one read at a time)."""
        try:
            status = self.jobs.status(self.job_id, self.owner)
            events = self.jobs.events(self.job_id, self.owner, since=self._events)
        except JobError as error:
            status, events, failure = None, [], str(error)
        else:
            failure = ""
        old = self.progress
        started = next((e.info for e in events if e.kind == "started"), old.info)
        total = next((e.total_steps for e in reversed(events) if e.total_steps), 0)
        new = dataclasses.replace(
            old,
            status=status,
            records=old.records + tuple(records_of(events)),
            info=started,
            total_steps=total or old.total_steps,
            error=failure,
        )
        if events or status != old.status or failure != old.error:  # something shown changed
            new = dataclasses.replace(new, version=old.version + 1)
        with self._lock:
            self._events += len(events)
            self.reads += 1
            self.progress = new
            self._read_at = time.monotonic()
        return new

    async def fresh(self) -> Progress:
        """The job's progress, read again if the last read is READ_SECONDS old; a read in
        flight is shared, and the event loop never waits on a file."""
        with self._lock:
            due = time.monotonic() - self._read_at >= READ_SECONDS
            if due and self._reading is None and not self.progress.done:
                self._reading = _READERS.submit(self._read_and_release)
            reading = self._reading
        if reading is not None:
            await asyncio.wrap_future(reading)
        return self.progress

    def _read_and_release(self) -> Progress:
        try:
            return self._read()
        finally:
            with self._lock:
                self._reading = None


# token -> the watch of the job it names; ended jobs and closed tabs are forgotten
_CHANNELS: push_route.Channels[_JobWatch] = push_route.Channels(
    stale=lambda watch: watch.progress.done, forget_seconds=FORGET_SECONDS
)
_WATCHES: dict[tuple[str, str], _JobWatch] = {}  # (job id, owner) -> its one watch
_WATCHES_LOCK = threading.Lock()


def open_channel(jobs: JobManager, job_id: str, owner: str) -> str:
    """Register (job id, owner) for the route; returns the token the browser polls with.
    Channels of ended jobs and those nobody polled for FORGET_SECONDS are forgotten here."""
    with _WATCHES_LOCK:
        _CHANNELS.forget_old()
        alive = {id(watch) for watch in _CHANNELS.named()}
        for key in [k for k, w in _WATCHES.items() if id(w) not in alive]:
            del _WATCHES[key]
        watch = _WATCHES.get((job_id, owner))
        if watch is None or watch.jobs is not jobs:
            watch = _WATCHES[(job_id, owner)] = _JobWatch(jobs, job_id, owner)
        return _CHANNELS.open(watch)


def is_open(token: str | None) -> bool:
    return token in _CHANNELS


async def next_progress(
    token: str, after: int, points: int = 0, timeout: float = LONG_POLL_SECONDS
) -> dict[str, Any]:
    """The job's progress once its version is above `after` (at once if it is), or the
    current one after `timeout` seconds, or at once when the job has ended; {"unknown":
    True} for a token nobody registered (the page then registers again). Runs on the
    server's event loop, looking every READ_SECONDS."""
    watch = _CHANNELS.ask(token)
    if watch is None:
        return {"unknown": True, "done": False, "sentAt": round(time.time(), 4)}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        progress = await watch.fresh()
        left = deadline - loop.time()
        if progress.version > after or progress.done or left <= 0:
            return progress.payload(points)
        await asyncio.sleep(min(READ_SECONDS, left))


async def route_answer(token: str, after: int, query: Mapping[str, str]) -> dict[str, Any]:
    """What the route answers to ?token=&after=&points= (ui/push_route.py)."""
    return await next_progress(token, after, push_route.int_parameter(query, "points", 0))


def install_route() -> bool:
    """Add the progress route to the server this session runs on; False when that cannot
    be done (the page then polls with a fragment)."""
    return push_route.install_route(ROUTE, route_answer)


def pushed_progress(key: str, token: str, *, height: int = 300, on_change=None) -> dict | None:
    """Draw the pushed progress of the job behind `token`; returns what the component
    reported: None while it runs, {"ended": True} once the job ended, {"unknown": True}
    when the server no longer knows the token, {"failed": reason} when the browser could not
    reach the route. height: the curves' height in pixels (the frame grows around them).
    on_change: a callback run when the component reports (before the rerun it causes)."""
    return _train_progress(
        key=key,
        on_change=on_change,
        token=token,
        route=ROUTE,
        look="training",
        traces=training_curve_styles(),
        height=height,
        default=None,
    )


def available() -> bool:
    """Whether this session's progress views can be pushed: the route is installed and this
    browser has not reported that it cannot reach it (else the pages poll)."""
    return not st.session_state.get(FAILED_KEY) and install_route()


def job_view(
    jobs: JobManager, job_id: str, owner: str, *, height: int = 300, on_change=None
) -> bool:
    """Draw the pushed progress of one job: a channel per job and browser session, opened
    again when the server forgot it. False when the browser reported it cannot reach the
    route (remembered in FAILED_KEY: from then on the pages poll). on_change: passed to
    pushed_progress."""
    tokens = {
        job: token for job, token in st.session_state.get(TOKENS_KEY, {}).items() if is_open(token)
    }
    if job_id not in tokens:
        tokens[job_id] = open_channel(jobs, job_id, owner)
    st.session_state[TOKENS_KEY] = tokens
    reply = pushed_progress(
        f"train_push_{job_id}", tokens[job_id], height=height, on_change=on_change
    )
    if isinstance(reply, dict) and reply.get("failed"):
        st.session_state[FAILED_KEY] = str(reply["failed"])
        return False
    return True


def polled_caption(seconds: float) -> None:
    """Say why the progress is polled, when this browser could not reach the route."""
    if st.session_state.get(FAILED_KEY):
        st.caption(
            f"Progress redrawn every {seconds:.0f} s: this browser could not reach the pushed "
            f"view ({st.session_state[FAILED_KEY]})."
        )
