"""The JobDispatcher: every one-worker job (a training, a task of core.jobs.tasks) goes to Ray
as a task through one detached actor, so Ray can give the job a warm worker process.

Why tasks, not a process of its own per job: Ray keeps a task's worker process for the next
task that asks for the same resources, with torch and the training engine already imported.
A fresh process per job spent 3-5 s on that before its first step, more than the whole
training of a small recipe on this course's 2-core machines (tests/benchmarks/bench_class.py);
a warm one starts within milliseconds. Why a dispatcher: a Ray task lives only as long as
whoever submitted it, and the web server restarts. The dispatcher is a detached actor (it
outlives the server, and a restarted server finds it by name) that asks for no CPU and keeps
each job's ObjectRef by job id, so Stop and "does Ray still know this job" work from any
server process.

    ref = start_training_worker(job_id, folder, config, ..., resources=...)   # queued in Ray
    worker_exists(job_id)      # queued or running
    stop_worker(job_id)        # the forced Stop: out of the queue, or the process killed

What runs inside the worker (run_training_job, run_task_job) is core.jobs.cluster's, with
the connection, priorities and resources; data-parallel jobs and sweeps have detached actors
of their own there (core.jobs.distributed, SweepDriver), which worker_exists and stop_worker
also find by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core import paths
from core.jobs.cluster import (
    NAMESPACE,
    JobResources,
    _worker_device,
    _worker_env,
    connected,
    job_resources,
    task_job,
    training_task,
    warm_worker,
)
from core.jobs.files import JobFolder

DISPATCHER_NAME = "audio_dl_dispatcher"
# A worker process runs at most this many jobs, then Ray starts a fresh one: what a long-lived
# process gathers (allocator fragmentation, caches) cannot grow without end.
JOBS_PER_WORKER = 50
# How long the server waits for the dispatcher to take a job (it answers in milliseconds; a
# dispatcher being started, on a crowded machine, in seconds).
DISPATCH_TIMEOUT_SECONDS = 120
_JOB_FUNCTIONS = {"training": training_task, "task": task_job}


class JobDispatcher:
    """A Ray actor that hands every one-worker job to Ray as a task, and owns those tasks.

    Detached, named DISPATCHER_NAME, no CPU of its own (see the module's docstring). At its
    start it warms `warm` worker processes of `warm_cpus` CPUs (one per CPU job that fits
    beside the first, at most three), so a class's first trainings start warm too.
    """

    def __init__(self, warm: int, warm_cpus: int, env: Mapping[str, str]):
        import ray

        self._jobs: dict[str, Any] = {}
        # Made once: Ray takes max_calls only here, not in .options().
        self._functions = {
            (kind, gpu): ray.remote(max_calls=1 if gpu else JOBS_PER_WORKER)(function)
            for kind, function in _JOB_FUNCTIONS.items()
            for gpu in (False, True)
        }
        warming = ray.remote(warm_worker).options(num_cpus=warm_cpus, max_retries=0)
        self._warming = [warming.remote(dict(env), warm_cpus) for _ in range(warm)]

    def start(
        self, job_id: str, kind: str, resources: Mapping[str, float], arguments: tuple
    ) -> list[Any]:
        """Queue the job (kind "training" or "task") as a Ray task named `job_id`; return its
        ObjectRef in a list (so the caller gets the reference, not the value)."""

        self._forget_ended()
        # A GPU job's worker ends with it (max_calls 1): the next job's process gets the whole
        # GPU memory (PyTorch keeps what it allocated cached until the process ends).
        function = self._functions[kind, bool(resources["num_gpus"])].options(
            name=job_id,
            num_cpus=resources["num_cpus"],
            num_gpus=resources["num_gpus"],
            max_retries=0,
        )
        self._jobs[job_id] = function.remote(*arguments)
        return [self._jobs[job_id]]

    def knows(self, job_id: str) -> bool:
        """Whether the job is queued or running here."""
        self._forget_ended()
        return job_id in self._jobs

    def stop(self, job_id: str) -> bool:
        """Take the job out of Ray's queue, or kill its worker process if it runs; False if
        it was not queued or running here."""
        import ray

        self._forget_ended()
        reference = self._jobs.pop(job_id, None)
        if reference is None:
            return False
        ray.cancel(reference, force=True)
        return True

    def _forget_ended(self) -> None:
        import ray

        references = list(self._jobs.values()) + self._warming
        if not references:
            return
        ended, _ = ray.wait(references, num_returns=len(references), timeout=0)
        ended_ids = {reference.hex() for reference in ended}
        self._jobs = {j: r for j, r in self._jobs.items() if r.hex() not in ended_ids}
        self._warming = [r for r in self._warming if r.hex() not in ended_ids]


_handle: tuple[Any, Any] = (None, None)  # (the ClusterInfo it belongs to, the actor handle)


def dispatcher() -> Any:
    """The cluster's JobDispatcher (started on first use, found by name after a restart; a
    new one after core.jobs.cluster reconnected). Call after cluster.connect()."""
    import ray

    global _handle
    info = connected()
    if _handle[0] is not info or _handle[1] is None:
        job_cpus = int(job_resources("cpu", info).num_cpus) if info else 1
        slots = int(info.cpus // job_cpus) if info else 1
        actor = (
            ray.remote(JobDispatcher)
            .options(
                name=DISPATCHER_NAME,
                namespace=NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
                max_restarts=-1,
                max_task_retries=0,
            )
            .remote(max(0, min(slots, 4) - 1), job_cpus, _worker_env(paths.runs_dir()))
        )
        _handle = (info, actor)
    return _handle[1]


def dispatch(job_id: str, kind: str, resources: JobResources, arguments: tuple) -> Any:
    """Hand a job to the dispatcher; return its ObjectRef once it is in Ray's queue."""
    import ray

    wanted = {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus}
    started = dispatcher().start.remote(job_id, kind, wanted, arguments)
    return ray.get(started, timeout=DISPATCH_TIMEOUT_SECONDS)[0]


