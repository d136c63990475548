"""Shared fixtures: the shipped data and small known-answer signals made in the test."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core import paths

REPO_ROOT = paths.REPO_ROOT


@pytest.fixture(autouse=True)
def _isolated_writable_dirs(tmp_path_factory, monkeypatch):
    """Runs and caches written by a test go to a temporary folder, never into the checkout."""
    root = tmp_path_factory.mktemp("appdata")
    monkeypatch.setenv("AUDIO_DL_RUNS_DIR", str(root / "runs"))
    monkeypatch.setenv("AUDIO_DL_CACHE_DIR", str(root / "cache"))
    # Tests never pick up a device forced by the developer's shell.
    if os.environ.get("AUDIO_DL_TEST_KEEP_DEVICE") != "1":
        monkeypatch.delenv("AUDIO_DL_DEVICE", raising=False)


@pytest.fixture(scope="session")
def digit_files() -> list[Path]:
    files = paths.builtin_digit_files()
    assert files, "the spoken-digit recordings are missing from data/digits"
    return files


@pytest.fixture(scope="session")
def music_clips() -> list[Path]:
    clips = paths.builtin_music_clips()
    assert clips, "the music clips are missing from data/music"
    return clips


def sine(
    frequency_hz: float, seconds: float, sample_rate: int, amplitude: float = 0.5
) -> np.ndarray:
    """A float32 sine wave, shape (samples,)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def click_track(bpm: float, seconds: float, sample_rate: int, click_ms: float = 10.0) -> np.ndarray:
    """Short decaying noise bursts every beat, shape (samples,)."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(seconds * sample_rate), dtype=np.float32)
    click_len = int(click_ms / 1000 * sample_rate)
    click = rng.uniform(-1, 1, click_len) * np.exp(-np.linspace(0, 6, click_len))
    period = 60.0 / bpm
    for start in np.arange(0, seconds - click_ms / 1000, period):
        i = int(start * sample_rate)
        y[i : i + click_len] += 0.8 * click.astype(np.float32)
    return y


def _gpu_present() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run wherever CUDA or MPS is present and are skipped elsewhere."""
    if _gpu_present():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA or MPS device; none is present")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def ray_cluster():
    """One embedded Ray instance (2 CPUs, as on CI) for the tests that train on workers.

    The app would start it on the first training anyway; starting it here keeps it small
    and shuts it down at the end of the session.
    """
    from core.jobs import cluster

    info = cluster.connect({"AUDIO_DL_RAY_CPUS": "2"})
    yield info
    cluster.shutdown()
