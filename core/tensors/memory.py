"""Names, storage and the version counter: live experiments on what assignment and views share.

Every experiment really runs the statement on fresh tensors and reports what torch says
(`data_ptr`, `_version`, values), so the explanation can never drift from the behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


def _alias(ns: dict) -> None:
    ns["Y"] = ns["X"]


def _add_in_place(ns: dict) -> None:
    y = ns["Y"]
    y += ns["X"]
    ns["Y"] = y


def _slice_assign(ns: dict) -> None:
    ns["Y"][:] = ns["Y"] + ns["X"]


def _rebind_to_new(ns: dict) -> None:
    ns["Y"] = ns["Y"] + ns["X"]


ASSIGNMENT_STATEMENTS: dict[str, Callable[[dict], None]] = {
    "Y = X": _alias,
    "Y += X": _add_in_place,
    "Y[:] = Y + X": _slice_assign,
    "Y = Y + X": _rebind_to_new,
}

ASSIGNMENT_EXPLANATIONS = {
    "Y = X": "Assignment never copies: Y becomes a second name for X's memory. Nothing is "
    "computed; Y_old still names the old Y. Change X in place now and Y changes too.",
    "Y += X": "In place: the sum is written into Y's own memory. Same data_ptr, the version "
    "counter moves, and every name for that memory (Y_old too) sees the new values.",
    "Y[:] = Y + X": "Y + X is computed into a temporary tensor, then copied into Y's memory "
    "slot by slot: the same storage as before, version counter moved, Y_old sees it too.",
    "Y = Y + X": "Y + X makes a new tensor in new memory and the name Y moves to it. The old "
    "memory still exists because Y_old names it, unchanged.",
}


@dataclass(frozen=True)
class NameSnapshot:
    """One name as the experiment sees it."""

    name: str
    data_ptr: int  # address of the first element
    version: int  # torch's in-place version counter of the storage
    values: tuple[float, ...]


@dataclass(frozen=True)
class AliasExperiment:
    statement: str
    before: tuple[NameSnapshot, ...]  # X, Y, Y_old (Y_old = Y was run first)
    after: tuple[NameSnapshot, ...]
    y_same_memory: bool  # Y's data_ptr did not change
    in_place: bool  # Y's storage was written (its version moved)
    names_seeing_change: tuple[str, ...]  # names whose values changed
    explanation: str


def _snapshot(ns: dict) -> tuple[NameSnapshot, ...]:
    return tuple(
        NameSnapshot(name, t.data_ptr(), t._version, tuple(float(v) for v in t.flatten().tolist()))
        for name, t in ns.items()
    )


def run_assignment(statement: str, x: torch.Tensor, y: torch.Tensor) -> AliasExperiment:
    """Run one of ASSIGNMENT_STATEMENTS on clones of x and y (same shape) and record names.

    A third name `Y_old = Y` is bound before the statement, so the report shows which names
    see a change made through Y.
    """
    if statement not in ASSIGNMENT_STATEMENTS:
        raise ValueError(f"unknown statement {statement!r}")
    ns = {"X": x.detach().clone(), "Y": y.detach().clone()}
    ns["Y_old"] = ns["Y"]
    before = _snapshot(ns)
    version_before = ns["Y"]._version
    ASSIGNMENT_STATEMENTS[statement](ns)
    after = _snapshot(ns)
    changed = tuple(b.name for b, a in zip(before, after, strict=True) if b.values != a.values)
    return AliasExperiment(
        statement=statement,
        before=before,
        after=after,
        y_same_memory=before[1].data_ptr == after[1].data_ptr,
        in_place=ns["Y_old"]._version != version_before,
        names_seeing_change=changed,
        explanation=ASSIGNMENT_EXPLANATIONS[statement],
    )


@dataclass(frozen=True)
class ViewFact:
    """Whether an operation on `base` returns a view (shared storage) or a copy."""

    code: str
    shape: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    storage_offset: int | None
    is_contiguous: bool | None
    shares_storage: bool | None
    write_visible: bool | None  # writing into the result changed the base
    error: str | None = None


VIEW_OPERATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "x.view(4, 3)": lambda x: x.view(4, 3),
    "x.reshape(4, 3)": lambda x: x.reshape(4, 3),
    "x.transpose(0, 1)": lambda x: x.transpose(0, 1),
    "x[1:, ::2]": lambda x: x[1:, ::2],
    "x.contiguous()": lambda x: x.contiguous(),
    "x.transpose(0, 1).contiguous()": lambda x: x.transpose(0, 1).contiguous(),
    "x.transpose(0, 1).reshape(-1)": lambda x: x.transpose(0, 1).reshape(-1),
    "x.transpose(0, 1).view(-1)": lambda x: x.transpose(0, 1).view(-1),
    "x.clone()": lambda x: x.clone(),
}


def view_experiments(base: torch.Tensor | None = None) -> list[ViewFact]:
    """Run each of VIEW_OPERATIONS on a fresh copy of `base` (default arange(12) as 3 x 4)."""
    base = torch.arange(12.0).reshape(3, 4) if base is None else base
    facts = []
    for code, operation in VIEW_OPERATIONS.items():
        x = base.clone()
        try:
            result = operation(x)
        except RuntimeError as error:
            facts.append(
                ViewFact(code, None, None, None, None, None, None, str(error).split("\n")[0])
            )
            continue
        shares = result.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        before = x.clone()
        result[(0,) * result.dim()] += 100  # write through the result, then look at the base
        facts.append(
            ViewFact(
                code,
                tuple(result.shape),
                tuple(result.stride()),
                result.storage_offset(),
                result.is_contiguous(),
                shares,
                not torch.equal(before, x),
            )
        )
    return facts


@dataclass(frozen=True)
class SharingStep:
    code: str
    tensor_values: tuple[float, ...]
    other_values: tuple[float, ...]  # the NumPy array, or the Python copies


def numpy_sharing_demo() -> tuple[bool, list[SharingStep]]:
    """`.numpy()` returns an array over the same memory: change one, the other changes.

    Returns (same address, steps).
    """
    t = torch.arange(4.0)
    a = t.numpy()
    same = a.__array_interface__["data"][0] == t.data_ptr()
    steps = [
        SharingStep("t = torch.arange(4.0); a = t.numpy()", tuple(t.tolist()), tuple(a.tolist()))
    ]
    a[0] = 100.0
    steps.append(SharingStep("a[0] = 100", tuple(t.tolist()), tuple(a.tolist())))
    t.mul_(2)
    steps.append(SharingStep("t.mul_(2)", tuple(t.tolist()), tuple(a.tolist())))
    return same, steps


def python_copies_demo() -> list[SharingStep]:
    """`.item()`, `float()` and `.tolist()` make Python objects: later in-place changes miss them."""
    t = torch.tensor([1.5, 2.5, 3.5])
    item, as_float, as_list = t[0].item(), float(t[1]), t.tolist()
    copies = lambda: (item, as_float, *as_list)  # noqa: E731 - read the names at each step
    steps = [
        SharingStep(
            "item = t[0].item(); f = float(t[1]); l = t.tolist()", tuple(t.tolist()), copies()
        )
    ]
    t.mul_(10)
    steps.append(SharingStep("t.mul_(10)", tuple(t.tolist()), copies()))
    return steps


def leaf_in_place_error() -> tuple[str, str]:
    """What autograd says when a leaf that requires grad is changed in place, and the fix.

    Returns (autograd's error message, what `with torch.no_grad(): w.sub_(...)` leaves in w).
    """
    w = torch.ones(3, requires_grad=True)
    try:
        w.add_(1)
        message = ""
    except RuntimeError as error:
        message = str(error)
    with torch.no_grad():  # how an optimiser updates parameters: outside the graph
        w.sub_(0.1)
    return message, str(w)
