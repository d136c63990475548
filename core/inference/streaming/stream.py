"""Live listening, the thread: `LiveStream` runs one analyser (a LiveClassifier or a
LiveTuner) in its own worker thread. `push` (called from the WebRTC thread) only queues a copy
of the frame, never waits; the worker analyses; the page reads `latest()` / `snapshot()`.
`stream_file` feeds a whole recording in microphone-sized frames (tests, benchmarks).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.inference.streaming.classifier_stream import LiveAnswer, LiveClassifier
from core.inference.streaming.frames import StreamError, as_mono_float
from core.inference.streaming.tuner import LiveTuner, TunerReading

MAX_GAP_SECONDS = 2.0  # a longer hole in the frame timestamps is a new start, not silence
IDLE_TIMEOUT_SECONDS = 10.0  # no frame for this long: the connection is gone, free everything
ALIVE_CHECK_SECONDS = 0.5  # how often a stream asks whether the page listening to it is still open


# How often the interpreter hands the GIL to a waiting thread while a stream runs (Python's
# own default is 5 ms). A window's analysis is many short torch / numpy calls, each of which
# lets the GIL go and must take it back; while another thread of the server runs Python (a
# page's script run, the WebRTC decoder, the event loop), each take-back waits up to the
# switch interval, so one window's ~8 ms of work took 37 ms (p50) and 150-450 ms (p95) beside
# a busy Python thread at 5 ms, 11-20 ms (p95 20-100 ms) at 1 ms (`python -m tests.benchmarks
# live`). The same wait delays the event loop that pushes the answer to the browser.
DEFAULT_GIL_SWITCH_MS = 1.0


def gil_switch_seconds() -> float:
    """The GIL switch interval while streams run: AUDIO_DL_LIVE_GIL_SWITCH_MS (default 1 ms;
    5 is Python's own, which leaves the interpreter as it is)."""
    raw = os.environ.get("AUDIO_DL_LIVE_GIL_SWITCH_MS", "").strip()
    if not raw:
        return DEFAULT_GIL_SWITCH_MS / 1000
    try:
        value = float(raw)
    except ValueError as exc:
        raise StreamError(
            f"AUDIO_DL_LIVE_GIL_SWITCH_MS must be a number of milliseconds (got {raw!r})."
        ) from exc
    if not 0.1 <= value <= 100:
        raise StreamError("AUDIO_DL_LIVE_GIL_SWITCH_MS must be between 0.1 and 100 ms.")
    return value / 1000


class _GilSwitch:
    """The interpreter-wide switch interval, lowered while at least one stream runs (to the
    shortest any running stream asked for) and put back as it was when the last one ends (a
    server without a microphone keeps Python's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: list[float] = []  # one entry per running stream
        self._saved = 0.0

    def enter(self, seconds: float) -> None:
        with self._lock:
            if not self._asked:
                self._saved = sys.getswitchinterval()
            self._asked.append(seconds)
            sys.setswitchinterval(min([self._saved, *self._asked]))

    def leave(self, seconds: float) -> None:
        with self._lock:
            if seconds in self._asked:
                self._asked.remove(seconds)
            sys.setswitchinterval(min([self._saved, *self._asked]))

    @property
    def streams(self) -> int:
        return len(self._asked)


GIL_SWITCH = _GilSwitch()


# --------------------------------------------------------------------------- threaded stream


@dataclass
class StreamStats:
    """Counters a page or the benchmark reads (seconds of audio, seconds of wall or CPU time)."""

    received_seconds: float = 0.0
    processed_seconds: float = 0.0
    dropped_seconds: float = 0.0  # thrown away because the worker fell too far behind
    gap_seconds: float = 0.0  # holes in the frame timestamps, filled with silence
    bad_samples: int = 0  # NaN / inf samples replaced by 0
    cpu_seconds: float = 0.0  # worker thread CPU time
    latencies_seconds: deque = field(default_factory=lambda: deque(maxlen=2000))

    @property
    def backlog_seconds(self) -> float:
        return max(0.0, self.received_seconds - self.processed_seconds - self.dropped_seconds)


@dataclass(frozen=True)
class AnswerClock:
    """When the newest answer's sound reached the server and when the answer was ready.

    Times are wall-clock seconds since the epoch (time.time()), so a browser on the same
    machine can set them against its own clock: the live-latency benchmark
    (tests/benchmarks/bench_live_browser.py) reads them from the page next to the label.
    """

    answers: int  # answers (windows or readings) computed so far: a new number, a new answer
    headline: str  # what the newest answer says: "7", "7?", "silence"; a tuner's note
    heard_at: float  # the frame that completed the newest answer reached the server (push)
    ready_at: float  # the newest answer was computed
    # The first answer of the current run of `headline` was heard: when, as far as the
    # server knows, the label on screen should have changed to it.
    headline_heard_at: float


class LiveStream:
    """One analyser fed from a frame callback in its own worker thread.

    push() is what the WebRTC callback calls: it converts and queues the frame and returns at
    once (never st.*, never the model). The worker feeds the analyser; snapshot readers take
    the same lock. The stream stops itself when `alive()` (asked every ALIVE_CHECK_SECONDS)
    says the page listening to it is gone (a closed tab: at once), after
    `idle_timeout_seconds` without frames (a dropped connection), and on stop(); it then
    releases its buffers and its slot, and `ended` says why.
    """

    def __init__(
        self,
        analyser: LiveClassifier | LiveTuner,
        *,
        max_backlog_seconds: float = 3.0,
        idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS,
        on_stop=None,
        alive: Callable[[], bool] | None = None,
        name: str = "live-stream",
    ) -> None:
        self.analyser = analyser
        self.lock = threading.Lock()
        self.stats = StreamStats()
        self.max_backlog_seconds = max_backlog_seconds
        self.idle_timeout_seconds = idle_timeout_seconds
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._on_stop = on_stop
        self._alive = alive
        self._next_alive_check = time.monotonic() + ALIVE_CHECK_SECONDS
        self.ended = ""  # why the stream stopped by itself, a sentence ("" while running)
        self._expected_time: float | None = None
        self._last_frame = time.monotonic()
        # perf_counter (steady, precise) + this offset = wall clock, for AnswerClock.
        self._wall_offset = time.time() - time.perf_counter()
        self.clock: AnswerClock | None = None  # None before the first answer
        # The newest (answer, clock), replaced whole after each answer: read without the
        # lock, so a reader on the server's event loop never waits for a window's analysis.
        self.published: tuple[LiveAnswer | TunerReading | None, AnswerClock | None] = (None, None)
        self.error = ""
        # Called (in the worker thread, outside the lock) after each new answer and once when
        # the stream ends: a page that pushes answers to the browser wakes on them instead of
        # polling (ui/live_push.py).
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self._gil_switch = gil_switch_seconds()
        GIL_SWITCH.enter(self._gil_switch)  # left in _release, once, as the worker ends
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ---- callback side (WebRTC thread)
    def push(
        self,
        samples: np.ndarray,
        sample_rate: int,
        *,
        channels: int = 1,
        interleaved: bool = True,
        time_seconds: float | None = None,
    ) -> None:
        """Queue one frame (any layout, see as_mono_float). time_seconds: the frame's
        timestamp; a hole of up to MAX_GAP_SECONDS before it is filled with silence so the
        stream's clock stays the microphone's."""
        if self._stop.is_set() or sample_rate <= 0:
            return
        raw = np.asarray(samples)
        bad = int(np.size(raw) - np.count_nonzero(np.isfinite(raw))) if raw.dtype.kind == "f" else 0
        y = as_mono_float(raw, channels=channels, interleaved=interleaved)
        seconds = y.size / sample_rate
        gap = 0.0
        if time_seconds is not None and self._expected_time is not None:
            gap = time_seconds - self._expected_time
            if 1.0 / sample_rate < gap <= MAX_GAP_SECONDS:
                y = np.concatenate([np.zeros(int(round(gap * sample_rate)), np.float32), y])
            else:
                gap = 0.0
        if time_seconds is not None:
            self._expected_time = time_seconds + seconds
        self._last_frame = time.monotonic()
        with self.lock:
            self.stats.received_seconds += y.size / sample_rate
            self.stats.gap_seconds += max(0.0, gap)
            self.stats.bad_samples += bad
        self._queue.put((time.perf_counter(), y, int(sample_rate)))

    # ---- worker
    def _run(self) -> None:
        # One torch thread for this worker (the setting is per thread: other sessions keep
        # theirs). A window is one small forward pass: a second thread saves nothing, and on
        # a busy CPU each pass waits for that thread to be scheduled (answers seconds late
        # with two threads on this 2-core server under load; bench_live_browser).
        torch.set_num_threads(1)
        start_cpu = time.thread_time()
        try:
            while not self._stop.is_set():
                if self._alive is not None and time.monotonic() >= self._next_alive_check:
                    self._next_alive_check = time.monotonic() + ALIVE_CHECK_SECONDS
                    if not self._alive():
                        self.ended = "the page that was listening closed."
                        break
                try:
                    arrived, y, sr = self._queue.get(timeout=0.05)
                except queue.Empty:
                    if time.monotonic() - self._last_frame > self.idle_timeout_seconds:
                        self.ended = (
                            f"no audio arrived for {self.idle_timeout_seconds:g} s (the "
                            "connection dropped)."
                        )
                        break
                    continue
                self._drop_backlog()
                with self.lock:
                    done = self.analyser.feed(y, sr)
                    self.stats.processed_seconds += y.size / sr
                    if done:
                        ready = time.perf_counter()
                        self.stats.latencies_seconds.append(ready - arrived)
                        self._tick_clock(arrived, ready)
                    self.stats.cpu_seconds = time.thread_time() - start_cpu
                if done:
                    self._notify()
        except Exception as exc:  # a broken stream says why on the page instead of hanging
            self.error = f"The live analysis stopped: {exc}"
        finally:
            self._stop.set()
            self._release()
            self._notify()

    def _tick_clock(self, arrived: float, ready: float) -> None:
        """Stamp the new answer (under the lock): when its sound came and when it was ready."""
        current = self.analyser.current()
        headline = current.headline if current is not None else ""
        heard_at, ready_at = arrived + self._wall_offset, ready + self._wall_offset
        since = heard_at
        if self.clock is not None and self.clock.headline == headline:
            since = self.clock.headline_heard_at
        self.clock = AnswerClock(self.analyser.windows_done, headline, heard_at, ready_at, since)
        self.published = (current, self.clock)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener()` after every new answer and once when the stream ends; returns
        the function that unsubscribes it. It runs in the worker thread, so it must only
        hand the news on (for example `loop.call_soon_threadsafe(event.set)`), never wait."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            # A listener whose page has gone must not stop the analysis.
            with contextlib.suppress(Exception):
                listener()

    def _drop_backlog(self) -> None:
        """Throw away the oldest queued audio while more than max_backlog_seconds wait."""
        while self._queue.qsize() > 1 and self.stats.backlog_seconds > self.max_backlog_seconds:
            try:
                _, y, sr = self._queue.get_nowait()
            except queue.Empty:
                return
            with self.lock:
                self.stats.dropped_seconds += y.size / sr

    def _release(self) -> None:
        GIL_SWITCH.leave(self._gil_switch)
        with self.lock:
            self.analyser.release()
        while not self._queue.empty():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._on_stop is not None:
            self._on_stop()
            self._on_stop = None

    # ---- page side
    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker, join it and release the buffers and the slot (idempotent).

        timeout: seconds to wait for the worker to end; 0 returns at once (a WebRTC callback
        must not block): the worker ends within its 50 ms poll and releases everything
        itself.
        """
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued frame is analysed (tests and the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = self._queue.empty() and self.stats.backlog_seconds < 1e-6
            if idle or not self.running:
                return idle
            time.sleep(0.005)
        return False

    def snapshot(self):
        """The analyser's snapshot(), taken under the lock (page thread)."""
        with self.lock:
            return self.analyser.snapshot()

    def latest(self) -> tuple[LiveAnswer | TunerReading | None, AnswerClock | None]:
        """The analyser's current answer and its clock: a cheap read for a fast redraw (no
        audio copied, no segments searched)."""
        with self.lock:
            return self.analyser.current(), self.clock

    @property
    def thread(self) -> threading.Thread:
        return self._thread


def stream_file(
    stream: LiveStream | LiveClassifier | LiveTuner,
    samples: np.ndarray,
    sample_rate: int,
    *,
    frame_seconds: float = 0.02,
    frame_sizes: Sequence[int] | None = None,
) -> None:
    """Feed a whole recording in microphone-sized frames (tests, benchmark, journeys).

    frame_sizes: explicit sizes in samples, cycled (irregular frames); default
    `frame_seconds` each.
    """
    sizes = list(frame_sizes or [max(1, int(frame_seconds * sample_rate))])
    i, k = 0, 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        chunk = samples[i : i + n]
        if isinstance(stream, LiveStream):
            stream.push(chunk, sample_rate)
        else:
            stream.feed(chunk, sample_rate)
        i, k = i + n, k + 1
