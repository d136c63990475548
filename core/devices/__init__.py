"""The one place that decides which device runs the work, and how (public interface).

Everything else receives a `torch.device` and uses the helpers here:

- `discover_devices()` lists every CUDA GPU, Apple's MPS and the CPU as `DeviceInfo`;
- `choose_device(choice)` / `resolve_device(choice)` turn the user's choice ("auto", "cpu",
  "cuda:1", "mps") into a device; `AUDIO_DL_DEVICE` in the environment overrides the choice,
  so a server or CI fixes the device for everyone;
- `memory_stats(device)` reads live memory (allocated, reserved, free, total);
- `precision_policy(device)` / `autocast_context(device)` / `configure_tf32(device)` /
  `make_grad_scaler(policy)` are the single precision policy for training and inference;
- `run_with_oom_fallback(step, ...)` retries a step with half the batch on out-of-memory and
  past a floor moves it to the CPU, recording why.

The code lives in this package's modules by concern (hardware, choice, precision, oom); the
rest of the app imports from `core.devices`. How many jobs run at once is Ray's to schedule
(core.jobs).
"""

from __future__ import annotations

from core.devices.choice import (
    AUTO,
    DEVICE_ENV_VAR,
    DeviceChoice,
    choose_device,
    forced_device_choice,
    parse_device_choice,
    resolve_device,
)
from core.devices.hardware import (
    DeviceInfo,
    MemoryStats,
    discover_devices,
    format_bytes,
    memory_stats,
    physical_cpu_cores,
    process_rss_bytes,
    usable_cpu_threads,
)
from core.devices.oom import (
    OOM_ERROR_TYPES,
    OomOutcome,
    OutOfMemoryEverywhere,
    free_device_memory,
    is_out_of_memory,
    run_with_oom_fallback,
)
from core.devices.precision import (
    PrecisionPolicy,
    autocast_context,
    configure_tf32,
    make_grad_scaler,
    needs_grad_scaler,
    precision_policy,
)

__all__ = [
    "AUTO",
    "DEVICE_ENV_VAR",
    "DeviceChoice",
    "DeviceInfo",
    "MemoryStats",
    "OOM_ERROR_TYPES",
    "OomOutcome",
    "OutOfMemoryEverywhere",
    "PrecisionPolicy",
    "autocast_context",
    "choose_device",
    "configure_tf32",
    "discover_devices",
    "forced_device_choice",
    "format_bytes",
    "free_device_memory",
    "is_out_of_memory",
    "make_grad_scaler",
    "memory_stats",
    "needs_grad_scaler",
    "parse_device_choice",
    "physical_cpu_cores",
    "precision_policy",
    "process_rss_bytes",
    "resolve_device",
    "run_with_oom_fallback",
    "usable_cpu_threads",
]
