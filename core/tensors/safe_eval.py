"""A safe expression console over named tensors: an allow-list interpreter, never `eval`.

Students type expressions such as `A @ B`, `X[:, None] * w` or `torch.softmax(Z, dim=-1)` on a
class server, so the text is hostile. The source is parsed with `ast.parse(mode="eval")` and the
tree is walked by this module's own interpreter:

- only a few node types exist here (numbers, names, attribute access, calls, subscripts, unary,
  binary and single comparisons, tuples and lists); lambdas, comprehensions, f-strings, strings,
  dicts, walrus, starred arguments and everything else are refused before anything runs;
- names come only from the page's named tensors plus `torch`; attributes only from an
  allow-list of torch functions, dtypes and tensor methods/properties, and never one that starts
  with an underscore; in-place methods, `out=`, `device=`, `.numpy()`, files and I/O do not exist;
- every operation that can make a tensor is sized *before* it runs (creator sizes, broadcast
  shapes, matmul shapes and multiply-adds, repeat/expand/kron/outer/cat/stack/diag), and
  refused when it would exceed `ConsoleLimits`; Python integers are capped in bits before
  `**` or `*` computes them; all results count against a per-expression byte and work budget.

Why no worker thread with a timeout: Python cannot kill a thread, so a timed-out thread would
keep burning the server's CPU while the page pretended it had stopped. A subprocess per
expression would be killable but costs ~100 ms start-up and a second copy of torch in memory.
Instead the limits are sized so that any single allowed operation finishes in milliseconds on
a 2-core CPU, and the interpreter checks a wall-clock deadline before each node, so the total
time is bounded by (node cap) x (the cost of one capped operation), far below a second.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from core.tensors.broadcasting import explain_broadcast
from core.tensors.matmul import explain_matmul_shapes


class ConsoleError(ValueError):
    """An expression the console refuses or cannot compute; str() is a sentence for students."""


@dataclass(frozen=True)
class ConsoleLimits:
    max_source_chars: int = 400  # one expression, not a program
    max_nodes: int = 120  # AST nodes in the parsed expression
    max_depth: int = 24  # nesting depth of the AST
    max_elements: int = 1_000_000  # elements of any one tensor (4 MB in float32)
    max_total_bytes: int = 64 * 2**20  # bytes of all tensors created by one expression
    max_macs: int = 50_000_000  # multiply-adds of one matrix product (~10 ms on one core)
    max_work: int = 100_000_000  # summed element-operations of one expression (sorts: n log n)
    max_int_bits: int = 256  # Python integers: 2**256 is far beyond any tensor size
    max_list_items: int = 10_000  # .tolist() and literal lists
    max_seconds: float = 1.0  # checked before each node


@dataclass(frozen=True)
class ConsoleResult:
    """A computed value and how to show it."""

    value: Any
    kind: str  # "tensor", "number", "bool", "shape", "dtype", "list", "none", ...
    shape: tuple[int, ...] | None  # for tensors
    dtype: str | None  # for tensors
    seconds: float  # time to check and compute, without formatting the preview

    @property
    def preview(self) -> str:
        """repr of the value (torch summarises large tensors), cut at 4000 characters.

        Computed on demand: formatting a tensor costs more than most console expressions.
        """
        value = tuple(self.value) if isinstance(self.value, torch.Size) else self.value
        text = repr(value)
        return text if len(text) <= 4000 else text[:4000] + " ..."


# --- the allow-lists --------------------------------------------------------------------------

_DTYPES = {
    name: getattr(torch, name)
    for name in (
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "half",
        "float",
        "double",
        "int8",
        "uint8",
        "int16",
        "int32",
        "int64",
        "long",
        "int",
        "bool",
        "complex64",
    )
}

# torch functions whose output is no bigger than their largest tensor input
_TORCH_SAME = {
    "abs", "exp", "log", "log2", "log10", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu",
    "softmax", "log_softmax", "neg", "round", "floor", "ceil", "clamp", "sign", "square",
    "sum", "mean", "prod", "std", "var", "max", "min", "argmax", "argmin", "norm", "all", "any",
    "cumsum", "sort", "argsort", "topk", "flip", "roll", "tril", "triu", "transpose", "permute",
    "reshape", "flatten", "squeeze", "unsqueeze", "t", "numel", "isnan", "isfinite", "count_nonzero",
    "allclose", "equal", "median", "diagonal", "trace", "real", "imag", "angle",
}  # fmt: skip
# torch functions that combine tensors elementwise with broadcasting
_TORCH_BROADCAST = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "eq", "ne", "lt", "le",
    "gt", "ge", "atan2", "remainder", "isclose", "logical_and", "logical_or",
}  # fmt: skip
_TORCH_MATMUL = {"matmul", "mm", "bmm", "mv", "dot"}  # not inner: its output shape differs
# no torch.empty: uninitialised memory could show bytes another session left behind
_TORCH_CREATORS = {"zeros", "ones", "rand", "randn", "full", "eye", "arange", "linspace"}
_TORCH_SPECIAL = {
    "tensor",
    "cat",
    "stack",
    "outer",
    "kron",
    "diag",
    "broadcast_to",
    "broadcast_shapes",
}

# "same" functions that also return int64 indices and sort or search their input
_VALUES_AND_INDICES = {"sort", "argsort", "topk", "median", "max", "min", "cumsum"}

_TENSOR_PROPERTIES = {
    "shape", "dtype", "ndim", "T", "mT", "device", "requires_grad", "is_leaf", "real", "imag",
}  # fmt: skip
_TENSOR_SAME = (_TORCH_SAME - {"allclose", "equal"}) | {
    "size", "dim", "stride", "storage_offset", "is_contiguous", "element_size", "nelement",
    "contiguous", "clone", "detach", "view", "float", "double", "half", "bfloat16", "int", "long",
    "bool", "to", "item", "tolist", "data_ptr", "type_as", "view_as", "reshape_as", "expand_as",
}  # fmt: skip
_TENSOR_BROADCAST = _TORCH_BROADCAST - {"where", "isclose"}
_TENSOR_MATMUL = {"matmul", "mm", "bmm", "mv", "dot"}
_TENSOR_SPECIAL = {"repeat", "tile", "expand"}

_ALLOWED_KWARGS = {
    "dim",
    "keepdim",
    "dtype",
    "dims",
    "start",
    "end",
    "step",
    "steps",
    "diagonal",
    "k",
    "largest",
    "sorted",
    "descending",
    "min",
    "max",
    "p",
    "exponent",
    "other",
    "input",
    "requires_grad",
    "fill_value",
    "correction",
    "unbiased",
    "shifts",
    "dim0",
    "dim1",
    "alpha",
    "rtol",
    "atol",
    "equal_nan",
    "n",
    "m",
    "offset",
    "stable",
}  # fmt: skip  (no `size=`: sizes are given positionally, where the size checks read them)

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
    ast.MatMult: lambda a, b: a @ b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
}
_UNARYOPS: dict[type, Callable[[Any], Any]] = {
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
    ast.Invert: lambda a: ~a,
}
_COMPARES: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_OP_SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
}  # fmt: skip

_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.keyword, ast.Attribute,
    ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Constant, ast.Name, ast.Load,
    *_BINOPS, *_UNARYOPS, *_COMPARES,
)  # fmt: skip

_REFUSED_NODE_REASONS = {
    ast.Lambda: "lambdas (small inline functions) are not available in the console",
    ast.ListComp: "comprehensions (`[... for ...]`) are not available; use tensor operations",
    ast.SetComp: "comprehensions are not available; use tensor operations",
    ast.DictComp: "comprehensions are not available; use tensor operations",
    ast.GeneratorExp: "generator expressions are not available; use tensor operations",
    ast.JoinedStr: "text and f-strings are not part of tensor expressions",
    ast.NamedExpr: "assignments (`:=`) are not available; the console computes one expression",
    ast.Starred: "`*` unpacking in calls is not available; write the sizes out",
    ast.Dict: "dictionaries are not part of tensor expressions",
    ast.Set: "sets are not part of tensor expressions",
    ast.IfExp: "`... if ... else ...` is not available; try torch.where(condition, a, b)",
    ast.BoolOp: "`and`/`or` do not work elementwise on tensors; use `&` and `|`",
    ast.LShift: "bit shifts are not available in the console",
    ast.RShift: "bit shifts are not available in the console",
    ast.Not: "`not` does not work elementwise on tensors; use `~` on a bool tensor",
    ast.Is: "`is` compares Python objects, not values; use `==` or torch.equal",
    ast.IsNot: "`is not` compares Python objects, not values; use `!=`",
    ast.In: "`in` is not available in the console",
    ast.NotIn: "`not in` is not available in the console",
}


# --- values the interpreter passes around -----------------------------------------------------


class _TorchNamespace:
    """What the name `torch` means inside the console: only the allow-listed attributes."""

    def __repr__(self) -> str:
        return "torch (console allow-list)"


_TORCH = _TorchNamespace()


@dataclass(frozen=True)
class _Callable:
    """An allow-listed function or bound tensor method, with the rule that sizes its output."""

    name: str  # as the student wrote it, for messages
    func: Callable[..., Any]
    rule: str  # "same", "broadcast", "matmul", "creator", "special"
    owner: torch.Tensor | None = None  # the tensor a method is bound to


_SCALARS = (bool, int, float, complex)


class _Budget:
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


# --- size estimation helpers ------------------------------------------------------------------


def _shape_of(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, _SCALARS):
        return ()
    return None


def _itemsize(dtype: Any, default: int = 8) -> int:
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


def _prod(dims: Any) -> int:
    return math.prod(max(int(d), 0) for d in dims)


def _creator_elements(name: str, args: tuple, kwargs: dict) -> int:
    """How many elements torch.<name>(*args, **kwargs) would create, computed without creating."""
    what = f"torch.{name}"
    if name in {"zeros", "ones", "rand", "randn"}:
        return _prod(_as_dims(args, what))
    if name == "full":
        if not args:
            raise ConsoleError("torch.full takes the size first, e.g. torch.full((2, 3), 7.0)")
        return _prod(_as_dims((args[0],), what))
    if name == "eye":
        n = args[0] if args else kwargs.get("n", 0)
        m = args[1] if len(args) > 1 else kwargs.get("m", n)
        return _prod(_as_dims((n, m), what))
    if name == "linspace":
        steps = args[2] if len(args) > 2 else kwargs.get("steps", 0)
        return _prod(_as_dims((steps,), what))
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


def _matmul_check(a: Any, b: Any, name: str, budget: _Budget) -> None:
    a_shape, b_shape = _shape_of(a), _shape_of(b)
    if a_shape is None or b_shape is None:
        return  # torch raises its own type error, explained by _explain_torch_error
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
    itemsize = max(_itemsize(getattr(a, "dtype", None), 4), _itemsize(getattr(b, "dtype", None), 4))
    budget.charge(_prod(report.out_shape), itemsize, f"the result of {name}", work=report.macs)


def _broadcast_check(values: list[Any], name: str, budget: _Budget) -> None:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return
    shapes = [_shape_of(v) for v in values if _shape_of(v) is not None]
    result_shape = _broadcast_shape(shapes)
    if result_shape is None:
        raise ConsoleError(f"{name}: {explain_broadcast(*shapes).message}")
    itemsize = max(t.element_size() for t in tensors)
    budget.charge(_prod(result_shape), max(itemsize, 1), f"the result of {name}")


def _broadcast_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
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


def _special_check(
    name: str, owner: torch.Tensor | None, args: tuple, kwargs: dict, budget: _Budget
) -> None:
    """Size the functions whose output can be much larger than their inputs."""
    if name in {"repeat", "tile"} and owner is not None:
        reps = _as_dims(args, f".{name}")
        budget.charge(_prod(reps) * owner.numel(), owner.element_size(), f".{name}{tuple(reps)}")
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
        budget.charge(_prod(target), tensor.element_size(), f"{name}{tuple(dims)}")
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


def _check_literal_data(data: Any, budget: _Budget) -> None:
    count = _count_items(data)
    if count > budget.limits.max_list_items:
        raise ConsoleError(f"torch.tensor of {count:,} values is more than the console allows")


def _count_items(data: Any, *, tensors_count: bool = True) -> int:
    """Leaves of nested lists/tuples; a tensor counts as its numel (or as 1 when it is an
    item of a result such as torch.sort's (values, indices), whose tensors are checked apart)."""
    if isinstance(data, list | tuple):
        return sum(_count_items(item, tensors_count=tensors_count) for item in data)
    if isinstance(data, torch.Tensor) and tensors_count:
        return data.numel()
    return 1


# --- the interpreter ---------------------------------------------------------------------------


class _Interpreter:
    def __init__(self, names: Mapping[str, torch.Tensor], limits: ConsoleLimits) -> None:
        self.names = dict(names)
        self.limits = limits
        self.budget = _Budget(limits)

    def run(self, node: ast.AST) -> Any:
        self.budget.tick()
        method = getattr(self, f"_eval_{type(node).__name__}", None)
        if method is None:  # _check_tree already refused it; this is the belt to its braces
            raise ConsoleError(f"`{type(node).__name__}` is not allowed in the console")
        return method(node)

    def _eval_Expression(self, node: ast.Expression) -> Any:
        return self.run(node.body)

    def _eval_Constant(self, node: ast.Constant) -> Any:
        value = node.value
        if value is None or value is Ellipsis or isinstance(value, bool | float | complex):
            return value
        if isinstance(value, int):
            return self._checked_int(value)
        raise ConsoleError("text and bytes are not part of tensor expressions; use numbers")

    def _checked_int(self, value: int) -> int:
        if value.bit_length() > self.limits.max_int_bits:
            raise ConsoleError(
                f"that whole number has {value.bit_length()} bits; the console allows "
                f"{self.limits.max_int_bits} (no tensor is that large anyway)"
            )
        return value

    def _eval_Name(self, node: ast.Name) -> Any:
        if node.id == "torch":
            return _TORCH
        if node.id in self.names:
            return self.names[node.id]
        known = ", ".join(sorted(self.names)) or "none yet"
        raise ConsoleError(
            f"`{node.id}` is not a name the console knows; use the page's tensors ({known}) "
            "or torch"
        )

    def _eval_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.run(item) for item in node.elts)

    def _eval_List(self, node: ast.List) -> list:
        return [self.run(item) for item in node.elts]

    def _eval_Slice(self, node: ast.Slice) -> slice:
        parts = [
            None if part is None else self.run(part) for part in (node.lower, node.upper, node.step)
        ]
        for part in parts:
            if part is not None and not isinstance(part, int):
                raise ConsoleError("slice bounds must be whole numbers, as in A[1:3]")
        return slice(*parts)

    def _eval_Attribute(self, node: ast.Attribute) -> Any:
        owner = self.run(node.value)
        attr = node.attr
        if attr.startswith("_"):
            raise ConsoleError(f"attributes starting with an underscore (`{attr}`) are not allowed")
        if owner is _TORCH:
            return self._torch_attribute(attr)
        if isinstance(owner, torch.Tensor):
            return self._tensor_attribute(owner, attr)
        if type(owner).__module__ == "torch.return_types" and attr in ("values", "indices"):
            return getattr(owner, attr)  # torch.max(A, dim=0).values
        raise ConsoleError(f"`.{attr}` is not available on a {type(owner).__name__} in the console")

    def _torch_attribute(self, attr: str) -> Any:
        if attr in _DTYPES:
            return _DTYPES[attr]
        for rule, names in (
            ("same", _TORCH_SAME),
            ("broadcast", _TORCH_BROADCAST),
            ("matmul", _TORCH_MATMUL),
            ("creator", _TORCH_CREATORS),
            ("special", _TORCH_SPECIAL),
        ):
            if attr in names:
                return _Callable(f"torch.{attr}", getattr(torch, attr), rule)
        raise ConsoleError(
            f"torch.{attr} is not available in the console (it allows tensor maths: creators, "
            "elementwise functions, reductions, shapes and products, but no files, I/O or devices)"
        )

    def _tensor_attribute(self, tensor: torch.Tensor, attr: str) -> Any:
        if attr in _TENSOR_PROPERTIES:
            return getattr(tensor, attr)
        for rule, names in (
            ("same", _TENSOR_SAME),
            ("broadcast", _TENSOR_BROADCAST),
            ("matmul", _TENSOR_MATMUL),
            ("special", _TENSOR_SPECIAL),
        ):
            if attr in names:
                return _Callable(f".{attr}", getattr(tensor, attr), rule, owner=tensor)
        if attr.endswith("_"):
            reason = "in-place methods (ending in `_`) would change the page's tensors"
        elif attr in {"numpy", "tofile", "storage", "untyped_storage", "data", "grad"}:
            reason = "it reaches memory or files outside the tensor maths the console allows"
        else:
            reason = "it is not on the console's allow-list of tensor methods"
        raise ConsoleError(f"`.{attr}` is not available in the console: {reason}")

    def _eval_Call(self, node: ast.Call) -> Any:
        callee = self.run(node.func)
        if not isinstance(callee, _Callable):
            raise ConsoleError("only torch functions and tensor methods can be called here")
        args = tuple(self.run(arg) for arg in node.args)
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in _ALLOWED_KWARGS:
                raise ConsoleError(
                    f"the keyword `{keyword.arg}=` is not available in the console "
                    "(no `out=`, `device=` or other options that reach outside the expression)"
                )
            kwargs[keyword.arg] = self.run(keyword.value)
        for value in (*args, *kwargs.values()):
            self._check_argument(value, callee.name)
        self._precheck_call(callee, args, kwargs)
        self.budget.tick()
        try:
            result = callee.func(*args, **kwargs)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(_explain_torch_error(callee.name, error)) from None
        return self._checked_result(result, callee.name)

    def _check_argument(self, value: Any, where: str) -> None:
        if isinstance(value, _Callable | _TorchNamespace):
            raise ConsoleError(f"{where} was given a function; call it with () first")
        if isinstance(value, tuple | list):
            for item in value:
                self._check_argument(item, where)

    def _precheck_call(self, callee: _Callable, args: tuple, kwargs: dict) -> None:
        name = callee.name.removeprefix("torch.").removeprefix(".")
        if callee.rule == "creator":
            dtype = kwargs.get("dtype")
            count = _creator_elements(name, args, kwargs)
            self.budget.charge(count, _itemsize(dtype), f"{callee.name}(...)")
        elif callee.rule == "same":
            self._precheck_same(callee, args, kwargs)
        elif callee.rule == "matmul":
            operands = (callee.owner, *args) if callee.owner is not None else args
            if len(operands) != 2 or kwargs:
                raise ConsoleError(
                    f"write the product with two tensors and no keywords: A @ B or {callee.name}(A, B)"
                    if callee.owner is None
                    else f"write the product as A{callee.name}(B)"
                )
            _matmul_check(operands[0], operands[1], callee.name, self.budget)
        elif callee.rule == "broadcast":
            operands = [callee.owner, *args] if callee.owner is not None else list(args)
            operands += [v for k, v in kwargs.items() if k in ("other", "input", "exponent")]
            _broadcast_check(operands, callee.name, self.budget)
        elif callee.rule == "special":
            _special_check(name, callee.owner, args, kwargs, self.budget)
        owner_numel = callee.owner.numel() if callee.owner is not None else 0
        if name == "tolist" and owner_numel > self.limits.max_list_items:
            raise ConsoleError(
                f".tolist() of {owner_numel:,} values would be a very long Python list; the "
                f"console allows {self.limits.max_list_items:,}"
            )
        if name == "to" and not all(
            isinstance(v, torch.dtype | bool) for v in (*args, *kwargs.values())
        ):
            raise ConsoleError(
                "in the console `.to(...)` only changes the dtype, e.g. A.to(torch.float16)"
            )

    def _precheck_same(self, callee: _Callable, args: tuple, kwargs: dict) -> None:
        """Output no bigger than the inputs, unless two tensors broadcast (torch.max(A, B))."""
        operands = [
            v for v in (callee.owner, *args, *kwargs.values()) if isinstance(v, torch.Tensor)
        ]
        if len(operands) >= 2:
            result_shape = _broadcast_shape([tuple(t.shape) for t in operands])
            if result_shape is not None:
                size = max(_prod(result_shape), max(t.numel() for t in operands))
                self.budget.charge(size, 8, f"the result of {callee.name}")
                return
        if operands:
            biggest = max(operands, key=lambda t: t.numel())
            numel = biggest.numel()
            name = callee.name.removeprefix("torch.").removeprefix(".")
            if name in _VALUES_AND_INDICES:
                # values plus int64 indices, and about n log n work to sort
                work = numel * max(numel.bit_length(), 1)
                self.budget.charge(numel, biggest.element_size() + 8, callee.name, work=work)
            else:
                self.budget.charge(numel, biggest.element_size(), f"the result of {callee.name}")

    def _checked_result(self, result: Any, what: str) -> Any:
        """Only plain values leave an operation: tensors (counted), numbers, shapes, dtypes."""
        if isinstance(result, torch.Tensor):
            if result.numel() > self.limits.max_elements:
                raise ConsoleError(f"{what} produced a tensor larger than the console allows")
            return result
        if isinstance(result, int) and not isinstance(result, bool):
            return self._checked_int(result)
        if result is None or isinstance(result, (*_SCALARS, torch.dtype, torch.device, torch.Size)):
            return result
        if isinstance(result, tuple | list):
            for item in result:
                if isinstance(item, torch.Tensor) and item.numel() > self.limits.max_elements:
                    raise ConsoleError(f"{what} produced a tensor larger than the console allows")
            if _count_items(result, tensors_count=False) > self.limits.max_list_items:
                raise ConsoleError(f"{what} produced a list longer than the console allows")
            return result
        raise ConsoleError(
            f"{what} returned a {type(result).__name__}, which the console does not show"
        )

    def _eval_Subscript(self, node: ast.Subscript) -> Any:
        container = self.run(node.value)
        index = self.run(node.slice)
        if isinstance(container, torch.Tensor):
            self._check_tensor_index(container, index)
        elif not isinstance(container, tuple | list | torch.Size):
            raise ConsoleError("only tensors, shapes and lists can be indexed with [...]")
        try:
            result = container[index]
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(_explain_torch_error("indexing", error)) from None
        return self._checked_result(result, "indexing")

    def _check_tensor_index(self, tensor: torch.Tensor, index: Any) -> None:
        parts = index if isinstance(index, tuple) else (index,)
        tensor_parts = [p for p in parts if isinstance(p, torch.Tensor | list)]
        if not tensor_parts:
            return  # ints, slices, None and ... give views: no new memory
        # Advanced indexing copies. Each index tensor consumes at least one dimension of size
        # >= the smallest one, so (index elements) x (what is left) bounds the result.
        index_elements = _prod(_count_items(p) for p in tensor_parts)
        smallest = max(min(tensor.shape, default=1), 1)
        rest = tensor.numel() // smallest ** min(len(tensor_parts), max(tensor.dim(), 1))
        self.budget.charge(index_elements * max(rest, 1), tensor.element_size(), "this indexing")

    def _eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.run(node.operand)
        self._check_operand(operand, "a sign")
        if isinstance(operand, torch.Tensor):
            self.budget.charge(operand.numel(), operand.element_size(), "this operation")
        try:
            result = _UNARYOPS[type(node.op)](operand)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(_explain_torch_error("the operation", error)) from None
        return self._checked_result(result, "the operation")

    def _check_operand(self, value: Any, op: str) -> None:
        if isinstance(value, (torch.Tensor, *_SCALARS)):
            return
        kind = type(value).__name__
        raise ConsoleError(
            f"`{op}` works on tensors and numbers here, not on a {kind} (no repetition of lists "
            "or text)"
        )

    def _eval_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.run(node.left), self.run(node.right)
        symbol = _OP_SYMBOLS[type(node.op)]
        self._check_operand(left, symbol)
        self._check_operand(right, symbol)
        if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
            if isinstance(node.op, ast.MatMult):
                _matmul_check(left, right, "`@`", self.budget)
            else:
                _broadcast_check([left, right], f"`{symbol}`", self.budget)
        else:
            self._check_number_op(node.op, left, right)
        try:
            result = _BINOPS[type(node.op)](left, right)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(_explain_torch_error(f"`{symbol}`", error)) from None
        return self._checked_result(result, f"`{symbol}`")

    def _check_number_op(self, op: ast.operator, left: Any, right: Any) -> None:
        """Bound Python integers before `**` or `*` computes them (2**10**10 never starts)."""
        if not (isinstance(left, int) and isinstance(right, int)):
            return
        limit = self.limits.max_int_bits
        growing = isinstance(op, ast.Pow) and right > 0 and abs(left) > 1
        if growing and (abs(left).bit_length() - 1) * right > limit:
            raise ConsoleError(
                f"{left} ** {right} would be a number with more than {limit} bits; "
                "the console refuses it before computing"
            )
        if (
            isinstance(op, ast.Mult)
            and abs(left).bit_length() + abs(right).bit_length() > limit + 1
        ):
            raise ConsoleError(f"that product would have more than {limit} bits")

    def _eval_Compare(self, node: ast.Compare) -> Any:
        if len(node.ops) != 1:
            raise ConsoleError("compare one pair at a time, e.g. (A > 0) & (A < 1)")
        left, right = self.run(node.left), self.run(node.comparators[0])
        self._check_operand(left, "comparison")
        self._check_operand(right, "comparison")
        _broadcast_check([left, right], "the comparison", self.budget)
        try:
            result = _COMPARES[type(node.ops[0])](left, right)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(_explain_torch_error("the comparison", error)) from None
        return self._checked_result(result, "the comparison")


