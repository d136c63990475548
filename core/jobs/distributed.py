"""Data-parallel training across Ray workers: one job, N processes, one run.

A training with `TrainConfig.workers = N > 1` runs as distributed data-parallel (DDP) training
in N Ray worker processes, started by Ray Train's `TorchTrainer`, on any machines of the
cluster. Ray Train joins them in one torch.distributed process group (gloo on CPUs, NCCL on
GPUs) and sets RANK, WORLD_SIZE and LOCAL_RANK, the variables torchrun sets; from there the
trainer (core.training.trainer with core.training.ddp) trains exactly as under
`torchrun -m core.train`: every process takes its shard of each batch (global batch / N),
DDP averages the gradients, so every copy holds the same weights, and rank 0 writes the run.

To the JobManager it is one job like any other: one job id and folder, one run, progress and
Stop through the folder's files, counted once by the per-session limit. A small detached
coordinator actor named after the job (it asks for no CPU: it only waits) runs
`TorchTrainer.fit()`; the worker processes belong to it, so killing it (the forced Stop)
ends them too. Rank 0 runs `core.jobs.cluster.run_training_job` (heartbeat, events,
state.json, the cancel file); the other ranks run the same `train()` without a store, and the
trainer shares rank 0's Stop with them so that every rank stops at the same step.

    resources = worker_resources("cpu", info, workers=2)     # per worker; ClusterError if too many
    start_distributed_training(job_id, folder, config, ..., resources=resources)

Ray (and Ray Train, which needs pydantic) is imported only inside these functions.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from core.jobs import cluster
from core.jobs.cluster import ClusterError, ClusterInfo, JobResources
from core.jobs.files import FINAL_STATES, JobFolder

log = logging.getLogger(__name__)


def worker_resources(
    device: torch.device | str,
    info: ClusterInfo,
    workers: int,
    env: Mapping[str, str] | None = None,
) -> JobResources:
    """What each of `workers` DDP workers asks Ray for: a whole GPU and a CPU on CUDA, else
    the CPUs of a one-process job on `device` (core.jobs.cluster.job_resources).

    Raises ClusterError with a sentence when the cluster does not have `workers` times that
    (the job would otherwise wait for ever), or ValueError for a bad AUDIO_DL_JOB_CPUS.
    """
    each = cluster.job_resources(device, info, env)
    if each.num_gpus:
        # NCCL takes one whole GPU per worker (two ranks on one GPU are refused), whatever
        # share AUDIO_DL_JOB_GPUS gives one-process jobs.
        each = JobResources(num_cpus=each.num_cpus, num_gpus=1)
        if workers * each.num_gpus > info.gpus:
            raise ClusterError(
                f"{workers} workers need {workers} GPUs (one each), but the worker cluster has "
                f"{info.gpus:g}. Choose at most {int(info.gpus)} workers, or train on the CPU."
            )
    elif workers * each.num_cpus > info.cpus:
        fitting = int(info.cpus // each.num_cpus)
        raise ClusterError(
            f"{workers} workers need {workers * each.num_cpus:g} CPUs ({each.num_cpus:g} each), "
            f"but the worker cluster has {info.cpus:g}. Choose at most {max(1, fitting)} workers."
        )
    return each


def worker_loop(loop_config: Mapping[str, Any]) -> None:
    """What each of the N worker processes runs (Ray Train's `train_loop_per_worker`).

    The process group is already joined and RANK / WORLD_SIZE / LOCAL_RANK set by Ray Train.
    Rank 0 trains as a one-process job does (job folder, heartbeat, the run); the others
    train the same steps on their shards and write nothing.
    """
    import ray.train
    import ray.train.torch

    from core.jobs.cluster import run_training_job
    from core.training.runs import RunStore
    from core.training.trainer import train

    os.environ.update(loop_config["env"])
    # Like every other worker: below the web server (AUDIO_DL_WORKER_NICE), one torch thread
    # per CPU Ray granted.
    cluster._settle_worker(int(loop_config["threads"]))
    context = ray.train.get_context()
    # Ray Train chose this worker's GPU (it may see several); on CPUs its device is the CPU.
    device = ray.train.torch.get_device() if loop_config["use_gpu"] else torch.device("cpu")
    config, dataset, spec = loop_config["config"], loop_config["dataset"], loop_config["spec"]
    if context.get_world_rank() == 0:
        run_training_job(
            JobFolder(loop_config["job_dir"]),
            config,
            dataset=dataset,
            spec=spec,
            device=device,
            owner=loop_config["owner"],
            store=RunStore(loop_config["runs_root"]),
            where={
                "ray_node_id": ray.get_runtime_context().get_node_id(),
                "world_size": context.get_world_size(),
            },
            sweep=loop_config["sweep"],
        )
    else:
        for _ in train(config, dataset=dataset, spec=spec, device=device, owner=""):
            pass  # rank 0 reports; this rank's events say the same


class DistributedTrainingCoordinator:
    """A Ray actor that runs one DDP training with Ray Train, then exits.

    It holds no CPU of its own; Ray Train's workers ask for theirs. `env`: the server's
    writable folders (AUDIO_DL_RUNS_DIR, AUDIO_DL_CACHE_DIR), handed on to every worker.
    """

    def __init__(self, env: Mapping[str, str], threads: int):
        os.environ.update(env)
        self.env = dict(env)

    def run(
        self,
        job_dir: str,
        config: Any,
        dataset: Any,
        spec: Any,
        owner: str,
        runs_root: str,
        workers: int,
        resources: dict[str, float],
        sweep: Mapping[str, Any] | None = None,
    ) -> None:
        import ray
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        folder = JobFolder(job_dir)
        use_gpu = resources["num_gpus"] > 0
        per_worker = {"CPU": resources["num_cpus"]}
        if use_gpu:
            per_worker["GPU"] = resources["num_gpus"]
        trainer = TorchTrainer(
            worker_loop,
            train_loop_config={
                "job_dir": job_dir,
                "config": config,
                "dataset": dataset,
                "spec": spec,
                "owner": owner,
                "runs_root": runs_root,
                "sweep": sweep,
                "env": self.env,
                "threads": int(resources["num_cpus"]),
                "use_gpu": use_gpu,
            },
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=workers, use_gpu=use_gpu, resources_per_worker=per_worker
            ),
            # Ray Train's own bookkeeping (no checkpoints are reported) stays in the job folder.
            # Never retried: a retry would start the training again as a second run; a crash
            # ends the job as "failed", as a one-worker job's does.
            run_config=RunConfig(
                name="ray-train",
                storage_path=str(Path(job_dir)),
                failure_config=FailureConfig(max_failures=0, max_preemption_failures=0),
            ),
        )
        try:
            trainer.fit()
        except Exception as error:  # a worker crashed or could not start
            log.exception("distributed training failed")
            if folder.state().get("state") not in FINAL_STATES:
                folder.write_state(
                    "failed",
                    message=f"The distributed training crashed: {_cause(error)}",
                    finished_at=time.time(),
                )
        finally:
            ray.actor.exit_actor()  # free the name: a detached actor would otherwise stay


def _cause(error: BaseException) -> str:
    """The innermost error Ray wrapped, as "Type: message" (at most 300 characters)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {str(error)[:300]}"


def start_distributed_training(
    job_id: str,
    folder: JobFolder,
    config: Any,
    *,
    dataset: Any,
    spec: Any,
    owner: str,
    runs_root: Path,
    resources: JobResources,
    workers: int,
    sweep: Mapping[str, Any] | None = None,
) -> None:
    """Start the detached coordinator named `job_id` that trains `config` with DDP across
    `workers` Ray workers, each holding `resources` (see `worker_resources`). Returns at once;
    the job stays "queued" until Ray has room for all the workers and rank 0 starts."""
    coordinator = cluster._start_detached(
        DistributedTrainingCoordinator,
        job_id,
        JobResources(num_cpus=0, num_gpus=0),  # it only waits for Ray Train
        cluster._worker_env(runs_root),
    )
    coordinator.run.remote(
        str(folder.path),
        config,
        dataset,
        spec,
        owner,
        str(runs_root),
        workers,
        {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus},
        sweep,
    )


def follow_job(jobs: Any, job_id: str, owner: str, *, poll_seconds: float = 0.25) -> Iterator[Any]:
    """The TrainEvents of a job as they arrive, ending with its final event: what a command
    line shows while a job trains on workers. `jobs`: a core.jobs.manager.JobManager.

    Yields the kept events (started, logged steps, epoch ends, evaluations) and, between them,
    the latest step; if the job ends without a final event (the worker was lost), yields none.
    """
    seen, last_step = 0, -1
    while True:
        status = jobs.status(job_id, owner)
        for event in jobs.events(job_id, owner, since=seen):
            seen += 1
            if event.is_final:
                yield jobs.final_event(job_id, owner) or event
                return
            last_step = max(last_step, event.step)
            yield event
        if status.done:
            return
        latest = jobs.latest_event(job_id, owner)
        if latest is not None and latest.kind == "step" and latest.step > last_step:
            last_step = latest.step
            yield latest
        time.sleep(poll_seconds)
