"""Trainings on Ray workers: throughput against the CLI, and page loads while a class trains.

Printed side by side in one run (issue 13):
1. samples/s of one training through the JobManager on a Ray worker against the same recipe
   trained the way `python -m core.train` does (the generator in one process); the recipe is
   the issue's: built-in digits, 60 clips per class, 2 epochs, one network, no t-SNE.
2. the time to load a page (the Home page under AppTest, the server's side of a page load)
   in an idle session while N trainings run on Ray workers, against N trainings in threads of
   the server's own process (how trainings ran before) and against no training at all.

    .venv/bin/python -m tests.benchmarks jobs       (a few minutes on a 2-core machine)
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

TRAININGS = 2  # N trainings while the idle session loads pages
PAGE_LOADS = 5


def _recipe():
    from core.data.datasets import builtin_digits
    from core.training.support import limit_per_class
    from core.training.trainer import TrainConfig

    dataset = limit_per_class(builtin_digits(), 60)
    config = TrainConfig(epochs=2, members=1, tsne=False, name="bench")
    return dataset, config


def _last_epoch_rate(events) -> float:
    rates = [e.samples_per_second for e in events if e.kind == "epoch_end"]
    return rates[-1] if rates else 0.0


def _in_process(dataset, config, device: str = "cpu") -> tuple[float, float]:
    from core.training.runs import RunStore
    from core.training.trainer import train

    started = time.perf_counter()
    events = list(train(config, dataset=dataset, device=device, store=RunStore(), owner="cli"))
    assert events[-1].kind == "finished", events[-1].message
    return _last_epoch_rate(events), time.perf_counter() - started


def _on_ray(dataset, config, cpus: int) -> tuple[float, float]:
    from core.jobs.manager import JobManager

    jobs = JobManager(env={**os.environ, "AUDIO_DL_JOB_CPUS": str(cpus)})
    started = time.perf_counter()
    job = jobs.submit(config, owner=f"bench-{cpus}", dataset=dataset, device="cpu")
    status = jobs.wait(job, f"bench-{cpus}", timeout=600)
    assert status.state == "finished", status.message
    return _last_epoch_rate(jobs.events(job, f"bench-{cpus}")), time.perf_counter() - started


def _page_load_seconds() -> list[float]:
    from streamlit.testing.v1 import AppTest

    from tests.apptest_helpers import DASHBOARD

    times = []
    for _ in range(PAGE_LOADS):
        started = time.perf_counter()
        app = AppTest.from_file(DASHBOARD, default_timeout=300).run()
        assert not app.exception, [e.value for e in app.exception]
        times.append(time.perf_counter() - started)
    return times


def _with_ray_trainings(dataset, config) -> list[float]:
    from core.jobs.manager import JobManager

    jobs = JobManager()
    owners = [f"class-{i}" for i in range(TRAININGS)]
    ids = [jobs.submit(config, owner=o, dataset=dataset, device="cpu") for o in owners]
    try:
        for job, owner in zip(ids, owners, strict=True):
            while (latest := jobs.latest_event(job, owner)) is None or latest.step < 1:
                time.sleep(0.2)
        return _page_load_seconds()
    finally:
        for job, owner in zip(ids, owners, strict=True):
            jobs.cancel(job, owner)
            jobs.wait(job, owner, timeout=120)


def _with_thread_trainings(dataset, config) -> list[float]:
    from core.training.trainer import train

    stop = threading.Event()
    stepped = [threading.Event() for _ in range(TRAININGS)]

    def run(flag: threading.Event) -> None:
        for event in train(config, dataset=dataset, device="cpu", cancel=stop):
            if event.step >= 1:
                flag.set()

    threads = [threading.Thread(target=run, args=(flag,), daemon=True) for flag in stepped]
    for thread in threads:
        thread.start()
    try:
        for flag in stepped:
            flag.wait(timeout=300)
        return _page_load_seconds()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)


def _poll_cost(root: Path, folders: int = 600) -> tuple[float, float]:
    """Milliseconds of one status() of a running job and one sidebar overview() among
    `folders` finished jobs (a class's history), as the page and the sidebar poll them."""
    from core.jobs.files import JobFolder
    from core.jobs.manager import JobManager
    from core.training.runs import RunStore

    jobs = JobManager(RunStore(root / "poll"))
    for i in range(folders):
        folder = JobFolder(jobs.root / f"job-old-{i:04d}")
        folder.create(
            {
                "job_id": folder.job_id,
                "owner": f"s{i % 30}",
                "pool": "cpu",
                "submitted_at": time.time(),
            }
        )
        folder.write_state("finished", message="Finished.")
    running = JobFolder(jobs.root / "job-running-0")
    running.create(
        {
            "job_id": running.job_id,
            "owner": "me",
            "pool": "cpu",
            "epochs": 2,
            "submitted_at": time.time(),
        }
    )
    running.write_state("running", latest={"step": 5, "total_steps": 10, "epoch": 1})
    (running.path / "heartbeat").touch()

    def best_ms(call, repeats: int = 20) -> float:
        call()  # first call fills the manager's caches, as the first poll does
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times)

    return best_ms(lambda: jobs.status("job-running-0", "me")), best_ms(lambda: jobs.overview("me"))


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    os.environ["AUDIO_DL_RUNS_DIR"] = str(root / "runs")
    os.environ["AUDIO_DL_CACHE_DIR"] = str(root / "cache")
    os.environ["AUDIO_DL_JOBS_PER_SESSION"] = "4"
    status_ms, overview_ms = _poll_cost(root)
    print(
        f"0. poll cost: status() of a running job {status_ms:.2f} ms; the sidebar's "
        f"overview() among 600 finished jobs {overview_ms:.2f} ms (median of 20)"
    )
    from core.jobs import cluster

    info = cluster.connect()
    print(f"{info.summary()}; started in {info.start_seconds:.1f} s (issue target: 10 s)")
    dataset, config = _recipe()
    _in_process(dataset, dataclasses.replace(config, epochs=1))  # fill the feature cache
    cpus = int(info.cpus)
    cli_rate, cli_wall = _in_process(dataset, config)
    ray_rate, ray_wall = _on_ray(dataset, config, cpus)
    half_rate, half_wall = _on_ray(dataset, config, max(1, cpus // 2))
    print(
        f"\n1. one training, {len(dataset)} clips x {config.epochs} epochs (samples/s of the last "
        "epoch)"
    )
    print(
        f"   CLI way (one process, {cpus} threads)   {cli_rate:8.0f} samples/s  {cli_wall:6.1f} s "
        "wall"
    )
    print(
        f"   JobManager on Ray, {cpus} CPUs           {ray_rate:8.0f} samples/s  {ray_wall:6.1f} s "
        f"wall  ratio {ray_rate / max(cli_rate, 1e-9):.2f}x (target 0.8x)"
    )
    print(
        f"   JobManager on Ray, {max(1, cpus // 2)} CPU (default)   {half_rate:8.0f} samples/s  "
        f"{half_wall:6.1f} s wall  ratio {half_rate / max(cli_rate, 1e-9):.2f}x"
    )

    long = dataclasses.replace(config, epochs=50)
    idle = _page_load_seconds()
    ray = _with_ray_trainings(dataset, long)
    threads = _with_thread_trainings(dataset, long)
    print(f"\n2. Home page load in an idle session (AppTest, median of {PAGE_LOADS}; max)")
    for label, times in (
        ("no training", idle),
        (f"{TRAININGS} trainings on Ray workers", ray),
        (f"{TRAININGS} trainings in server threads (before)", threads),
    ):
        median = statistics.median(times)
        print(
            f"   {label:42s} {median:6.2f} s  (max {max(times):.2f} s)  "
            f"{median / statistics.median(idle):.2f}x idle"
        )
    cluster.shutdown()


if __name__ == "__main__":
    main()
