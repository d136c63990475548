"""Data-parallel training across Ray workers (core.jobs.distributed): one job and one run; two
workers' gradients averaged as if one process had taken the step on both shards; the built-in
digits learnt as well as by one process with the same global batch and seed; Stop and the
per-session limit as for a one-worker job; the command line's --workers."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import torch

from core.data.datasets import builtin_digits, folder_per_class
from core.jobs.cluster import ClusterError, ClusterInfo, JobResources
from core.jobs.distributed import worker_resources
from core.jobs.manager import JobLimitReached, JobManager
from core.train import main
from core.training.runs import RunStore
from core.training.support import limit_per_class
from core.training.trainer import TrainConfig, train
from tests.test_datasets import make_tone_folder
from tests.test_train import TINY_SPEC, TONE_CONFIG


@pytest.fixture(scope="module")
def tone_folder(tmp_path_factory):
    return make_tone_folder(tmp_path_factory.mktemp("tones"), per_class=6)


def _weights(store: RunStore, run_id: str) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in store.load(run_id).model.state_dict().items()}


# One optimiser step on the whole training split: plain SGD, nothing random inside the step
# (no augmentation, no dropout, no batch norm in TINY_SPEC), so two workers that each see half
# of the batch must end where one process that sees all of it ends, if DDP averages gradients.
ONE_STEP_ARGS = (
    "--epochs",
    "1",
    "--batch-size",
    "64",  # more than the 10 training clips: one step (5 clips on each worker)
    "--optimizer",
    "sgd",
    "--lr",
    "0.5",
    "--schedule",
    "constant",
    "--weight-decay",
    "0",
    "--members",
    "1",
    "--no-augment",
    "--no-tsne",
    "--normalization",
    "global",
    "--clip-seconds",
    "0.3",
    "--device",
    "cpu",
)


def test_two_workers_take_the_step_one_process_takes_on_both_shards(
    ray_cluster, tone_folder, tmp_path, capsys
):
    # 12 tones, 2 for validation: 10 to train on, an even number, so the two shards are the
    # whole split (a remainder would be dropped under DDP).
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(TINY_SPEC.to_json())
    common = ["--data", str(tone_folder), "--spec", str(spec_path), *ONE_STEP_ARGS]
    runs = tmp_path / "runs"
    code = main([*common, "--runs-dir", str(runs), "--workers", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert "2 workers × 1 CPU" in err and "1/1 [" in err  # the job, then tqdm at its last step
    [run] = RunStore(runs).list_runs()  # one run: rank 1 wrote nothing
    assert run.run_id in out and run.status == "finished" and run.owner == "cli"
    summary = RunStore(runs).read_summary(run.run_id)
    assert summary["world_size"] == 2 and summary["metrics"]["steps"] == 1
    assert json.loads((run.path / "config.json").read_text())["train_config"]["workers"] == 2

    alone = tmp_path / "alone"
    assert main([*common, "--runs-dir", str(alone)]) == 0  # one process, same global batch
    [single] = RunStore(alone).list_runs()
    assert RunStore(alone).read_summary(single.run_id)["metrics"]["steps"] == 1
    two, one = _weights(RunStore(runs), run.run_id), _weights(RunStore(alone), single.run_id)
    initial = _initial_weights(RunStore(alone).load(single.run_id).spec, seed=0)
    for name in one:
        assert torch.allclose(two[name], one[name], atol=1e-5, rtol=0), name
        # the step moved the weights far more than the tolerance, so the test can fail
        assert (one[name] - initial[name]).abs().max() > 1e-3, name


def _initial_weights(spec, seed: int) -> dict[str, torch.Tensor]:
    """The weights both runs started from: the trainer seeds, then builds the run's spec."""
    from core.models.build import build_model

    torch.manual_seed(seed)
    return build_model(spec).state_dict()


def _step(jobs: JobManager, job: str, owner: str) -> int:
    event = jobs.latest_event(job, owner)
    return event.step if event is not None else 0


def test_two_workers_learn_the_digits_like_one_process_with_the_same_global_batch(
    ray_cluster, tmp_path
):
    digits = limit_per_class(builtin_digits(), 20, seed=0)  # 200 clips, 4 speakers
    config = TrainConfig(
        model="cnn_logmel",
        members=1,
        epochs=8,
        batch_size=16,
        embeddings=False,
        tsne=False,
        device="cpu",
        seed=3,
    )
    [*_, alone] = train(config, dataset=digits, device=torch.device("cpu"))
    assert alone.kind == "finished", alone.message

    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = jobs.submit(dataclasses.replace(config, workers=2), owner="ann", dataset=digits)
    status = jobs.wait(job, "ann", timeout=900)
    assert status.state == "finished", status.message
    assert status.resources == "2 workers × 1 CPU"
    [run] = jobs.store.list_runs()
    assert run.run_id == status.run_id and jobs.store.read_summary(run.run_id)["world_size"] == 2
    events = jobs.events(job, "ann")
    assert events[0].info["world_size"] == 2 and events[-1].kind == "finished"
    # 40 validation clips: one clip is 0.025; batch norm sees 8 clips per worker instead of 16,
    # so the two runs are not identical, only equally good.
    assert alone.val_accuracy >= 0.6
    assert abs(status.val_accuracy - alone.val_accuracy) <= 0.15


