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

The allow-lists and limits are in `core.tensors.console_rules`, the sizing of each operation
in `core.tensors.console_sizing`; this module is the interpreter and its public entry points.

Why one module of a little over 500 lines: an interpreter that guards hostile input is safest
read in one place; the allow-lists and sizing already live in console_rules.py and
console_sizing.py.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Mapping
from typing import Any

import torch

from core.tensors.console_rules import (
    ALLOWED_KWARGS,
    ALLOWED_NODES,
    BINOPS,
    COMPARES,
    DTYPES,
    OP_SYMBOLS,
    REFUSED_NODE_REASONS,
    TENSOR_BROADCAST,
    TENSOR_MATMUL,
    TENSOR_PROPERTIES,
    TENSOR_SAME,
    TENSOR_SPECIAL,
    TORCH_BROADCAST,
    TORCH_CREATORS,
    TORCH_MATMUL,
    TORCH_SAME,
    TORCH_SPECIAL,
    UNARYOPS,
    VALUES_AND_INDICES,
    ConsoleError,
    ConsoleLimits,
    ConsoleResult,
)
from core.tensors.console_sizing import (
    SCALARS,
    TORCH,
    AllowedCallable,
    Budget,
    TorchNamespace,
    broadcast_check,
    broadcast_shape,
    count_items,
    creator_elements,
    dtype_itemsize,
    matmul_check,
    prod,
    special_check,
)

# --- the interpreter


class _Interpreter:
    def __init__(self, names: Mapping[str, torch.Tensor], limits: ConsoleLimits) -> None:
        self.names = dict(names)
        self.limits = limits
        self.budget = Budget(limits)

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
            return TORCH
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
        if owner is TORCH:
            return self._torch_attribute(attr)
        if isinstance(owner, torch.Tensor):
            return self._tensor_attribute(owner, attr)
        if type(owner).__module__ == "torch.return_types" and attr in ("values", "indices"):
            return getattr(owner, attr)  # torch.max(A, dim=0).values
        raise ConsoleError(f"`.{attr}` is not available on a {type(owner).__name__} in the console")

    def _torch_attribute(self, attr: str) -> Any:
        if attr in DTYPES:
            return DTYPES[attr]
        for rule, names in (
            ("same", TORCH_SAME),
            ("broadcast", TORCH_BROADCAST),
            ("matmul", TORCH_MATMUL),
            ("creator", TORCH_CREATORS),
            ("special", TORCH_SPECIAL),
        ):
            if attr in names:
                return AllowedCallable(f"torch.{attr}", getattr(torch, attr), rule)
        raise ConsoleError(
            f"torch.{attr} is not available in the console (it allows tensor maths: creators, "
            "elementwise functions, reductions, shapes and products, but no files, I/O or devices)"
        )

    def _tensor_attribute(self, tensor: torch.Tensor, attr: str) -> Any:
        if attr in TENSOR_PROPERTIES:
            return getattr(tensor, attr)
        for rule, names in (
            ("same", TENSOR_SAME),
            ("broadcast", TENSOR_BROADCAST),
            ("matmul", TENSOR_MATMUL),
            ("special", TENSOR_SPECIAL),
        ):
            if attr in names:
                return AllowedCallable(f".{attr}", getattr(tensor, attr), rule, owner=tensor)
        if attr.endswith("_"):
            reason = "in-place methods (ending in `_`) would change the page's tensors"
        elif attr in {"numpy", "tofile", "storage", "untyped_storage", "data", "grad"}:
            reason = "it reaches memory or files outside the tensor maths the console allows"
        else:
            reason = "it is not on the console's allow-list of tensor methods"
        raise ConsoleError(f"`.{attr}` is not available in the console: {reason}")

    def _eval_Call(self, node: ast.Call) -> Any:
        callee = self.run(node.func)
        if not isinstance(callee, AllowedCallable):
            raise ConsoleError("only torch functions and tensor methods can be called here")
        args = tuple(self.run(arg) for arg in node.args)
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in ALLOWED_KWARGS:
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
            raise ConsoleError(explain_torch_error(callee.name, error)) from None
        return self._checked_result(result, callee.name)

    def _check_argument(self, value: Any, where: str) -> None:
        if isinstance(value, AllowedCallable | TorchNamespace):
            raise ConsoleError(f"{where} was given a function; call it with () first")
        if isinstance(value, tuple | list):
            for item in value:
                self._check_argument(item, where)

    def _precheck_call(self, callee: AllowedCallable, args: tuple, kwargs: dict) -> None:
        name = callee.name.removeprefix("torch.").removeprefix(".")
        if callee.rule == "creator":
            dtype = kwargs.get("dtype")
            count = creator_elements(name, args, kwargs)
            self.budget.charge(count, dtype_itemsize(dtype), f"{callee.name}(...)")
        elif callee.rule == "same":
            self._precheck_same(callee, args, kwargs)
        elif callee.rule == "matmul":
            operands = (callee.owner, *args) if callee.owner is not None else args
            if len(operands) != 2 or kwargs:
                raise ConsoleError(
                    "write the product with two tensors and no keywords: "
                    f"A @ B or {callee.name}(A, B)"
                    if callee.owner is None
                    else f"write the product as A{callee.name}(B)"
                )
            matmul_check(operands[0], operands[1], callee.name, self.budget)
        elif callee.rule == "broadcast":
            operands = [callee.owner, *args] if callee.owner is not None else list(args)
            operands += [v for k, v in kwargs.items() if k in ("other", "input", "exponent")]
            broadcast_check(operands, callee.name, self.budget)
        elif callee.rule == "special":
            special_check(name, callee.owner, args, kwargs, self.budget)
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

    def _precheck_same(self, callee: AllowedCallable, args: tuple, kwargs: dict) -> None:
        """Output no bigger than the inputs, unless two tensors broadcast (torch.max(A, B))."""
        operands = [
            v for v in (callee.owner, *args, *kwargs.values()) if isinstance(v, torch.Tensor)
        ]
        if len(operands) >= 2:
            result_shape = broadcast_shape([tuple(t.shape) for t in operands])
            if result_shape is not None:
                size = max(prod(result_shape), max(t.numel() for t in operands))
                self.budget.charge(size, 8, f"the result of {callee.name}")
                return
        if operands:
            biggest = max(operands, key=lambda t: t.numel())
            numel = biggest.numel()
            name = callee.name.removeprefix("torch.").removeprefix(".")
            if name in VALUES_AND_INDICES:
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
        if result is None or isinstance(result, (*SCALARS, torch.dtype, torch.device, torch.Size)):
            return result
        if isinstance(result, tuple | list):
            for item in result:
                if isinstance(item, torch.Tensor) and item.numel() > self.limits.max_elements:
                    raise ConsoleError(f"{what} produced a tensor larger than the console allows")
            if count_items(result, tensors_count=False) > self.limits.max_list_items:
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
            raise ConsoleError(explain_torch_error("indexing", error)) from None
        return self._checked_result(result, "indexing")

    def _check_tensor_index(self, tensor: torch.Tensor, index: Any) -> None:
        parts = index if isinstance(index, tuple) else (index,)
        tensor_parts = [p for p in parts if isinstance(p, torch.Tensor | list)]
        if not tensor_parts:
            return  # ints, slices, None and ... give views: no new memory
        # Advanced indexing copies. Each index tensor consumes at least one dimension of size
        # >= the smallest one, so (index elements) x (what is left) bounds the result.
        index_elements = prod(count_items(p) for p in tensor_parts)
        smallest = max(min(tensor.shape, default=1), 1)
        rest = tensor.numel() // smallest ** min(len(tensor_parts), max(tensor.dim(), 1))
        self.budget.charge(index_elements * max(rest, 1), tensor.element_size(), "this indexing")

    def _eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.run(node.operand)
        self._check_operand(operand, "a sign")
        if isinstance(operand, torch.Tensor):
            self.budget.charge(operand.numel(), operand.element_size(), "this operation")
        try:
            result = UNARYOPS[type(node.op)](operand)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(explain_torch_error("the operation", error)) from None
        return self._checked_result(result, "the operation")

    def _check_operand(self, value: Any, op: str) -> None:
        if isinstance(value, (torch.Tensor, *SCALARS)):
            return
        kind = type(value).__name__
        raise ConsoleError(
            f"`{op}` works on tensors and numbers here, not on a {kind} (no repetition of lists "
            "or text)"
        )

    def _eval_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.run(node.left), self.run(node.right)
        symbol = OP_SYMBOLS[type(node.op)]
        self._check_operand(left, symbol)
        self._check_operand(right, symbol)
        if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
            if isinstance(node.op, ast.MatMult):
                matmul_check(left, right, "`@`", self.budget)
            else:
                broadcast_check([left, right], f"`{symbol}`", self.budget)
        else:
            self._check_number_op(node.op, left, right)
        try:
            result = BINOPS[type(node.op)](left, right)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(explain_torch_error(f"`{symbol}`", error)) from None
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
        broadcast_check([left, right], "the comparison", self.budget)
        try:
            result = COMPARES[type(node.ops[0])](left, right)
        except Exception as error:  # whatever torch raises, the student gets a sentence
            raise ConsoleError(explain_torch_error("the comparison", error)) from None
        return self._checked_result(result, "the comparison")


