"""Training jobs shared by every session of the app, run by worker processes on Ray.

A page submits a TrainConfig and gets a job id back at once; the training runs in a Ray
worker process (core.jobs.cluster), never in the web server, so one student's training does not
slow another's page. The worker writes its progress into the job's folder beside the runs
(core.jobs.files) and the run itself into the run store; this manager only reads those small
files, so a poll costs milliseconds, a restarted server finds the running jobs, and a server
on another machine sharing the runs folder sees them too. Any session can ask about its own
jobs (by job id and owner): status, place in the queue, progress, the events so far.

    jobs = get_job_manager()
    job_id = jobs.submit(TrainConfig(epochs=5), owner=session_id)   # JobLimitReached, ClusterError
    status = jobs.status(job_id, owner=session_id)   # state, queue_position, progress, ...
    new_events = jobs.events(job_id, owner=session_id, since=len(seen))
    jobs.cancel(job_id, owner=session_id)            # stops within a step, forced after 10 s

A sweep (core.jobs.sweeps) is a batch of ordinary training jobs sharing a sweep id: all queue at
once (the per-session limit does not refuse them) but at most `sweep_trials_at_once()` of
them run at a time, started in turn by a small Ray actor (core.jobs.cluster.SweepDriver).

    sweep_id = jobs.submit_sweep(base_config, SweepSpace(learning_rates=(1e-3, 1e-2)), owner=sid)
    trials = jobs.sweep_jobs(sweep_id, owner=sid)    # JobStatus per trial, in trial order
    jobs.cancel_sweep(sweep_id, owner=sid)

States: "queued" (Ray has not started the worker: no free CPU/GPU), "running", then
"finished", "stopped", "failed" or "interrupted" (the worker died: killed, its machine lost).
Nothing here imports streamlit or starts Ray before the first submit.

Why one module of about 750 lines: most of it is one class, JobManager, the single door pages
and the CLI use for every job. Its submit, status, stop and queue methods share the admit /
resources / launch path and the job-folder bookkeeping, and splitting the class would scatter
one lifecycle over several files.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from core.devices import resolve_device
from core.jobs import cluster, dispatcher, distributed
from core.jobs.cluster import ClusterError
from core.jobs.files import (
    FINAL_STATES,
    JobFolder,
    event_from_record,
    jobs_root,
    read_task_result,
)
from core.jobs.sweeps import new_sweep_id, plan_sweep
from core.training.runs import HEARTBEAT_STALE_SECONDS, RunError, RunStore
from core.training.trainer import TrainConfig, TrainEvent

__all__ = [
    "FINAL_STATES",
    "ClusterError",
    "JobError",
    "JobLimitReached",
    "JobManager",
    "JobStatus",
    "JobsOverview",
    "get_job_manager",
]

MAX_FINISHED_PER_OWNER = 20  # older finished jobs are forgotten (their runs stay in the store)
MAX_FINISHED_TASKS = 3  # finished jobs of each task kept per owner (their results with them)
FORCE_STOP_SECONDS = 10.0  # a Stop not obeyed within this long kills the worker
LOST_AFTER_SECONDS = 30.0  # a queued job Ray does not know after this long was lost
SESSION_LIMIT_ENV = "AUDIO_DL_JOBS_PER_SESSION"
DEFAULT_SESSION_LIMIT = 1


class JobError(LookupError):
    """No such job for this owner; str() is a sentence for the page."""


class JobLimitReached(RuntimeError):
    """The session already has as many unfinished jobs as allowed; str() is a sentence."""


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job.

    state: "queued" (waiting for a free CPU/GPU; queue_position 1 = next), "running",
    "finished", "stopped", "failed" or "interrupted". progress 0..1 over optimiser steps;
    the numbers (loss, val_accuracy, ...) are those of the latest event; run_id once the run
    exists; node: the machine the worker runs on.
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
    node: str = ""
    resources: str = ""  # e.g. "1 GPU" or "2 CPUs"
    # a sweep's trial: {"id", "name", "trial" (0-based), "trials", "values"}; {} otherwise
    sweep: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class JobsOverview:
    """Every unfinished job of the app, for the sidebar: counts and one owner's places."""

    running: int
    queued: int
    own_running: int
    own_queue_positions: tuple[int, ...]  # the owner's queued jobs' places, 1 = next

    def summary(self) -> str:
        """E.g. "Jobs: 2 running · 3 queued · yours: 2nd in the queue"."""
        text = f"Jobs: {self.running} running · {self.queued} queued"
        if self.own_running:
            text += " · yours is running"
        for position in self.own_queue_positions:
            text += f" · yours: number {position} in the queue"
        return text


