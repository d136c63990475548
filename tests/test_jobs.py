"""Job manager on Ray workers: trainings, the queue, Stop, the per-session limit, a killed
worker, a restarted server (a new manager) and Ray failing to start."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.data.datasets import folder_per_class
from core.jobs.manager import ClusterError, JobError, JobLimitReached, JobManager
from core.training.runs import HEARTBEAT_STALE_SECONDS, RunStore
from tests.conftest import REPO_ROOT
from tests.test_datasets import make_tone_folder
from tests.test_train import TINY_SPEC, TONE_CONFIG

LONG = dataclasses.replace(TONE_CONFIG, epochs=10_000)  # runs until stopped (400 took 70 s)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return folder_per_class(make_tone_folder(tmp_path_factory.mktemp("tones"), per_class=6))


def _manager(tmp_path, **env: str) -> JobManager:
    return JobManager(RunStore(tmp_path / "runs"), env=env)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _training_steps(jobs: JobManager, job_id: str, owner: str, steps: int = 1):
    def moved() -> bool:
        event = jobs.latest_event(job_id, owner)
        return event is not None and event.step >= steps

    _wait_for(moved)
    return jobs.status(job_id, owner)


def test_a_training_runs_in_a_worker_process_and_reports_through_files(
    ray_cluster, tones, tmp_path
):
    jobs = _manager(tmp_path)
    job = jobs.submit(TONE_CONFIG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    status = jobs.wait(job, "alice", timeout=300)
    assert status.state == "finished", status.message
    assert status.val_accuracy == 1.0 and status.progress == 1.0
    assert status.resources == "1 CPU" and status.node
    events = jobs.events(job, "alice")
    assert events[0].kind == "started" and events[-1].kind == "finished"
    assert events[0].info["train_examples"] > 0
    assert jobs.events(job, "alice", since=len(events)) == []
    evaluation = jobs.final_event(job, "alice").evaluation
    assert evaluation.accuracy == 1.0 and evaluation.probabilities.shape[1] == 2
    run = jobs.store.get(status.run_id, owner="alice")
    assert run.status == "finished" and run.has_model
    assert jobs.store.load(status.run_id).labels == ("high", "low")
    # The worker was its own process: it wrote its pid, which is not ours.
    folder_state = (jobs.root / job / "state.json").read_text()
    assert f'"pid": {os.getpid()}' not in folder_state
    assert [j.job_id for j in jobs.jobs("alice")] == [job]
    # It trained below the web server's priority, at AUDIO_DL_WORKER_NICE (default 10: the
    # embedded Ray adds none of its own), while this process stayed level.
    assert json.loads(folder_state)["nice"] == 10
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0


def _process_started_at(pid: int) -> float:
    """When process `pid` started (seconds since the epoch, to a clock tick), from /proc."""
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _worker_pid(jobs: JobManager, job: str) -> int:
    return int(json.loads((jobs.root / job / "state.json").read_text())["pid"])


def test_a_later_job_runs_in_a_worker_process_that_was_already_warm(ray_cluster, tones, tmp_path):
    # Ray keeps a finished job's worker process (torch imported) for the next job of the
    # same resources; a fresh process per job spent seconds importing before its first step.
    jobs = _manager(tmp_path)
    first = jobs.submit(TONE_CONFIG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    assert jobs.wait(first, "alice", timeout=300).state == "finished"
    first_pid = _worker_pid(jobs, first)
    submitted = time.time()
    second = jobs.submit(TONE_CONFIG, owner="bob", dataset=tones, spec=TINY_SPEC, device="cpu")
    assert jobs.wait(second, "bob", timeout=300).state == "finished"
    second_pid = _worker_pid(jobs, second)
    assert os.path.exists(f"/proc/{second_pid}")  # still there for the next job
    # The second job's process was running before it was submitted: the first one's, or
    # one the dispatcher warmed.
    assert _process_started_at(second_pid) < submitted - 0.5
    assert first_pid != os.getpid() and second_pid != os.getpid()
    # A reused process keeps nothing of the job before: it wrote where it was told to.
    assert jobs.store.get(jobs.status(second, "bob").run_id, owner="bob").status == "finished"


def test_a_warmed_worker_has_imported_what_a_first_optimiser_imports():
    # torch imports its compiler (torch._dynamo, seconds on a small machine) when the first
    # optimiser is made; the dispatcher's warm-up does it so that a first job does not.
    script = (
        "import sys, torch\nfrom core.jobs.cluster import _import_torch_compiler\n"
        "cold = 'torch._dynamo' in sys.modules\n_import_torch_compiler()\n"
        "before = set(sys.modules)\ntorch.optim.AdamW([torch.zeros(1, requires_grad=True)])\n"
        "print('COLD', cold, 'NEW', len(set(sys.modules) - before))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert "COLD False NEW 0" in result.stdout, (result.stdout, result.stderr[-2000:])


def test_queue_positions_and_cancelling_a_queued_job(ray_cluster, tones, tmp_path):
    # Each job asks for both CPUs: the second waits for the first.
    jobs = _manager(tmp_path, AUDIO_DL_JOB_CPUS="2", AUDIO_DL_JOBS_PER_SESSION="3")
    first = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    second = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    third = jobs.submit(TONE_CONFIG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    _training_steps(jobs, first, "alice")
    assert [jobs.status(j, "alice").queue_position for j in (second, third)] == [1, 2]
    overview = jobs.overview("alice")
    assert (overview.running, overview.queued, overview.own_queue_positions) == (1, 2, (1, 2))
    assert "number 1 in the queue" in overview.summary()
    jobs.cancel(second, "alice")
    assert jobs.status(second, "alice").state == "stopped"
    assert jobs.status(third, "alice").queue_position == 1
    jobs.cancel(first, "alice")
    assert jobs.wait(third, "alice", timeout=300).state == "finished"
    assert jobs.status(second, "alice").run_id is None  # its worker never started


def test_a_queue_on_ray_does_not_make_ray_collect_the_servers_garbage(ray_cluster, tones, tmp_path):
    # While a job waits for CPUs that running actors hold, Ray's scheduler asks every
    # process connected to it, the web server included, for a full gc.collect() (to free
    # actor handles caught in cycles), as often as every 10 s; over the server's heap that
    # froze every page for seconds. The embedded instance is started without it.
    import gc
    import threading

    from_ray = []

    def note(phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread().name == "PythonGCThread":
            from_ray.append(info["generation"])

    jobs = _manager(tmp_path, AUDIO_DL_JOB_CPUS="2", AUDIO_DL_JOBS_PER_SESSION="2")
    first = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    _training_steps(jobs, first, "alice")
    gc.callbacks.append(note)
    try:
        second = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
        time.sleep(35)  # Ray checks its queue every few seconds, collects from the second
        assert jobs.status(second, "alice").state == "queued"
    finally:
        gc.callbacks.remove(note)
        for job in (first, second):
            jobs.cancel(job, "alice")
    assert from_ray == []
    _wait_for(lambda: jobs.status(first, "alice").done and jobs.status(second, "alice").done)


def test_stop_from_a_new_manager_as_after_a_server_restart(ray_cluster, tones, tmp_path):
    jobs = _manager(tmp_path)
    job = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    _training_steps(jobs, job, "alice", steps=3)
    restarted = _manager(tmp_path)  # holds nothing in memory: it reads the job folders
    [found] = restarted.jobs("alice")
    assert found.job_id == job and found.state == "running" and found.run_id
    assert restarted.store.get(found.run_id).status == "running"
    started = time.monotonic()
    restarted.cancel(job, "alice")
    status = restarted.wait(job, "alice", timeout=60)
    assert status.state == "stopped" and "Stopped by request" in status.message
    assert time.monotonic() - started < 10  # within a step, not the forced stop
    run = jobs.store.get(status.run_id)
    assert run.status == "stopped" and run.has_model


def test_stop_is_forced_when_the_worker_does_not_reach_its_next_step(ray_cluster, tones, tmp_path):
    # A clip on a hung file (a named pipe nobody writes to): reading it blocks the worker
    # before its first step, so only the forced Stop can end it.
    fifo = tmp_path / "hung.wav"
    os.mkfifo(fifo)
    hung = dataclasses.replace(tones.examples[0], source=str(fifo), group="hung")
    dataset = dataclasses.replace(tones, examples=(*tones.examples, hung))
    jobs = _manager(tmp_path)
    job = jobs.submit(LONG, owner="alice", dataset=dataset, spec=TINY_SPEC, device="cpu")
    _wait_for(lambda: jobs.status(job, "alice").state == "running")
    jobs.cancel(job, "alice")
    time.sleep(3)
    assert jobs.status(job, "alice").state == "running"  # asked, but it cannot listen
    status = jobs.wait(job, "alice", timeout=60)
    assert status.state == "stopped" and "Stopped by force" in status.message
    pid = int((jobs.root / job / "state.json").read_text().split('"pid": ')[1].split(",")[0])
    _wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=30)


def _zombie(pid: int) -> bool:
    try:
        return ") Z" in open(f"/proc/{pid}/stat").read()
    except OSError:
        return True


def test_one_unfinished_job_per_session_by_default(ray_cluster, tones, tmp_path):
    jobs = _manager(tmp_path)
    job = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    with pytest.raises(JobLimitReached, match="one is allowed per session"):
        jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    assert len(jobs.jobs("alice")) == 1
    with pytest.raises(JobError, match="no job"):
        jobs.status(job, "mallory")
    with pytest.raises(JobError):
        jobs.cancel(job, "mallory")
    assert jobs.jobs("mallory") == []
    jobs.cancel(job, "alice")
    assert jobs.wait(job, "alice", timeout=60).state == "stopped"
    # Once it ended, the session may train again.
    again = jobs.submit(TONE_CONFIG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    assert jobs.wait(again, "alice", timeout=300).state == "finished"


def test_a_killed_worker_makes_its_run_interrupted_within_seconds(ray_cluster, tones, tmp_path):
    jobs = _manager(tmp_path)
    job = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    _wait_for(lambda: jobs.status(job, "alice").epoch >= 2)
    state = (jobs.root / job / "state.json").read_text()
    pid = int(state.split('"pid": ')[1].split(",")[0])
    run_id = jobs.status(job, "alice").run_id
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    _wait_for(lambda: jobs.status(job, "alice").done, timeout=HEARTBEAT_STALE_SECONDS + 10)
    assert time.monotonic() - killed < HEARTBEAT_STALE_SECONDS + 5
    status = jobs.status(job, "alice")
    assert status.state == "interrupted" and "stopped without a word" in status.message
    run = jobs.store.get(run_id)
    assert run.status == "interrupted"
    assert any(r.get("kind") == "epoch_end" for r in jobs.store.read_metrics(run_id))


def test_a_run_store_tells_a_live_worker_from_a_dead_one_by_its_heartbeat(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run({"epochs": 1}, owner="alice")
    heartbeat = store.run_path(run_id) / "heartbeat"
    heartbeat.touch()
    assert store.get(run_id).status == "running"
    stale = time.time() - HEARTBEAT_STALE_SECONDS - 1
    os.utime(heartbeat, (stale, stale))
    assert store.get(run_id).status == "interrupted"  # not "running" for ten minutes
    assert store.mark_interrupted(run_id, "the worker was killed")
    assert store.read_summary(run_id)["status"] == "interrupted"
    assert not store.mark_interrupted(run_id, "twice")


def test_a_failing_training_reports_failed(ray_cluster, tones, tmp_path):
    jobs = _manager(tmp_path)
    bad = dataclasses.replace(TONE_CONFIG, split="holdout", val_groups=("nobody",))
    job = jobs.submit(bad, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    status = jobs.wait(job, "alice", timeout=120)
    assert status.state == "failed" and "nobody" in status.message


def test_ray_failing_to_start_gives_a_sentence(tmp_path):
    # A fresh process (this one's Ray is up); Ray's temp folder under a file cannot be made.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    script = (
        "from core.jobs.manager import ClusterError, JobManager\nfrom core.training.runs import "
        "RunStore\nfrom core.training.trainer import TrainConfig\njobs = "
        f"JobManager(RunStore({str(tmp_path / 'runs')!r}))\ntry:\n    jobs.submit(TrainConfig(), "
        "owner='alice', device='cpu')\nexcept ClusterError as error:\n    print('SENTENCE:', "
        "error)\n"
    )
    env = {**os.environ, "RAY_TMPDIR": str(blocker / "ray"), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("RAY_ADDRESS", None)
    env.pop("AUDIO_DL_RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert "SENTENCE: The local worker cluster (Ray) could not start" in result.stdout, (
        result.stdout,
        result.stderr[-2000:],
    )
    assert "ray status" in result.stdout and result.returncode == 0
    assert ClusterError.__doc__ and "sentence" in ClusterError.__doc__


FROM_A_PASSING_THREAD = """
import threading, time
import ray
from core.jobs import cluster
thread = threading.Thread(target=lambda: cluster.connect({"AUDIO_DL_RAY_CPUS": "1"}))
thread.start()
thread.join()  # like a Streamlit script run: the thread that started Ray has ended
time.sleep(3)
print("ANSWER", ray.get(ray.remote(lambda: 42).remote(), timeout=60))
cluster.shutdown()
"""


def test_ray_started_from_a_script_run_thread_outlives_that_thread(tmp_path):
    # Streamlit runs each script run in a thread that ends with it; Ray's processes must not
    # die with that thread (Linux's parent-death signal follows the starting thread).
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for name in ("RAY_ADDRESS", "AUDIO_DL_RAY_ADDRESS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", FROM_A_PASSING_THREAD],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "ANSWER 42" in result.stdout, (result.stdout, result.stderr[-3000:])


SUBMIT_AND_LEAVE = """
import json, sys, time, dataclasses
from pathlib import Path
import ray
from core.data.datasets import folder_per_class
from core.jobs.manager import JobManager
from tests.test_datasets import make_tone_folder
from tests.test_train import TINY_SPEC, TONE_CONFIG
tones = folder_per_class(make_tone_folder(Path(sys.argv[1]), per_class=6))
jobs = JobManager()
job = jobs.submit(dataclasses.replace(TONE_CONFIG, epochs=10_000), owner="alice", dataset=tones,
                  spec=TINY_SPEC, device="cpu")