def _long_distributed_job(jobs: JobManager, tones, owner: str) -> str:
    """Submit a 400-epoch training on two data-parallel workers; its job id."""
    long = dataclasses.replace(TONE_CONFIG, epochs=400, workers=2)
    return jobs.submit(long, owner=owner, dataset=tones, spec=TINY_SPEC, device="cpu")


def _wait_for_step(jobs: JobManager, job: str, owner: str, step: int) -> None:
    deadline = time.monotonic() + 600
    while _step(jobs, job, owner) < step:
        assert time.monotonic() < deadline, jobs.status(job, owner)
        time.sleep(0.2)


def test_stop_and_the_session_limit_count_a_distributed_job_once(
    ray_cluster, tone_folder, tmp_path
):
    tones = folder_per_class(tone_folder)
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = _long_distributed_job(jobs, tones, "bob")
    assert [j.job_id for j in jobs.jobs("bob")] == [job]  # two workers, one job
    with pytest.raises(JobLimitReached, match="already have 1 training"):
        jobs.submit(TONE_CONFIG, owner="bob", dataset=tones, spec=TINY_SPEC, device="cpu")

    _wait_for_step(jobs, job, "bob", 3)
    assert jobs.overview("bob").running == 1
    asked = time.monotonic()
    jobs.cancel(job, "bob")
    status = jobs.wait(job, "bob", timeout=60)
    assert status.state == "stopped" and "Stopped by request" in status.message
    assert time.monotonic() - asked < 10  # every rank stopped at the next step, none hung
    run = jobs.store.get(status.run_id)
    assert run.status == "stopped" and run.has_model
    assert len(jobs.store.list_runs()) == 1


def _train_worker_pids() -> set[int]:
    """Ray Train's worker processes on this machine (their process title names the class)."""
    import subprocess

    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return {
        int(line.split(None, 1)[0])
        for line in listing.splitlines()
        if "RayTrainWorker" in line and "ps -eo" not in line
    }


def test_a_rank_killed_with_sigkill_ends_the_job_and_its_other_rank(
    ray_cluster, tone_folder, tmp_path
):
    import os
    import signal

    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = _long_distributed_job(jobs, folder_per_class(tone_folder), "cy")
    _wait_for_step(jobs, job, "cy", 3)
    rank0 = json.loads((jobs.root / job / "state.json").read_text())["pid"]
    others = _train_worker_pids() - {rank0}
    assert len(others) == 1, others  # the second rank
    os.kill(others.pop(), signal.SIGKILL)
    killed = time.monotonic()
    status = jobs.wait(job, "cy", timeout=120)
    # The surviving rank cannot finish a step without its peer: the job ends (failed, said
    # with the cause, or interrupted) instead of hanging, and keeps what was saved.
    assert status.state in ("failed", "interrupted"), status
    assert time.monotonic() - killed < 60
    assert jobs.store.get(status.run_id).status != "running"
    deadline = time.monotonic() + 60
    while rank0 in _train_worker_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rank0 not in _train_worker_pids()  # no rank left behind holding its CPU


def test_workers_ask_for_what_the_cluster_has_or_get_a_sentence():
    cpus = ClusterInfo("local", True, cpus=4, gpus=0, nodes=1, start_seconds=1.0)
    assert worker_resources("cpu", cpus, 2, {}) == JobResources(num_cpus=2, num_gpus=0)
    assert worker_resources("cpu", cpus, 4, {"AUDIO_DL_JOB_CPUS": "1"}).num_cpus == 1
    with pytest.raises(ClusterError, match="3 workers need 6 CPUs .* at most 2 workers"):
        worker_resources("cpu", cpus, 3, {})
    gpus = ClusterInfo("local", True, cpus=16, gpus=2, nodes=2, start_seconds=1.0)
    assert worker_resources("cuda", gpus, 2, {}) == JobResources(num_cpus=1, num_gpus=1)
    # NCCL takes a whole GPU per worker, whatever share one-process jobs are given
    shared = {"AUDIO_DL_JOB_GPUS": "0.25"}
    assert worker_resources("cuda", gpus, 2, shared) == JobResources(num_cpus=1, num_gpus=1)
    with pytest.raises(ClusterError, match="4 GPUs .* has 2"):
        worker_resources("cuda", gpus, 4, {})
    for bad in (0, 65, 1.5):
        with pytest.raises(ValueError, match="workers must be a whole number from 1 to 64"):
            TrainConfig(workers=bad)
    assert TrainConfig.from_dict({"epochs": 3}).workers == 1  # runs saved before workers


def test_workers_under_torchrun_is_refused_with_a_sentence(monkeypatch, capsys, tone_folder):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["--data", str(tone_folder), "--workers", "2"]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_gpu_workers_train_with_nccl_and_write_one_run(ray_cluster, tone_folder, tmp_path):
    assert ray_cluster.gpus >= 2
    tones = folder_per_class(tone_folder)
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    config = dataclasses.replace(TONE_CONFIG, workers=2)
    job = jobs.submit(config, owner="gpu", dataset=tones, spec=TINY_SPEC, device="cuda")
    assert json.loads((jobs.root / job / "job.json").read_text())["num_gpus"] == 1  # each
    status = jobs.wait(job, "gpu", timeout=600)
    assert status.state == "finished", status.message
    assert status.resources == "2 workers × 1 GPU" and status.val_accuracy == 1.0
    started = jobs.events(job, "gpu")[0].info
    assert started["world_size"] == 2 and started["device"].startswith("cuda")
    [run] = jobs.store.list_runs()
    assert jobs.store.read_summary(run.run_id)["world_size"] == 2
