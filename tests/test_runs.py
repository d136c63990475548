"""Run store: round trips, owners, broken folders, kills in the middle of a write, archives."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch
from safetensors.torch import save

from core.audio.features import FeatureConfig
from core.audio.input_recipe import Normalization
from core.files import write_bytes_atomic
from core.models.build import build_model
from core.models.spec import LayerSpec, ModelSpec
from core.paths import REPO_ROOT
from core.training.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    RunError,
    RunStore,
)

L = LayerSpec.make
SPEC = ModelSpec(
    "tiny",
    (1, 8, 12),
    (
        L("Conv2d", out_channels=2),
        L("ReLU"),
        L("AdaptiveAvgPool2d"),
        L("Flatten"),
        L("Linear", out_features=3),
    ),
)
FEATURES = FeatureConfig(sample_rate=8000, n_fft=128, hop_length=64, n_mels=8, n_mfcc=8)


def _saved_run(store: RunStore, owner: str = "alice", seed: int = 0) -> tuple[str, torch.nn.Module]:
    torch.manual_seed(seed)
    model = build_model(SPEC)
    run_id = store.create_run(
        {"epochs": 3, "learning_rate": 0.01 * (seed + 1)}, owner=owner, name=f"run {seed}"
    )
    store.append_metrics(
        run_id,
        [
            {"kind": "epoch_end", "epoch": 1, "loss": 1.5},
            {"kind": "evaluation", "epoch": 1, "val_accuracy": 0.5},
        ],
    )
    store.save_model(
        run_id,
        model,
        spec=SPEC,
        labels=["a", "b", "c"],
        feature_config=FEATURES,
        feature_kind="logmel",
        clip_frames=12,
        normalization={"mode": "utterance"},
    )
    store.finish(run_id, "finished", message="done", metrics={"val_accuracy": 0.5})
    return run_id, model


def test_save_list_load_round_trip(tmp_path):
    store = RunStore(tmp_path)
    run_id, model = _saved_run(store)
    [info] = store.list_runs()
    assert (info.run_id, info.owner, info.status, info.has_model) == (
        run_id,
        "alice",
        "finished",
        True,
    )
    assert info.metrics["val_accuracy"] == 0.5 and info.train_config["epochs"] == 3
    loaded = store.load(run_id)
    x = torch.randn(2, 1, 8, 12)
    assert torch.equal(loaded.model(x), model.eval()(x))
    assert loaded.labels == ("a", "b", "c") and loaded.feature_config == FEATURES
    assert loaded.clip_frames == 12 and loaded.recipe.normalization == Normalization("utterance")
    # model.json holds the whole recipe, each part in full (written through InputRecipeConfig)
    assert loaded.normalization == {"mode": "utterance", "mean": [], "std": [], "trim_db": None}
    assert [r["kind"] for r in store.read_metrics(run_id)] == ["epoch_end", "evaluation"]
    # A fresh store on the same folder (an app restart) sees the same run.
    assert RunStore(tmp_path).get(run_id).name == "run 0"


def test_owners_see_only_their_runs(tmp_path):
    store = RunStore(tmp_path)
    mine, _ = _saved_run(store, "alice")
    theirs, _ = _saved_run(store, "bob", seed=1)
    assert [r.run_id for r in store.list_runs(owner="alice")] == [mine]
    with pytest.raises(RunError, match="no run"):
        store.load(theirs, owner="alice")
    with pytest.raises(RunError):
        store.delete(theirs, owner="alice")
    store.delete(mine, owner="alice")
    assert [r.run_id for r in store.list_runs()] == [theirs]


def test_compare_lists_the_settings_that_differ(tmp_path):
    store = RunStore(tmp_path)
    a, _ = _saved_run(store, seed=0)
    b, _ = _saved_run(store, seed=1)
    rows = store.compare([a, b])
    assert [row["differs"] for row in rows] == [{"learning_rate": 0.01}, {"learning_rate": 0.02}]
    assert rows[0]["val_accuracy"] == 0.5


def test_broken_folders_are_reported_and_skipped(tmp_path):
    store = RunStore(tmp_path)
    good, _ = _saved_run(store)
    (tmp_path / "20990101-000000-aaaaaa").mkdir()  # killed before config.json
    torn = tmp_path / "20990101-000000-bbbbbb"
    torn.mkdir()
    (torn / CONFIG_FILE).write_text('{"format": "audio-dl-studio/run", "own')
    (tmp_path / "notes.txt").write_text("a stray file")
    runs, problems = store.scan()
    assert [r.run_id for r in runs] == [good]
    reasons = {p.run_id: p.reason for p in problems}
    assert "no config.json" in reasons["20990101-000000-aaaaaa"]
    assert "damaged JSON" in reasons["20990101-000000-bbbbbb"]


def test_a_torn_metrics_line_is_ignored(tmp_path):
    store = RunStore(tmp_path)
    run_id, _ = _saved_run(store)
    with (tmp_path / run_id / METRICS_FILE).open("a") as handle:
        handle.write('{"kind": "step", "loss": 0.')  # killed mid-line
    assert len(store.read_metrics(run_id)) == 2


def test_a_kill_in_the_middle_of_a_write_leaves_the_previous_weights(tmp_path):
    store = RunStore(tmp_path)
    run_id, model = _saved_run(store)
    before = (tmp_path / run_id / WEIGHTS_FILE).read_bytes()
    # A child process starts replacing the weights and is killed halfway through the write.
    script = textwrap.dedent(
        f"""
        import os, pathlib
        from core import files

        def killed_midway(fd):
            os.ftruncate(fd, os.fstat(fd).st_size // 2)  # only half reached the disk
            print("writing", flush=True)
            os.kill(os.getpid(), 9)

        os.fsync = killed_midway
        files.write_bytes_atomic(pathlib.Path({str(tmp_path / run_id / WEIGHTS_FILE)!r}), b"x" *
        5_000_000)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert child.returncode == -9 and "writing" in child.stdout
    assert (tmp_path / run_id / WEIGHTS_FILE).read_bytes() == before
    assert any(p.name.endswith(".tmp") for p in (tmp_path / run_id).iterdir())  # the torn temp file
    loaded = store.load(run_id)
    x = torch.randn(1, 1, 8, 12)
    assert torch.equal(loaded.model(x), model.eval()(x))
    assert [r.run_id for r in store.list_runs()] == [run_id]


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "a.json"
    write_bytes_atomic(target, b"one")
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_archive_round_trip_and_validation(tmp_path):
    source = RunStore(tmp_path / "a")
    run_id, model = _saved_run(source)
    archive = source.export_archive(run_id)
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert sorted(names) == sorted(
        [CONFIG_FILE, METRICS_FILE, MODEL_FILE, WEIGHTS_FILE, "summary.json"]
    )
    target = RunStore(tmp_path / "b")
    new_id = target.import_archive(archive, owner="carol")
    loaded = target.load(new_id, owner="carol")
    x = torch.randn(1, 1, 8, 12)
    assert torch.equal(loaded.model(x), model.eval()(x))
    assert target.get(new_id).status == "finished"


def _tampered(archive: bytes, replace: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(archive))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name in source.namelist():
            if name not in replace:
                out.writestr(name, source.read(name))
        for name, data in replace.items():
            if data:
                out.writestr(name, data)
    return buffer.getvalue()


def test_import_refuses_pickles_strangers_and_shape_mismatches(tmp_path):
    store = RunStore(tmp_path)
    run_id, model = _saved_run(store)
    archive = store.export_archive(run_id)
    with pytest.raises(RunError, match="unexpected files"):
        store.import_archive(_tampered(archive, {"model.pt": b"pickle"}))
    with pytest.raises(RunError, match="not valid safetensors"):
        store.import_archive(_tampered(archive, {WEIGHTS_FILE: b"\x80\x04pickle"}))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["layers.4.weight"] = torch.zeros(3, 5)
    with pytest.raises(RunError, match=r"layers.4.weight has shape \(3, 5\)"):
        store.import_archive(_tampered(archive, {WEIGHTS_FILE: save(state)}))
    meta = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read(MODEL_FILE))
    meta["spec"]["layers"][0]["kind"] = "Explode"
    with pytest.raises(RunError, match="cannot be built"):
        store.import_archive(_tampered(archive, {MODEL_FILE: json.dumps(meta).encode()}))
    with pytest.raises(RunError, match="not a zip"):
        store.import_archive(b"hello")
    assert [r.run_id for r in store.list_runs()] == [run_id]  # nothing half-imported


def test_hostile_run_ids_never_leave_the_root(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("../etc", "/abs", "", ".hidden"):
        with pytest.raises(RunError):
            store.get(bad)


def test_tensorboard_export_writes_event_files(tmp_path):
    store = RunStore(tmp_path)
    run_id, _ = _saved_run(store)
    folder = store.export_tensorboard(run_id)
    assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())
