"""Trainings on a GPU through Ray: one against the CLI, and four students sharing one GPU.

Printed side by side in one run (issue 13, "from a laptop to a GPU cluster"), on this
machine's first CUDA GPU; on a machine without one it says so and measures nothing:
1. samples/s of one training through the JobManager on a Ray worker against the same recipe
   trained the way `python -m core.train` does (one process), both on the GPU;
2. four trainings submitted at once by four students: each asking for a whole GPU (the
   default: they take turns) against a quarter of it each (AUDIO_DL_JOB_GPUS=0.25: all four
   train at once). Wall time from the submits to the last job's end, each job's wait and run,
   and its samples/s (its last epoch).
The recipe is bench_jobs's (built-in digits, 60 clips per class, one network) with more
epochs, so that a training outlasts its worker's start.

    .venv/bin/python -m tests.benchmarks gpu_jobs       (about two minutes on one GPU)
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_jobs import _in_process, _last_epoch_rate, _recipe

EPOCHS = 20
STUDENTS = 4


def _on_ray(dataset, config, owners: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Submit one training per owner at once; (mean samples/s of a job, wall seconds from
    the submits to the last end, what each job held)."""
    from core.jobs.manager import JobManager

    jobs = JobManager(env={**os.environ, **env})
    started = time.perf_counter()
    ids = [jobs.submit(config, owner=o, dataset=dataset, device="cuda") for o in owners]
    rates, resources, waits, runs = [], "", [], []
    for job, owner in zip(ids, owners, strict=True):
        status = jobs.wait(job, owner, timeout=600)
        assert status.state == "finished", status.message
        rates.append(_last_epoch_rate(jobs.events(job, owner)))
        resources = status.resources
        state = json.loads((jobs.root / job / "state.json").read_text())
        waits.append(state["started_at"] - status.submitted_at)
        runs.append(state["finished_at"] - state["started_at"])
    wall = time.perf_counter() - started
    print(
        f"   ({resources}: from submit to start {' / '.join(f'{w:.1f}' for w in waits)} s, "
        f"then ran {' / '.join(f'{r:.1f}' for r in runs)} s)"
    )
    return sum(rates) / len(rates), wall, resources


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU on this machine: nothing to measure (run it where one is).")
        return
    root = Path(tempfile.mkdtemp(prefix="bench_gpu_jobs_"))
    os.environ["AUDIO_DL_RUNS_DIR"] = str(root / "runs")
    os.environ["AUDIO_DL_CACHE_DIR"] = str(root / "cache")
    props = torch.cuda.get_device_properties(0)
    from core.jobs import cluster

    info = cluster.connect()
    print(f"{props.name}, {props.total_memory / 2**30:.0f} GiB; {info.summary()}")

    dataset, config = _recipe()
    config = dataclasses.replace(config, epochs=EPOCHS)
    _in_process(dataset, dataclasses.replace(config, epochs=1), device="cuda")  # fill the cache
    print(f"\n1. one training, {len(dataset)} clips x {EPOCHS} epochs on the GPU")
    cli_rate, cli_wall = _in_process(dataset, config, device="cuda")
    one_rate, one_wall, one_held = _on_ray(dataset, config, ["solo"], {})
    print(f"   CLI way (one process)        {cli_rate:8.0f} samples/s  {cli_wall:6.1f} s wall")
    print(
        f"   JobManager on Ray ({one_held})  {one_rate:8.0f} samples/s  {one_wall:6.1f} s wall  "
        f"ratio {one_rate / max(cli_rate, 1e-9):.2f}x (target 0.8x)"
    )

    owners = [f"student-{i}" for i in range(STUDENTS)]
    print(f"\n2. {STUDENTS} students submit a training at once (wall: submits to the last end)")
    whole = _on_ray(dataset, config, owners, {"AUDIO_DL_JOB_GPUS": "1"})
    shared = _on_ray(dataset, config, owners, {"AUDIO_DL_JOB_GPUS": "0.25"})
    for rate, wall, held in (whole, shared):
        print(f"   each asks {held:>8}   {wall:6.1f} s wall  {rate:8.0f} samples/s a job")
    print(f"   a quarter each has them all done {whole[1] / max(shared[1], 1e-9):.2f}x sooner")
