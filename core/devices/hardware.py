"""What this machine offers: CUDA GPUs, Apple MPS and the CPU, and how full they are."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch


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
    # psutil is optional (not in requirements.txt): used only where it is installed.
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
