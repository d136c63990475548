"""The build scripts' shared fold loop (scripts/model_build.py): real `python -m core.train`
trainings on a tiny folder of tones, one per held-out group plus the shipped one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from core.training.runs import RunStore
from scripts.model_build import accuracy_and_clips, fold_name, train_with_folds

RATE = 8000


def _tones(root: Path) -> Path:
    """Two classes (a low and a high tone), each recorded by two 'sources' (the groups); names
    follow `<number>_<group>_<take>`, the pattern that files a clip under its group."""
    for number, (label, hz) in enumerate((("low", 220.0), ("high", 1760.0))):
        (root / label).mkdir(parents=True)
        for group in ("alpha", "beta"):
            for take in range(3):
                t = np.arange(int(0.5 * RATE)) / RATE
                tone = 0.3 * np.sin(2 * np.pi * hz * (1 + 0.01 * take) * t)
                sf.write(root / label / f"{number}_{group}_{take}.wav", tone, RATE)
    return root


def test_one_shipped_run_and_one_fold_per_group_resuming_by_name(tmp_path):
    data = _tones(tmp_path / "tones")
    store = RunStore(tmp_path / "runs")

    def command(runs_dir: Path, name: str, extra: tuple[str, ...]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "core.train",
            "--data",
            f"folder:{data}",
            "--epochs",
            "1",
            "--members",
            "1",
            "--no-tsne",
            "--runs-dir",
            str(runs_dir),
            "--name",
            name,
            *extra,
        ]

    runs = train_with_folds(store, "tones-cnn", ["alpha", "beta"], command, jobs=2)
    assert set(runs.folds) == {"alpha", "beta"}
    for group, run_id in runs.folds.items():
        config = store.get(run_id).train_config
        assert config["split"] == "holdout" and config["val_groups"] == [group]
        assert store.get(run_id).name == fold_name(group)
        # scored on exactly the held-out group's 6 clips
        assert accuracy_and_clips(store, run_id)[1] == 6
    assert store.get(runs.shipped).train_config["split"] == "stratified"
    assert runs.commands["unseen-beta"].startswith("python -m core.train ")
    assert "--runs-dir runs " in runs.commands["tones-cnn"]
    # resuming: finished runs of the same names are picked up, nothing is trained again
    again = train_with_folds(store, "tones-cnn", ["alpha", "beta"], command, reuse=True)
    assert again == runs
    assert len(store.list_runs()) == 3
