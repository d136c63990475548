"""The one place that decides which device runs the work, and how.

Everything else receives a `torch.device` and uses the helpers here:

- `discover_devices()` lists every CUDA GPU, Apple's MPS and the CPU as `DeviceInfo`;
- `choose_device(choice)` / `resolve_device(choice)` turn the user's choice ("auto", "cpu",
  "cuda:1", "mps") into a device; `AUDIO_DL_DEVICE` in the environment overrides the choice,
  so a server or CI fixes the device for everyone;
- `memory_stats(device)` reads live memory (allocated, reserved, free, total);
- `precision_policy(device)` / `autocast_context(device)` / `configure_tf32(device)` /
  `make_grad_scaler(policy)` are the single precision policy for training and inference;
- `run_with_oom_fallback(step, ...)` retries a step with half the batch on out-of-memory and
  past a floor moves it to the CPU, recording why;
- `job_slot(device, owner)` limits concurrent jobs per device so a class sharing one GPU
  queues instead of crashing, and reports each waiting job's place in the queue.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

log = logging.getLogger(__name__)

DEVICE_ENV_VAR = "AUDIO_DL_DEVICE"
JOBS_ENV_VAR = "AUDIO_DL_JOBS_PER_DEVICE"
AUTO = "auto"

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """One device this machine offers.

    Memory is in bytes and None where the backend cannot tell. `free_memory_bytes` is a
    snapshot taken at discovery time; `memory_stats` reads it live.
    """

    id: str  # what torch.device() accepts: "cuda:0", "mps", "cpu"
    kind: str  # "cuda", "mps" or "cpu"
    name: str  # e.g. "NVIDIA H100 80GB HBM3", "Apple MPS", "CPU (x86_64)"
    total_memory_bytes: int | None = None
    free_memory_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None  # CUDA only, e.g. (9, 0)
    supports_bf16: bool = False  # bfloat16 arithmetic runs natively
    cpu_cores: int | None = None  # CPU only: physical cores
    cpu_threads: int | None = None  # CPU only: logical CPUs this process may use

    @property
    def device(self) -> torch.device:
        return torch.device(self.id)

    @property
    def label(self) -> str:
        """A readable one-liner for menus, e.g. "cuda:0 · NVIDIA H100 (80 GB)"."""
        if self.kind == "cpu":
            return f"cpu · {self.cpu_cores} cores / {self.cpu_threads} threads"
        if self.total_memory_bytes:
            return f"{self.id} · {self.name} ({format_bytes(self.total_memory_bytes)})"
        return f"{self.id} · {self.name}"


def discover_devices() -> list[DeviceInfo]:
    """Every usable device: CUDA GPUs in index order, then MPS, then the CPU (always last)."""
    return [*_discover_cuda(), *_discover_mps(), _discover_cpu()]


def _discover_cuda() -> list[DeviceInfo]:
    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        try:
            free, total = torch.cuda.mem_get_info(index)
        except RuntimeError:  # a GPU in a bad state still shows, without live memory
            free, total = None, props.total_memory
        capability = (props.major, props.minor)
        found.append(
            DeviceInfo(
                id=f"cuda:{index}",
                kind="cuda",
                name=props.name,
                total_memory_bytes=int(total),
                free_memory_bytes=None if free is None else int(free),
                compute_capability=capability,
                # Ampere (8.0) and newer do bf16 in hardware; older cards only emulate it.
                supports_bf16=capability >= (8, 0),
            )
        )
    return found


def _discover_mps() -> list[DeviceInfo]:
    if not torch.backends.mps.is_available():
        return []
    total = _call_or_none(torch.mps.recommended_max_memory)
    allocated = _call_or_none(torch.mps.driver_allocated_memory)
    free = None if total is None or allocated is None else max(0, total - allocated)
    return [
        DeviceInfo(
            id="mps",
            kind="mps",
            name="Apple MPS",
            total_memory_bytes=total,
            free_memory_bytes=free,
            supports_bf16=_mps_supports_bf16(),
        )
    ]


@functools.cache
def _mps_supports_bf16() -> bool:
    # bf16 on MPS depends on the macOS version; asking the backend is the only reliable test.
    try:
        torch.ones(1, dtype=torch.bfloat16, device="mps") * 2
    except (RuntimeError, TypeError):
        return False
    return True


def _discover_cpu() -> DeviceInfo:
    machine = os.uname().machine if hasattr(os, "uname") else "cpu"
    total = _meminfo_bytes("MemTotal")
    free = _meminfo_bytes("MemAvailable")
    return DeviceInfo(
        id="cpu",
        kind="cpu",
        name=f"CPU ({machine})",
        total_memory_bytes=total,
        free_memory_bytes=free,
        cpu_cores=physical_cpu_cores(),
        cpu_threads=usable_cpu_threads(),
    )


def usable_cpu_threads() -> int:
    """Logical CPUs this process may run on (respects taskset / container CPU sets)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@functools.cache  # the sidebar asks on every rerun; cpuinfo is large on big servers
