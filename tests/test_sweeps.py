"""Sweeps: the trials a space makes, the augmentation strength, the ranking of finished trials,
and a real sweep of a tiny recipe through the job manager on Ray workers."""

from __future__ import annotations

import dataclasses
import math

import pytest

from core.data.augment import AugmentConfig
from core.data.datasets import folder_per_class
from core.jobs.manager import JobLimitReached, JobManager
from core.jobs.sweeps import (
    SweepError,
    SweepSpace,
    plan_sweep,
    scale_augment,
    sweep_rows,
    sweeps_in,
)
from core.training.runs import RunStore
from core.training.trainer import TrainConfig
from tests.test_datasets import make_tone_folder
from tests.test_jobs import LONG, _wait_for
from tests.test_train import TINY_SPEC, TONE_CONFIG


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return folder_per_class(make_tone_folder(tmp_path_factory.mktemp("tones"), per_class=6))


def test_a_grid_is_every_combination_with_its_values_in_the_config_and_the_name():
    base = dataclasses.replace(TrainConfig(), name="digits")
    space = SweepSpace(learning_rates=(1e-3, 1e-2), batch_sizes=(16, 32, 16), members=(1,))
    trials = plan_sweep(base, space)
    # Repeated values count once; a setting with one value is fixed, not varied.
    assert [t.values for t in trials] == [
        {"learning_rate": 1e-3, "batch_size": 16},
        {"learning_rate": 1e-3, "batch_size": 32},
        {"learning_rate": 1e-2, "batch_size": 16},
        {"learning_rate": 1e-2, "batch_size": 32},
    ]
    for trial in trials:
        assert trial.config.learning_rate == trial.values["learning_rate"]
        assert trial.config.batch_size == trial.values["batch_size"]
        assert trial.config.members == 1  # the fixed value applies to every trial
        assert trial.config.epochs == base.epochs  # the rest is the base recipe
    assert trials[1].config.name == "digits · lr=0.001 · batch=32"


def test_a_random_sweep_draws_learning_rates_log_uniformly_within_the_range_and_is_seeded():
    space = SweepSpace(
        learning_rates=(1e-4, 1e-1), members=(1, 2), mode="random", trials=12, seed=3
    )
    trials = plan_sweep(TrainConfig(), space)
    rates = [t.values["learning_rate"] for t in trials]
    assert len(trials) == 12 and all(1e-4 <= r <= 1e-1 for r in rates)
    # Log-uniform: about as many draws in each decade; a plain uniform draw would put
    # nearly all of them in the top decade (1e-2..1e-1 is 90 % of the range).
    assert sum(r < 1e-2 for r in rates) >= 4
    assert len(set(rates)) == 12  # every trial a different rate, unlike a 12-point grid's few
    assert {t.values["members"] for t in trials} == {1, 2}
    assert [t.values for t in plan_sweep(TrainConfig(), space)] == [t.values for t in trials]


def test_sweep_settings_that_make_no_sensible_trials_get_sentences():
    with pytest.raises(SweepError, match="at least two values"):
        plan_sweep(TrainConfig(), SweepSpace(learning_rates=(1e-3,)))
    with pytest.raises(SweepError, match="at most 12"):
        plan_sweep(
            TrainConfig(),
            SweepSpace(learning_rates=(1e-4, 1e-3, 1e-2, 1e-1), batch_sizes=(8, 16, 32, 64)),
        )
    for bad in (
        dict(learning_rates=(0.0, 1e-3)),
        dict(batch_sizes=(0, 8)),
        dict(members=(1, 99)),
        dict(augment_strengths=(-1.0, 1.0)),
        dict(learning_rates=(math.nan, 1.0)),
        dict(mode="bayes"),
    ):
        with pytest.raises(SweepError):
            SweepSpace(**bad)


def test_augmentation_strength_scales_every_amount_within_its_limits():
    base = AugmentConfig(gain_db=6.0, noise_snr_db=30.0, speed=0.1, mixup_alpha=0.2)
    assert scale_augment(base, 1.0) == base
    assert scale_augment(base, 0.0) == AugmentConfig.off()
    double = scale_augment(base, 2.0)
    assert double.freq_warp == pytest.approx(2 * base.freq_warp)
    assert double.time_masks == 2 * base.time_masks and double.gain_db == 12.0
    assert double.noise_snr_db == pytest.approx(30.0 - 20 * math.log10(2))  # louder noise
    assert double.eq_db == 2 * base.eq_db
    strongest = scale_augment(base, 3.0)  # capped where AugmentConfig would refuse
    assert strongest.freq_mask_fraction == pytest.approx(0.45) and strongest.eq_db == 18.0
    assert scale_augment(AugmentConfig(freq_warp=0.3), 3.0).freq_warp == 0.49