while (jobs.latest_event(job, "alice") or type("e", (), {"step": 0})).step < 1:
    assert not jobs.status(job, "alice").done, jobs.status(job, "alice")
    time.sleep(0.2)
cpu_nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
print(json.dumps({"job": job, "cpu_nodes": cpu_nodes}))
"""  # the web server of this test: it submits, sees the training start, and exits


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_cluster_of_two_nodes_trains_on_the_second_and_outlives_the_server(tmp_path):
    """`ray start --head` (no CPU for jobs) plus a second `ray start --address`: the job must
    land on the second node; the submitting process exits (a server restart) and a new
    manager finds the job still training, then stops it."""
    import json

    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO_ROOT)}
    for name in ("RAY_ADDRESS", "AUDIO_DL_RAY_ADDRESS"):
        env.pop(name, None)
    ray = str(REPO_ROOT / ".venv" / "bin" / "ray")
    ray = ray if os.path.exists(ray) else "ray"
    common = ["--block", "--disable-usage-stats"]
    head = subprocess.Popen(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            *common,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    second = None
    try:
        time.sleep(5)
        second = subprocess.Popen(
            [ray, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(5)
        runs = tmp_path / "runs"
        server_env = {
            **env,
            "AUDIO_DL_RAY_ADDRESS": f"127.0.0.1:{port}",
            "AUDIO_DL_RUNS_DIR": str(runs),
        }
        result = subprocess.run(
            [sys.executable, "-c", SUBMIT_AND_LEAVE, str(tmp_path / "tones")],
            env=server_env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        submitted = json.loads(result.stdout.strip().splitlines()[-1])
        job = submitted["job"]
        restarted = JobManager(RunStore(runs))  # reads the folders; no Ray needed to watch
        state = json.loads((restarted.root / job / "state.json").read_text())
        assert [state["ray_node_id"]] == submitted["cpu_nodes"]  # the second node trains it
        before = restarted.latest_event(job, "alice").step
        time.sleep(HEARTBEAT_STALE_SECONDS + 2)  # the submitting process is long gone
        status = restarted.status(job, "alice")
        assert status.state == "running" and restarted.latest_event(job, "alice").step > before
        restarted.cancel(job, "alice")
        status = restarted.wait(job, "alice", timeout=60)
        assert status.state == "stopped" and "Stopped by request" in status.message
        assert restarted.store.get(status.run_id).has_model
    finally:
        for process in (second, head):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_the_embedded_rays_processes_start_below_the_server_and_it_stays_level(ray_cluster):
    # The keeper thread lowered itself before starting Ray: every process Ray started
    # (scheduler, helpers, workers) inherited that; the server's own threads did not.
    children = subprocess.run(
        ["ps", "-o", "ni=,comm=", "--ppid", str(os.getpid())], capture_output=True, text=True
    ).stdout.split("\n")
    ray_processes = [line.split() for line in children if "raylet" in line or "gcs" in line]
    assert len(ray_processes) >= 2, children
    assert all(int(nice) >= 10 for nice, _ in ray_processes), ray_processes
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0


def test_worker_priority_setting_and_lowering_one_thread_only():
    import threading

    from core.jobs.cluster import lower_priority, worker_niceness

    assert worker_niceness({}) == 10
    assert worker_niceness({"AUDIO_DL_WORKER_NICE": "0"}) == 0
    assert worker_niceness({"AUDIO_DL_WORKER_NICE": " 19 "}) == 19
    for bad in ("20", "-1", "low"):
        with pytest.raises(ValueError, match="from 0 to 19"):
            worker_niceness({"AUDIO_DL_WORKER_NICE": bad})
    seen = {}

    def in_a_thread() -> None:
        seen["lowered"] = lower_priority(7)
        seen["kept"] = lower_priority(3)  # never raised again
        seen["child"] = subprocess.run(
            ["sh", "-c", "ps -o ni= -p $$"], capture_output=True, text=True
        ).stdout.strip()

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == {"lowered": 7, "kept": 7, "child": "7"}
    assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the calling process's other threads


def test_a_gpu_job_asks_for_its_share_of_a_gpu_and_a_cpu_job_for_its_share_of_cpus():
    from core.jobs.cluster import ClusterInfo, JobResources, job_resources

    info = ClusterInfo("local", True, cpus=16, gpus=2, nodes=1, start_seconds=1.0)
    assert job_resources("cuda:1", info, {}) == JobResources(num_cpus=1, num_gpus=1)
    assert job_resources("cuda", info, {"AUDIO_DL_JOB_GPUS": "0.25"}).num_gpus == 0.25
    assert job_resources("cuda", info, {"AUDIO_DL_JOB_GPUS": " 1 "}).num_gpus == 1
    for bad in ("0", "0.01", "2", "-0.5", "nan", "a quarter"):
        with pytest.raises(ValueError, match="share of one GPU from 0.05 to 1"):
            job_resources("cuda", info, {"AUDIO_DL_JOB_GPUS": bad})
    assert job_resources("cpu", info, {}) == JobResources(num_cpus=4, num_gpus=0)  # capped at 4
    assert job_resources("cpu", info, {"AUDIO_DL_JOB_CPUS": "2"}).num_cpus == 2
    small = ClusterInfo("local", True, cpus=2, gpus=0, nodes=1, start_seconds=1.0)
    assert job_resources("mps", small, {}) == JobResources(num_cpus=1, num_gpus=0)
    with pytest.raises(ValueError, match="whole number"):
        job_resources("cpu", info, {"AUDIO_DL_JOB_CPUS": "lots"})


def test_the_resources_a_job_holds_read_as_a_share_of_a_gpu():
    from core.jobs.manager import _resources_text

    assert _resources_text({"num_gpus": 1, "num_cpus": 1}) == "1 GPU"
    assert _resources_text({"num_gpus": 0.125, "num_cpus": 1}) == "1/8 GPU"
    assert _resources_text({"num_gpus": 0.3333, "num_cpus": 1}) == "1/3 GPU"
    assert _resources_text({"num_gpus": 0.4, "num_cpus": 1}) == "0.4 GPU"
    assert _resources_text({"num_gpus": 0, "num_cpus": 2}) == "2 CPUs"
    assert _resources_text({"num_gpus": 1, "num_cpus": 1, "workers": 2}) == "2 workers × 1 GPU"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_training_on_a_gpu_machine_asks_ray_for_one_gpu_and_trains_on_it(
    ray_cluster, tones, tmp_path
):
    assert ray_cluster.gpus >= 1  # the embedded Ray counted this machine's GPUs
    jobs = _manager(tmp_path)
    job = jobs.submit(TONE_CONFIG, owner="gpu", dataset=tones, spec=TINY_SPEC, device="cuda")
    assert json.loads((jobs.root / job / "job.json").read_text())["num_gpus"] == 1
    status = jobs.wait(job, "gpu", timeout=300)
    assert status.state == "finished", status.message
    assert status.resources == "1 GPU"
    assert jobs.events(job, "gpu")[0].info["device"].startswith("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("share", ["0.5", "1"])
def test_a_share_of_a_gpu_is_granted_and_kept_and_whole_gpus_take_turns(
    ray_cluster, tones, tmp_path, share
):
    """Two students on one GPU. At AUDIO_DL_JOB_GPUS=0.5 Ray grants each job half the GPU and
    the worker keeps to half its memory; at 1 (the default) the second waits in the queue
    until the first has ended."""
    jobs = _manager(tmp_path, AUDIO_DL_JOB_GPUS=share)
    config = dataclasses.replace(TONE_CONFIG, epochs=150)
    owners = ("ann", "bob")
    ids = [
        jobs.submit(config, owner=owner, dataset=tones, spec=TINY_SPEC, device="cuda")
        for owner in owners
    ]
    for job_id, owner in zip(ids, owners, strict=True):
        status = jobs.wait(job_id, owner, timeout=300)
        assert status.state == "finished", status.message
    states = [json.loads((jobs.root / job_id / "state.json").read_text()) for job_id in ids]
    if share == "0.5":
        for state, job_id, owner in zip(states, ids, owners, strict=True):
            assert state["gpu_share"] == 0.5 and state["gpu_memory_fraction"] == 0.5
            assert jobs.status(job_id, owner).resources == "1/2 GPU"
    else:
        first, second = sorted(states, key=lambda state: state["started_at"])
        assert second["started_at"] >= first["finished_at"]
        assert "gpu_share" not in first and "gpu_share" not in second
