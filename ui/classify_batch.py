"""Classify page, many clips: upload several files (or take built-in ones), get a table and CSV.

Classifying many files takes a while (about a third of a second per clip on a busy CPU), so
it runs in a Ray worker (core.jobs.tasks "classify_files" through the job manager), not in the
web server: the page sends the model and the files, shows the progress from a fragment that
polls the job's folder, and draws the table from the job's JSON result.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib

import streamlit as st
import torch

from core.audio.clip import UPLOAD_TYPES
from core.devices import resolve_device
from core.inference.classifier import InferenceModel, batch_csv, file_stem
from core.jobs.manager import ClusterError, JobError, JobLimitReached, get_job_manager
from core.jobs.tasks import batch_rows
from core.paths import DIGITS_DIR
from ui.task_jobs import queueing_spinner

MAX_FILES = 200  # one batch; more is a job for the command line
BUILTIN_BATCH = tuple(f"{digit}_nicolas_{take}.wav" for digit in range(10) for take in (0, 1))
POLL_SECONDS = 1.0


def show_batch(prefix: str, model: InferenceModel) -> None:
    """File uploader (many files) or a built-in set -> table (file, class, confidence) + CSV."""
    uploads = st.file_uploader(
        "Upload clips",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        key=f"{prefix}_batch_upload",
        help=f"Up to {MAX_FILES} files; each is classified on its own.",
    )
    builtin = st.toggle(
        "Use 20 built-in spoken digits instead",
        key=f"{prefix}_batch_builtin",
        help="Two takes of each digit by one speaker; the ready-made model trained on some "
        "takes of every speaker, so a few of these may be clips it has seen.",
    )
    if builtin:
        sources = [(name, str(DIGITS_DIR / name)) for name in BUILTIN_BATCH]
    elif uploads:
        sources = [(u.name, u.getvalue()) for u in uploads]
    else:
        st.caption("Upload clips (or use the built-in set) to classify them all at once.")
        return
    if len(sources) > MAX_FILES:
        st.warning(f"{len(sources)} files: only the first {MAX_FILES} are classified.")
        sources = sources[:MAX_FILES]
    key = f"{prefix}_batch_job"
    batch = st.session_state.get(key) or {}
    signature = _signature(model, sources)
    running = bool(batch.get("job")) and not batch.get("done")
    left, right, _ = st.columns([2, 1, 2])
    if left.button(
        f"Classify these {len(sources)} clips",
        key=f"{prefix}_batch_run",
        type="primary",
        disabled=running,
    ):
        _submit(key, model, sources, signature)
        batch = st.session_state.get(key) or {}
        running = bool(batch.get("job"))
    if running and right.button("Stop", key=f"{prefix}_batch_stop"):
        get_job_manager().cancel(batch["job"], st.session_state["session_id"])
    if not batch.get("job"):
        return
    if batch["signature"] != signature:
        st.caption("The table below is for the previous choice of clips or model.")
    poll = None if batch.get("done") else POLL_SECONDS
    st.fragment(_result, run_every=poll)(prefix, key, model.name)


def _signature(model: InferenceModel, sources) -> str:
    digest = hashlib.sha1(f"{model.name}|{model.run_id}".encode())
    for name, source in sources:
        digest.update(name.encode())
        digest.update(source if isinstance(source, bytes) else source.encode())
    return digest.hexdigest()


def _submit(key: str, model: InferenceModel, sources, signature: str) -> None:
    """Send the model (on the CPU: a worker may have no GPU) and the files to a worker."""
    if model.device.type != "cpu":  # the server's model is shared: send a CPU copy
        model = dataclasses.replace(
            model, network=copy.deepcopy(model.network).cpu(), device=torch.device("cpu")
        )
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    try:
        with queueing_spinner("the batch"):
            job = get_job_manager().submit_task(
                "classify_files",
                dict(model=model, sources=sources),
                owner=st.session_state["session_id"],
                device=device,
                name=f"{len(sources)} clips with {model.name}",
            )
    except JobLimitReached as error:
        st.warning(str(error))
        return
    except ClusterError as error:
        st.error(str(error))
        return
    st.session_state[key] = {"job": job, "signature": signature, "done": False}
    st.rerun()  # draw the button disabled and Stop for the queued batch


def _result(prefix: str, key: str, model_name: str) -> None:
    batch = st.session_state.get(key) or {}
    jobs, owner = get_job_manager(), st.session_state["session_id"]
    try:
        status = jobs.status(batch["job"], owner)
    except (JobError, KeyError):
        st.session_state[key] = None
        return
    if not status.done:
        where = (
            f"number {status.queue_position} in the queue"
            if status.queue_position
            else status.message
        )
        st.progress(
            min(1.0, status.progress), text=f"Classifying on a worker: {where or status.state}"
        )
        return
    if not batch.get("done"):
        batch["done"] = True
        st.rerun(scope="app")  # stop polling; draw the Classify button enabled again
    result = jobs.task_result(batch["job"], owner)
    if result is None:
        st.warning(status.message or "The batch did not finish; press Classify again.")
        return
    rows = batch_rows(result)
    if status.state == "stopped":
        st.info(f"Stopped after {len(rows)} clips.")
    failed = sum(1 for r in rows if not r.label)
    if failed:
        st.warning(f"{failed} of {len(rows)} files could not be read: see the note column.")
    table = [
        {
            "file": r.file,
            "class": r.label or "—",
            "confidence": None if r.confidence != r.confidence else round(r.confidence, 3),
            "unsure": r.unsure,
            "seconds": None
            if r.duration_seconds != r.duration_seconds
            else round(r.duration_seconds, 2),
            "note": r.note,
        }
        for r in rows
    ]
    st.dataframe(table, key=f"{prefix}_batch_table", hide_index=True)
    st.download_button(
        "Download CSV",
        batch_csv(rows),
        file_name=f"{file_stem(model_name)}_predictions.csv",
        mime="text/csv",
        key=f"{prefix}_batch_csv",
        icon=":material/download:",
        on_click="ignore",
    )
