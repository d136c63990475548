"""Where long jobs run: worker processes on Ray, never the web server's own process.

With nothing configured the app starts a local Ray instance on first use (this machine's CPUs
and GPUs, dashboard off, quiet logs), so `make run` stays the only command. With
AUDIO_DL_RAY_ADDRESS (or Ray's own RAY_ADDRESS) set, it joins that cluster instead: a GPU
server started with `ray start --head` and the class's other machines with
`ray start --address=HEAD:6379` (README, "Running it for a class").

Each training (and each other long job of core.jobs.tasks) is a Ray task that asks for the
resources of its device, a GPU on CUDA (or the share AUDIO_DL_JOB_GPUS sets) or `num_cpus=N`
otherwise; Ray runs it when those are free, so a class queues instead of overfilling a GPU.
The tasks are submitted by the JobDispatcher, a detached actor: the jobs outlive the web
server process that asked for them, a restarted server finds the dispatcher by name, and Ray
reuses a task's worker process (torch imported, warm) for the next job. The worker writes
everything into the job's folder (core.jobs.files) and the run store; the server only reads
files.

    info = connect()                        # idempotent; ClusterError with a sentence
    start_training_worker(job_id, folder, config, ..., resources=job_resources("cpu", info))
    stop_worker(job_id)                     # the forced Stop

Priority: the web server must always win the CPU, or every student's page waits behind the
trainings on a small machine. The embedded Ray's processes (its scheduler, its helpers and
every worker) start at a lower OS priority, `nice` AUDIO_DL_WORKER_NICE (default 10, 0 keeps
them level with the server), and each worker makes sure of it again for itself, which also
covers workers on a cluster's machines (where Ray by default adds its own 15, capped at 19).
A worker only ever gets lower, never higher.

Ray is imported only inside these functions, never when a page imports core.

Why one module of about 750 lines: it is the only place that touches Ray's API (the rest of the
app never imports ray). Connecting, priorities, the dispatcher
and what runs in a worker (a training, a task, a sweep's driver) share its start-up helpers
(`_enter_worker`, `_worker_env`, `_settle_worker`), so a reader sees in one file everything
that runs in a worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core import paths
from core.jobs.files import CancelFlag, Heartbeat, JobFolder, event_record

log = logging.getLogger(__name__)

ADDRESS_ENV = "AUDIO_DL_RAY_ADDRESS"
CPUS_ENV = "AUDIO_DL_RAY_CPUS"  # CPUs of the embedded local instance (default: all)
JOB_CPUS_ENV = "AUDIO_DL_JOB_CPUS"  # CPUs one CPU training asks for
JOB_GPUS_ENV = "AUDIO_DL_JOB_GPUS"  # the share of one GPU a CUDA job asks for (0.05 to 1)
WORKER_NICE_ENV = "AUDIO_DL_WORKER_NICE"  # OS priority of workers: nice 0 (level) to 19
DEFAULT_WORKER_NICE = 10
NAMESPACE = "audio_dl_studio"  # Ray namespace of the app's named workers


class ClusterError(RuntimeError):
    """Ray could not start or be reached; str() is a sentence for the page."""


@dataclass(frozen=True)
class ClusterInfo:
    """The Ray cluster the app uses.

    address: the cluster's address ("local" for the embedded instance); cpus / gpus: its
    totals; nodes: machines alive; start_seconds: how long connecting took.
    """

    address: str
    embedded: bool
    cpus: float
    gpus: float
    nodes: int
    start_seconds: float

    def summary(self) -> str:
        """E.g. "local Ray · 2 CPUs · 0 GPUs" or "Ray cluster at 10.0.0.5:6379 · 3 machines ..."."""
        where = "local Ray" if self.embedded else f"Ray cluster at {self.address}"
        machines = f" · {self.nodes} machines" if self.nodes > 1 else ""
        return f"{where}{machines} · {self.cpus:g} CPUs · {self.gpus:g} GPUs"


@dataclass(frozen=True)
class JobResources:
    """What one job asks Ray for: a GPU (and a CPU to feed it), or some CPUs."""

    num_cpus: float
    num_gpus: float

    @property
    def pool(self) -> str:
        """ "gpu" or "cpu": jobs wait in line with others of the same pool."""
        return "gpu" if self.num_gpus else "cpu"


# Ray's settings for the embedded instance. Ray runs a full gc.collect() in every process
# connected to it, this web server included: every 10 minutes, and, while a job waits for
# CPUs that running workers hold (a class's queue), as often as every 10 s (to free actor
# handles caught in reference cycles). Over the server's heap of torch and plotly objects
# each one held the interpreter for seconds on a busy machine (profiled in bench_class), and
# every student's page waited. The server keeps no Ray handles in cycles for it to free;
# Python's own generational GC still runs. At most one such collection a week (a cluster:
# `ray start --system-config`, README).
_WEEK_SECONDS = 7 * 24 * 3600
# worker_niceness 0: Ray adds nothing to the nice its workers inherit from the keeper thread,
# so AUDIO_DL_WORKER_NICE alone sets their level (Ray's own 15 on top made every worker 19).
EMBEDDED_SYSTEM_CONFIG = {
    "local_gc_interval_s": _WEEK_SECONDS,
    "local_gc_min_interval_s": _WEEK_SECONDS,
    "worker_niceness": 0,
}

_info: ClusterInfo | None = None
_lock = threading.Lock()
_driver_class: Any = None  # ray.remote(SweepDriver), made once


def cluster_address(env: Mapping[str, str] | None = None) -> str | None:
    """The address to join (AUDIO_DL_RAY_ADDRESS, else RAY_ADDRESS), None: start a local one."""
    env = os.environ if env is None else env
    return (env.get(ADDRESS_ENV) or env.get("RAY_ADDRESS") or "").strip() or None


def connected() -> ClusterInfo | None:
    """The cluster this process is connected to, None before the first `connect()`."""
    return _info


def connect(env: Mapping[str, str] | None = None) -> ClusterInfo:
    """Start the embedded Ray instance or join the configured cluster, once per process.

    Thread-safe and idempotent: later calls return the same ClusterInfo at once. Workers
    find the app's code on the same path as here (the checkout's root is put on their
    PYTHONPATH), so on a cluster every machine has the app checked out at the same path.
    Raises ClusterError with a sentence when Ray cannot start or be reached.
    """
    global _info
    env = os.environ if env is None else env
    with _lock:
        if _info is not None:
            return _info
        started = time.perf_counter()
        address = cluster_address(env)
        try:
            niceness = worker_niceness(env)
            resources, nodes = _in_keeper_thread(lambda: _init(address, env, niceness))
        except Exception as error:  # Ray raises many kinds; the page needs one sentence
            log.exception("Ray did not start")
            raise ClusterError(_failure_sentence(address, error)) from None
        _info = ClusterInfo(
            address=address or "local",
            embedded=address is None,
            cpus=float(resources.get("CPU", 0)),
            gpus=float(resources.get("GPU", 0)),
            nodes=nodes,
            start_seconds=time.perf_counter() - started,
        )
        log.info("connected to %s in %.1f s", _info.summary(), _info.start_seconds)
        return _info


def _init(
    address: str | None, env: Mapping[str, str], niceness: int
) -> tuple[dict[str, float], int]:
    import ray
    from ray.job_config import JobConfig

    options: dict[str, Any] = dict(
        namespace=NAMESPACE,
        logging_level=logging.WARNING,
        log_to_driver=False,  # worker output stays in Ray's log files, not the page's
        job_config=JobConfig(code_search_path=[str(paths.REPO_ROOT)]),
        ignore_reinit_error=True,
    )
    if address is None:
        cpus = _embedded_cpus(env)
        # Linux keeps the nice value per thread and a child process inherits its thread's:
        # lowered here, in the keeper thread, it lowers every process Ray starts (scheduler,
        # helpers, workers) and leaves the server's own threads where they are.
        lower_priority(niceness)
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            _system_config=EMBEDDED_SYSTEM_CONFIG,
            **options,
        )
    else:
        ray.init(address=address, **options)
    return ray.cluster_resources(), sum(1 for node in ray.nodes() if node.get("Alive"))


_keeper_done = threading.Event()


def _in_keeper_thread(start: Any) -> Any:
    """Run `start()` (ray.init) in a thread that lives as long as this process; return its result.

    Ray ties the embedded instance's processes to the thread that started them (Linux's
    parent-death signal fires when that *thread* ends). Streamlit runs each script run in a
    thread of its own that ends with the run, which would kill Ray seconds after the first
    training started; so the start happens here, in a thread that never ends.
    """
    outcome: dict[str, Any] = {}
    ready = threading.Event()

    def keeper() -> None:
        try:
            outcome["value"] = start()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error
        ready.set()
        if "error" not in outcome:
            _keeper_done.wait()  # hold the thread (and so Ray's processes) until shutdown()

    _keeper_done.clear()
    threading.Thread(target=keeper, name="ray-keeper", daemon=True).start()
    ready.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def shutdown() -> None:
    """Disconnect (and stop the embedded instance); the next `connect()` starts again."""
    global _info
    with _lock:
        import ray

        ray.shutdown()
        _keeper_done.set()
        _info = None


def _embedded_cpus(env: Mapping[str, str]) -> int | None:
    text = env.get(CPUS_ENV, "").strip()
    if not text:
        return None  # Ray counts this machine's CPUs
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{CPUS_ENV}={text!r} must be a whole number of CPUs, at least 1.")
    return int(text)


def worker_niceness(env: Mapping[str, str] | None = None) -> int:
    """The OS priority workers run at: AUDIO_DL_WORKER_NICE, default 10 (0: level with the
    server, 19: the lowest). Raises ValueError with a sentence for anything else."""
    env = os.environ if env is None else env
    text = env.get(WORKER_NICE_ENV, "").strip()
    if not text:
        return DEFAULT_WORKER_NICE
    if not text.isdigit() or int(text) > 19:
        raise ValueError(f"{WORKER_NICE_ENV}={text!r} must be a whole number from 0 to 19.")
    return int(text)


def lower_priority(niceness: int, *, whole_process: bool = False) -> int:
    """Lower the OS priority to nice `niceness` unless it is lower already (never raises it,
    even for root); return the calling thread's nice value now.

    Linux keeps a nice value per thread, and threads and processes started later inherit
    their parent thread's: by default only the calling thread is lowered; `whole_process`
    lowers every thread the process has now. Elsewhere nice is per process. A no-op where
    the OS has no nice values.
    """
    if not hasattr(os, "setpriority"):
        return 0
    threads = [0]  # 0: the calling thread (Linux) or the process
    task_folder = Path("/proc/self/task")
    if whole_process and task_folder.is_dir():
        threads = [int(tid.name) for tid in task_folder.iterdir() if tid.name.isdigit()]
    for thread in threads:
        try:
            if niceness > os.getpriority(os.PRIO_PROCESS, thread):
                os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except OSError:  # a thread that ended meanwhile
            continue
    return os.getpriority(os.PRIO_PROCESS, 0)


def _failure_sentence(address: str | None, error: BaseException) -> str:
    where = (
        f"The worker cluster at {address} could not be reached"
        if address
        else "The local worker cluster (Ray) could not start"
    )
    return (
        f"{where} ({type(error).__name__}: {str(error)[:200]}). Trainings cannot run until it "
        "does; the rest of the app works. Ask whoever runs the server to check `ray status`, "
        f"free shared memory (/dev/shm) and {ADDRESS_ENV}."
    )


def job_resources(
    device: torch.device | str, info: ClusterInfo, env: Mapping[str, str] | None = None
) -> JobResources:
    """The resources a job on `device` asks for.

    CUDA: one CPU and `gpu_share` of a GPU (default a whole one). CPU (and MPS, which Ray
    does not count): AUDIO_DL_JOB_CPUS CPUs, default half the cluster's CPUs (1 to 4), so two
    students train side by side on a small machine and a big one runs several at once.
    """
    env = os.environ if env is None else env
    if torch.device(device).type == "cuda":
        return JobResources(num_cpus=1, num_gpus=gpu_share(env))
    text = env.get(JOB_CPUS_ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{JOB_CPUS_ENV}={text!r} must be a whole number of CPUs, at least 1.")
        return JobResources(num_cpus=int(text), num_gpus=0)
    return JobResources(num_cpus=max(1, min(4, int(info.cpus) // 2)), num_gpus=0)


def gpu_share(env: Mapping[str, str]) -> float:
    """The share of one GPU that a CUDA job asks Ray for: AUDIO_DL_JOB_GPUS, 0.05 to 1.

    Default 1: each GPU trains one job at a time and the others wait in the queue (one run of
    bench_gpu_jobs on an H200: four short trainings were all done in 6.2 s this way, in
    11.5 s at 1/8 each, where four new worker processes started at once). 0.25 lets four jobs
    train on each GPU at once, each within a quarter of its memory: for a big GPU and long
    trainings. ValueError with a sentence for a bad setting.
    """
    text = env.get(JOB_GPUS_ENV, "").strip()
    if not text:
        return 1.0
    try:
        share = float(text)
    except ValueError:
        share = float("nan")
    if not 0.05 <= share <= 1:  # NaN fails too
        raise ValueError(
            f"{JOB_GPUS_ENV}={text!r} must be a share of one GPU from 0.05 to 1 "
            "(0.25: four trainings share each GPU)."
        )
    return share


# ---------------------------------------------------------------------------- the worker


def run_training_job(
    folder: JobFolder,
    config: Any,
    *,
    dataset: Any,
    spec: Any,
    device: torch.device | str,
    owner: str,
    store: Any,
    where: dict[str, Any] | None = None,
    sweep: Mapping[str, Any] | None = None,
) -> Any:
    """Run one training and write its progress into `folder`; return the final TrainEvent.

    This is what a worker process does (also callable in-process, e.g. from a test). It keeps
    a heartbeat, checks the folder's cancel file before every step, appends the kept events
    (started, logged steps, epoch ends, evaluations, the final one) and rewrites state.json
    with the latest event at most twice a second. `where`: more about the worker for
    state.json (its Ray node id). `sweep`: a sweep trial's record, saved with its run.
    """
    from core.training.trainer import train

    cancel = CancelFlag(folder)
    final = None
    if cancel.is_set():  # Stop pressed while it waited for a free slot: the server said so
        return None
    with Heartbeat(folder) as heartbeat:
        folder.write_state(
            "running",
            pid=os.getpid(),
            node=socket.gethostname(),
            started_at=time.time(),
            **(where or {}),
        )
        try:
            for event in train(
                config,
                dataset=dataset,
                spec=spec,
                device=device,
                cancel=cancel,
                store=store,
                owner=owner,
                sweep=sweep,
            ):
                if event.run_id:
                    heartbeat.add_run_folder(store.run_path(event.run_id))
                kept = event.kind != "step" or event.accuracy is not None
                if event.is_final and event.evaluation is not None:
                    folder.save_final_evaluation(event.evaluation)
                if kept:
                    folder.append_event(event)
                latest = event_record(event)
                latest.pop("info", None)
                fields = dict(latest=latest, run_id=event.run_id)
                if event.message:
                    fields["message"] = event.message
                if event.is_final:
                    final = event
                    folder.write_state(event.kind, finished_at=time.time(), **fields)
                else:
                    folder.write_state("running", force=kept, **fields)
        except BaseException as error:
            folder.write_state(
                "failed",
                message=f"The training crashed: {type(error).__name__}: {error}",
                finished_at=time.time(),
            )
            raise
    return final


def _enter_worker(env: Mapping[str, str], threads: int) -> dict[str, Any]:
    """What every job does first in its worker process (a fresh one or one reused from an
    earlier job): take the server's folders from `env` (tests change them per test, so a
    reused worker cannot keep the last job's), step below the web server and use `threads`
    torch threads. Returns where it runs, for state.json."""
    import ray

    os.environ.update(env)
    _settle_worker(threads)
    context = ray.get_runtime_context()
    where = {"ray_node_id": context.get_node_id(), "nice": _own_niceness()}
    share = context.get_assigned_resources().get("GPU", 0.0)
    if 0 < share < 1 and torch.cuda.is_available():
        # Jobs that share a GPU each keep to their share of its memory: one that outgrows it
        # halves its batch (or stops with a sentence) instead of starving its neighbours.
        torch.cuda.set_per_process_memory_fraction(share)
        where["gpu_share"] = share
        where["gpu_memory_fraction"] = torch.cuda.get_per_process_memory_fraction()
    return where


def training_task(
    env: Mapping[str, str],
    threads: int,
    job_dir: str,
    config: Any,
    dataset: Any,
    spec: Any,
    device: str,
    owner: str,
    runs_root: str,
    sweep: Mapping[str, Any] | None = None,
) -> None:
    """A training as a Ray task (see JobDispatcher): run_training_job in a worker process."""
    from core.training.runs import RunStore

    run_training_job(
        JobFolder(job_dir),
        config,
        dataset=dataset,
        spec=spec,
        device=device,
        owner=owner,
        store=RunStore(runs_root),
        where=_enter_worker(env, threads),
        sweep=sweep,
    )


def _worker_env(runs_root: Path) -> dict[str, str]:
    """The server's writable folders and the workers' priority, handed to a worker (which
    cannot inherit them: on a cluster it was started by `ray start`, not by this server)."""
    return {
        "AUDIO_DL_RUNS_DIR": str(runs_root),
        "AUDIO_DL_CACHE_DIR": str(paths.cache_dir()),
        WORKER_NICE_ENV: str(worker_niceness()),
    }


def _own_niceness() -> int | None:
    """The nice value of the thread running the job (for state.json), None without one."""
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None


def _settle_worker(threads: int) -> None:
    """What a worker process does first: step below the web server (AUDIO_DL_WORKER_NICE,
    from its env) and use as many torch threads as the CPUs Ray granted it, no more: more
    threads than CPUs make them wait for each other (oversubscription)."""
    try:
        niceness = worker_niceness()
    except ValueError:
        niceness = DEFAULT_WORKER_NICE
    lower_priority(niceness, whole_process=True)
    torch.set_num_threads(max(1, threads))


# ---------------------------------------------------------------------------- tasks


def run_task_job(
    folder: JobFolder,
    task: str,
    kwargs: Mapping[str, Any],
    *,
    device: torch.device | str,
    where: dict[str, Any] | None = None,
) -> None:
    """Run the registered task `task` (core.jobs.tasks) and write its progress and result.

    What a task's worker process does (callable in-process too). Like a training: a heartbeat,
    the cancel file checked between reports, state.json with the progress (at most twice a
    second) and each report appended to events.jsonl; then the result files and the final
    state: "finished", "stopped" (Stop pressed: the result holds what was done) or "failed"
    with a sentence.
    """
    from core.jobs.files import save_task_result
    from core.jobs.tasks import TaskError, TaskProgress, TaskResult, run_task

    cancel = CancelFlag(folder)
    if cancel.is_set():
        return
    with Heartbeat(folder):
        folder.write_state(
            "running",
            pid=os.getpid(),
            node=socket.gethostname(),
            started_at=time.time(),
            progress=0.0,
            **(where or {}),
        )
        try:
            result = None
            for report in run_task(task, kwargs, device=torch.device(device), cancel=cancel):
                if isinstance(report, TaskResult):
                    result = report
                elif isinstance(report, TaskProgress):
                    record = {
                        "fraction": report.fraction,
                        "message": report.message,
                        "values": report.values,
                    }
                    folder.append_record(record)
                    folder.write_state(
                        "running", force=False, progress=report.fraction, message=report.message
                    )
            if result is None:
                raise TaskError("The task ended without a result.")
            save_task_result(folder, result)
            ended = "stopped" if cancel.is_set() else "finished"
            folder.write_state(
                ended,
                finished_at=time.time(),
                progress=1.0 if ended == "finished" else None,
                message="Stopped; the result holds what was done."
                if ended == "stopped"
                else "Done.",
            )
        except TaskError as error:
            folder.write_state("failed", message=str(error), finished_at=time.time())
        except BaseException as error:
            folder.write_state(
                "failed",
                message=f"The job crashed: {type(error).__name__}: {error}",
                finished_at=time.time(),
            )
            raise


def task_job(
    env: Mapping[str, str],
    threads: int,
    job_dir: str,
    task: str,
    kwargs: Mapping[str, Any],
    device: str,
) -> None:
    """A task of core.jobs.tasks as a Ray task (see JobDispatcher)."""
    from core.jobs.tasks import still_calling

    where = _enter_worker(env, threads)
    run_task_job(JobFolder(job_dir), task, kwargs, device=device, where=where)
    if still_calling():
        # Stopped while a library call that cannot be interrupted still runs in a thread:
        # this process is not fit for the next job (Ray would reuse it). End it; Ray starts a
        # fresh one. The job's folder already says how it ended.
        os._exit(0)


def warm_worker(env: Mapping[str, str], threads: int) -> int:
    """Nothing but a worker's start: importing this module in the worker imports torch and
    the training engine, and `_import_torch_compiler` what torch imports only when the first
    optimiser is made; both make a first job wait (seconds on a small machine). Ray keeps the
    process for the next job. Returns its pid."""
    _enter_worker(env, threads)
    _import_torch_compiler()
    return os.getpid()


def _import_torch_compiler() -> None:
    """Import torch._dynamo, as the first optimiser does (torch.optim wraps its __init__ to
    keep the compiler out): 1.3-2 s of a first training's start on this course's 2-core
    machines, 5.8 s when four students started at once (tests/benchmarks/bench_class.py)."""
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


# ---------------------------------------------------------------------------- sweeps


class SweepDriver:
    """A Ray actor that starts a sweep's trials, at most `at_once` at a time, then exits.

    It asks Ray for no CPU (it only waits), so it never takes a training's place. Each trial
    is an ordinary training job with its own job folder, created by the server at submit;
    a trial stopped while it waited (its folder's state is final or its cancel file exists)
    is skipped. Detached and named after the sweep, like the trainings, so the sweep carries
    on when the web server restarts; if the driver dies, the trials it had not started yet
    are marked lost by the server (core.jobs), the running ones finish.
    """

    def __init__(self, env: Mapping[str, str]):
        os.environ.update(env)
        self.env = dict(env)

    def run(
        self,
        trials: list[dict[str, Any]],
        dataset: Any,
        spec: Any,
        device: str,
        owner: str,
        runs_root: str,
        at_once: int,
    ) -> int:
        """Start the trials (dicts: job_id, job_dir, config, resources, sweep); return how
        many were started."""
        import ray

        # Here, not at the top: core.jobs.dispatcher imports this module (what runs in a
        # worker lives here).
        from core.jobs.dispatcher import start_training_worker
        from core.jobs.files import FINAL_STATES

        dataset_ref = ray.put(dataset)  # one copy in the object store for every trial
        pending, running, started = list(trials), [], 0
        try:
            while pending or running:
                while pending and len(running) < max(1, at_once):
                    trial = pending.pop(0)
                    folder = JobFolder(trial["job_dir"])
                    if folder.state().get("state") in FINAL_STATES or CancelFlag(folder).is_set():
                        continue
                    # Now the trial is in Ray's queue like any training (core.jobs counts it).
                    folder.write_state("queued", in_ray_queue=True)
                    resources = JobResources(**trial["resources"])
                    running.append(
                        start_training_worker(
                            trial["job_id"],
                            folder,
                            trial["config"],
                            dataset=dataset_ref,
                            spec=spec,
                            device=device,
                            owner=owner,
                            runs_root=Path(runs_root),
                            resources=resources,
                            sweep=trial["sweep"],
                            env=self.env,
                        )
                    )
                    started += 1
                if running:
                    _, running = ray.wait(running, num_returns=1, timeout=2.0)
        finally:
            ray.actor.exit_actor()
        return started


def start_sweep_driver(
    sweep_id: str,
    trials: list[dict[str, Any]],
    *,
    dataset: Any,
    spec: Any,
    device: torch.device | str,
    owner: str,
    runs_root: Path,
    at_once: int,
) -> None:
    """Start the detached SweepDriver named `sweep_id` that runs `trials` (see SweepDriver).

    Returns at once. `trials`: one dict per trial with job_id, job_dir, config (a
    TrainConfig), resources ({"num_cpus", "num_gpus"}) and sweep (the record for its run).
    """
    import ray

    device = torch.device(device)
    worker_device = "cuda" if device.type == "cuda" else str(device)
    global _driver_class
    if _driver_class is None:
        _driver_class = ray.remote(SweepDriver)
    driver = _driver_class.options(
        name=sweep_id,
        namespace=NAMESPACE,
        lifetime="detached",
        num_cpus=0,
        max_restarts=0,
        max_task_retries=0,
    ).remote(_worker_env(runs_root))
    driver.run.remote(trials, dataset, spec, worker_device, owner, str(runs_root), at_once)


_remote_classes: dict[type, Any] = {}  # worker class -> its ray.remote wrapper, made once


def _worker_device(device: torch.device | str) -> str:
    """The device name inside a worker: Ray shows only the GPU it granted, as cuda:0."""
    device = torch.device(device)
    return "cuda" if device.type == "cuda" else str(device)


def _start_detached(worker_class: type, job_id: str, resources: Any, env: dict[str, str]) -> Any:
    """A detached, named, never-restarted actor of `worker_class` holding `resources`."""
    import ray

    if worker_class not in _remote_classes:
        _remote_classes[worker_class] = ray.remote(worker_class)
    return (
        _remote_classes[worker_class]
        .options(
            name=job_id,
            namespace=NAMESPACE,
            lifetime="detached",
            num_cpus=resources.num_cpus,
            num_gpus=resources.num_gpus,
            max_restarts=0,
            max_task_retries=0,
        )
        .remote(env, int(resources.num_cpus))
    )