# --- static checks on the tree


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
        if not isinstance(node, ALLOWED_NODES):
            reason = REFUSED_NODE_REASONS.get(
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
    if isinstance(value, AllowedCallable):
        raise ConsoleError(f"{value.name} is a function: call it with (), e.g. {value.name}()")
    if value is TORCH or _holds_function(value):
        raise ConsoleError("that is a function or the library itself; call a function with ()")
    if isinstance(value, torch.Size):
        return ConsoleResult(value, "shape", None, None, seconds)
    kind = {bool: "bool", int: "number", float: "number", complex: "number"}.get(type(value))
    if kind is None:
        kind = "none" if value is None else type(value).__name__
    return ConsoleResult(value, kind, None, None, seconds)


def _holds_function(value: Any) -> bool:
    if isinstance(value, AllowedCallable | TorchNamespace):
        return True
    return isinstance(value, tuple | list) and any(_holds_function(item) for item in value)


def explain_torch_error(where: str, error: Exception) -> str:
    """Turn torch's error text into a sentence in course language, keeping torch's own words."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    lower = text.lower()
    if "must match the size" in lower or "broadcast" in lower:
        hint = (
            "the shapes do not broadcast "
            "(line them up from the right: each pair must be equal or 1)"
        )
    elif "cannot be multiplied" in lower or "shapes cannot" in lower:
        hint = (
            "in a matrix product the inner sizes must agree "
            "(columns of the left = rows of the right)"
        )
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
