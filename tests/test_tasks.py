"""Long jobs other than training as Ray tasks (core.jobs.tasks, JobManager.submit_task): the
autoencoder and batch classification give the same numbers as in the server's process, the
results come back as JSON / npz / safetensors, and bad requests get sentences."""

from __future__ import annotations

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