def start_training_worker(
    job_id: str,
    folder: JobFolder,
    config: Any,
    *,
    dataset: Any,
    spec: Any,
    device: torch.device | str,
    owner: str,
    runs_root: Path,
    resources: JobResources,
    sweep: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Ask Ray for a worker with `resources` that trains `config` into `folder`.

    Returns once the job is in Ray's queue, with the Ray ObjectRef that is ready when the
    training ends (or its worker dies): Ray runs it when the resources are free, in a worker
    process of the JobDispatcher's (a warm one when there is one). It is never retried after
    a crash; its job is marked interrupted instead. `sweep`: a sweep trial's record for its
    run; `env`: the folders the worker writes into (default: this process's).
    """
    worker_env = dict(env) if env is not None else _worker_env(runs_root)
    arguments = (
        worker_env,
        int(resources.num_cpus),
        str(folder.path),
        config,
        dataset,
        spec,
        _worker_device(device),
        owner,
        str(runs_root),
        sweep,
    )
    return dispatch(job_id, "training", resources, arguments)


def start_task_worker(
    job_id: str,
    folder: JobFolder,
    task: str,
    kwargs: Mapping[str, Any],
    *,
    device: torch.device | str,
    runs_root: Path,
    resources: JobResources,
) -> None:
    """Ask Ray for a worker with `resources` that runs `task` into `folder`; returns once the
    job is in Ray's queue (a task of the JobDispatcher's like a training, never retried)."""
    arguments = (
        _worker_env(runs_root),
        int(resources.num_cpus),
        str(folder.path),
        task,
        dict(kwargs),
        _worker_device(device),
    )
    dispatch(job_id, "task", resources, arguments)


def worker_exists(job_id: str) -> bool | None:
    """Whether Ray still knows the job (queued or running on the dispatcher, or a named
    worker such as a sweep's driver or a data-parallel coordinator); None when not connected."""
    if connected() is None:
        return None
    import ray

    if ray.get(dispatcher().knows.remote(job_id), timeout=DISPATCH_TIMEOUT_SECONDS):
        return True
    try:
        ray.get_actor(job_id, namespace=NAMESPACE)
    except ValueError:
        return False
    return True


def stop_worker(job_id: str) -> bool:
    """End the job's worker at once (the forced Stop): out of Ray's queue, or its process
    killed; False if Ray did not know it."""
    if connected() is None:
        return False
    import ray

    if ray.get(dispatcher().stop.remote(job_id), timeout=DISPATCH_TIMEOUT_SECONDS):
        return True
    try:
        ray.kill(ray.get_actor(job_id, namespace=NAMESPACE), no_restart=True)
    except ValueError:
        return False
    return True
