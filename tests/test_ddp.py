"""DDP: the command line under torchrun with two CPU processes writes one good run."""

from __future__ import annotations

import os
import subprocess
import sys

from core.data.datasets import folder_per_class, load_example_audio
from core.paths import REPO_ROOT
from core.training.ddp import DistInfo, shard_indices
from core.training.evaluate import predict_proba
from core.training.runs import RunStore
from tests.test_datasets import make_tone_folder
from tests.test_train import TINY_SPEC


def test_shards_are_disjoint_and_equal_in_length():
    order = list(range(11))
    shards = [shard_indices(order, DistInfo(rank, 3, rank)) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert len(set(sum(shards, []))) == 9
    assert shard_indices(order, None) == order


def test_torchrun_two_cpu_processes_write_one_run(tmp_path):
    data = make_tone_folder(tmp_path / "tones", per_class=8)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(TINY_SPEC.to_json())
    runs = tmp_path / "runs"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "AUDIO_DL_DEVICE": "cpu",
        "AUDIO_DL_CACHE_DIR": str(tmp_path / "cache"),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "core.train",
        "--data",
        str(data),
        "--epochs",
        "20",
        "--runs-dir",
        str(runs),
        "--spec",
        str(spec_path),
        "--batch-size",
        "8",
        "--lr",
        "0.05",
        "--schedule",
        "constant",
        "--no-augment",
        "--no-tsne",
        "--device",
        "cpu",
        "--normalization",
        "global",
        "--clip-seconds",
        "0.3",
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [run] = RunStore(runs).list_runs()  # rank 1 wrote nothing
    summary = RunStore(runs).read_summary(run.run_id)
    assert run.status == "finished" and summary["world_size"] == 2
    # 12 training examples, 2 processes x 4 per step -> 2 steps per epoch, 40 in all.
    assert summary["metrics"]["steps"] == 40
    loaded = RunStore(runs).load(run.run_id)
    dataset = folder_per_class(data)
    hits = 0
    for example in dataset.examples:
        samples = load_example_audio(dataset, example, 8000)
        hits += int(predict_proba(loaded, samples, 8000).argmax() == example.label)
    assert hits / len(dataset) >= 0.9
