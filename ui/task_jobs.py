"""Pages' side of the long tasks that run on Ray workers (core.jobs.tasks): queue one for this
session, show where it stands, stop it.

    job_id = submit_task("embedding_map", dict(embeddings=e, method="t-SNE"), device=device,
                         name="t-SNE of 200 clips")          # None: a sentence is on the page
    status = show_task_progress(job_id, "Drawing the t-SNE map on a worker", stop_key="..")

A page keeps the job id in its session state and polls `show_task_progress` from an
st.fragment(run_every=...) until the status is done, then reads `get_job_manager().task_result`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.jobs import cluster
from core.jobs.manager import (
    ClusterError,
    JobError,
    JobLimitReached,
    JobStatus,
    get_job_manager,
)

STARTING = "Starting the worker processes (Ray; the first time takes a few seconds)..."


def queueing_spinner(what: str):
    """A spinner while a job is handed to Ray: it says Ray is starting (the server's first job
    waits a few seconds for it) or that `what` is being queued."""
    return st.spinner(STARTING if cluster.connected() is None else f"Queueing {what}...")


def submit_task(
    task: str,
    kwargs: Mapping[str, Any],
    *,
    device: Any,
    name: str,
    busy: str = "",
    retry_seconds: float | None = None,
) -> str | None:
    """Queue `task` for this session and return its job id; None with a sentence on the page
    when the session already runs one (`busy`: what to say then) or Ray cannot start.
    retry_seconds: when the session's previous job of this task is still ending, rerun the
    page after this long (it asks again then) instead of waiting for the student."""
    try:
        with queueing_spinner(name):
            return get_job_manager().submit_task(
                task, kwargs, owner=st.session_state["session_id"], device=device, name=name
            )
    except JobLimitReached as error:
        st.info(busy or str(error))
        if retry_seconds:
            _rerun_page_after(retry_seconds, f"task_retry_{task}")
    except ClusterError as error:
        st.error(str(error))
    return None


def _rerun_page_after(seconds: float, key: str) -> None:
    """A fragment that reruns the whole page on its first timed run (not the inline one)."""
    st.session_state[key] = False

    def tick() -> None:
        if st.session_state.get(key):
            st.rerun(scope="app")
        st.session_state[key] = True

    st.fragment(tick, run_every=seconds)()


def task_status(job_id: str) -> JobStatus | None:
    """The job's status for this session, None when it is not (or no longer) known."""
    try:
        return get_job_manager().status(job_id, st.session_state["session_id"])
    except JobError:
        return None


def show_task_progress(job_id: str, doing: str, *, stop_key: str) -> JobStatus | None:
    """A progress bar with the place in the queue or the worker's own sentence, and a Stop
    button, while the job is unfinished; returns its status (None if unknown)."""
    status = task_status(job_id)
    if status is None or status.done:
        return status
    if status.queue_position:
        where = f"number {status.queue_position} in the queue (waiting for {status.resources})"
    else:
        where = status.message or status.state
    left, right = st.columns([5, 1])
    left.progress(min(1.0, status.progress), text=f"{doing}: {where}")
    if right.button("Stop", key=stop_key):
        get_job_manager().cancel(job_id, st.session_state["session_id"])
        st.caption("Stopping...")
    return status
