"""Background training jobs shared by every session of the app.

A page submits a TrainConfig and gets a job id back at once; the training runs in a thread
of this process. Each device has a limited number of job slots (core.device job slots),
so when a class starts twenty trainings on one GPU the first run and the rest wait in a
queue whose position each student sees. Any session can ask about its own jobs (by job id
and owner) on every rerun: status, progress, the events so far, the final evaluation.

    jobs = get_job_manager()
    job_id = jobs.submit(TrainConfig(epochs=5), owner=session_id)
    status = jobs.status(job_id, owner=session_id)   # state, queue_position, progress, ...
    new_events = jobs.events(job_id, owner=session_id, since=seen)
    jobs.cancel(job_id, owner=session_id)

Nothing here imports streamlit; a page polls (e.g. from an st.fragment with run_every).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from core.train import TrainConfig, TrainEvent, train

log = logging.getLogger(__name__)
FINAL_STATES = ("finished", "stopped", "failed")
MAX_FINISHED_PER_OWNER = 20  # older finished jobs are forgotten (their runs stay in the store)


class JobError(LookupError):
    """No such job for this owner; str() is a sentence for the page."""


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job.

    state: "queued" (waiting for a device slot; queue_position 1 = next), "running",
    "finished", "stopped" or "failed". progress 0..1 over optimiser steps; the numbers
    (loss, val_accuracy, ...) are those of the latest event; run_id once the run exists.
    """

    job_id: str
    owner: str
    name: str
    device: str
    state: str
    queue_position: int | None
    progress: float
    epoch: int
    epochs: int
    loss: float | None
    val_accuracy: float | None
    samples_per_second: float
    eta_seconds: float | None
    message: str
    run_id: str | None
    submitted_at: float  # time.time()
    finished_at: float | None

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


