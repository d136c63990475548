"""Train page, section 4: Start / Stop and the live view of the session's training job.

The training runs in a Ray worker process (core.jobs.manager, core.jobs.cluster), never in this
server: the page keeps only the job id (st.session_state["train_job"]). While the job is queued
or running its progress is pushed (ui/train_push.py: a component long-polls a route on this
server and draws the bar and the curves itself; no script rerun per poll). Start / Stop and
the live view are one named fragment (`train_and_watch`), so a click reruns them alone; when
the job ends the component's callback reruns this fragment and sections 5-6 (ui/train_review.py)
once, never the data and settings sections above them. Where the route
cannot be installed (AppTest, another Streamlit) or the browser cannot reach it, an
st.fragment reruns every POLL_SECONDS instead (a poll reads two small files and refills the
curves' figure only when a new logged event arrived: the figure is built once per job).

Reload: a reload starts a new Streamlit session with a new session id, and jobs and runs
belong to the session id. The page therefore mirrors the id into the URL (?sid=...) and
adopts the id it finds there, so reloading the Train page re-attaches to the running job
and the run list. Anyone given that URL sees the same runs: it is a classroom convenience,
not a password.
"""

from __future__ import annotations

import contextlib
import functools
import re

import streamlit as st

from core.jobs.manager import ClusterError, JobError, JobLimitReached, JobManager, get_job_manager
from core.training.support import records_of
from core.training.trainer import TrainConfig
from core.viz.training import refill_training_curves, training_curves_figure
from ui import train_push
from ui.task_jobs import queueing_spinner
from ui.train_dataset import DataChoice

JOB_KEY = "train_job"
JOB_DATA_KEY = "train_job_data"  # job id -> {"dataset", "limit", "script_data"}
RUN_DATA_KEY = "train_run_data"  # run id -> the same, once the run exists
RESULT_PENDING_KEY = "train_result_pending"  # newest finished run, selected on the next run
EVENTS_KEY = "train_live_events"  # (job id, kept events fetched so far)
FIGURE_KEY = "train_live_figure"  # (job id, number of events drawn, Figure)
START_REQUEST_KEY = "train_start_request"  # Start was clicked: submit in this run
FULL_RUN_KEY = "train_full_run"  # True while section 4 or the sweep runs inside a page run
# Section 4 (Start / Stop and the live view; the sweep, ui/train_sweep.py) and sections 5-6
# (results, compare; ui/train_review.py) are named fragments: a job's end reruns its section
# and the review, a click on Start only section 4.
WATCH_FRAGMENT = "train_watch"
SWEEP_FRAGMENT = "train_sweep_section"
REVIEW_FRAGMENT = "train_review"
REVIEW_QUEUED_KEY = "train_review_queued"  # the review fragment runs after this one
# The fallback's poll (no route, or a browser that cannot reach it): each poll reruns the
# fragment, and the browser pays for it. One Train page polling every second kept Chromium's
# main thread busy 260-280 ms of each second (Performance.getMetrics; 170 of them with the
# chart left out), every 2 s 163-213 ms. The pushed view (ui/train_push.py), the default, took
# 39-88 ms/s in the same probe, of which an idle Train tab takes 17-40 (the sidebar's 5 s
# refresh): docs/ARCHITECTURE.md, Train page.
POLL_SECONDS = 2.0
SESSION_ID = re.compile(r"^[0-9a-f]{12}$")


def attach_session() -> str:
    """Adopt ?sid= from the URL (a reload) or write the session id there; return it."""
    sid = st.query_params.get("sid")
    if isinstance(sid, str) and SESSION_ID.match(sid):
        st.session_state["session_id"] = sid
    else:
        st.query_params["sid"] = st.session_state["session_id"]
    return st.session_state["session_id"]


def current_job(jobs: JobManager, owner: str) -> str | None:
    """The session's job id; after a reload, the owner's newest job in the manager (a
    sweep's trials are shown by ui.train_sweep instead)."""
    job_id = st.session_state.get(JOB_KEY)
    known = [s.job_id for s in jobs.jobs(owner) if not s.sweep]
    if job_id not in known:
        job_id = known[0] if known else None
        st.session_state[JOB_KEY] = job_id
    return job_id


