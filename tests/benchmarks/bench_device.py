"""Does the precision policy pick the faster option? And what does a job slot cost?

On the resolved device (AUDIO_DL_DEVICE or "auto") a small CNN over log-mel-sized input
trains for a few steps three ways, side by side in one run: plain fp32, the policy
(`autocast_context`), and the autocast dtype the policy turns down on this device (bf16 on
the CPU; fp16 vs bf16 on a GPU). Ratios > 1 mean "slower than the policy". Then the cost of
entering and leaving `job_slot` against a bare lock, per job.

Run: `.venv/bin/python -m tests.benchmarks device`
"""

from __future__ import annotations

import contextlib
import threading
import time

import torch

from core.devices import (
    DeviceJobLimiter,
    autocast_context,
    configure_tf32,
    precision_policy,
    resolve_device,
)

BATCH, MELS, FRAMES, STEPS = 16, 64, 128, 4


def _model(device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    ).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _train_seconds(device: torch.device, context) -> float:
    """Median seconds per training step under `context()` (after one warm-up step)."""
    model = _model(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(BATCH, 1, MELS, FRAMES, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)
    times = []
    for step in range(STEPS + 1):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad()
        with context():
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
        _sync(device)
        if step:  # the first step pays for kernel selection and allocation
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _declined_dtype(device: torch.device, chosen: torch.dtype | None) -> torch.dtype | None:
    if device.type == "cpu":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.float16 if chosen == torch.bfloat16 else torch.bfloat16
    return None


def _precision(device: torch.device) -> None:
    policy = precision_policy(device)
    configure_tf32(device)
    print(f"device {device}: policy {policy.summary}")
    policy_s = _train_seconds(device, lambda: autocast_context(device))
    fp32_s = _train_seconds(device, contextlib.nullcontext)
    print(f"  policy      {policy_s * 1000:8.1f} ms/step")
    print(f"  plain fp32  {fp32_s * 1000:8.1f} ms/step   ratio to policy {fp32_s / policy_s:5.2f}")
    declined = _declined_dtype(device, policy.autocast_dtype)
    if declined is not None:
        other_s = _train_seconds(
            device, lambda: torch.autocast(device_type=device.type, dtype=declined)
        )
        name = str(declined).removeprefix("torch.")
        print(
            f"  {name:<11} {other_s * 1000:8.1f} ms/step   "
            f"ratio to policy {other_s / policy_s:5.2f}"
        )


def _slot_overhead(jobs: int = 2000) -> None:
    limiter = DeviceJobLimiter({"cpu": 1})
    lock = threading.Lock()
    start = time.perf_counter()
    for _ in range(jobs):
        with lock:
            pass
    bare = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(jobs):
        with limiter.job_slot("cpu", "bench"):
            pass
    slot = time.perf_counter() - start
    print(
        f"job_slot enter+leave: {slot / jobs * 1e6:.1f} µs per job "
        f"({slot / bare:.0f}x a bare lock; negligible next to any training step)"
    )


def main() -> None:
    device = resolve_device("auto")
    _precision(device)
    _slot_overhead()


if __name__ == "__main__":
    main()