def session_limit(env: Mapping[str, str] | None = None) -> int:
    """Unfinished jobs allowed per browser session (AUDIO_DL_JOBS_PER_SESSION, default 1)."""
    text = (os.environ if env is None else env).get(SESSION_LIMIT_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else DEFAULT_SESSION_LIMIT


def sweep_trials_at_once(env: Mapping[str, str] | None = None) -> int:
    """How many trials of one sweep run at the same time: the per-session limit, so a sweep
    takes no more of the cluster than the student's own trainings could."""
    return session_limit(env)


class JobManager:
    """Submits trainings to Ray workers and reads their progress from the job folders.

    store: the core.training.runs.RunStore the workers write runs into (default: the standard root);
    the job folders live in `<store root>/.jobs`. env: where settings are read (default
    os.environ): AUDIO_DL_RAY_ADDRESS, AUDIO_DL_JOBS_PER_SESSION, AUDIO_DL_JOB_CPUS.
    Holds no job in memory: a new manager (a restarted server) sees the same jobs.
    """

    def __init__(self, store: Any = None, *, env: Mapping[str, str] | None = None):
        self.store = store if store is not None else RunStore()
        self.root = jobs_root(self.store.root)
        self._env = env
        # Listings stat every job folder; these keep what was parsed so a sidebar poll over a
        # class's hundreds of jobs reads only the files that changed (job.json never does).
        self._metas: dict[str, dict[str, Any]] = {}
        self._states: dict[str, tuple[int, dict[str, Any]]] = {}

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    # ----------------------------------------------------------------- submitting

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
        """Queue a training on a Ray worker and return its job id at once.

        dataset / spec: as for core.training.trainer.train (browser clips, a network from the
        builder); they travel to the worker through Ray. device: default
        core.devices.resolve_device(config.device); it decides what the job asks Ray for.
        `config.workers` > 1: data-parallel across that many Ray workers (core.jobs.distributed),
        still one job and one run. Raises JobLimitReached when `owner` has
        AUDIO_DL_JOBS_PER_SESSION unfinished jobs, ClusterError when Ray cannot start (the first
        submit starts it: seconds) or the cluster has too few GPUs / CPUs for the workers.
        """
        self._admit(owner, "training")
        device = torch.device(device) if device is not None else resolve_device(config.device)
        resources = self._resources(device, workers=config.workers)
        job_id = self._new_job(config, owner, device, resources, name=name or config.name)
        folder = JobFolder(self.root / job_id)
        common = dict(dataset=dataset, spec=spec, owner=owner, runs_root=self.store.root)
        if config.workers > 1:  # data-parallel: Ray Train's workers, one run by rank 0
            start = functools.partial(
                distributed.start_distributed_training,
                job_id,
                folder,
                config,
                resources=resources,
                workers=config.workers,
                **common,
            )
        else:
            start = functools.partial(
                dispatcher.start_training_worker,
                job_id,
                folder,
                config,
                device=device,
                resources=resources,
                **common,
            )
        self._launch([folder], "job", start)
        self._forget_old(owner)
        return job_id

    def submit_sweep(
        self,
        base: TrainConfig,
        space: Any,
        *,
        owner: str,
        dataset: Any = None,
        spec: Any = None,
        device: torch.device | str | None = None,
        name: str = "",
    ) -> str:
        """Queue every trial of a sweep (core.jobs.sweeps.plan_sweep(base, space)); return its id.

        Each trial is an ordinary job (own job id, run, Stop) whose job.json and run carry
        the sweep's record. All queue at once, whatever the per-session limit; at most
        `sweep_trials_at_once()` run at a time. Raises core.jobs.sweeps.SweepError for a space
        that makes no valid trials, JobLimitReached while the owner has another job or
        sweep unfinished (a sweep then waits behind nothing of its own), ClusterError when
        Ray cannot start.
        """
        # Trials are many small trainings at once, one worker each; a sweep does not multiply
        # them by data-parallel workers.
        base = dataclasses.replace(base, workers=1)
        trials = plan_sweep(base, space)  # SweepError first: nothing is queued
        self._admit(owner, "sweep")
        device = torch.device(device) if device is not None else resolve_device(base.device)
        resources = self._resources(device)
        sweep_id = new_sweep_id()
        sweep_name = name or base.name
        planned = []
        for trial in trials:
            record = {
                "id": sweep_id,
                "name": sweep_name,
                "trial": trial.index,
                "trials": len(trials),
                "values": dict(trial.values),
            }
            job_id = self._new_job(
                trial.config, owner, device, resources, name=trial.config.name, sweep=record
            )
            planned.append(
                {
                    "job_id": job_id,
                    "job_dir": str(self.root / job_id),
                    "config": trial.config,
                    "resources": {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus},
                    "sweep": record,
                }
            )
        self._launch(
            [JobFolder(trial["job_dir"]) for trial in planned],
            "sweep",
            lambda: cluster.start_sweep_driver(
                sweep_id,
                planned,
                dataset=dataset,
                spec=spec,
                device=device,
                owner=owner,
                runs_root=self.store.root,
                at_once=sweep_trials_at_once(self.env),
            ),
        )
        self._forget_old(owner)
        return sweep_id

    # ------------------------------------------------- the one path every submit takes

    def _admit(self, owner: str, kind: str) -> None:
        """The per-session limits, in one place; JobLimitReached with its sentence.

        kind "training": at most AUDIO_DL_JOBS_PER_SESSION unfinished trainings, none while
        a sweep of the owner's runs (its trials take the share). "sweep": nothing of the
        owner's unfinished (the sweep queues its trials itself). A task name: one unfinished
        job of that task (tasks do not count against the trainings' limit)."""
        if kind not in ("training", "sweep"):
            if any(not s.done for s in self.jobs(owner, kind=kind)):
                raise JobLimitReached(
                    "That job is already queued or running for you: wait for it or stop it."
                )
            return
        unfinished = [s for s in self.jobs(owner) if not s.done]
        sweeping = any(s.sweep for s in unfinished)
        if kind == "sweep" and unfinished:
            raise JobLimitReached(
                f"Your {'sweep' if sweeping else 'training'} is still queued or running. A "
                "sweep queues all its trials itself: stop it or wait until it ends, then start "
                "the sweep."
            )
        if sweeping:
            raise JobLimitReached(
                "Your sweep is still queued or running, and its trials take your share of the "
                "machines. Stop the sweep or wait until it ends."
            )
        limit = session_limit(self.env)
        if len(unfinished) >= limit:
            raise JobLimitReached(
                f"You already have {len(unfinished)} training(s) queued or running; "
                f"{'one is' if limit == 1 else f'{limit} are'} allowed per session so the "
                "class shares the machines. Stop it or wait until it ends."
            )

    def _resources(self, device: torch.device, workers: int = 1) -> Any:
        """What a job on `device` asks Ray for (cluster.job_resources; each worker's share for a
        data-parallel job), connecting first (the first submit starts Ray); ClusterError with a
        sentence when that fails."""
        info = cluster.connect(self.env)
        try:
            if workers > 1:
                return distributed.worker_resources(device, info, workers, self.env)
            return cluster.job_resources(device, info, self.env)
        except ValueError as error:
            raise ClusterError(str(error)) from None

    def _launch(self, folders: list[JobFolder], what: str, start: Any) -> None:
        """start() hands the job(s) to Ray; if Ray refuses, every folder is marked failed with
        the reason and ClusterError raised (so no job waits in a queue it never joined)."""
        try:
            start()
        except Exception as error:
            message = f"Ray refused the {what} ({type(error).__name__}: {error})."
            for folder in folders:
                folder.write_state("failed", message=message, finished_at=time.time())
            raise ClusterError(message) from None

    def _new_job(
        self,
        config: TrainConfig | None,
        owner: str,
        device: torch.device,
        resources: Any,
        *,
        name: str,
        sweep: Mapping[str, Any] | None = None,
        task: str = "",
    ) -> str:
        """Make a job's folder with its job.json (the job is queued); return its id.
        config: a training's (None for a task of core.jobs.tasks, named by `task`)."""
        job_id = f"job-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        meta = {
            "job_id": job_id,
            "owner": owner,
            "name": name,
            "device": str(device),
            "epochs": config.epochs if config is not None else 0,
            "kind": task or "training",
            "submitted_at": time.time(),
            "pool": resources.pool,
            "num_cpus": resources.num_cpus,
            "num_gpus": resources.num_gpus,
            "workers": config.workers if config is not None else 1,  # each holds the above
        }
        if sweep:
            meta["sweep"] = dict(sweep)
        JobFolder(self.root / job_id).create(meta)
        return job_id

    def sweep_jobs(self, sweep_id: str, owner: str) -> list[JobStatus]:
        """Status of the sweep's trials still known (finished jobs are forgotten after
        MAX_FINISHED_PER_OWNER; their runs stay), in trial order."""
        trials = [s for s in self.jobs(owner) if s.sweep.get("id") == sweep_id]
        return sorted(trials, key=lambda s: int(s.sweep.get("trial", 0)))

    def current_sweep(self, owner: str) -> str | None:
        """The id of the owner's newest sweep still known, None if there is none."""
        for status in self.jobs(owner):  # newest first
            if status.sweep:
                return str(status.sweep.get("id"))
        return None

    def cancel_sweep(self, sweep_id: str, owner: str) -> int:
        """Stop every unfinished trial of the sweep (see `cancel`); return how many."""
        open_trials = [s for s in self.sweep_jobs(sweep_id, owner) if not s.done]
        for status in open_trials:
            self.cancel(status.job_id, owner)
        return len(open_trials)

    # ----------------------------------------------------------------- tasks

    def submit_task(
        self,
        task: str,
        kwargs: Mapping[str, Any],
        *,
        owner: str,
        device: torch.device | str = "cpu",
        name: str = "",
    ) -> str:
        """Queue a long job other than a training (core.jobs.tasks.TASKS[task]) on a Ray worker.

        kwargs travel to the worker through Ray (from this server only); the result comes
        back as files (`task_result`), progress as `task_events` and `status().progress`.
        One unfinished job of each task per owner: a second raises JobLimitReached. Tasks
        wait in the same queue as trainings (same resources for the same device), but do
        not count against the trainings' per-session limit. ClusterError when Ray cannot
        start; core.jobs.tasks.TaskError for an unknown task.
        """
        from core.jobs.tasks import TASKS, TaskError

        if task not in TASKS:
            raise TaskError(f"There is no task called {task!r}.")
        self._admit(owner, task)
        device = torch.device(device)
        resources = self._resources(device)
        job_id = self._new_job(None, owner, device, resources, name=name or task, task=task)
        folder = JobFolder(self.root / job_id)
        self._launch(
            [folder],
            "job",
            lambda: dispatcher.start_task_worker(
                job_id,
                folder,
                task,
                kwargs,
                device=device,
                runs_root=self.store.root,
                resources=resources,
            ),
        )
        self._forget_old(owner, kind=task, keep=MAX_FINISHED_TASKS)
        return job_id

    def task_events(self, job_id: str, owner: str, since: int = 0) -> list[dict[str, Any]]:
        """The task's progress records from position `since` on: {"fraction", "message",
        "values"} (e.g. the autoencoder's {"losses": [...]})."""
        folder, _ = self._folder(job_id, owner)
        return folder.events(since)

    def task_result(self, job_id: str, owner: str) -> Any:
        """The finished (or stopped) task's core.jobs.files.TaskResult, None before."""
        folder, _ = self._folder(job_id, owner)
        return read_task_result(folder)

    def _forget_old(
        self, owner: str, *, kind: str = "training", keep: int = MAX_FINISHED_PER_OWNER
    ) -> None:
        finished = [s for s in self.jobs(owner, kind=kind) if s.done]
        for status in finished[keep:]:
            shutil.rmtree(self.root / status.job_id, ignore_errors=True)
            self._metas.pop(status.job_id, None)
            self._states.pop(status.job_id, None)

    # ----------------------------------------------------------------- asking

    def _folder(self, job_id: str, owner: str) -> tuple[JobFolder, dict[str, Any]]:
        folder = JobFolder(self.root / job_id) if _safe_id(job_id) else None
        meta = folder.meta() if folder is not None else {}
        if not meta or meta.get("owner") != owner:
            raise JobError(f"There is no job {job_id} for this session.")
        return folder, meta

    def status(self, job_id: str, owner: str) -> JobStatus:
        """A snapshot of the job (JobError if it is not this owner's).

        Also where faults are noticed: a running job whose worker stopped beating for
        HEARTBEAT_STALE_SECONDS becomes "interrupted" (its run keeps what was saved), a Stop
        not obeyed within FORCE_STOP_SECONDS kills the worker.
        """
        folder, meta = self._folder(job_id, owner)
        state = self._check_health(folder, meta, folder.state())
        latest = state.get("latest") or {}
        name = state.get("state", "queued")
        in_line = name == "queued" and (not meta.get("sweep") or state.get("in_ray_queue"))
        message = str(state.get("message", ""))
        if name == "queued" and not in_line:
            message = message or "Waiting for its turn in the sweep."
        total_steps = latest.get("total_steps") or 0
        progress = min(1.0, latest.get("step", 0) / total_steps) if total_steps else 0.0
        if meta.get("kind", "training") != "training":  # a task reports its share itself
            progress = float(state.get("progress") or 0.0)
        return JobStatus(
            job_id=job_id,
            owner=owner,
            name=str(meta.get("name", "")),
            device=str(meta.get("device", "")),
            state=name,
            queue_position=self._queue_position(job_id, meta) if in_line else None,
            progress=1.0 if name == "finished" else progress,
            epoch=int(latest.get("epoch", 0)),
            epochs=int(meta.get("epochs", 0)),
            loss=latest.get("loss"),
            val_accuracy=latest.get("val_accuracy"),
            samples_per_second=float(latest.get("samples_per_second") or 0.0),
            eta_seconds=latest.get("eta_seconds"),
            message=message,
            run_id=state.get("run_id"),
            submitted_at=float(meta.get("submitted_at", 0.0)),
            finished_at=state.get("finished_at"),
            node=str(state.get("node", "")),
            resources=_resources_text(meta),
            sweep=dict(meta.get("sweep") or {}),
        )

    def _check_health(
        self, folder: JobFolder, meta: dict[str, Any], state: dict[str, Any]
    ) -> dict[str, Any]:
        name = state.get("state", "queued")
        if name in FINAL_STATES:
            return state
        now = time.time()
        cancel_at = folder.cancel_requested_at()
        if name == "queued":
            if cancel_at is not None:
                dispatcher.stop_worker(folder.job_id)  # it has not started: nothing is lost
                return self._end(folder, "stopped", "Cancelled while waiting in the queue.")
            lost = now - float(meta.get("submitted_at", now)) > LOST_AFTER_SECONDS
            if lost and not state.get("in_ray_queue") and meta.get("sweep"):
                # Not handed to Ray yet: the sweep's driver must still be there to start it.
                lost = dispatcher.worker_exists(str(meta["sweep"].get("id", ""))) is False
            elif lost:
                lost = dispatcher.worker_exists(folder.job_id) is False
            if lost:
                return self._end(
                    folder,
                    "interrupted",
                    "The job was lost before it started (the worker cluster restarted); start it "
                    "again.",
                )
            return state
        age = folder.heartbeat_age()
        if age is not None and age > HEARTBEAT_STALE_SECONDS:
            return self._end(
                folder,
                "interrupted",
                f"The worker process stopped without a word (no heartbeat for {age:.0f} s: "
                "killed, out of memory or its machine lost). What was saved is kept.",
                run_id=state.get("run_id"),
            )
        if cancel_at is not None and now - cancel_at > FORCE_STOP_SECONDS:
            if cluster.connected() is None:
                cluster.connect(self.env)
            dispatcher.stop_worker(folder.job_id)
            return self._end(
                folder,
                "stopped",
                f"Stopped by force: the current step did not end within {FORCE_STOP_SECONDS:.0f} s "
                "of the Stop request.",
                run_id=state.get("run_id"),
                run_status="stopped",
            )
        return state

    def _end(
        self,
        folder: JobFolder,
        state: str,
        message: str,
        *,
        run_id: str | None = None,
        run_status: str = "interrupted",
    ) -> dict[str, Any]:
        """Write the final state the worker could not write itself, and the run's summary."""
        folder.write_state(state, message=message, finished_at=time.time())
        if run_id:
            try:
                if not self.store.read_summary(run_id):
                    self.store.finish(run_id, run_status, message=message)
            except (RunError, OSError, ValueError):
                pass  # the run was deleted meanwhile
        return folder.state()

    def _meta(self, path: Path) -> dict[str, Any]:
        meta = self._metas.get(path.name)
        if meta is None:
            meta = JobFolder(path).meta()
            if meta:  # an incomplete folder is read again next time
                self._metas[path.name] = meta
        return meta

    def _cached_state(self, path: Path) -> dict[str, Any] | None:
        """state.json, parsed again only when its mtime changed; None while queued. A final
        state is final: it is not even stat()ed again."""
        cached = self._states.get(path.name)
        if cached is not None and cached[1].get("state") in FINAL_STATES:
            return cached[1]
        try:
            mtime = (path / "state.json").stat().st_mtime_ns
        except OSError:
            return None
        if cached is None or cached[0] != mtime:
            cached = (mtime, JobFolder(path).state())
            self._states[path.name] = cached
        return cached[1]

    def _unfinished(self) -> list[dict[str, Any]]:
        """job.json of every job that has not ended, oldest first (cheap: no health checks).

        A sweep's trial the driver has not handed to Ray yet is left out: it waits behind
        its own sweep, not in the class's queue."""
        if not self.root.is_dir():
            return []
        metas = []
        for path in self.root.iterdir():
            state = self._cached_state(path)
            if state is not None and state.get("state") in FINAL_STATES:
                continue
            meta = self._meta(path)
            if meta:
                started = state is not None and state.get("state") != "queued"
                # A sweep's trial the driver has not handed to Ray is in no queue yet.
                waiting = meta.get("sweep") and not (state or {}).get("in_ray_queue")
                if not waiting:
                    metas.append({**meta, "_started": started})
        return sorted(metas, key=lambda m: m.get("submitted_at", 0.0))

    def _queue_lines(
        self, unfinished: list[dict[str, Any]] | None = None
    ) -> dict[Any, list[dict[str, Any]]]:
        """The jobs waiting for Ray, one line per resource pool (a CPU job never waits behind
        a GPU job), oldest first: the one place queue positions come from. unfinished: what
        `_unfinished()` returned, when the caller has it already."""
        lines: dict[Any, list[dict[str, Any]]] = {}
        for meta in self._unfinished() if unfinished is None else unfinished:
            if not meta["_started"]:
                lines.setdefault(meta.get("pool"), []).append(meta)
        return lines

    def _queue_position(self, job_id: str, meta: dict[str, Any]) -> int:
        line = [m["job_id"] for m in self._queue_lines().get(meta.get("pool"), [])]
        return line.index(job_id) + 1 if job_id in line else 1

    def overview(self, owner: str) -> JobsOverview:
        """Running and queued jobs of the whole app, and where `owner`'s jobs stand."""
        unfinished = self._unfinished()
        lines = self._queue_lines(unfinished)
        queued = sum(len(line) for line in lines.values())
        positions = [
            place
            for line in lines.values()
            for place, meta in enumerate(line, start=1)
            if meta.get("owner") == owner
        ]
        return JobsOverview(
            running=len(unfinished) - queued,
            queued=queued,
            own_running=sum(1 for m in unfinished if m["_started"] and m.get("owner") == owner),
            own_queue_positions=tuple(sorted(positions)),
        )

    def jobs(self, owner: str, *, kind: str = "training") -> list[JobStatus]:
        """Status of every job of `owner` of one kind ("training" or a core.jobs.tasks name),
        newest first."""
        if not self.root.is_dir():
            return []
        mine = [
            meta
            for meta in (self._meta(p) for p in self.root.iterdir())
            if meta.get("owner") == owner and meta.get("kind", "training") == kind
        ]
        mine.sort(key=lambda m: m.get("submitted_at", 0.0), reverse=True)
        return [self.status(m["job_id"], owner) for m in mine]

    def events(self, job_id: str, owner: str, since: int = 0) -> list[TrainEvent]:
        """The job's kept events from position `since` on (pass len(seen) to get new ones).

        Kept: started, every logged step (every config.log_every_steps), epoch_end,
        evaluation and the final event; the latest step is in `latest_event`. The final
        event's Evaluation is in `final_event`.
        """
        folder, _ = self._folder(job_id, owner)
        return [event_from_record(r) for r in folder.events(since)]

    def latest_event(self, job_id: str, owner: str) -> TrainEvent | None:
        """The most recent event, step events included (without `info`)."""
        folder, _ = self._folder(job_id, owner)
        latest = folder.state().get("latest")
        return event_from_record(latest) if latest else None

    def final_event(self, job_id: str, owner: str) -> TrainEvent | None:
        """The finished / stopped / failed event with its Evaluation, None while running."""
        folder, _ = self._folder(job_id, owner)
        if folder.state().get("state") not in FINAL_STATES:
            return None
        finals = [r for r in folder.events() if r.get("kind") in FINAL_STATES]
        if not finals:
            return None
        return event_from_record(finals[-1], evaluation=folder.final_evaluation())

    def cancel(self, job_id: str, owner: str) -> None:
        """Ask the job to stop: a running job stops before its next step and saves the run
        (its worker is killed if it has not within FORCE_STOP_SECONDS); a queued job is
        marked stopped at once and its worker never starts."""
        folder, meta = self._folder(job_id, owner)
        folder.request_cancel()
        self._check_health(folder, meta, folder.state())

    def wait(self, job_id: str, owner: str, timeout: float | None = None) -> JobStatus:
        """Block until the job ends (or `timeout` seconds); return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id, owner)
            if status.done or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(0.2)


def _safe_id(job_id: Any) -> bool:
    return (
        isinstance(job_id, str) and job_id.startswith("job-") and job_id.replace("-", "").isalnum()
    )


def _resources_text(meta: Mapping[str, Any]) -> str:
    """E.g. "1 GPU", "1/8 GPU", "2 CPUs", "2 workers × 1 GPU"."""
    if meta.get("num_gpus"):
        share = float(meta["num_gpus"])
        jobs = round(1 / share)
        text = f"1/{jobs} GPU" if jobs > 1 and abs(jobs * share - 1) < 1e-3 else f"{share:g} GPU"
    else:
        cpus = float(meta.get("num_cpus") or 0)
        text = f"{cpus:g} CPU{'s' if cpus != 1 else ''}" if cpus else ""
    workers = int(meta.get("workers") or 1)
    return f"{workers} workers × {text}" if workers > 1 and text else text


_manager: JobManager | None = None


def get_job_manager() -> JobManager:
    """The JobManager of this process (made on first use; it starts nothing).

    It writes runs into core.training.runs.RunStore() (AUDIO_DL_RUNS_DIR or ./runs). Safe to call
    from any Streamlit session thread: the manager holds no state of its own.
    """
    global _manager
    if _manager is None:
        _manager = JobManager()
    return _manager