@dataclass
class _Job:
    job_id: str
    owner: str
    name: str
    config: TrainConfig
    device: torch.device
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"
    queue_position: int | None = None
    events: list[TrainEvent] = field(default_factory=list)
    latest: TrainEvent | None = None
    message: str = ""
    submitted_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """Runs trainings in background threads, a limited number per device at a time.

    store: the core.runs.RunStore every job writes its run into (default: the standard
    root). limiter: a core.device.DeviceJobLimiter (default: the process-wide one, so
    trainings and other GPU jobs share the same slots).
    """

    def __init__(self, store: Any = None, *, limiter: Any = None):
        from core.device import get_job_limiter
        from core.runs import RunStore

        self.store = store if store is not None else RunStore()
        self.limiter = limiter if limiter is not None else get_job_limiter()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def submit(
        self,
        config: TrainConfig,
        *,
        owner: str,
        dataset: Any = None,
        spec: Any = None,
        device: torch.device | str | None = None,
        name: str = "",
    ) -> str:
        """Queue a training and return its job id at once.

        dataset / spec: as for core.train.train (browser clips, a network from the builder).
        device: default core.device.resolve_device(config.device).
        """
        from core.device import resolve_device

        device = torch.device(device) if device is not None else resolve_device(config.device)
        with self._lock:
            job_id = f"job-{next(self._ids)}-{int(time.time() * 1000) % 100000:05d}"
            job = _Job(job_id, owner, name or config.name, config, device)
            self._jobs[job_id] = job
            self._forget_old(owner)
        thread = threading.Thread(
            target=self._run, args=(job, dataset, spec), name=job_id, daemon=True
        )
        thread.start()
        return job_id

    def _run(self, job: _Job, dataset: Any, spec: Any) -> None:
        def on_wait(position: int) -> None:
            job.queue_position = position

        try:
            with self.limiter.job_slot(job.device, job.owner, on_wait):
                job.queue_position = 0
                if job.cancel.is_set():
                    self._end(job, "stopped", "Cancelled while waiting in the queue.")
                    return
                job.state = "running"
                for event in train(
                    job.config,
                    dataset=dataset,
                    spec=spec,
                    device=job.device,
                    cancel=job.cancel,
                    store=self.store,
                    owner=job.owner,
                ):
                    self._record(job, event)
        except Exception as error:  # never let a job thread die silently
            log.exception("job %s crashed", job.job_id)
            self._end(job, "failed", f"The training crashed: {type(error).__name__}: {error}")
        finally:
            if not job.done.is_set():
                self._end(
                    job,
                    job.state if job.state in FINAL_STATES else "failed",
                    job.message or "The training ended without a result.",
                )

    def _record(self, job: _Job, event: TrainEvent) -> None:
        with self._lock:
            job.latest = event
            # Every step would be thousands of events: keep the logged ones (with accuracy).
            if event.kind != "step" or event.accuracy is not None:
                job.events.append(event)
            if event.message:
                job.message = event.message
        if event.is_final:
            self._end(job, event.kind, event.message)

    def _end(self, job: _Job, state: str, message: str) -> None:
        with self._lock:
            job.state, job.message = state, message
            job.queue_position = None
            job.finished_at = time.time()
        job.done.set()

    def _forget_old(self, owner: str) -> None:
        finished = [j for j in self._jobs.values() if j.owner == owner and j.done.is_set()]
        for job in sorted(finished, key=lambda j: j.submitted_at)[:-MAX_FINISHED_PER_OWNER]:
            del self._jobs[job.job_id]

    # ----------------------------------------------------------------- asking

    def _get(self, job_id: str, owner: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise JobError(f"There is no job {job_id} for this session.")
        return job

    def status(self, job_id: str, owner: str) -> JobStatus:
        """A snapshot of the job (JobError if it is not this owner's)."""
        with self._lock:
            job = self._get(job_id, owner)
            e = job.latest
            return JobStatus(
                job_id=job.job_id,
                owner=job.owner,
                name=job.name,
                device=str(job.device),
                state=job.state,
                queue_position=job.queue_position if job.state == "queued" else None,
                progress=1.0 if job.state == "finished" else (e.progress if e else 0.0),
                epoch=e.epoch if e else 0,
                epochs=job.config.epochs,
                loss=e.loss if e else None,
                val_accuracy=e.val_accuracy if e else None,
                samples_per_second=e.samples_per_second if e else 0.0,
                eta_seconds=e.eta_seconds if e else None,
                message=job.message,
                run_id=e.run_id if e else None,
                submitted_at=job.submitted_at,
                finished_at=job.finished_at,
            )

    def jobs(self, owner: str) -> list[JobStatus]:
        """Status of every job of `owner`, newest first."""
        with self._lock:
            ids = [
                j.job_id
                for j in sorted(self._jobs.values(), key=lambda j: j.submitted_at, reverse=True)
                if j.owner == owner
            ]
        return [self.status(job_id, owner) for job_id in ids]

    def events(self, job_id: str, owner: str, since: int = 0) -> list[TrainEvent]:
        """The job's kept events from position `since` on (pass len(seen) to get new ones).

        Kept: started, every logged step (every config.log_every_steps), epoch_end,
        evaluation and the final event; the latest step is in `latest_event`.
        """
        with self._lock:
            return list(self._get(job_id, owner).events[since:])

    def latest_event(self, job_id: str, owner: str) -> TrainEvent | None:
        """The most recent event, step events included."""
        with self._lock:
            return self._get(job_id, owner).latest

    def final_event(self, job_id: str, owner: str) -> TrainEvent | None:
        """The finished / stopped / failed event (with its Evaluation), None while running."""
        with self._lock:
            latest = self._get(job_id, owner).latest
        return latest if latest is not None and latest.is_final else None

    def cancel(self, job_id: str, owner: str) -> None:
        """Ask the job to stop: a running job stops before its next step and saves the run;
        a queued job is marked stopped at once and leaves when its turn comes."""
        with self._lock:
            job = self._get(job_id, owner)
            job.cancel.set()
            queued = job.state == "queued"
        if queued:
            self._end(job, "stopped", "Cancelled while waiting in the queue.")

    def wait(self, job_id: str, owner: str, timeout: float | None = None) -> JobStatus:
        """Block until the job ends (or `timeout` seconds); return its status."""
        with self._lock:
            job = self._get(job_id, owner)
        job.done.wait(timeout)
        return self.status(job_id, owner)


_manager: JobManager | None = None
_manager_lock = threading.Lock()


def get_job_manager() -> JobManager:
    """The JobManager shared by every session of this process (made on first use).

    It writes runs into core.runs.RunStore() (AUDIO_DL_RUNS_DIR or ./runs) and uses the
    process-wide device job slots. Safe to call from any Streamlit session thread.
    """
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = JobManager()
        return _manager
