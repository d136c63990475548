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
files 72 s and the penultimate-layer embeddings of 200 clips 15 s; the explorer's t-SNE map
of 200 clips 5 s (33 s with the machine loaded), a CREPE full pitch track about 9 s per
second of audio, pYIN 0.7 s.

Some of this work is one library call that reports nothing while it runs (scikit-learn's
t-SNE, librosa's pYIN). Such a call runs in a thread of the worker (`_Background`) while the
task keeps reporting and watching the Stop flag; a Stop ends the worker process, and the
thread with it.

Each task imports the library it needs inside its function: the web server imports this
module at every submit (to check the task's name), and must not load scikit-learn, librosa or
the pitch networks for that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.jobs.files import TaskProgress, TaskResult

__all__ = [
    "TASKS",
    "TaskError",
    "TaskProgress",
    "TaskResult",
    "pitch_track_of",
    "pitch_track_result",
    "run_task",
]

PROGRESS_REPORTS = 50  # a task reports about this many times, whatever its length
POLL_SECONDS = 0.25  # how often a task waiting on a background call looks at it and at Stop
REPORT_SECONDS = 0.5  # at most this often a progress report while it waits


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


def still_calling() -> bool:
    """Whether a task's uninterruptible library call (_Background) still runs in this process."""
    return any(
        thread.name == _Background.THREAD_NAME and thread.is_alive()
        for thread in threading.enumerate()
    )


class _Background:
    """work() in a daemon thread: a library call that says nothing until it returns.

    The task's generator stays free to report progress and to notice a Stop meanwhile; the
    thread cannot be interrupted, so a worker process that still runs one after its task ends
    itself (core.jobs.cluster.task_job; a forced Stop kills it), which ends the thread too.
    """

    THREAD_NAME = "task-call"

    def __init__(self, work: Callable[[], Any]):
        self._work = work
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name=self.THREAD_NAME, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome["value"] = self._work()
        except BaseException as error:  # handed to the task's own thread by result()
            self._outcome["error"] = error

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True once the call has returned (or raised)."""
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def result(self) -> Any:
        """The call's return value; its exception, raised here, if it raised one."""
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome.get("value")


def _child_main(send: Any, work: Callable[..., Any], args: tuple) -> None:
    """The child process of `_ChildProcess`: run work(*args), send back ("value", v) or
    ("error", exception)."""
    try:
        send.send(("value", work(*args)))
    except Exception as error:
        send.send(("error", error))
    finally:
        send.close()


class _ChildProcess:
    """work(*args) in a child process of the worker, for a library call that holds the GIL.

    librosa's pYIN keeps the GIL through its whole Viterbi pass (numba without nogil): 35 s in
    one piece for a 14 s clip on the loaded build machine, measured. In a thread it would
    starve the worker's heartbeat and the server would declare the job dead after 8 s. The
    child is spawned (a fresh interpreter: forking a threaded Ray worker is unsafe), costs a few
    seconds of imports, and hands its answer back over a pipe between these two processes of
    ours. Same `wait` / `result` as `_Background`; `stop()` kills it (daemonic: it also ends
    with the worker). work must be a module-level function.
    """

    def __init__(self, work: Callable[..., Any], *args: Any):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child_main, args=(send, work, args), name="task-child", daemon=True
        )
        self._process.start()
        send.close()
        self._outcome: tuple[str, Any] | None = None

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True once the child has answered (or died)."""
        if self._outcome is not None:
            return True
        try:
            if self._receive.poll(seconds):
                self._outcome = self._receive.recv()
        except EOFError:  # the child died without a word (killed, out of memory)
            pass
        if self._outcome is None and not self._process.is_alive():
            self._outcome = (
                "error",
                TaskError("Its helper process ended without an answer (killed or out of memory)."),
            )
        if self._outcome is not None:
            self._process.join(5)
        return self._outcome is not None

    def result(self) -> Any:
        kind, value = self._outcome or ("error", TaskError("No answer yet."))
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.kill()


class _LineSink(io.TextIOBase):
    """A text stream that hands every complete line to `on_line` (for redirect_stdout)."""

    def __init__(self, on_line: Callable[[str], None]):
        self._on_line, self._partial = on_line, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._on_line(line)
        return len(text)


TSNE_LOG_LINE = re.compile(r"\[t-SNE\] Iteration (\d+):")  # scikit-learn's verbose=2 log


def embedding_map_task(
    *, embeddings: np.ndarray, method: str, seed: int = 0, device: torch.device, cancel: Any
) -> Iterator[TaskProgress | TaskResult]:
    """A 2-D map of (n, d) embeddings: core.lessons.unsupervised.project_2d on a worker.

    method: one of core.lessons.unsupervised.PROJECTIONS. scikit-learn's t-SNE reports its
    iterations only as log lines (every 50th, with verbose=2); they are read here and become
    the progress. Result: arrays = {"xy": (n, 2)}, the same numbers as project_2d in the
    server. A Stop ends it with an empty result (state "stopped"); device is unused (scikit-
    learn runs on the CPU).
    """
    from core.lessons import unsupervised as uns

    embeddings = np.asarray(embeddings)
    iterations: queue.SimpleQueue[int] = queue.SimpleQueue()

    def on_line(line: str) -> None:
        found = TSNE_LOG_LINE.match(line)
        if found:
            iterations.put(int(found.group(1)))

    def project() -> np.ndarray:
        with contextlib.redirect_stdout(_LineSink(on_line)):
            return uns.project_2d(embeddings, method, seed=seed, verbose=2)

    total = uns.TSNE_ITERATIONS if method == "t-SNE" else 1
    yield TaskProgress(0.0, f"{method} of {len(embeddings)} clips: starting")
    call = _Background(project)
    finished = False
    while not finished:
        finished = call.wait(POLL_SECONDS)
        done = None
        while not iterations.empty():
            done = iterations.get()
        if done is not None:
            yield TaskProgress(
                min(0.99, done / total), f"{method}: iteration {done} of about {total}"
            )
        if cancel.is_set() and not finished:
            yield TaskResult(values={"stopped": True})
            return
    try:
        xy = call.result()
    except ValueError as error:  # too few clips, unknown method
        raise TaskError(str(error)) from None
    yield TaskResult(arrays={"xy": np.asarray(xy, dtype=np.float32)})


# The PitchTrack fields that travel as arrays (None ones are left out) and as JSON values.
_TRACK_ARRAYS = (
    "times",
    "f0_hz",
    "confidence",
    "voiced",
    "probabilities",
    "bin_midi",
    "raw_f0_hz",
)
_TRACK_VALUES = (
    "tracker",
    "voicing_threshold",
    "audio_seconds",
    "elapsed_seconds",
    "device",
    "truncated",
)


def pitch_track_result(track: Any) -> TaskResult:
    """A core.music.pitch_networks.PitchTrack as a TaskResult (arrays + JSON, no pickle)."""
    return TaskResult(
        values={name: getattr(track, name) for name in _TRACK_VALUES},
        arrays={
            name: np.asarray(getattr(track, name))
            for name in _TRACK_ARRAYS
            if getattr(track, name) is not None
        },
    )


def pitch_track_of(result: TaskResult) -> Any:
    """The PitchTrack a "pitch_track" task handed back (`pitch_track_result` reversed)."""
    from core.music.pitch_networks import PitchTrack

    arrays = {name: result.arrays.get(name) for name in _TRACK_ARRAYS}
    return PitchTrack(**{name: result.values[name] for name in _TRACK_VALUES}, **arrays)


def _pyin_track(y: np.ndarray, sample_rate: int, config: Any) -> Any:
    """pYIN's PitchTrack of a clip (run in a `_ChildProcess`)."""
    from core.music import pitch_networks as pn

    return pn.run_tracker(y, sample_rate, pn.PYIN, config=config)


def pitch_track_task(
    *,
    y: np.ndarray,
    sample_rate: int,
    tracker: str,
    config: Any,
    device: torch.device,
    cancel: Any,
) -> Iterator[TaskProgress | TaskResult]:
    """core.music.pitch_networks.track_pitch on a worker: one tracker over one clip.

    y: waveform (samples,) at sample_rate; config: a PitchTrackerConfig. The networks report
    after each batch of frames; pYIN is one librosa call, so while it runs the progress is
    the time spent against the CPU estimate (CPU_SECONDS_PER_AUDIO_SECOND), never past 95 %.
    Result: `pitch_track_result(track)` (read back with `pitch_track_of`). A Stop ends it
    with an empty result.
    """
    from core.music import pitch_networks as pn

    events: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def track() -> Any:
        found = None
        for event in pn.track_pitch(y, sample_rate, tracker, device=device, config=config):
            events.put(event)
            found = event.track or found
        return found

    seconds = min(len(y) / max(sample_rate, 1), config.max_seconds)
    estimate = pn.estimated_cpu_seconds(tracker, seconds) if tracker in pn.TRACKERS else 0.0
    on_cpu = tracker == pn.PYIN or device.type == "cpu"
    started = last_report = time.monotonic()
    fraction, message = 0.0, f"{tracker}: starting"
    # pYIN holds the GIL (see _ChildProcess); the networks' torch calls release it.
    if tracker == pn.PYIN:
        call: _Background | _ChildProcess = _ChildProcess(
            _pyin_track, np.asarray(y), sample_rate, config
        )
        message = f"{tracker}: tracking {seconds:.1f} s on cpu"
    else:
        call = _Background(track)
    while not call.wait(POLL_SECONDS):
        while not events.empty():
            event = events.get()
            fraction, message = max(fraction, event.fraction), event.message
        elapsed = time.monotonic() - started
        if on_cpu and estimate > 0:  # between (or without) the tracker's own reports
            fraction = max(fraction, min(0.95, elapsed / estimate))
        if time.monotonic() - last_report >= REPORT_SECONDS:
            last_report = time.monotonic()
            yield TaskProgress(fraction, f"{message} · {elapsed:.0f} s so far")
        if cancel.is_set():
            if isinstance(call, _ChildProcess):
                call.stop()
            yield TaskResult(values={"stopped": True})
            return
    try:
        found = call.result()
    except pn.PitchTrackingError as error:
        raise TaskError(str(error)) from None
    except ValueError as error:  # an unknown tracker
        raise TaskError(str(error)) from None
    yield TaskProgress(1.0, f"{tracker}: done in {found.elapsed_seconds:.1f} s")
    yield pitch_track_result(found)


TASKS: dict[str, Callable[..., Iterator[TaskProgress | TaskResult]]] = {
    "autoencoder": autoencoder_task,
    "classify_files": classify_files_task,
    "embedding_map": embedding_map_task,
    "model_embeddings": model_embeddings_task,
    "pitch_track": pitch_track_task,
}


def run_task(
    name: str, kwargs: Mapping[str, Any], *, device: torch.device, cancel: Any
) -> Iterator[TaskProgress | TaskResult]:
    """The registered task `name` with its arguments (TaskError for an unknown name)."""
    if name not in TASKS:
        raise TaskError(f"There is no task called {name!r}.")
    return TASKS[name](**kwargs, device=device, cancel=cancel)
