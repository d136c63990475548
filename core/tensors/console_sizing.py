"""Sizing every console operation before it runs, so no expression can exhaust the server.

Each function estimates the elements, bytes or multiply-adds an operation would produce from
the shapes of its arguments and charges them to the expression's `Budget`, raising
`ConsoleError` before torch is called when a limit would be passed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from core.tensors.broadcasting import explain_broadcast
from core.tensors.console_rules import ConsoleError, ConsoleLimits
from core.tensors.matmul import explain_matmul_shapes

# --- values the interpreter passes around


class TorchNamespace:
    """What the name `torch` means inside the console: only the allow-listed attributes."""

    def __repr__(self) -> str:
        return "torch (console allow-list)"


TORCH = TorchNamespace()


@dataclass(frozen=True)
class AllowedCallable:
    """An allow-listed function or bound tensor method, with the rule that sizes its output."""

    name: str  # as the student wrote it, for messages
    func: Callable[..., Any]
    rule: str  # "same", "broadcast", "matmul", "creator", "special"
    owner: torch.Tensor | None = None  # the tensor a method is bound to


SCALARS = (bool, int, float, complex)


class Budget:
    """Per-expression counters: bytes created, work done, and the deadline."""

    def __init__(self, limits: ConsoleLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.work = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def tick(self) -> None:
        if time.monotonic() >= self.deadline:
            raise ConsoleError(
                f"the expression took longer than {self.limits.max_seconds:g} s and was stopped"
            )

    def charge(self, elements: int, itemsize: int, what: str, work: int | None = None) -> None:
        """Refuse before computing when one tensor or the whole expression would be too big."""
        limits = self.limits
        if elements > limits.max_elements:
            raise ConsoleError(
                f"{what} would have {elements:,} elements; the console allows at most "
                f"{limits.max_elements:,} per tensor"
            )
        new_bytes = self.bytes + elements * itemsize
        if new_bytes > limits.max_total_bytes:
            raise ConsoleError(
                f"{what} would bring this expression to {new_bytes / 2**20:.0f} MB of tensors; "
                f"the console allows {limits.max_total_bytes / 2**20:.0f} MB per expression"
            )
        new_work = self.work + (elements if work is None else work)
        if new_work > limits.max_work:
            raise ConsoleError(
                f"this expression needs more than {limits.max_work:,} element operations; "
                "the console stops earlier so the server stays responsive for everyone"
            )
        self.bytes, self.work = new_bytes, new_work


# --- size estimation helpers


def _shape_of(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, SCALARS):
        return ()
    return None


def dtype_itemsize(dtype: Any, default: int = 8) -> int:
    return dtype.itemsize if isinstance(dtype, torch.dtype) else default


def _as_dims(values: Any, what: str) -> tuple[int, ...]:
    """Sizes given as ints, or one tuple/list/torch.Size of ints; anything else is refused."""
    if len(values) == 1 and isinstance(values[0], tuple | list | torch.Size):
        values = tuple(values[0])
    dims = tuple(values)
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ConsoleError(f"the sizes of {what} must be whole numbers, got {dim!r}")
        if dim < -1:
            raise ConsoleError(f"the sizes of {what} cannot be negative, got {dim}")
    return dims


def prod(dims: Any) -> int:
    return math.prod(max(int(d), 0) for d in dims)


def creator_elements(name: str, args: tuple, kwargs: dict) -> int:
    """How many elements torch.<name>(*args, **kwargs) would create, computed without creating."""
    what = f"torch.{name}"
    if name in {"zeros", "ones", "rand", "randn"}:
        return prod(_as_dims(args, what))
    if name == "full":
        if not args:
            raise ConsoleError("torch.full takes the size first, e.g. torch.full((2, 3), 7.0)")
        return prod(_as_dims((args[0],), what))
    if name == "eye":
        n = args[0] if args else kwargs.get("n", 0)
        m = args[1] if len(args) > 1 else kwargs.get("m", n)
        return prod(_as_dims((n, m), what))
    if name == "linspace":
        steps = args[2] if len(args) > 2 else kwargs.get("steps", 0)
        return prod(_as_dims((steps,), what))
    # arange(end) / arange(start, end[, step])
    numbers = list(args) + [kwargs[k] for k in ("start", "end", "step") if k in kwargs]
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ConsoleError("torch.arange takes plain numbers for start, end and step")
    start, end, step = 0, 0, 1
    if len(args) == 1:
        end = args[0]
    elif len(args) >= 2:
        start, end = args[0], args[1]
        step = args[2] if len(args) > 2 else kwargs.get("step", 1)
    start, end, step = kwargs.get("start", start), kwargs.get("end", end), kwargs.get("step", step)
    if step == 0:
        raise ConsoleError("torch.arange needs a step that is not zero")
    count = (end - start) / step
    if not math.isfinite(count):
        raise ConsoleError("torch.arange needs finite start, end and step")
    return max(math.ceil(count), 0)


def matmul_check(a: Any, b: Any, name: str, budget: Budget) -> None:
    a_shape, b_shape = _shape_of(a), _shape_of(b)
    if a_shape is None or b_shape is None:
        return  # torch raises its own type error, explained by explain_torch_error
    if a_shape == () or b_shape == ():
        raise ConsoleError(
            f"{name} needs tensors with at least one dimension; a single number is scaled "
            "with `*` instead"
        )
    report = explain_matmul_shapes(a_shape, b_shape, names=("the left", "the right"))
    if not report.ok:
        raise ConsoleError(report.message)
    if report.macs > budget.limits.max_macs:
        raise ConsoleError(
            f"{name} of {a_shape} and {b_shape} needs {report.macs:,} multiply-adds; the console "
            f"allows {budget.limits.max_macs:,} per product"
        )
    itemsize = max(
        dtype_itemsize(getattr(a, "dtype", None), 4), dtype_itemsize(getattr(b, "dtype", None), 4)
    )
    budget.charge(prod(report.out_shape), itemsize, f"the result of {name}", work=report.macs)


def broadcast_check(values: list[Any], name: str, budget: Budget) -> None:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return
    shapes = [_shape_of(v) for v in values if _shape_of(v) is not None]
    result_shape = broadcast_shape(shapes)
    if result_shape is None:
        raise ConsoleError(f"{name}: {explain_broadcast(*shapes).message}")
    itemsize = max(t.element_size() for t in tensors)
    budget.charge(prod(result_shape), max(itemsize, 1), f"the result of {name}")


def broadcast_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    """torch's broadcast shape (no memory touched), or None; the explanation is built only
    when it is needed, because it costs more than the check."""
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        return None


def _tensor_list(value: Any, what: str) -> list[torch.Tensor]:
    if not isinstance(value, tuple | list) or not all(isinstance(v, torch.Tensor) for v in value):
        raise ConsoleError(f"{what} takes a list of tensors, such as [A, B]")
    return list(value)


def special_check(
    name: str, owner: torch.Tensor | None, args: tuple, kwargs: dict, budget: Budget
) -> None:
    """Size the functions whose output can be much larger than their inputs."""
    if name in {"repeat", "tile"} and owner is not None:
        reps = _as_dims(args, f".{name}")
        budget.charge(prod(reps) * owner.numel(), owner.element_size(), f".{name}{tuple(reps)}")
    elif name in {"expand", "broadcast_to"}:
        tensor = owner if owner is not None else args[0]
        sizes = args if owner is not None else args[1:]
        dims = _as_dims(sizes, name)
        if not isinstance(tensor, torch.Tensor):
            raise ConsoleError(f"{name} works on a tensor")
        # An expanded view costs no memory, but anything computed from it does: count it as if
        # it were materialised, so `.expand(...)` cannot smuggle a huge tensor past the caps.
        aligned = list(tensor.shape)[::-1] + [1] * (len(dims) - tensor.dim())
        target = [a if d == -1 else d for d, a in zip(dims[::-1], aligned, strict=False)]
        budget.charge(prod(target), tensor.element_size(), f"{name}{tuple(dims)}")
    elif name in {"outer", "kron"}:
        if len(args) < 2 or not all(isinstance(a, torch.Tensor) for a in args[:2]):
            raise ConsoleError(f"torch.{name} takes two tensors")
        budget.charge(args[0].numel() * args[1].numel(), 8, f"torch.{name}")
    elif name in {"cat", "stack"}:
        tensors = _tensor_list(args[0] if args else kwargs.get("tensors"), f"torch.{name}")
        budget.charge(sum(t.numel() for t in tensors), 8, f"torch.{name}")
    elif name == "diag":
        tensor = args[0] if args else None
        if not isinstance(tensor, torch.Tensor):
            raise ConsoleError("torch.diag takes a tensor")
        size = tensor.numel() ** 2 if tensor.dim() == 1 else tensor.numel()
        budget.charge(size, tensor.element_size(), "torch.diag")
    elif name == "tensor":
        data = args[0] if args else None
        _check_literal_data(data, budget)


def _check_literal_data(data: Any, budget: Budget) -> None:
    count = count_items(data)
    if count > budget.limits.max_list_items:
        raise ConsoleError(f"torch.tensor of {count:,} values is more than the console allows")


def count_items(data: Any, *, tensors_count: bool = True) -> int:
    """Leaves of nested lists/tuples; a tensor counts as its numel (or as 1 when it is an
    item of a result such as torch.sort's (values, indices), whose tensors are checked apart)."""
    if isinstance(data, list | tuple):
        return sum(count_items(item, tensors_count=tensors_count) for item in data)
    if isinstance(data, torch.Tensor) and tensors_count:
        return data.numel()
    return 1