def test_trials_are_ranked_by_validation_accuracy_with_the_varied_values_as_columns(tmp_path):
    store = RunStore(tmp_path)
    sweep = {"id": "sweep-1", "name": "tones", "trials": 3}
    results = [(1e-3, 0.5, 0.9), (1e-2, 0.9, 0.3), (1e-1, None, None)]  # the last still runs
    for trial, (rate, accuracy, loss) in enumerate(results):
        run_id = store.create_run(
            TrainConfig(),
            owner="alice",
            sweep={**sweep, "trial": trial, "values": {"learning_rate": rate}},
        )
        if accuracy is not None:
            store.finish(run_id, "finished", metrics={"val_accuracy": accuracy, "val_loss": loss})
    store.create_run(TrainConfig(), owner="alice")  # not part of the sweep
    runs = store.list_runs("alice")
    assert sweeps_in(runs) == [("sweep-1", "tones", 3)]
    rows = sweep_rows(runs, "sweep-1")
    assert [r["learning rate"] for r in rows] == [1e-2, 1e-3, 1e-1]
    assert [r["rank"] for r in rows] == [1, 2, None]
    assert [r["trial"] for r in rows] == [2, 1, 3]
    assert "batch size" not in rows[0]  # only what the sweep varied


def test_a_sweep_queues_all_its_trials_past_the_session_limit_and_runs_them_in_turn(
    ray_cluster, tones, tmp_path
):
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})  # one job per session (default)
    base = dataclasses.replace(TONE_CONFIG, epochs=2, name="tones")
    space = SweepSpace(learning_rates=(0.01, 0.05), members=(1, 2))
    sweep_id = jobs.submit_sweep(
        base, space, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu"
    )
    trials = jobs.sweep_jobs(sweep_id, "alice")
    assert len(trials) == 4 and all(not t.done for t in trials)
    # While it runs, Start refuses with a sentence, and another sweep too.
    with pytest.raises(JobLimitReached, match="sweep"):
        jobs.submit(TONE_CONFIG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    with pytest.raises(JobLimitReached, match="sweep"):
        jobs.submit_sweep(base, space, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    running_at_once = 0

    def all_done() -> bool:
        nonlocal running_at_once
        statuses = jobs.sweep_jobs(sweep_id, "alice")
        running_at_once = max(running_at_once, sum(s.state == "running" for s in statuses))
        return all(s.done for s in statuses)

    _wait_for(all_done, timeout=400)
    trials = jobs.sweep_jobs(sweep_id, "alice")
    assert [t.state for t in trials] == ["finished"] * 4, [t.message for t in trials]
    assert running_at_once == 1  # the per-session limit: one trial at a time
    started = [float(_state(jobs, t.job_id)["started_at"]) for t in trials]
    ended = [t.finished_at for t in trials]
    assert all(started[i + 1] >= ended[i] - 0.5 for i in range(3))  # one after the other
    runs = jobs.store.list_runs("alice")
    rows = sweep_rows(runs, sweep_id)
    assert len(rows) == 4 and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert {(r["learning rate"], r["members"]) for r in rows} == {
        (0.01, 1),
        (0.01, 2),
        (0.05, 1),
        (0.05, 2),
    }
    for run in runs:  # each trial is an ordinary run with its own values
        assert run.train_config["learning_rate"] == run.sweep["values"]["learning_rate"]
        assert jobs.store.load(run.run_id).spec.members == run.sweep["values"]["members"]
    accuracies = [r["val accuracy"] for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)


def test_stopping_a_sweep_stops_the_running_trial_and_the_waiting_ones(
    ray_cluster, tones, tmp_path
):
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    space = SweepSpace(learning_rates=(0.01, 0.05, 0.1))
    sweep_id = jobs.submit_sweep(
        LONG, space, owner="bob", dataset=tones, spec=TINY_SPEC, device="cpu"
    )
    _wait_for(lambda: any(s.state == "running" for s in jobs.sweep_jobs(sweep_id, "bob")))
    waiting = jobs.sweep_jobs(sweep_id, "bob")[1:]
    assert all(s.state == "queued" and s.queue_position is None for s in waiting)
    assert all("turn in the sweep" in s.message for s in waiting)
    assert jobs.cancel_sweep(sweep_id, "bob") == 3
    _wait_for(lambda: all(s.done for s in jobs.sweep_jobs(sweep_id, "bob")), timeout=60)
    assert [s.state for s in jobs.sweep_jobs(sweep_id, "bob")] == ["stopped"] * 3
    # The stopped trial that had trained is kept as a run; the others never made one.
    assert [r.status for r in jobs.store.list_runs("bob")] == ["stopped"]
    jobs.submit(TONE_CONFIG, owner="bob", dataset=tones, spec=TINY_SPEC, device="cpu")


def _state(jobs: JobManager, job_id: str) -> dict:
    from core.jobs.files import JobFolder

    return JobFolder(jobs.root / job_id).state()
