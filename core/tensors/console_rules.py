"""What the tensor console allows: its limits, its errors and its allow-lists.

Names, attributes, torch functions, dtypes and tensor methods not listed here do not exist
for the console (see core.tensors.safe_eval); nothing starting with an underscore is ever
reachable.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


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


# --- the allow-lists

DTYPES = {
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
TORCH_SAME = {
    "abs",
    "exp",
    "log",
    "log2",
    "log10",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "softmax",
    "log_softmax",
    "neg",
    "round",
    "floor",
    "ceil",
    "clamp",
    "sign",
    "square",
    "sum",
    "mean",
    "prod",
    "std",
    "var",
    "max",
    "min",
    "argmax",
    "argmin",
    "norm",
    "all",
    "any",
    "cumsum",
    "sort",
    "argsort",
    "topk",
    "flip",
    "roll",
    "tril",
    "triu",
    "transpose",
    "permute",
    "reshape",
    "flatten",
    "squeeze",
    "unsqueeze",
    "t",
    "numel",
    "isnan",
    "isfinite",
    "count_nonzero",
    "allclose",
    "equal",
    "median",
    "diagonal",
    "trace",
    "real",
    "imag",
    "angle",
}
# torch functions that combine tensors elementwise with broadcasting
TORCH_BROADCAST = {
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "where",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "atan2",
    "remainder",
    "isclose",
    "logical_and",
    "logical_or",
}
TORCH_MATMUL = {"matmul", "mm", "bmm", "mv", "dot"}  # not inner: its output shape differs
# no torch.empty: uninitialised memory could show bytes another session left behind
TORCH_CREATORS = {"zeros", "ones", "rand", "randn", "full", "eye", "arange", "linspace"}
TORCH_SPECIAL = {
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
VALUES_AND_INDICES = {"sort", "argsort", "topk", "median", "max", "min", "cumsum"}

TENSOR_PROPERTIES = {
    "shape",
    "dtype",
    "ndim",
    "T",
    "mT",
    "device",
    "requires_grad",
    "is_leaf",
    "real",
    "imag",
}
TENSOR_SAME = (TORCH_SAME - {"allclose", "equal"}) | {
    "size",
    "dim",
    "stride",
    "storage_offset",
    "is_contiguous",
    "element_size",
    "nelement",
    "contiguous",
    "clone",
    "detach",
    "view",
    "float",
    "double",
    "half",
    "bfloat16",
    "int",
    "long",
    "bool",
    "to",
    "item",
    "tolist",
    "data_ptr",
    "type_as",
    "view_as",
    "reshape_as",
    "expand_as",
}
TENSOR_BROADCAST = TORCH_BROADCAST - {"where", "isclose"}
TENSOR_MATMUL = {"matmul", "mm", "bmm", "mv", "dot"}
TENSOR_SPECIAL = {"repeat", "tile", "expand"}

ALLOWED_KWARGS = {
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
}  # (no `size=`: sizes are given positionally, where the size checks read them)

BINOPS: dict[type, Callable[[Any, Any], Any]] = {
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
UNARYOPS: dict[type, Callable[[Any], Any]] = {
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
    ast.Invert: lambda a: ~a,
}
COMPARES: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
OP_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
}

ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Call,
    ast.keyword,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.Constant,
    ast.Name,
    ast.Load,
    *BINOPS,
    *UNARYOPS,
    *COMPARES,
)

REFUSED_NODE_REASONS = {
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
