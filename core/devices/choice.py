"""Turning a requested device ("auto", "cpu", "cuda:1", "mps") into one this machine has."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from core.devices.hardware import DeviceInfo, discover_devices, format_bytes

DEVICE_ENV_VAR = "AUDIO_DL_DEVICE"
AUTO = "auto"


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