# --- static checks on the tree -----------------------------------------------------------------


def _check_tree(tree: ast.AST, limits: ConsoleLimits) -> None:
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_nodes:
            raise ConsoleError(
                f"the expression has more than {limits.max_nodes} parts; keep it to one idea"
            )
        if depth > limits.max_depth:
            raise ConsoleError(f"the expression is nested more than {limits.max_depth} levels deep")
        if not isinstance(node, _ALLOWED_NODES):
            reason = _REFUSED_NODE_REASONS.get(
                type(node), f"`{type(node).__name__}` is not part of what the console evaluates"
            )
            raise ConsoleError(reason)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ConsoleError(
                f"attributes starting with an underscore (`{node.attr}`) are not allowed"
            )
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ConsoleError(f"names starting with an underscore (`{node.id}`) are not allowed")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def parse_expression(source: str, limits: ConsoleLimits | None = None) -> ast.Expression:
    """Parse and statically check one console expression; raise ConsoleError with the reason."""
    limits = limits or ConsoleLimits()
    if not isinstance(source, str):
        raise ConsoleError("the console takes text")
    source = source.strip()
    if not source:
        raise ConsoleError("type an expression, for example A @ B")
    if len(source) > limits.max_source_chars:
        raise ConsoleError(
            f"the expression is {len(source)} characters long; the console takes at most "
            f"{limits.max_source_chars}"
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise ConsoleError(f"Python cannot read this expression: {error.msg}") from None
    except (MemoryError, RecursionError, ValueError):
        raise ConsoleError("Python cannot read this expression: it is nested too deeply") from None
    _check_tree(tree, limits)
    return tree


def evaluate(
    source: str,
    names: Mapping[str, torch.Tensor],
    limits: ConsoleLimits | None = None,
) -> ConsoleResult:
    """Evaluate one expression over `names` (plus `torch`) under `limits`.

    Args:
        source: what the student typed, e.g. "A @ B" or "torch.softmax(Z, dim=-1)".
        names: the page's named tensors; they are never modified (no in-place methods exist).
        limits: size, time and complexity caps (ConsoleLimits() by default).

    Returns:
        A ConsoleResult with the value, its kind, shape/dtype for tensors and a `.preview`.

    Raises:
        ConsoleError: with a sentence saying why the expression was refused or failed.
    """
    limits = limits or ConsoleLimits()
    start = time.perf_counter()
    tree = parse_expression(source, limits)
    with torch.no_grad():
        value = _Interpreter(names, limits).run(tree)
    seconds = time.perf_counter() - start
    return _describe_result(value, seconds)


def _describe_result(value: Any, seconds: float) -> ConsoleResult:
    if isinstance(value, torch.Tensor):
        return ConsoleResult(value, "tensor", tuple(value.shape), str(value.dtype), seconds)
    if isinstance(value, _Callable):
        raise ConsoleError(f"{value.name} is a function: call it with (), e.g. {value.name}()")
    if value is _TORCH or _holds_function(value):
        raise ConsoleError("that is a function or the library itself; call a function with ()")
    if isinstance(value, torch.Size):
        return ConsoleResult(value, "shape", None, None, seconds)
    kind = {bool: "bool", int: "number", float: "number", complex: "number"}.get(type(value))
    if kind is None:
        kind = "none" if value is None else type(value).__name__
    return ConsoleResult(value, kind, None, None, seconds)


def _holds_function(value: Any) -> bool:
    if isinstance(value, _Callable | _TorchNamespace):
        return True
    return isinstance(value, tuple | list) and any(_holds_function(item) for item in value)


def _explain_torch_error(where: str, error: Exception) -> str:
    """Turn torch's error text into a sentence in course language, keeping torch's own words."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    lower = text.lower()
    if "must match the size" in lower or "broadcast" in lower:
        hint = "the shapes do not broadcast (line them up from the right: each pair must be equal or 1)"
    elif "cannot be multiplied" in lower or "shapes cannot" in lower:
        hint = "in a matrix product the inner sizes must agree (columns of the left = rows of the right)"
    elif "out of range" in lower or "out of bounds" in lower:
        hint = "an index is past the end of a dimension (indices start at 0)"
    elif "is invalid for input of size" in lower:
        hint = "a reshape must keep the number of elements the same"
    elif isinstance(error, ZeroDivisionError):
        hint = "division by zero on plain Python numbers (tensors give inf instead)"
    elif isinstance(error, OverflowError):
        hint = "the number is too large for a Python float"
    else:
        hint = "torch could not compute it"
    return f"{where}: {hint}. torch says: {text}"
