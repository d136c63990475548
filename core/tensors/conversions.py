"""Conversions between tensors, NumPy and Python, and between dtypes, with what each loses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

CAST_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
}
EXAMPLE_VALUES = (0.1, 1 / 3, 2.5, -2.7, 1000.1, 4097.0, 70000.0, 1e-8, 0.000123)


@dataclass(frozen=True)
class CastRow:
    value: float  # the exact input (a Python float, i.e. float64)
    dtype: str
    stored: float | None  # what the dtype holds, read back as float64 (None when undefined)
    abs_error: float | None
    note: str  # "exact", "rounded", "overflow to inf", "truncated toward zero", ...


def _int_range(dtype: torch.dtype) -> tuple[int, int]:
    info = torch.iinfo(dtype)
    return info.min, info.max


def cast_value(value: float, dtype_name: str) -> CastRow:
    """Store `value` in dtype `dtype_name` and read it back: the value kept and the error."""
    dtype = CAST_DTYPES[dtype_name]
    if not dtype.is_floating_point:
        low, high = _int_range(dtype)
        if not low <= value <= high:
            # Out-of-range float to int is undefined behaviour in C++: torch's answer varies by
            # machine, so the honest table says so instead of printing it.
            return CastRow(
                value, dtype_name, None, None, f"does not fit in {low}..{high}: undefined"
            )
    stored = float(torch.tensor(value, dtype=torch.float64).to(dtype).double())
    error = abs(stored - value)
    if stored == value:
        note = "exact"
    elif np.isinf(stored):
        note = "overflow to inf"
    elif not dtype.is_floating_point:
        note = "truncated toward zero"
    elif stored == 0.0:
        note = "underflow to 0"
    else:
        note = "rounded"
    return CastRow(value, dtype_name, stored, error, note)


def cast_table(
    values: Sequence[float] = EXAMPLE_VALUES, dtypes: Sequence[str] = tuple(CAST_DTYPES)
) -> list[CastRow]:
    """cast_value for every value and dtype, values outer."""
    return [cast_value(float(v), d) for v in values for d in dtypes]


@dataclass(frozen=True)
class DtypeFacts:
    name: str
    bits: int
    kind: str  # "float" or "int"
    max: float
    smallest: float  # smallest positive normal (float) or min (int)
    eps: float | None  # gap between 1 and the next value (float only)
    digits: float | None  # about how many significant decimal digits


def dtype_facts(dtype_name: str) -> DtypeFacts:
    """Range and precision of a dtype from torch.finfo / torch.iinfo."""
    dtype = CAST_DTYPES[dtype_name]
    bits = dtype.itemsize * 8
    if dtype.is_floating_point:
        info = torch.finfo(dtype)
        return DtypeFacts(
            dtype_name, bits, "float", info.max, info.tiny, info.eps, float(-np.log10(info.eps))
        )
    info = torch.iinfo(dtype)
    return DtypeFacts(dtype_name, bits, "int", float(info.max), float(info.min), None, None)


def audio_precision(samples: np.ndarray, dtype_name: str) -> tuple[np.ndarray, float, float]:
    """Store a float32 clip (-1..1) in `dtype_name` and back: (restored, max error, SNR in dB).

    Integer dtypes store audio the way WAV files do: scaled to the full integer range
    (int16: x * 32767) and rounded.
    """
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    dtype = CAST_DTYPES[dtype_name]
    if dtype.is_floating_point:
        restored = x.to(dtype).float()
    else:
        low, high = _int_range(dtype)
        scale = float(high) if low < 0 else (high - low) / 2.0
        offset = 0.0 if low < 0 else scale
        stored = torch.round(x.clamp(-1, 1) * scale + offset).to(dtype)
        restored = (stored.double() - offset).div(scale).float()
    error = (restored - x).double()
    noise = float(error.pow(2).mean())
    signal = float(x.double().pow(2).mean())
    snr = float("inf") if noise == 0 else float(10 * np.log10(max(signal, 1e-30) / noise))
    return restored.numpy(), float(error.abs().max()) if error.numel() else 0.0, snr


@dataclass(frozen=True)
class RoundTrip:
    code: str
    type_name: str
    value_text: str
    note: str


def round_trips(value: float = 0.1) -> list[RoundTrip]:
    """A Python float through float32 tensors, NumPy, .item() and .tolist(), with the loss."""
    t32 = torch.tensor([value], dtype=torch.float32)
    t64 = torch.tensor([value], dtype=torch.float64)
    back = t32.item()
    return [
        RoundTrip("v", "float (Python, 64-bit)", repr(value), "Python floats are float64"),
        RoundTrip(
            "torch.tensor([v])",
            "float32 tensor",
            f"{float(t32[0]):.17g}",
            "rounded to 24 significant bits",
        ),
        RoundTrip(
            "torch.tensor([v], dtype=torch.float64)",
            "float64 tensor",
            f"{float(t64[0]):.17g}",
            "exact: same format as Python",
        ),
        RoundTrip(
            "t.numpy()",
            str(t32.numpy().dtype),
            repr(t32.numpy()),
            "same memory, same float32 value",
        ),
        RoundTrip(
            "t.item()",
            type(back).__name__,
            repr(back),
            "float32 widened to float64: keeps the float32 error",
        ),
        RoundTrip("t.tolist()", "list", repr(t32.tolist()), "Python floats, a copy"),
        RoundTrip(
            "t.half().item()", "float", repr(t32.half().item()), "float16 keeps about 3 digits"
        ),
        RoundTrip(
            "t.bfloat16().item()",
            "float",
            repr(t32.bfloat16().item()),
            "bfloat16 keeps about 2 digits, float32's range",
        ),
        RoundTrip(
            "int(torch.tensor(-2.7))",
            "int",
            repr(int(torch.tensor(-2.7))),
            "int() truncates toward zero",
        ),
    ]


@dataclass(frozen=True)
class BridgeStep:
    code: str
    array: tuple[float, ...]  # the NumPy array a
    shared: tuple[float, ...]  # torch.from_numpy(a)
    copied: tuple[float, ...]  # torch.tensor(a)
    as_tensor: tuple[float, ...]  # torch.as_tensor(a)


def numpy_bridge_demo() -> tuple[dict[str, bool], list[BridgeStep]]:
    """From NumPy to torch, run for real: `torch.from_numpy(a)` (and `torch.as_tensor(a)` for
    a CPU array of a torch dtype) wrap a's memory, `torch.tensor(a)` always copies.

    Returns ({constructor: shares a's memory}, the values of every object after each step).
    """
    a = np.arange(4, dtype=np.float32)
    shared, copied, as_tensor = torch.from_numpy(a), torch.tensor(a), torch.as_tensor(a)
    address = a.__array_interface__["data"][0]
    sharing = {
        "torch.from_numpy(a)": shared.data_ptr() == address,
        "torch.tensor(a)": copied.data_ptr() == address,
        "torch.as_tensor(a)": as_tensor.data_ptr() == address,
    }

    def step(code: str) -> BridgeStep:
        return BridgeStep(
            code,
            tuple(a.tolist()),
            tuple(shared.tolist()),
            tuple(copied.tolist()),
            tuple(as_tensor.tolist()),
        )

    steps = [step("a = np.arange(4, dtype=np.float32)")]
    a[0] = 100.0
    steps.append(step("a[0] = 100"))
    shared.mul_(2)
    steps.append(step("torch.from_numpy(a).mul_(2)"))
    return sharing, steps


# torch's refusal for a tensor on a GPU (the device name filled in), shown on machines without
# one; tests check it against the same refusal for a tensor on the "meta" device.
GPU_NUMPY_ERROR = (
    "TypeError: can't convert {device} device type tensor to numpy. Use Tensor.cpu() to copy "
    "the tensor to host memory first."
)


@dataclass(frozen=True)
class NumpyAttempt:
    code: str
    ok: bool
    result: str  # the array's repr, or torch's real error "TypeName: message"


def to_numpy_attempts(device: torch.device | str = "cpu") -> list[NumpyAttempt]:
    """`.numpy()` on a tensor that requires grad, and (when `device` is not the CPU) on a
    tensor on that device, each run for real, then the recipe that always works:
    `.detach().cpu().numpy()`.
    """
    device = torch.device(device)
    w = torch.ones(3, requires_grad=True)
    attempts: list[tuple[str, object]] = [
        ("w.numpy()", lambda: w.numpy()),
        ("w.detach().numpy()", lambda: w.detach().numpy()),
    ]
    if device.type != "cpu":
        on_device = w.detach().to(device)
        attempts += [
            (f"w.detach().to('{device}').numpy()", lambda: on_device.numpy()),
            (f"w.detach().to('{device}').cpu().numpy()", lambda: on_device.cpu().numpy()),
        ]
    else:
        attempts.append(("w.detach().cpu().numpy()", lambda: w.detach().cpu().numpy()))
    results = []
    for code, attempt in attempts:
        try:
            results.append(NumpyAttempt(code, True, repr(attempt())))
        except (RuntimeError, TypeError) as error:
            message = str(error).splitlines()[0]
            results.append(NumpyAttempt(code, False, f"{type(error).__name__}: {message}"))
    return results
