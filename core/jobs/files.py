"""A training job's folder: what a worker process writes and the web server reads.

The web server never trains: a worker process (on Ray, see core.jobs.cluster) runs
`core.training.trainer.train()` and writes everything the page needs into a folder beside the runs,
so a poll is a couple of small file reads (milliseconds) and a restarted server, or a server on
another machine sharing the runs folder, finds the same jobs. Layout:

    <runs root>/.jobs/<job_id>/
        job.json                 written once at submit: owner, name, device, epochs, resources
        state.json               the worker's latest state (atomic rewrite, at most ~2 per s)
        events.jsonl             kept events: started, logged steps, epoch ends, evaluations,
                                 the final one (one JSON object a line, appended)
        heartbeat                touched every HEARTBEAT_SECONDS by the worker; its age tells
                                 a live worker from a killed one
        cancel                   created by the server: the worker stops before its next step
        final_evaluation.json/.npz   the final Evaluation (JSON part + numpy arrays, no pickle)
        result.json/.npz/.safetensors  a task job's result (core.jobs.tasks): JSON values, numpy
                                 arrays, torch tensors; read back without pickle

The folder name starts with a dot, so the run store's listing skips it. Nothing here imports
Ray or streamlit; both sides use it (core.jobs.manager on the server, core.jobs.cluster in the
worker).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load, save

from core.files import to_jsonable, write_bytes_atomic, write_json_atomic
from core.training.evaluate import Evaluation, Misclassified
from core.training.runs import HEARTBEAT_FILE, read_metrics_file
from core.training.trainer import TrainEvent

JOBS_FOLDER = ".jobs"
HEARTBEAT_SECONDS = 1.0
# A worker whose heartbeat is older than HEARTBEAT_STALE_SECONDS (core.training.runs) is gone
# (killed, its machine down). The heartbeat comes from a thread of its own, so a long
# training step does not delay it.
STATE_WRITE_SECONDS = 0.5  # step events rewrite state.json at most this often
FINAL_STATES = ("finished", "stopped", "failed", "interrupted")
_EVENT_KEYS = (
    "kind",
    "epoch",
    "epochs",
    "step",
    "total_steps",
    "lr",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "samples_per_second",
    "elapsed_seconds",
    "eta_seconds",
    "message",
    "run_id",
)
_ARRAYS = ("true", "predicted", "probabilities", "embeddings", "projection_pca", "projection_tsne")


def jobs_root(runs_root: str | Path) -> Path:
    """The folder holding every job folder of a run store root."""
    return Path(runs_root) / JOBS_FOLDER


def event_record(event: Any) -> dict[str, Any]:
    """A TrainEvent as a JSON-safe dict (its Evaluation is written apart, see JobFolder)."""
    record = {key: getattr(event, key) for key in _EVENT_KEYS}
    if event.info:
        record["info"] = event.info
    return to_jsonable(record)


def event_from_record(record: dict[str, Any], evaluation: Any = None) -> Any:
    """Rebuild a core.training.trainer.TrainEvent from `event_record` output."""
    known = {key: record[key] for key in _EVENT_KEYS if key in record}
    return TrainEvent(**known, evaluation=evaluation, info=dict(record.get("info") or {}))


class JobFolder:
    """One job's folder; the server side and the worker side of the same files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._state_written = 0.0

    @property
    def job_id(self) -> str:
        return self.path.name

    # ------------------------------------------------------------ server side

    def create(self, meta: dict[str, Any]) -> None:
        """Make the folder with its job.json (the job is then "queued")."""
        self.path.mkdir(parents=True, exist_ok=False)
        write_json_atomic(self.path / "job.json", meta)

    def meta(self) -> dict[str, Any]:
        """job.json ({} when the folder is incomplete)."""
        return _read_json(self.path / "job.json")

    def state(self) -> dict[str, Any]:
        """state.json ({} while no worker has started: the job is queued)."""
        return _read_json(self.path / "state.json")

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """The kept event records from position `since` on (a torn last line is skipped)."""
        return read_metrics_file(self.path / "events.jsonl")[since:]

    def heartbeat_age(self) -> float | None:
        """Seconds since the worker's last heartbeat (None: it never beat)."""
        try:
            return time.time() - (self.path / HEARTBEAT_FILE).stat().st_mtime
        except OSError:
            return None

    def request_cancel(self) -> None:
        """Ask the worker to stop before its next step (it checks for this file)."""
        (self.path / "cancel").touch(exist_ok=True)

    def cancel_requested_at(self) -> float | None:
        """time.time() of the Stop request, None when there was none."""
        try:
            return (self.path / "cancel").stat().st_mtime
        except OSError:
            return None

    def final_evaluation(self) -> Any:
        """The final core.training.evaluate.Evaluation, rebuilt from its files (None if absent)."""
        summary = _read_json(self.path / "final_evaluation.json")
        try:
            arrays = np.load(self.path / "final_evaluation.npz", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if not summary:
            return None
        tuples = ("precision", "recall", "f1", "support")
        return Evaluation(
            labels=tuple(summary["labels"]),
            accuracy=float(summary["accuracy"]),
            loss=float(summary["loss"]),
            **{name: tuple(summary[name]) for name in tuples},
            confusion=tuple(tuple(row) for row in summary["confusion"]),
            misclassified=tuple(Misclassified(**m) for m in summary["misclassified"]),
            **{name: arrays[name] if name in arrays.files else None for name in _ARRAYS},
        )

    # ------------------------------------------------------------ worker side

    def write_state(self, state: str, *, force: bool = True, **fields: Any) -> None:
        """Rewrite state.json atomically; with force=False at most every STATE_WRITE_SECONDS."""
        now = time.monotonic()
        if not force and now - self._state_written < STATE_WRITE_SECONDS:
            return
        self._state_written = now
        current = self.state()
        current.update(to_jsonable(fields), state=state, updated_at=time.time())
        write_json_atomic(self.path / "state.json", current)

    def append_record(self, record: dict[str, Any]) -> None:
        """Append one JSON record to events.jsonl (a task's progress)."""
        line = json.dumps(to_jsonable(record), allow_nan=False) + "\n"
        with (self.path / "events.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(line)

    def append_event(self, event: Any) -> None:
        """Append one kept event (one JSON line; a kill loses at most that line)."""
        line = json.dumps(event_record(event), allow_nan=False) + "\n"
        with (self.path / "events.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(line)

    def save_final_evaluation(self, evaluation: Any) -> None:
        """Write the final Evaluation: its JSON part and its arrays (npz, never pickle)."""
        arrays = {
            name: np.asarray(getattr(evaluation, name))
            for name in _ARRAYS
            if getattr(evaluation, name) is not None
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_bytes_atomic(self.path / "final_evaluation.npz", buffer.getvalue())
        write_json_atomic(
            self.path / "final_evaluation.json", evaluation.to_dict(with_projections=False)
        )


@dataclass(frozen=True)
class TaskProgress:
    """A progress report of a task job (core.jobs.tasks): share done 0..1, a sentence, and small
    JSON values the page draws while it waits (e.g. {"losses": [...]} since the last one)."""

    fraction: float
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """What a task job hands back: JSON values, numpy arrays and torch tensors, written as
    result.json, result.npz and result.safetensors (never a pickle)."""

    values: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    tensors: dict[str, Any] = field(default_factory=dict)  # name -> torch.Tensor


def save_task_result(folder: JobFolder, result: TaskResult) -> None:
    """Write a TaskResult into the job's folder (tensors first, the JSON last: its presence
    says the result is complete)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in result.tensors.items()}
    write_bytes_atomic(folder.path / "result.safetensors", save(tensors))
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in result.arrays.items()})
    write_bytes_atomic(folder.path / "result.npz", buffer.getvalue())
    write_json_atomic(folder.path / "result.json", to_jsonable(result.values))


def read_task_result(folder: JobFolder) -> TaskResult | None:
    """The task's result, None while it has none (arrays without pickle, tensors on the CPU)."""
    if not (folder.path / "result.json").exists():
        return None
    try:
        with np.load(folder.path / "result.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        tensors = load((folder.path / "result.safetensors").read_bytes())
    except (OSError, ValueError):
        return None
    return TaskResult(_read_json(folder.path / "result.json"), arrays, tensors)


class CancelFlag:
    """The worker's side of Stop: `is_set()` is true once the job's cancel file exists.

    It has the one method core.training.trainer.train() uses of a threading.Event; a stat() per step
    costs microseconds.
    """

    def __init__(self, folder: JobFolder):
        self._path = folder.path / "cancel"
        self._seen = False

    def is_set(self) -> bool:
        self._seen = self._seen or self._path.exists()
        return self._seen


class Heartbeat:
    """Touches the job's heartbeat file (and, once known, its run's) every second, from a
    thread of its own, for as long as the worker process lives.

        with Heartbeat(folder) as beat:
            ...
            beat.run_folder = store.run_path(run_id)
    """

    def __init__(self, folder: JobFolder, interval_seconds: float = HEARTBEAT_SECONDS):
        self.files = [folder.path / HEARTBEAT_FILE]
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def add_run_folder(self, run_folder: Path) -> None:
        """Also keep the run's own heartbeat, so the run store tells running from killed."""
        if run_folder / HEARTBEAT_FILE not in self.files:
            self.files.append(run_folder / HEARTBEAT_FILE)
            self._touch()

    def _touch(self) -> None:
        for path in list(self.files):
            try:
                path.touch(exist_ok=True)
                os.utime(path)
            except OSError:
                pass  # the run was deleted under us; the training notices on its own

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self._touch()

    def __enter__(self) -> Heartbeat:
        self._touch()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
