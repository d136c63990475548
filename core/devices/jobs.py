"""Per-device job slots: a class sharing one GPU queues instead of running out of memory."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch

from core.devices.hardware import physical_cpu_cores

log = logging.getLogger(__name__)

JOBS_ENV_VAR = "AUDIO_DL_JOBS_PER_DEVICE"


@dataclass(frozen=True)
class JobTicket:
    """One job's claim on a device: queued until a slot frees, then running until released."""

    id: int
    device: str  # normalised device key, e.g. "cuda:0", "cpu"
    owner: str  # who runs it (a session id), shown in queues
    enqueued_at: float  # time.monotonic() when it joined the queue


@dataclass(frozen=True)
class SlotUsage:
    """A snapshot of one device's slots."""

    device: str
    capacity: int
    running: tuple[str, ...]  # owners of running jobs
    waiting: tuple[str, ...]  # owners of queued jobs, first in line first

    def summary(self) -> str:
        """E.g. "1/1 job slots in use · 2 queued"."""
        text = f"{len(self.running)}/{self.capacity} job slots in use"
        return f"{text} · {len(self.waiting)} queued" if self.waiting else text


class JobQueueTimeout(TimeoutError):
    """A job waited longer than its timeout for a device slot."""


def device_key(device: torch.device | str) -> str:
    """The limiter's name for a device: "cuda" means "cuda:0"; "cpu", "mps" unchanged."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    return device.type


def default_capacity(device: str) -> int:
    """Concurrent jobs per device: one per GPU (they fill its memory), half the CPU's cores."""
    if device == "cpu":
        return max(1, physical_cpu_cores() // 2)
    return 1


def parse_jobs_per_device(text: str) -> dict[str, int]:
    """Parse AUDIO_DL_JOBS_PER_DEVICE: "2" (every device) or "cuda=2,cpu=4,cuda:1=3".

    Keys: "*" or a bare number for every device, "cuda" for every GPU, or a device key.
    Raises ValueError with a sentence for anything else.
    """
    result: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.rpartition("=") if "=" in part else ("*", "=", part)
        key = key.strip().lower() or "*"
        if not re.fullmatch(r"\*|cpu|mps|cuda(:\d+)?", key) or not value.strip().isdigit():
            raise ValueError(
                f"{JOBS_ENV_VAR}: {part!r} is not understood; write e.g. '2' or 'cuda=2,cpu=4'."
            )
        count = int(value)
        if count < 1:
            raise ValueError(f"{JOBS_ENV_VAR}: {part!r} must allow at least 1 job.")
        result[key] = count
    return result


class DeviceJobLimiter:
    """Limits how many jobs run at once on each device; the rest wait in a FIFO queue.

    Thread-safe: Streamlit runs each browser session in its own thread, and all of them
    share one limiter (`get_job_limiter()`), so a class on one GPU queues instead of
    running out of memory together.

        with limiter.job_slot(device, owner=session_id, on_wait=show_position) as ticket:
            train(...)
    """

    def __init__(
        self,
        capacities: Mapping[str, int] | None = None,
        *,
        default: Callable[[str], int] = default_capacity,
    ):
        """`capacities` maps "*", "cuda", or a device key to a job count (see
        `parse_jobs_per_device`); devices not named get `default(device_key)`."""
        self._capacities = dict(capacities or {})
        self._default = default
        self._lock = threading.Condition()
        self._running: dict[str, list[JobTicket]] = {}
        self._waiting: dict[str, deque[JobTicket]] = {}
        self._ids = itertools.count(1)

    def capacity(self, device: torch.device | str) -> int:
        key = device_key(device)
        for name in (key, key.partition(":")[0], "*"):
            if name in self._capacities:
                return self._capacities[name]
        return self._default(key)

    def usage(self, device: torch.device | str) -> SlotUsage:
        """Who runs and who waits on `device` right now."""
        key = device_key(device)
        with self._lock:
            return SlotUsage(
                key,
                self.capacity(key),
                tuple(t.owner for t in self._running.get(key, ())),
                tuple(t.owner for t in self._waiting.get(key, ())),
            )

    def queue_position(self, ticket: JobTicket) -> int | None:
        """0 while the job runs, 1 for the next in line, 2 after that...; None once released."""
        with self._lock:
            return self._position(ticket)

    @contextlib.contextmanager
    def job_slot(
        self,
        device: torch.device | str,
        owner: str,
        on_wait: Callable[[int], None] | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[JobTicket]:
        """Hold one of `device`'s slots for the body of the `with` block.

        Blocks until the slot is free, first come first served (see `wait_for_turn` for
        `on_wait` and `timeout`). The slot is released when the block ends, also on an
        exception, and the job leaves the queue if the wait is interrupted.
        """
        ticket = self.request(device, owner)
        try:
            self.wait_for_turn(ticket, on_wait, timeout=timeout)
            yield ticket
        finally:
            self.release(ticket)

    def request(self, device: torch.device | str, owner: str) -> JobTicket:
        """Join `device`'s queue without blocking; the job may start at once.

        For a job run by a worker thread: the page keeps the ticket and polls
        `queue_position(ticket)`. Every request must end with `release(ticket)`.
        """
        key = device_key(device)
        with self._lock:
            ticket = JobTicket(next(self._ids), key, owner, time.monotonic())
            self._waiting.setdefault(key, deque()).append(ticket)
            self._promote(key)
            return ticket

    def wait_for_turn(
        self,
        ticket: JobTicket,
        on_wait: Callable[[int], None] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Block until `ticket` holds a slot.

        `on_wait(position)` is called with the queue position (1 = next) each time it changes,
        from this thread and without the limiter's lock held, so it may update a page or
        raise to give up. `timeout` (seconds in the queue) raises `JobQueueTimeout`. On any
        exception the ticket stays queued: release it (`job_slot` does).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        reported = None
        while True:
            with self._lock:
                position = self._position(ticket)
                if position is None:
                    raise ValueError("This job ticket was already released.")
                if position == reported:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise JobQueueTimeout(
                            f"Waited {timeout:.0f} s for a slot on {ticket.device} and the "
                            "queue did not reach this job; try again later or choose another "
                            "device."
                        )
                    self._lock.wait(timeout=left)
                    continue
            if position == 0:
                return
            reported = position
            if on_wait is not None:
                on_wait(position)

    def release(self, ticket: JobTicket) -> None:
        """Give the slot back (or leave the queue); the next in line starts. Idempotent."""
        with self._lock:
            running = self._running.get(ticket.device, [])
            if ticket in running:
                running.remove(ticket)
            else:
                waiting = self._waiting.get(ticket.device)
                if waiting and ticket in waiting:
                    waiting.remove(ticket)
            self._promote(ticket.device)
            self._lock.notify_all()

    def _promote(self, key: str) -> None:
        # Strict FIFO: only the head of the queue may start, so nobody jumps the line.
        running = self._running.setdefault(key, [])
        waiting = self._waiting.setdefault(key, deque())
        while waiting and len(running) < self.capacity(key):
            running.append(waiting.popleft())

    def _position(self, ticket: JobTicket) -> int | None:
        if ticket in self._running.get(ticket.device, ()):
            return 0
        waiting = self._waiting.get(ticket.device, ())
        return waiting.index(ticket) + 1 if ticket in waiting else None


_shared_limiter: DeviceJobLimiter | None = None
_shared_limiter_lock = threading.Lock()


def limiter_from_env(env: Mapping[str, str] | None = None) -> DeviceJobLimiter:
    """A limiter with capacities from AUDIO_DL_JOBS_PER_DEVICE (defaults when unset or bad)."""
    text = (os.environ if env is None else env).get(JOBS_ENV_VAR, "")
    try:
        capacities = parse_jobs_per_device(text)
    except ValueError as error:
        log.warning("%s Using the defaults.", error)
        capacities = {}
    return DeviceJobLimiter(capacities)


def get_job_limiter() -> DeviceJobLimiter:
    """The limiter shared by every session of this process (created on first use)."""
    global _shared_limiter
    with _shared_limiter_lock:
        if _shared_limiter is None:
            _shared_limiter = limiter_from_env()
        return _shared_limiter


def job_slot(
    device: torch.device | str,
    owner: str,
    on_wait: Callable[[int], None] | None = None,
    *,
    timeout: float | None = None,
) -> contextlib.AbstractContextManager[JobTicket]:
    """`get_job_limiter().job_slot(...)`: hold one of `device`'s shared job slots."""
    return get_job_limiter().job_slot(device, owner, on_wait, timeout=timeout)
