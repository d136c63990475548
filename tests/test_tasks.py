"""Long jobs other than training as Ray tasks (core.jobs.tasks, JobManager.submit_task): the
autoencoder and batch classification give the same numbers as in the server's process, the
results come back as JSON / npz / safetensors, and bad requests get sentences."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch

from core.inference.classifier import available_models, classify_files, load_choice
from core.jobs.cluster import run_task_job
from core.jobs.files import JobFolder, read_task_result
from core.jobs.manager import JobLimitReached, JobManager
from core.jobs.tasks import TaskError, batch_rows
from core.lessons import unsupervised as uns
from core.paths import DIGITS_DIR
from core.training.runs import RunStore

CONFIG = uns.AutoencoderConfig()


def _patches(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    # Two kinds of "spectrogram": energy in the low or in the high bands, plus noise.
    patches = rng.uniform(0.0, 0.1, size=(n, 1, CONFIG.n_mels, CONFIG.frames)).astype(np.float32)
    patches[::2, :, :16] += 0.8
    patches[1::2, :, -16:] += 0.8
    return patches


def _fresh_state() -> dict:
    torch.manual_seed(CONFIG.seed)
    return uns.ConvAutoencoder(CONFIG).state_dict()


def test_the_autoencoder_task_learns_exactly_what_the_page_would_have(tmp_path):
    patches, steps = _patches(), 12
    folder = JobFolder(tmp_path / "job-1")
    folder.create({"job_id": "job-1"})
    run_task_job(
        folder,
        "autoencoder",
        dict(state=_fresh_state(), config=CONFIG, patches=patches, steps=steps),
        device="cpu",
    )
    assert folder.state()["state"] == "finished", folder.state()
    result = read_task_result(folder)
    # The same training in this process, from the same start: the same losses and codes.
    model = uns.ConvAutoencoder(CONFIG)
    model.load_state_dict(_fresh_state())
    losses = [
        e.loss
        for e in uns.train_autoencoder(
            model, patches, CONFIG, steps=steps, device=torch.device("cpu")
        )
    ]
    codes, recons = uns.autoencoder_outputs(model, patches, device=torch.device("cpu"))
    np.testing.assert_allclose(result.arrays["losses"], losses, rtol=1e-5)
    np.testing.assert_allclose(result.arrays["codes"], codes, rtol=1e-4, atol=1e-5)
    assert result.arrays["recons"].shape == patches.shape and result.values == {"steps": steps}
    trained = uns.ConvAutoencoder(CONFIG)
    trained.load_state_dict(result.tensors)  # the weights came back as safetensors
    again, _ = uns.autoencoder_outputs(trained, patches, device=torch.device("cpu"))
    np.testing.assert_allclose(again, codes, rtol=1e-4, atol=1e-5)
    # Progress: a record every step here (12 steps < 50 reports), the losses in order.
    records = folder.events()
    assert [r["fraction"] for r in records][-1] == 1.0
    assert sum((r["values"]["losses"] for r in records), []) == pytest.approx(losses, rel=1e-5)
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))


def test_a_task_that_cannot_run_fails_with_its_sentence(tmp_path):
    folder = JobFolder(tmp_path / "job-2")
    folder.create({"job_id": "job-2"})
    run_task_job(
        folder,
        "autoencoder",
        dict(state=_fresh_state(), config=CONFIG, patches=_patches(1), steps=5),
        device="cpu",
    )
    assert folder.state()["state"] == "failed"
    assert folder.state()["message"] == "The autoencoder needs at least 2 clips to learn from."
    assert read_task_result(folder) is None


def test_batch_classification_runs_on_a_worker_and_matches_the_servers_answers(
    ray_cluster, tmp_path
):
    choice = next(c for c in available_models(None) if c.run_id == "digits-cnn")
    model = load_choice(choice, device="cpu")
    files = sorted(DIGITS_DIR.glob("*_nicolas_0.wav"))[:6]
    sources = [(f.name, str(f)) for f in files] + [("broken.wav", b"not audio")]
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = jobs.submit_task(
        "classify_files",
        dict(model=model, sources=sources),
        owner="carol",
        device="cpu",
        name="7 clips",
    )
    with pytest.raises(JobLimitReached):  # one batch at a time per session
        jobs.submit_task("classify_files", dict(model=model, sources=sources), owner="carol")
    status = jobs.wait(job, "carol", timeout=180)
    assert status.state == "finished" and status.progress == 1.0, status.message
    rows = batch_rows(jobs.task_result(job, "carol"))
    expected = classify_files(model, sources)
    assert [(r.file, r.label, r.unsure) for r in rows] == [
        (r.file, r.label, r.unsure) for r in expected
    ]
    np.testing.assert_allclose(
        [r.confidence for r in rows], [r.confidence for r in expected], rtol=1e-5
    )
    assert np.isnan(rows[-1].confidence) and rows[-1].note  # the broken file, with its reason
    assert jobs.task_events(job, "carol")[-1]["fraction"] == 1.0
    assert jobs.jobs("carol") == []  # tasks are not trainings: the Train page does not list them
    assert [s.job_id for s in jobs.jobs("carol", kind="classify_files")] == [job]
    with pytest.raises(TaskError):
        jobs.submit_task("rm -rf", {}, owner="carol")


def test_model_embeddings_in_chunks_equal_the_whole_collection_at_once(tmp_path):
    choice = next(c for c in available_models(None) if c.run_id == "digits-cnn")
    model = load_choice(choice, device="cpu")
    collection = uns.builtin_digit_collection(n_clips=12)  # at least a clip per digit and voice
    folder = JobFolder(tmp_path / "job-3")
    folder.create({"job_id": "job-3"})
    run_task_job(folder, "model_embeddings", dict(model=model, collection=collection), device="cpu")
    assert folder.state()["state"] == "finished", folder.state()
    embeddings = read_task_result(folder).arrays["embeddings"]
    expected = uns.trained_model_embeddings(collection, model)
    assert embeddings.shape == expected.shape == (len(collection), expected.shape[1])
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)
    assert len(folder.events()) == len(collection)  # a report per clip (fewer than 50 clips)


def _two_clusters(per_cluster: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(2 * per_cluster, 8) points in two tight, far-apart groups, and each point's group."""
    rng = np.random.default_rng(seed)
    points = np.concatenate(
        [rng.normal(0.0, 1.0, (per_cluster, 8)), rng.normal(10.0, 1.0, (per_cluster, 8))]
    )
    return points.astype(np.float32), np.repeat([0, 1], per_cluster)


