"""The app's long jobs other than training, as tasks a Ray worker runs
(core.jobs.manager.submit_task).

A task is a generator function registered in TASKS under a name. It receives its keyword
arguments (sent by the web server through Ray), the torch.device Ray granted and the job's
cancel flag; it yields TaskProgress reports while it works and a TaskResult last. The worker
(core.jobs.cluster.run_task_job) writes the reports into the job's folder and the result as JSON,
npz and safetensors (core.jobs.files), so the server reads results without unpickling
anything. Only registered names run: a job names a task, never a function to import.

    job_id = jobs.submit_task("autoencoder", dict(state=..., patches=..., steps=200), owner=sid)
    jobs.status(job_id, sid).progress          # 0..1
    jobs.task_events(job_id, sid)              # the progress records so far
    result = jobs.task_result(job_id, sid)     # TaskResult(values, arrays, tensors) once finished

Measured on the shared 2-core machine (load ~2) before they moved here, in the server's
process: the autoencoder's 200 steps on the 200 digit clips took 129 s, classifying 200
files 72 s and the penultimate-layer embeddings of 200 clips 15 s; a t-SNE map (5 s) stays
in the page (listed in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.jobs.files import TaskProgress, TaskResult

__all__ = ["TASKS", "TaskError", "TaskProgress", "TaskResult", "run_task"]

PROGRESS_REPORTS = 50  # a task reports about this many times, whatever its length


class TaskError(ValueError):
    """The task cannot run with what it was given; str() is a sentence for the page."""


def autoencoder_task(
    *,
    state: Mapping[str, torch.Tensor],
    config: Any,
    patches: np.ndarray,
    steps: int,
    device: torch.device,
    cancel: Any,
) -> Iterator[TaskProgress | TaskResult]:
    """Train a core.lessons.unsupervised.ConvAutoencoder from `state` (its state_dict) for `steps`.

    patches: (n, 1, n_mels, frames) log-mel patches in [0, 1]; config: its AutoencoderConfig.
    Progress carries {"losses": [...]} (the batch losses since the last report); the result:
    tensors = the trained state_dict, arrays = {"losses" (steps,), "codes" (n, bottleneck),
    "recons" (n, 1, n_mels, frames)}, values = {"steps": steps done}. A Stop ends the training
    early and hands back what was learnt so far.
    """
    from core.lessons import unsupervised as uns

    model = uns.ConvAutoencoder(config)
    model.load_state_dict(dict(state))
    every = max(1, steps // PROGRESS_REPORTS)
    losses: list[float] = []
    reported = 0
    try:
        for event in uns.train_autoencoder(model, patches, config, steps=steps, device=device):
            losses.append(event.loss)
            if event.step % every == 0 or event.step == steps:
                yield TaskProgress(
                    event.step / steps,
                    f"step {event.step} of {steps}, loss {event.loss:.4f}",
                    {"losses": losses[reported:]},
                )
                reported = len(losses)
            if cancel.is_set():
                break
    except ValueError as error:  # too few clips, steps out of range
        raise TaskError(str(error)) from None
    codes, recons = uns.autoencoder_outputs(model, patches, device=device)
    model.cpu()
    yield TaskResult(
        values={"steps": len(losses)},
        arrays={"losses": np.asarray(losses, dtype=np.float32), "codes": codes, "recons": recons},
        tensors=model.state_dict(),
    )


def model_embeddings_task(
    *, model: Any, collection: Any, device: torch.device, cancel: Any
) -> Iterator[TaskProgress | TaskResult]:
    """Penultimate-layer embeddings of a trained classifier for every clip of a collection.

    model: a core.inference.classifier.InferenceModel (sent on the CPU); collection: a
    core.lessons.unsupervised.Collection. The same numbers as
    core.lessons.unsupervised.trained_model_embeddings, computed in chunks so that progress shows.
    Result: arrays = {"embeddings": (n_clips, features)}. A Stop ends it with no result.
    """
    from core.lessons import unsupervised as uns

    model = dataclasses.replace(model, network=model.network.to(device).eval(), device=device)
    clips = collection.clips
    every = max(1, len(clips) // PROGRESS_REPORTS)
    parts = []
    for start in range(0, len(clips), every):
        part = dataclasses.replace(collection, clips=clips[start : start + every])
        parts.append(uns.trained_model_embeddings(part, model))
        done = min(len(clips), start + every)
        yield TaskProgress(done / len(clips), f"{done} of {len(clips)} clips")
        if cancel.is_set():
            raise TaskError("Stopped before every clip had its embedding.")
    yield TaskResult(arrays={"embeddings": np.concatenate(parts)})


BATCH_ROW_FIELDS = ("file", "label", "confidence", "unsure", "duration_seconds", "note")


def classify_files_task(
    *,
    model: Any,
    sources: Sequence[tuple[str, Any]],
    device: torch.device,
    cancel: Any,
) -> Iterator[TaskProgress | TaskResult]:
    """Classify many files with a core.inference.classifier.InferenceModel (sent on the CPU).

    sources: (name, path or bytes) pairs. Progress every few files; the result's values:
    {"rows": [BatchRow fields]} in the order given (NaN written as None). A Stop ends it
    after the current file, with the rows done so far.
    """
    from core.inference.classifier import classify_files

    model = dataclasses.replace(model, network=model.network.to(device).eval(), device=device)
    every = max(1, len(sources) // PROGRESS_REPORTS)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(sources), every):
        for row in classify_files(model, sources[start : start + every]):
            rows.append({name: getattr(row, name) for name in BATCH_ROW_FIELDS})
        yield TaskProgress(len(rows) / len(sources), f"{len(rows)} of {len(sources)} files")
        if cancel.is_set():
            break
    yield TaskResult(values={"rows": rows})


def batch_rows(result: TaskResult) -> list[Any]:
    """The core.inference.classifier.BatchRow list of a classify_files result (None back to NaN)."""
    from core.inference.classifier import BatchRow

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    return [
        BatchRow(
            str(r["file"]),
            str(r["label"]),
            number(r["confidence"]),
            bool(r["unsure"]),
            number(r["duration_seconds"]),
            str(r["note"]),
        )
        for r in result.values.get("rows", [])
    ]


TASKS: dict[str, Callable[..., Iterator[TaskProgress | TaskResult]]] = {
    "autoencoder": autoencoder_task,
    "classify_files": classify_files_task,
    "model_embeddings": model_embeddings_task,
}


def run_task(
    name: str, kwargs: Mapping[str, Any], *, device: torch.device, cancel: Any
) -> Iterator[TaskProgress | TaskResult]:
    """The registered task `name` with its arguments (TaskError for an unknown name)."""
    if name not in TASKS:
        raise TaskError(f"There is no task called {name!r}.")
    return TASKS[name](**kwargs, device=device, cancel=cancel)