def start_stop(
    jobs: JobManager, owner: str, config: TrainConfig | None, spec, data: DataChoice | None, device
) -> None:
    """The Start and Stop buttons (Start disabled while a job runs or settings are invalid).

    Start's click is acted on here, before the buttons are drawn, so that one click costs one
    script run: the buttons are drawn once, already in the new job's state. (Submitting after
    drawing them needed a second run, st.rerun, to disable Start: two page runs on the server
    and two re-renders in the browser per Start, which slowed the workers of a class sharing
    the machine: docs/ARCHITECTURE.md, Train page.)"""
    job_id = current_job(jobs, owner)
    status = jobs.status(job_id, owner) if job_id else None
    running = status is not None and not status.done
    # Set by Start's callback; popped, so a callback Streamlit runs twice starts one job.
    if st.session_state.pop(START_REQUEST_KEY, False) and not running:
        job_id = _start(jobs, owner, config, spec, data, device) or job_id
        status = jobs.status(job_id, owner) if job_id else None
        running = status is not None and not status.done
    left, right, _ = st.columns([1, 1, 3])
    left.button(
        "Start training",
        type="primary",
        key="train_start",
        disabled=running or config is None or spec is None,
        on_click=_request_start,
    )
    stop = right.button("Stop", key="train_stop", disabled=job_id is None)
    if stop and job_id:
        _stop(jobs, owner, job_id)


def _request_start() -> None:
    """Start's on_click: remember the click for start_stop, which runs right after it."""
    st.session_state[START_REQUEST_KEY] = True


def _start(
    jobs: JobManager, owner: str, config: TrainConfig | None, spec, data: DataChoice | None, device
) -> str | None:
    """Submit the training the page's settings describe; the new job id (now the session's
    job) or None, with the reason shown, when nothing was started."""
    if config is None or spec is None or data is None:
        return None  # the settings' problems are shown above the button
    job_id = _submit(jobs, owner, config, spec, data, device)
    if job_id:
        st.session_state[JOB_KEY] = job_id
        st.session_state.setdefault(JOB_DATA_KEY, {})[job_id] = {
            "dataset": data.dataset,
            "limit": data.limit,
            "script_data": data.script_data,
        }
        st.session_state.pop("train_stop_sent", None)
    return job_id


def _submit(
    jobs: JobManager, owner: str, config: TrainConfig, spec, data: DataChoice, device
) -> str | None:
    """Hand the training to a worker; a sentence instead when the session or Ray says no."""
    try:
        with queueing_spinner("the training"):
            return jobs.submit(
                config,
                owner=owner,
                dataset=data.dataset,
                spec=spec,
                device=device,
                name=config.name,
            )
    except JobLimitReached as error:
        st.warning(str(error))
    except ClusterError as error:
        st.error(str(error))
    return None


def _stop(jobs: JobManager, owner: str, job_id: str) -> None:
    try:
        status = jobs.status(job_id, owner)
    except JobError as error:
        st.warning(str(error))
        return
    if status.done:
        st.info(f"This training has already ended ({status.state}); nothing to stop.")
    elif st.session_state.get("train_stop_sent") == job_id:
        st.info("Already stopping: the run ends after the current step and keeps its weights.")
    else:
        jobs.cancel(job_id, owner)
        st.session_state["train_stop_sent"] = job_id
        st.info("Stopping after the current step; the weights so far are saved as a run.")


def train_and_watch(
    jobs: JobManager, owner: str, config: TrainConfig | None, spec, data: DataChoice | None, device
) -> None:
    """Section 4 as one fragment: Start / Stop (start_stop) and the live view (live_view).

    A click on Start or Stop reruns only this fragment, not the whole page: the server runs a
    few functions instead of the page's six sections, and the browser redraws a few elements
    instead of all of them. Measured on the 2-core machine, a whole Train page run cost
    Chromium's main thread about 1 s and the server 0.5 s, taken from the workers of a class
    sharing the machine. The pushed view's report that the job ended reruns this fragment and
    sections 5-6 (results, run table) together (rerun_with_review)."""
    with page_run():
        _train_and_watch(jobs, owner, config, spec, data, device)


@contextlib.contextmanager
def page_run():
    """Mark a section's fragment as running inline in a whole page run (sections 5-6 follow)."""
    st.session_state[FULL_RUN_KEY] = True
    try:
        yield
    finally:  # also when a newer run interrupts this one
        st.session_state[FULL_RUN_KEY] = False


def review_follows() -> bool:
    """Whether sections 5-6 are drawn later in this script run: a whole page run, or a rerun
    of named fragments that includes them (rerun_with_review)."""
    return bool(st.session_state.get(FULL_RUN_KEY) or st.session_state.get(REVIEW_QUEUED_KEY))