def physical_cpu_cores() -> int:
    """Physical cores, from /proc/cpuinfo on Linux; the logical count elsewhere."""
    try:
        text = open("/proc/cpuinfo").read()  # noqa: SIM115 - tiny pseudo-file
    except OSError:
        return usable_cpu_threads()
    cores = set()
    physical_id = core_id = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            core_id = value.strip()
        elif not key:  # a blank line ends one processor's block
            if core_id is not None:
                cores.add((physical_id, core_id))
            physical_id = core_id = None
    # Some virtual machines and ARM boards omit "core id": fall back to the logical count.
    return min(len(cores), usable_cpu_threads()) if cores else usable_cpu_threads()


def _meminfo_bytes(field_name: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return _psutil_virtual_memory(field_name)


def _psutil_virtual_memory(field_name: str) -> int | None:
    # Only on systems without /proc (macOS, Windows), and only if psutil happens to be there.
    try:
        import psutil
    except ImportError:
        return None
    memory = psutil.virtual_memory()
    return int(memory.total if field_name == "MemTotal" else memory.available)


def _call_or_none(function: Callable[[], int]) -> int | None:
    try:
        return int(function())
    except (RuntimeError, AttributeError):
        return None


# --------------------------------------------------------------------------------------------
# Choice
# --------------------------------------------------------------------------------------------

_CHOICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class DeviceChoice:
    """The outcome of turning a requested device into a real one."""

    device: torch.device
    requested: str  # what was asked for, after the environment override, normalised
    source: str  # "env" (AUDIO_DL_DEVICE), "session" (the user's pick) or "auto"
    reason: str  # one sentence for the user: why this device
    fell_back: bool = False  # True when the request could not be met and the CPU was used

    @property
    def forced_by_env(self) -> bool:
        return self.source == "env"


def parse_device_choice(text: str | None) -> str:
    """Normalise a typed device choice: " CUDA " -> "cuda", "GPU:1" -> "cuda:1", "" -> "auto".

    Raises ValueError with a sentence when `text` names no device kind we know.
    """
    normalised = (text or "").strip().lower().replace("gpu", "cuda")
    if not normalised:
        return AUTO
    match = _CHOICE_PATTERN.match(normalised)
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        shown = text if len(text) <= 40 else text[:40] + "..."  # keep the sentence readable
        raise ValueError(
            f"{shown!r} is not a device name: use auto, cpu, mps, cuda or cuda:N (N = GPU number)."
        )
    return normalised


def forced_device_choice(env: Mapping[str, str] | None = None) -> str | None:
    """The device fixed by AUDIO_DL_DEVICE (raw text), or None when it is unset or blank."""
    value = (os.environ if env is None else env).get(DEVICE_ENV_VAR, "").strip()
    return value or None


def choose_device(
    choice: str | None = AUTO,
    *,
    devices: Sequence[DeviceInfo] | None = None,
    env: Mapping[str, str] | None = None,
) -> DeviceChoice:
    """Resolve a requested device to one this machine has, explaining the decision.

    Args:
        choice: "auto" (default), "cpu", "mps", "cuda" (the CUDA GPU with most free memory)
            or "cuda:N". Case and surrounding spaces do not matter; "gpu" means "cuda".
        devices: what `discover_devices()` returns; pass a list to reason about another machine.
        env: the environment to read AUDIO_DL_DEVICE from (default `os.environ`). When set,
            it replaces `choice`.

    "auto" picks the CUDA GPU with the most free memory, else MPS, else the CPU. A choice that
    is unknown or not present on this machine falls back to the CPU, with `fell_back=True`
    and the reason in `.reason`.
    """
    devices = list(discover_devices() if devices is None else devices)
    forced = forced_device_choice(env)
    raw, source = (forced, "env") if forced is not None else (choice, "session")
    try:
        requested = parse_device_choice(raw)
    except ValueError as error:
        return _cpu_fallback(str(raw), source, f"{error} Using the CPU.")
    if requested == AUTO:
        return _auto_choice(devices, source="env" if forced is not None else AUTO)
    if requested == "cuda":
        cuda = [d for d in devices if d.kind == "cuda"]
        if cuda:
            return _auto_choice(cuda, source=source, requested="cuda")
    elif any(d.id == requested for d in devices):
        where = "set by the server (AUDIO_DL_DEVICE)" if source == "env" else "your choice"
        return DeviceChoice(torch.device(requested), requested, source, f"{requested}: {where}.")
    present = ", ".join(d.id for d in devices) or "cpu"
    return _cpu_fallback(
        requested, source, f"{requested} is not available here (found: {present}); using the CPU."
    )


def resolve_device(choice: str | None = AUTO) -> torch.device:
    """The device to run on for `choice` (see `choose_device`); never raises for a bad choice."""
    return choose_device(choice).device


def _auto_choice(
    devices: Sequence[DeviceInfo], *, source: str, requested: str = AUTO
) -> DeviceChoice:
    cuda = [d for d in devices if d.kind == "cuda"]
    if cuda:
        # Most free memory wins; unknown free memory counts as none; ties go to the lower index.
        best = max(cuda, key=lambda d: (d.free_memory_bytes or 0, -_cuda_index(d.id)))
        free = f", {format_bytes(best.free_memory_bytes)} free" if best.free_memory_bytes else ""
        reason = f"{best.id} ({best.name}{free}): the GPU with the most free memory."
        return DeviceChoice(best.device, requested, source, reason)
    if any(d.kind == "mps" for d in devices):
        return DeviceChoice(torch.device("mps"), requested, source, "mps: Apple's GPU.")
    return DeviceChoice(torch.device("cpu"), requested, source, "cpu: no GPU found.")


def _cpu_fallback(requested: str, source: str, reason: str) -> DeviceChoice:
    return DeviceChoice(torch.device("cpu"), requested, source, reason, fell_back=True)


def _cuda_index(device_id: str) -> int:
    return int(device_id.partition(":")[2] or 0)


# --------------------------------------------------------------------------------------------
# Live memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryStats:
    """Memory of one device in bytes, None where the backend cannot tell.

    On CUDA, `allocated` is what live tensors use and `reserved` what PyTorch's caching
    allocator holds; `free`/`total` are the whole card (other processes included). On the CPU,
    `allocated` is this process's resident memory (RSS, shown as "app"), `reserved` is None,
    `free` is what the system can still give (MemAvailable) and `total` the installed memory.
    """

    device: str
    allocated_bytes: int | None
    reserved_bytes: int | None
    free_bytes: int | None
    total_bytes: int | None

    def summary(self) -> str:
        """E.g. "allocated 1.2 GB · reserved 2.0 GB · free 70.1 of 79.6 GB"."""
        parts = []
        if self.allocated_bytes is not None:
            what = "app" if self.device == "cpu" else "allocated"
            parts.append(f"{what} {format_bytes(self.allocated_bytes)}")
        if self.reserved_bytes is not None:
            parts.append(f"reserved {format_bytes(self.reserved_bytes)}")
        if self.free_bytes is not None and self.total_bytes:
            parts.append(
                f"free {format_bytes(self.free_bytes)} of {format_bytes(self.total_bytes)}"
            )
        return " · ".join(parts) or "memory unknown"


def memory_stats(device: torch.device | str) -> MemoryStats:
    """Live memory for `device` (see `MemoryStats` for what each number means)."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        return MemoryStats(
            f"cuda:{index}",
            int(torch.cuda.memory_allocated(index)),
            int(torch.cuda.memory_reserved(index)),
            int(free),
            int(total),
        )
    if device.type == "mps":
        total = _call_or_none(torch.mps.recommended_max_memory)
        reserved = _call_or_none(torch.mps.driver_allocated_memory)
        free = None if total is None or reserved is None else max(0, total - reserved)
        allocated = _call_or_none(torch.mps.current_allocated_memory)
        return MemoryStats("mps", allocated, reserved, free, total)
    return MemoryStats(
        "cpu",
        process_rss_bytes(),
        None,
        _meminfo_bytes("MemAvailable"),
        _meminfo_bytes("MemTotal"),
    )


def process_rss_bytes() -> int | None:
    """This process's resident memory in bytes (Linux /proc; psutil elsewhere if present)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def format_bytes(n: int | float | None) -> str:
    """Human-readable bytes with decimal units: 1_500_000 -> "1.5 MB"."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


# --------------------------------------------------------------------------------------------
# Precision policy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecisionPolicy:
    """How a device computes: parameters stay fp32; autocast (if any) lowers matmuls/convs."""

    device_type: str  # "cuda", "mps" or "cpu"
    autocast_dtype: torch.dtype | None  # torch.bfloat16, torch.float16, or None (plain fp32)
    tf32: bool  # fp32 matmuls/convs may use TensorFloat-32 (CUDA, Ampere and newer)

    @property
    def summary(self) -> str:
        """One line for the user, e.g. "bf16 autocast · TF32 matmuls"."""
        names = {torch.bfloat16: "bf16", torch.float16: "fp16"}
        main = f"{names[self.autocast_dtype]} autocast" if self.autocast_dtype else "fp32"
        return f"{main} · TF32 matmuls" if self.tf32 else main


def precision_policy(device: torch.device | str | DeviceInfo) -> PrecisionPolicy:
    """The precision policy for a device.

    - CUDA: bf16 autocast where the GPU supports bf16 (compute capability >= 8.0), else fp16
      (which needs a gradient scaler when training); TF32 on Ampere (8.0) and newer.
    - MPS: fp16 autocast when this torch supports autocast on MPS, else fp32.
    - CPU: fp32 (CPU autocast is slower than fp32 on most student machines).
    """
    info = device if isinstance(device, DeviceInfo) else _info_for(torch.device(device))
    if info.kind == "cuda":
        capability = info.compute_capability or (0, 0)
        dtype = torch.bfloat16 if info.supports_bf16 else torch.float16
        return PrecisionPolicy("cuda", dtype, tf32=capability >= (8, 0))
    if info.kind == "mps":
        dtype = torch.float16 if torch.amp.is_autocast_available("mps") else None
        return PrecisionPolicy("mps", dtype, tf32=False)
    return PrecisionPolicy("cpu", None, tf32=False)


def _info_for(device: torch.device) -> DeviceInfo:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return DeviceInfo(
            f"cuda:{index}",
            "cuda",
            torch.cuda.get_device_name(index),
            compute_capability=(major, minor),
            supports_bf16=(major, minor) >= (8, 0),
        )
    if device.type == "mps":
        return DeviceInfo("mps", "mps", "Apple MPS")
    return DeviceInfo("cpu", "cpu", "CPU")


def autocast_context(
    device: torch.device | str, enabled: bool = True
) -> contextlib.AbstractContextManager:
    """Autocast for `device` following `precision_policy`; a no-op context on the CPU.

    Use it around forward passes and losses (not around `backward()` or optimizer steps):

        with autocast_context(device):
            loss = criterion(model(x), y)
    """
    if not enabled:
        return contextlib.nullcontext()
    policy = precision_policy(device)
    if policy.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=policy.device_type, dtype=policy.autocast_dtype)


def configure_tf32(device: torch.device | str | DeviceInfo) -> bool:
    """Allow TF32 for fp32 matmuls and convolutions when the policy says so; returns it.

    This is process-wide torch state; it only affects CUDA kernels, so setting it for one
    GPU does not change CPU or MPS results.
    """
    enabled = precision_policy(device).tf32
    precision = "tf32" if enabled else "ieee"
    # torch >= 2.9's per-backend API; mixing it with the legacy allow_tf32 flags is an error.
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.conv.fp32_precision = precision
    return enabled


def needs_grad_scaler(policy: PrecisionPolicy) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    return policy.autocast_dtype == torch.float16


def make_grad_scaler(policy: PrecisionPolicy) -> torch.amp.GradScaler:
    """A GradScaler that is active only when the policy needs one.

    A disabled scaler passes losses and steps through unchanged, so training code can always
    write `scaler.scale(loss).backward(); scaler.step(opt); scaler.update()`.
    """
    return torch.amp.GradScaler(policy.device_type, enabled=needs_grad_scaler(policy))


# --------------------------------------------------------------------------------------------
# Out-of-memory recovery
# --------------------------------------------------------------------------------------------

# torch.cuda.OutOfMemoryError is an alias of torch.OutOfMemoryError (also raised by MPS).
OOM_ERROR_TYPES: tuple[type[BaseException], ...] = (torch.OutOfMemoryError,)


class OutOfMemoryEverywhere(RuntimeError):
    """The step ran out of memory at the smallest batch on every device tried."""

    def __init__(self, messages: Sequence[str]):
        self.messages = tuple(messages)
        super().__init__(
            "Out of memory even at the smallest batch on every device; "
            "try a smaller model, shorter clips or fewer frames per batch."
        )


@dataclass(frozen=True)
class OomOutcome(Generic[T]):
    """What `run_with_oom_fallback` ran in the end."""

    value: T  # the step's return value
    batch_size: int  # the batch size that succeeded
    device: torch.device  # the device it succeeded on
    messages: tuple[str, ...] = field(default=())  # one sentence per retry, for the user

    @property
    def recovered(self) -> bool:
        return bool(self.messages)


def is_out_of_memory(
    error: BaseException, oom_types: tuple[type[BaseException], ...] = OOM_ERROR_TYPES
) -> bool:
    """True for torch's out-of-memory errors and RuntimeErrors saying "out of memory"."""
    if isinstance(error, oom_types):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def free_device_memory(device: torch.device | str) -> None:
    """Drop unreachable tensors and return the caching allocator's blocks to the driver."""
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        with torch.cuda.device(device):
            torch.cuda.empty_cache()
    elif device.type == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def run_with_oom_fallback(
    step: Callable[[int, torch.device], T],
    *,
    batch_size: int,
    device: torch.device | str,
    min_batch_size: int = 1,
    fallback_device: torch.device | str | None = "cpu",
    oom_types: tuple[type[BaseException], ...] = OOM_ERROR_TYPES,
    on_message: Callable[[str], None] | None = None,
) -> OomOutcome[T]:
    """Run `step(batch_size, device)`, halving the batch on out-of-memory, then using the CPU.

    Args:
        step: does the work for one batch size on one device and returns its result. It is
            called again from scratch after an out-of-memory error, so it must not depend on
            a previous attempt (move the model to the `device` it is given).
        batch_size: the batch size to try first (>= 1).
        device: the device to try first.
        min_batch_size: the floor; a batch never goes below it (default 1).
        fallback_device: where to go after the floor (default the CPU, starting again from
            `batch_size`); None to give up instead.
        oom_types: exception types treated as out-of-memory (besides RuntimeErrors whose
            message says "out of memory"); tests pass their own.
        on_message: called with each retry's sentence as it happens (e.g. to show progress).

    Returns an `OomOutcome` with the value, the batch size and device that worked, and one
    sentence per retry. Raises `OutOfMemoryEverywhere` when every device fails at the floor;
    any other exception from `step` propagates unchanged.
    """
    if batch_size < 1 or min_batch_size < 1:
        raise ValueError("batch_size and min_batch_size must be at least 1.")
    device = torch.device(device)
    plan = [device]
    if fallback_device is not None and torch.device(fallback_device) != device:
        plan.append(torch.device(fallback_device))
    messages: list[str] = []

    def note(message: str) -> None:
        messages.append(message)
        if on_message is not None:
            on_message(message)

    for position, current in enumerate(plan):
        batch = max(batch_size, min_batch_size)
        while True:
            failed = False
            try:
                value = step(batch, current)
            except BaseException as error:
                if not is_out_of_memory(error, oom_types):
                    raise
                failed = True
            # Outside the except block: the traceback (and the tensors its frames hold) is
            # gone, so emptying the cache can actually return that memory.
            if not failed:
                return OomOutcome(value, batch, current, tuple(messages))
            free_device_memory(current)
            if batch // 2 >= min_batch_size:
                note(f"Out of memory on {current} with batch {batch}; retrying with {batch // 2}.")
                batch //= 2
                continue
            if position + 1 < len(plan):
                following = plan[position + 1]
                note(
                    f"Out of memory on {current} even with batch {batch}; "
                    f"continuing on {following} with batch {max(batch_size, min_batch_size)} "
                    "(slower, but it will finish)."
                )
            else:
                note(f"Out of memory on {current} even with batch {batch}.")
            break
    raise OutOfMemoryEverywhere(messages)


# --------------------------------------------------------------------------------------------
# Per-device job slots
# --------------------------------------------------------------------------------------------


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
