"""Names, storage and the version counter: live experiments on what assignment and views share.

Every experiment really runs the statement on fresh tensors and reports what torch says
(`data_ptr`, the storage, `_version`, values), so the explanation can never drift from the
behaviour. The facts taught (as in the course notes): assignment never copies, it gives the
same tensor a second name; `Y = Y + X` computes into new memory and moves the name;
`Y += X`, `Y[:] = ...` and methods ending in `_` write into the memory the tensor already has;
a view is a new tensor object over the same memory; `.clone()` copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# Before each statement `X_old = X` and `Y_old = Y` run, so a name that moves leaves a name behind
# on the tensor it left: the _old names show whether memory was written or a name was rebound.
SETUP = "X_old = X; Y_old = Y"
# After the statement X's memory is changed in place, to see for real which names share it.
PROBE = "X.add_(100)"


def _alias(ns: dict) -> None:
    ns["Y"] = ns["X"]


def _clone(ns: dict) -> None:
    ns["Y"] = ns["X"].clone()


def _view_tail(ns: dict) -> None:
    ns["Y"] = ns["X"][1:]


def _new_from_x(ns: dict) -> None:
    ns["Y"] = ns["X"] + 1


def _x_add_in_place(ns: dict) -> None:
    x = ns["X"]
    x += 1
    ns["X"] = x


def _x_add_method(ns: dict) -> None:
    ns["X"].add_(1)


def _x_rebind(ns: dict) -> None:
    ns["X"] = ns["X"] + 1


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
    "Y = X.clone()": _clone,
    "Y = X[1:]": _view_tail,
    "Y = X + 1": _new_from_x,
    "X += 1": _x_add_in_place,
    "X.add_(1)": _x_add_method,
    "X = X + 1": _x_rebind,
    "Y += X": _add_in_place,
    "Y[:] = Y + X": _slice_assign,
    "Y = Y + X": _rebind_to_new,
}

ASSIGNMENT_EXPLANATIONS = {
    "Y = X": "Assignment does not copy: Y becomes a second name for the very tensor X names, "
    "so both share one memory. Nothing is computed or written. That is why changing X in place "
    "afterwards changes Y too.",
    "Y = X.clone()": "`clone()` copies the numbers into new memory: Y starts equal to X but is "
    "independent, so the later change to X does not reach Y.",
    "Y = X[1:]": "Slicing makes a view: a new tensor object over X's memory, starting one "
    "element later (storage offset 1). No numbers are copied, so the change to X shows in Y.",
    "Y = X + 1": "`X + 1` computes a new tensor in new memory, and the name Y moves to it. "
    "X is not touched; the later change to X does not reach Y.",
    "X += 1": "In place: the sum is written into X's own memory (same data_ptr, the version "
    "counter moves), so every name for that memory, X_old too, sees it.",
    "X.add_(1)": "A method ending in `_` works in place, like `+=`: X's memory is written, "
    "X_old sees it, no new memory is made.",
    "X = X + 1": "Unlike `X += 1`, this computes X + 1 into new memory and moves the name X "
    "there. X_old still names the old memory, unchanged.",
    "Y += X": "In place: the sum is written into Y's own memory. Same data_ptr, the version "
    "counter moves, and every name for that memory (Y_old too) sees the new values.",
    "Y[:] = Y + X": "Y + X is computed into a temporary tensor, then copied into Y's memory "
    "slot by slot: the same storage as before, version counter moved, Y_old sees it too.",
    "Y = Y + X": "Y + X makes a new tensor in new memory and the name Y moves to it. The old "
    "memory still exists because Y_old names it, unchanged.",
}

# What happened to one name, from the identities and version counters before and after.
UNCHANGED, WRITTEN, ALIAS, VIEW, NEW = "unchanged", "written", "alias", "view", "new"
OUTCOME_TEXT = {
    UNCHANGED: "the same tensor as before, unchanged",
    WRITTEN: "the same tensor as before, its memory written in place",
    ALIAS: "another name for an existing tensor: nothing copied",
    VIEW: "a view: a new tensor object over existing memory",
    NEW: "a new tensor in new memory",
}


@dataclass(frozen=True)
class NameSnapshot:
    """One name as the experiment sees it."""

    name: str
    data_ptr: int  # address of the tensor's first element
    version: int  # torch's in-place version counter (shared by a tensor and its views)
    values: tuple[float, ...]
    storage_ptr: int = 0  # address of the whole storage: equal for a tensor and its views
    storage_offset: int = 0  # elements from the storage's start to the first element


@dataclass(frozen=True)
class AliasExperiment:
    """`SETUP; statement; PROBE` run for real, with every name recorded after each step."""

    statement: str
    target: str  # the name the statement assigns to or changes: "X" or "Y"
    before: tuple[NameSnapshot, ...]  # X, X_old, Y, Y_old after SETUP
    after: tuple[NameSnapshot, ...]  # after the statement
    after_probe: tuple[NameSnapshot, ...]  # after PROBE changed X's memory in place
    outcomes: dict[str, str]  # name -> UNCHANGED, WRITTEN, ALIAS, VIEW or NEW
    names_written: tuple[str, ...]  # names whose memory the statement wrote (not rebindings)
    names_seeing_probe: tuple[str, ...]  # names whose values PROBE changed: X's memory
    shares_with_x: bool  # after the statement, the target and X share memory
    explanation: str

    @property
    def summary(self) -> str:
        """Three sentences built only from the measured facts."""
        outcome = OUTCOME_TEXT[self.outcomes[self.target]]
        if self.outcomes[self.target] == ALIAS:
            now = next(s for s in self.after if s.name == self.target)
            owner = next(s.name for s in self.before if s.data_ptr == now.data_ptr)
            outcome = f"another name for the tensor {owner} names: nothing copied"
        written = ", ".join(self.names_written)
        y_shares = self.after[2].storage_ptr == self.after[0].storage_ptr
        return (
            f"After `{self.statement}`, {self.target} is {outcome}. "
            + (
                f"Memory was written in place, and every name for it sees that: {written}. "
                if written
                else "No existing memory was written: moving a name changes no data. "
            )
            + f"Then `{PROBE}` changed X's memory in place: "
            + ", ".join(self.names_seeing_probe)
            + (
                " changed with it; Y did not, because Y has memory of its own."
                if not y_shares
                else " changed with it; Y too, because Y shares X's memory."
                if "Y" in self.names_seeing_probe
                else " changed with it; Y shares X's memory but shows none of its numbers "
                "(an empty view), so Y shows no change."
            )
        )


def _snapshot(ns: dict) -> tuple[NameSnapshot, ...]:
    return tuple(
        NameSnapshot(
            name,
            t.data_ptr(),
            t._version,
            tuple(float(v) for v in t.flatten().tolist()),
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
        )
        for name, t in ns.items()
    )


def _outcome(name: str, before: dict, after: dict, versions: dict[int, int]) -> str:
    tensor = after[name]
    if tensor is before[name]:
        return WRITTEN if tensor._version != versions[id(tensor)] else UNCHANGED
    if any(tensor is old for old in before.values()):
        return ALIAS
    storages = {old.untyped_storage().data_ptr() for old in before.values()}
    return VIEW if tensor.untyped_storage().data_ptr() in storages else NEW


def run_assignment(statement: str, x: torch.Tensor, y: torch.Tensor) -> AliasExperiment:
    """Run `SETUP; statement; PROBE` on clones of x and y and record every name after each step.

    x and y: 1-D tensors (any length, any float dtype); they are never changed. Names whose
    memory the statement wrote are found by torch's version counter, not by comparing values,
    so a rebinding (`Y = X`) is never counted as a change to data.
    """
    if statement not in ASSIGNMENT_STATEMENTS:
        raise ValueError(f"unknown statement {statement!r}")
    ns = {"X": x.detach().clone(), "Y": y.detach().clone()}
    ns = {"X": ns["X"], "X_old": ns["X"], "Y": ns["Y"], "Y_old": ns["Y"]}
    before_objects = dict(ns)  # keeps every original tensor alive, so ids stay unique
    versions = {id(t): t._version for t in ns.values()}
    before = _snapshot(ns)
    ASSIGNMENT_STATEMENTS[statement](ns)
    after = _snapshot(ns)
    outcomes = {name: _outcome(name, before_objects, ns, versions) for name in ns}
    ns["X"].add_(100)  # PROBE
    after_probe = _snapshot(ns)
    target = "X" if statement.startswith("X") else "Y"
    seeing = tuple(a.name for a, p in zip(after, after_probe, strict=True) if a.values != p.values)
    x_storage = ns["X"].untyped_storage().data_ptr()
    return AliasExperiment(
        statement=statement,
        target=target,
        before=before,
        after=after,
        after_probe=after_probe,
        outcomes=outcomes,
        names_written=tuple(name for name, what in outcomes.items() if what == WRITTEN),
        names_seeing_probe=seeing,
        shares_with_x=ns[target].untyped_storage().data_ptr() == x_storage,
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
    """`.item()`, `float()` and `.tolist()` make Python objects.

    Later in-place changes to the tensor miss them.
    """
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


LEAF_RULE = (
    "A leaf tensor that requires grad (a parameter you created, like w) is where autograd "
    "accumulates gradients: w.grad is d(loss)/dw for the value w had when the graph was built. "
    "An in-place change would silently replace that value under autograd's feet, so torch "
    "refuses it while gradients are being recorded. Change parameters outside the graph: "
    "inside `with torch.no_grad():` (what optimisers do), or through `w.data` / `w.detach()`, "
    "which share w's memory but are not tracked."
)


@dataclass(frozen=True)
class LeafFix:
    code: str  # the statement, run on a fresh w = torch.ones(3, requires_grad=True)
    w_after: tuple[float, ...]  # w's values afterwards
    requires_grad: bool  # w still requires grad afterwards


def leaf_in_place_error() -> tuple[str, list[LeafFix]]:
    """What autograd says when a leaf that requires grad is changed in place, and the fixes.

    Returns (autograd's real error message, each fix run on a fresh w). The reason is LEAF_RULE.
    """
    w = torch.ones(3, requires_grad=True)
    try:
        w.add_(1)
        message = ""
    except RuntimeError as error:
        message = str(error)
    fixes = []
    for code, change in (
        ("with torch.no_grad(): w.sub_(0.1)", _no_grad_sub),
        ("w.data.sub_(0.1)", lambda w: w.data.sub_(0.1)),
        ("w.detach().sub_(0.1)", lambda w: w.detach().sub_(0.1)),
    ):
        w = torch.ones(3, requires_grad=True)
        change(w)
        fixes.append(LeafFix(code, tuple(w.detach().tolist()), w.requires_grad))
    return message, fixes


def _no_grad_sub(w: torch.Tensor) -> None:
    with torch.no_grad():  # how an optimiser updates parameters: outside the graph
        w.sub_(0.1)