def test_a_tsne_map_drawn_on_a_worker_keeps_two_far_groups_apart(ray_cluster, tmp_path):
    points, group = _two_clusters()
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = jobs.submit_task(
        "embedding_map", dict(embeddings=points, method="t-SNE"), owner="dora", device="cpu"
    )
    status = jobs.wait(job, "dora", timeout=240)
    assert status.state == "finished" and status.progress == 1.0, status.message
    xy = jobs.task_result(job, "dora").arrays["xy"]
    assert xy.shape == (len(points), 2) and np.isfinite(xy).all()
    # Every point is nearer its own group's centre than the other group's, by a wide margin.
    centres = np.stack([xy[group == g].mean(axis=0) for g in (0, 1)])
    distances = np.linalg.norm(xy[:, None, :] - centres[None], axis=2)  # (points, 2)
    own = distances[np.arange(len(xy)), group]
    other = distances[np.arange(len(xy)), 1 - group]
    assert (own * 2 < other).all()
    # The progress came from scikit-learn's own iteration count (its log every 50th of 500;
    # so few points take well under a second, so maybe only the last one was seen).
    records = jobs.task_events(job, "dora")
    seen = [re.fullmatch(r"t-SNE: iteration (\d+) of about 500", r["message"]) for r in records]
    iterations = [int(m.group(1)) for m in seen if m]
    assert iterations and all(i % 50 == 0 for i in iterations)
    fractions = [r["fraction"] for r in records]
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(min(0.99, iterations[-1] / 500))


