"""The one precision policy: autocast dtype, TF32 and gradient scaling per device."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from core.devices.hardware import DeviceInfo


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