def rerun_with_review(fragment: str) -> None:
    """A pushed view's callback (its job ended, or the view needs the page): rerun the view's
    section (`fragment`, a named fragment) and sections 5-6, not the data and settings above
    them. Measured on the 2-core machine, a whole Train page run took the server about 0.5 s,
    a click on Start that reruns section 4 alone 0.06 s (docs/ARCHITECTURE.md, Train page)."""
    st.session_state[REVIEW_QUEUED_KEY] = True
    st.rerun([fragment, REVIEW_FRAGMENT])


@st.fragment(key=WATCH_FRAGMENT)
def _train_and_watch(jobs, owner, config, spec, data, device) -> None:
    start_stop(jobs, owner, config, spec, data, device)
    live_view(jobs, owner)


def live_view(jobs: JobManager, owner: str) -> None:
    """Progress and live curves of the session's job: pushed while it runs (polled where the
    browser cannot reach the route), the final state once it ended."""
    job_id = st.session_state.get(JOB_KEY)
    if not job_id:
        st.caption("Press Start: the loss and accuracy curves grow here while the network learns.")
        return
    try:
        done = jobs.status(job_id, owner).done
    except JobError:
        st.session_state[JOB_KEY] = None
        return
    pushed = (
        not done
        and train_push.available()
        and train_push.job_view(
            jobs, job_id, owner, on_change=functools.partial(rerun_with_review, WATCH_FRAGMENT)
        )
    )
    if not pushed:
        if not done:
            train_push.polled_caption(POLL_SECONDS)
        st.fragment(_live, run_every=None if done else POLL_SECONDS)(job_id, owner)


def _live(job_id: str, owner: str) -> None:
    jobs = get_job_manager()
    try:
        status = jobs.status(job_id, owner)
        events = _events_so_far(jobs, job_id, owner)
    except JobError as error:
        st.warning(str(error))
        return
    if status.run_id and job_id in st.session_state.get(JOB_DATA_KEY, {}):
        st.session_state.setdefault(RUN_DATA_KEY, {})[status.run_id] = st.session_state[
            JOB_DATA_KEY
        ][job_id]
    if status.done and st.session_state.get("train_final_seen") != job_id:
        st.session_state["train_final_seen"] = job_id
        st.session_state[RESULT_PENDING_KEY] = status.run_id
        if not review_follows():
            st.rerun()  # the fallback's own run: redraw the page for the results and run table
    if status.state == "queued":
        st.info(train_push.queued_line(status))
    started = next((e for e in events if e.kind == "started"), None)
    if started is not None:
        st.caption(train_push.started_caption(started.info, status))
    st.progress(min(1.0, status.progress), text=train_push.progress_text(status))
    st.plotly_chart(_curves(job_id, events), key="train_live_curves")
    _final_message(status)


def _events_so_far(jobs: JobManager, job_id: str, owner: str, key: str = EVENTS_KEY) -> list:
    """The job's kept events, fetching only those after the ones this session already has
    (cached under the session key `key`)."""
    cached = st.session_state.get(key)
    if not cached or cached[0] != job_id:
        cached = (job_id, [])
    events = cached[1] + jobs.events(job_id, owner, since=len(cached[1]))
    st.session_state[key] = (job_id, events)
    return events


def _curves(job_id: str, events: list, key: str = FIGURE_KEY):
    """The live curves: one figure per job, refilled in place when new logged events arrived
    (building a figure costs the server 100-150 ms, a refill about 1 ms; with a class polling
    once a second each, rebuilding held the server's interpreter for a good part of every
    second and other students' pages waited). key: where the session keeps it (one per slot)."""
    cached = st.session_state.get(key)
    if cached is None or cached[0] != job_id:
        cached = (job_id, len(events), training_curves_figure(records_of(events)))
    elif cached[1] != len(events):
        cached = (job_id, len(events), refill_training_curves(cached[2], records_of(events)))
    st.session_state[key] = cached
    return cached[2]


def live_curves(jobs: JobManager, job_id: str, owner: str, *, slot: str):
    """The live loss / accuracy curves of any training job (a sweep's trial), with the same
    incremental fetch and figure cache as the session's own job, kept under the session keys
    `<slot>_events` and `<slot>_figure`."""
    events = _events_so_far(jobs, job_id, owner, key=f"{slot}_events")
    return _curves(job_id, events, key=f"{slot}_figure")


def _final_message(status) -> None:
    if status.state == "finished":
        st.success(status.message or "Finished.")
    elif status.state == "stopped":
        st.info(status.message or "Stopped.")
    elif status.state == "failed":
        st.error(status.message or "The training failed.")
    elif status.state == "interrupted":
        st.warning(status.message or "The worker stopped; what was saved is kept.")