def test_a_pca_map_task_equals_the_pages_own_projection(tmp_path):
    points, _ = _two_clusters()
    folder = JobFolder(tmp_path / "job-4")
    folder.create({"job_id": "job-4"})
    run_task_job(folder, "embedding_map", dict(embeddings=points, method="PCA"), device="cpu")
    xy = read_task_result(folder).arrays["xy"]
    np.testing.assert_allclose(xy, uns.project_2d(points, "PCA"), rtol=1e-5, atol=1e-5)
    folder = JobFolder(tmp_path / "job-5")
    folder.create({"job_id": "job-5"})
    run_task_job(folder, "embedding_map", dict(embeddings=points[:2], method="PCA"), device="cpu")
    assert folder.state()["state"] == "failed"
    assert folder.state()["message"] == "A map needs at least 3 clips."


def _tone(hz: float, seconds: float, sample_rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_the_pitch_of_a_440_hz_tone_tracked_on_a_worker(ray_cluster, tmp_path):
    from core.jobs.tasks import pitch_track_of
    from core.music.pitch_networks import PitchTrackerConfig, run_tracker

    tone, config = _tone(440.0, 2.0), PitchTrackerConfig()
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = jobs.submit_task(
        "pitch_track",
        dict(y=tone, sample_rate=16_000, tracker="pYIN", config=config),
        owner="erin",
        device="cpu",
    )
    status = jobs.wait(job, "erin", timeout=240)
    assert status.state == "finished", status.message
    track = pitch_track_of(jobs.task_result(job, "erin"))
    cents = 1200 * np.log2(np.nanmedian(track.f0_hz) / 440.0)
    assert abs(cents) < 10 and track.voiced_fraction > 0.9
    # The same track as in this process, field by field.
    here = run_tracker(tone, 16_000, "pYIN", config=config)
    np.testing.assert_array_equal(track.times, here.times)
    np.testing.assert_allclose(track.f0_hz, here.f0_hz, equal_nan=True)
    np.testing.assert_array_equal(track.voiced, here.voiced)
    assert (track.tracker, track.device, track.truncated) == ("pYIN", "cpu", False)


def test_a_network_track_comes_back_from_its_files_unchanged(tmp_path):
    from core.jobs.files import save_task_result
    from core.jobs.tasks import pitch_track_of, pitch_track_result
    from core.music.pitch_networks import run_tracker

    track = run_tracker(_tone(220.0, 0.5), 16_000, "CREPE tiny")
    folder = JobFolder(tmp_path / "job-6")
    folder.create({"job_id": "job-6"})
    save_task_result(folder, pitch_track_result(track))
    back = pitch_track_of(read_task_result(folder))
    for name in ("times", "f0_hz", "confidence", "voiced", "probabilities", "bin_midi"):
        np.testing.assert_array_equal(getattr(back, name), getattr(track, name), err_msg=name)
    assert back.with_threshold(0.9).voiced.sum() == track.with_threshold(0.9).voiced.sum()
    assert back.speed == track.speed and back.tracker == "CREPE tiny"


def test_a_slow_pitch_job_reports_progress_and_stops_within_seconds(ray_cluster, tmp_path):
    from core.music.pitch_networks import PitchTrackerConfig

    # pYIN over 30 s of audio: about 20 s of one librosa call that reports nothing itself.
    jobs = JobManager(RunStore(tmp_path / "runs"), env={})
    job = jobs.submit_task(
        "pitch_track",
        dict(y=_tone(330.0, 30.0), sample_rate=16_000, tracker="pYIN", config=PitchTrackerConfig()),
        owner="fay",
        device="cpu",
    )
    deadline = time.monotonic() + 120
    while jobs.status(job, "fay").progress <= 0.0 and time.monotonic() < deadline:
        time.sleep(0.2)
    status = jobs.status(job, "fay")
    assert status.state == "running" and 0.0 < status.progress <= 0.95, status
    jobs.cancel(job, "fay")
    asked = time.monotonic()
    status = jobs.wait(job, "fay", timeout=30)
    assert status.state == "stopped" and time.monotonic() - asked < 5, status
