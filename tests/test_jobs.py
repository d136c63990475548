"""Job manager: two trainings at once both finish, the queue is visible, cancel, owners."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from core.datasets import folder_per_class
from core.device import DeviceJobLimiter
from core.jobs import JobError, JobManager
from core.runs import RunStore
from tests.test_datasets import make_tone_folder
from tests.test_train import TINY_SPEC, TONE_CONFIG


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return folder_per_class(make_tone_folder(tmp_path_factory.mktemp("tones"), per_class=6))


def _manager(tmp_path, slots: int = 1) -> JobManager:
    return JobManager(RunStore(tmp_path), limiter=DeviceJobLimiter({"cpu": slots}))


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_trainings_started_at_once_both_finish(tones, tmp_path):
    jobs = _manager(tmp_path, slots=1)
    config = TONE_CONFIG
    first = jobs.submit(config, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    second = jobs.submit(config, owner="bob", dataset=tones, spec=TINY_SPEC, device="cpu")
    _wait_for(lambda: jobs.status(first, "alice").state == "running")
    waiting = jobs.status(second, "bob")
    assert waiting.state == "queued" and waiting.queue_position == 1
    a, b = jobs.wait(first, "alice", timeout=300), jobs.wait(second, "bob", timeout=300)
    assert (a.state, b.state) == ("finished", "finished")
    assert a.val_accuracy == 1.0 and b.val_accuracy == 1.0 and a.progress == 1.0
    store = jobs.store
    assert {r.owner for r in store.list_runs()} == {"alice", "bob"}
    assert store.load(b.run_id, owner="bob").labels == ("high", "low")
    events = jobs.events(first, "alice")
    assert events[0].kind == "started" and events[-1].kind == "finished"
    assert jobs.events(first, "alice", since=len(events)) == []
    assert jobs.final_event(first, "alice").evaluation.accuracy == 1.0
    assert [j.job_id for j in jobs.jobs("alice")] == [first]


def test_cancel_a_running_and_a_queued_job(tones, tmp_path):
    jobs = _manager(tmp_path, slots=1)
    config = dataclasses.replace(TONE_CONFIG, epochs=200)
    running = jobs.submit(
        config, owner="alice", dataset=tones, spec=TINY_SPEC, device=torch.device("cpu")
    )
    queued = jobs.submit(
        config, owner="alice", dataset=tones, spec=TINY_SPEC, device=torch.device("cpu")
    )
    _wait_for(
        lambda: (event := jobs.latest_event(running, "alice")) is not None and event.step >= 1
    )
    jobs.cancel(queued, "alice")
    assert jobs.status(queued, "alice").state == "stopped"
    jobs.cancel(running, "alice")
    status = jobs.wait(running, "alice", timeout=120)
    assert status.state == "stopped" and "Stopped by request" in status.message
    assert jobs.wait(queued, "alice", timeout=120).state == "stopped"
    assert jobs.store.get(status.run_id).status == "stopped"


def test_other_sessions_cannot_see_or_cancel_a_job(tones, tmp_path):
    jobs = _manager(tmp_path)
    job = jobs.submit(
        dataclasses.replace(TONE_CONFIG, epochs=1),
        owner="alice",
        dataset=tones,
        spec=TINY_SPEC,
        device="cpu",
    )
    with pytest.raises(JobError, match="no job"):
        jobs.status(job, "mallory")
    with pytest.raises(JobError):
        jobs.cancel(job, "mallory")
    assert jobs.jobs("mallory") == []
    assert jobs.wait(job, "alice", timeout=120).state == "finished"


def test_a_failing_training_reports_failed(tones, tmp_path):
    jobs = _manager(tmp_path)
    bad = dataclasses.replace(TONE_CONFIG, split="holdout", val_groups=("nobody",))
    status = jobs.wait(
        jobs.submit(bad, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu"),
        "alice",
        timeout=120,
    )
    assert status.state == "failed" and "nobody" in status.message
