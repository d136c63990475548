"""What the scripts that build a shipped model share: train the shipped run and its
leave-one-group-out folds through the command line, read their scores, ship the run folder.

scripts/build_digits_model.py (folds: speakers) and scripts/build_instruments_model.py
(folds: soundfonts) differ only in their data, their groups and their card; the loop that
trains one stratified run plus one holdout run per group, N at a time, resuming finished
ones, lives here once (`train_with_folds`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.models.card import ModelCard, write_model_card
from core.training.runs import RunStore

# The extra arguments of a command line: the split of one training.
Extra = tuple[str, ...]


def shown(command: list[str]) -> str:
    """The command as a reader would type it (python, not this interpreter's path)."""
    return " ".join(["python", *command[1:]])


def finished_run(store: RunStore, name: str) -> str | None:
    """The newest finished run called `name`, or None."""
    for info in store.list_runs():
        if info.name == name and info.status == "finished" and info.has_model:
            return info.run_id
    return None


def run_training(
    store: RunStore, name: str, command: list[str], reuse: bool, one_thread: bool = False
) -> str:
    """Train (or reuse) one run; returns its run id. Progress goes to <runs>/log-<name>.txt."""
    if reuse and (run_id := finished_run(store, name)):
        print(f"reusing {name}: {run_id}", flush=True)
        return run_id
    print(f"training {name}: {shown(command)}", flush=True)
    env = dict(os.environ, **({"OMP_NUM_THREADS": "1"} if one_thread else {}))
    store.root.mkdir(parents=True, exist_ok=True)
    with (store.root / f"log-{name}.txt").open("w") as log:
        subprocess.run(
            command, check=True, cwd=paths.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    run_id = finished_run(store, name)
    if run_id is None:
        raise SystemExit(f"{name} did not finish: see its summary.json in {store.root}")
    return run_id


def accuracy_and_clips(store: RunStore, run_id: str) -> tuple[float, int]:
    """(validation accuracy, clips it was measured on) of a finished run."""
    summary = store.read_summary(run_id)
    return float(summary["metrics"]["val_accuracy"]), len(summary["evaluation"]["true"])


def family_recall(store: RunStore, run_id: str) -> dict[str, float]:
    """Recall of every class on a finished run's validation clips, by class name."""
    evaluation = store.read_summary(run_id)["evaluation"]
    return dict(zip(evaluation["labels"], evaluation["recall"], strict=True))


@dataclass(frozen=True)
class FoldRuns:
    """The run ids of one build: the shipped run and one holdout run per group."""

    shipped: str
    folds: dict[str, str]  # group -> run id of the training that never saw that group
    commands: dict[str, str]  # training name -> the command line as a reader would type it


def fold_name(group: str) -> str:
    """The training name of the fold that holds `group` out: unseen-<group>."""
    return f"unseen-{group}"


def train_with_folds(
    store: RunStore,
    shipped_name: str,
    groups: Sequence[str],
    command_for: Callable[[Path, str, Extra], list[str]],
    *,
    reuse: bool = False,
    jobs: int = 1,
) -> FoldRuns:
    """Train the shipped run (a stratified split, 20 % of each class held out) and one run per
    group with that group held out (`--split holdout --val-groups GROUP`).

    command_for(runs_dir, name, extra) builds one training's `python -m core.train` argument
    list. jobs > 1 trains that many at a time, each on one torch thread; reuse picks up
    finished runs of the same name (an interrupted build resumes).
    """
    plans: list[tuple[str, Extra]] = [
        (shipped_name, ("--split", "stratified", "--val-fraction", "0.2"))
    ]
    plans += [(fold_name(g), ("--split", "holdout", "--val-groups", g)) for g in groups]
    commands = {name: shown(command_for(Path("runs"), name, extra)) for name, extra in plans}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            name: pool.submit(
                run_training,
                store,
                name,
                command_for(store.root, name, extra),
                reuse,
                jobs > 1,
            )
            for name, extra in plans
        }
        ids = {name: future.result() for name, future in futures.items()}
    return FoldRuns(ids[shipped_name], {g: ids[fold_name(g)] for g in groups}, commands)


def ship(store: RunStore, shipped_id: str, card: ModelCard, name: str) -> Path:
    """Replace models/<name> with the run folder (plus card.json) and rewrite the spec."""
    target = paths.MODELS_DIR / name
    with tempfile.TemporaryDirectory(dir=paths.MODELS_DIR) as scratch:
        staged = Path(scratch) / name
        shutil.copytree(store.run_path(shipped_id), staged)
        shutil.rmtree(staged / "tensorboard", ignore_errors=True)
        write_model_card(card, staged)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    spec = json.loads((target / "model.json").read_text())["spec"]
    spec_path = paths.MODELS_DIR / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    return target
