"""Matrix multiplication by hand: the shape rules of `torch.matmul` and the product cell by cell."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.tensors.broadcasting import _fmt, explain_broadcast


@dataclass(frozen=True)
class MatmulShapeReport:
    """What `a @ b` would do with these shapes, computed without computing it."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    out_shape: tuple[int, ...] | None  # None when the product does not exist
    batch_shape: tuple[int, ...]  # broadcast batch dimensions (empty for plain matrices)
    inner: int | None  # the summed size k
    macs: int  # multiply-adds: batch * m * k * p
    message: str

    @property
    def ok(self) -> bool:
        return self.out_shape is not None


def explain_matmul_shapes(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], *, names: tuple[str, str] = ("A", "B")
) -> MatmulShapeReport:
    """The result shape and cost of `torch.matmul` on these shapes, or why there is none.

    `names` label the operands in the message. Rules (as torch.matmul): a 1-D left operand is
    a row (1, k), a 1-D right operand a column (k, 1), and those added dimensions are removed
    from the result; the last two dimensions multiply as matrices, (m, k) @ (k, p) -> (m, p);
    all earlier dimensions are batch dimensions and broadcast.
    """
    a, b = tuple(int(d) for d in a_shape), tuple(int(d) for d in b_shape)
    if not a or not b:
        message = (
            "a matrix product needs at least one dimension on each side; "
            "a single number is a scale: use *"
        )
        return MatmulShapeReport(a, b, None, (), None, 0, message)
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    m, k = a2[-2], a2[-1]
    k2, p = b2[-2], b2[-1]
    if k != k2:
        left, right = names
        message = (
            f"{left} {_fmt(a)} @ {right} {_fmt(b)} pairs every row of {left} ({k} numbers) with "
            f"every column of {right} ({k2} numbers); the inner sizes {k} and {k2} differ, so "
            f"the products cannot be summed. The last size of {left} must equal the "
            + (f"size of {right}" if len(b) == 1 else f"second-to-last size of {right}")
            + " (try transposing one of them with .T)."
        )
        return MatmulShapeReport(a, b, None, (), None, 0, message)
    batch = explain_broadcast(a2[:-2], b2[:-2])
    if not batch.ok:
        message = f"the batch dimensions do not broadcast: {batch.message}"
        return MatmulShapeReport(a, b, None, (), k, 0, message)
    batch_shape = batch.result_shape
    out = list(batch_shape) + ([m] if len(a) > 1 else []) + ([p] if len(b) > 1 else [])
    macs = math.prod(batch_shape) * m * k * p
    out_shape = tuple(out)
    message = (
        f"{_fmt(a)} @ {_fmt(b)} -> {_fmt(out_shape)}: each output cell sums {k} products, "
        f"{macs:,} multiply-adds in all"
        + (f"; batch dimensions broadcast to {_fmt(batch_shape)}" if batch_shape else "")
        + "."
    )
    return MatmulShapeReport(a, b, out_shape, batch_shape, k, macs, message)


@dataclass(frozen=True)
class MatmulCellStep:
    """One output cell C[row, col] = sum over k of A[row, k] * B[k, col]."""

    index: int  # cell number in row-major order, 0-based
    row: int
    col: int
    a_values: tuple[float, ...]  # row `row` of A
    b_values: tuple[float, ...]  # column `col` of B
    products: tuple[float, ...]  # a_values[k] * b_values[k]
    running: tuple[float, ...]  # running sum after each product
    value: float  # the finished cell


def _check_matrices(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError("the stepper works on two matrices (rank 2)")
    report = explain_matmul_shapes(tuple(a.shape), tuple(b.shape))
    if not report.ok:
        raise ValueError(report.message)


def matmul_cell(a: torch.Tensor, b: torch.Tensor, index: int) -> MatmulCellStep:
    """The products and running sum behind output cell `index` (row-major) of a @ b.

    a: (m, k), b: (k, p); index in [0, m * p).
    """
    _check_matrices(a, b)
    m, p = a.shape[0], b.shape[1]
    if not 0 <= index < m * p:
        raise IndexError(f"cell {index} is outside the {m} x {p} result")
    row, col = divmod(index, p)
    products = a[row, :] * b[:, col]  # same dtype arithmetic as torch.matmul
    running = torch.cumsum(products, dim=0)
    value = float(running[-1]) if running.numel() else 0.0
    return MatmulCellStep(
        index,
        row,
        col,
        tuple(a[row, :].tolist()),
        tuple(b[:, col].tolist()),
        tuple(products.tolist()),
        tuple(running.tolist()),
        value,
    )


def matmul_partial(a: torch.Tensor, b: torch.Tensor, cells_done: int) -> torch.Tensor:
    """The result (m, p) float64 after `cells_done` cells, NaN where not computed yet."""
    _check_matrices(a, b)
    m, p = a.shape[0], b.shape[1]
    result = torch.full((m, p), float("nan"), dtype=torch.float64)
    for index in range(min(max(cells_done, 0), m * p)):
        step = matmul_cell(a, b, index)
        result[step.row, step.col] = step.value
    return result


def matmul_by_cells(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b computed one cell at a time from its products, in a's dtype.

    Compare with torch.matmul.
    """
    _check_matrices(a, b)
    m, p = a.shape[0], b.shape[1]
    out = torch.empty((m, p), dtype=torch.promote_types(a.dtype, b.dtype))
    for row in range(m):
        for col in range(p):
            out[row, col] = (a[row, :] * b[:, col]).sum()
    return out


MAX_DEMO_ELEMENTS = 1_000_000  # result elements the batched demo will actually compute
MAX_DEMO_MACS = 50_000_000  # and multiply-adds (~10 ms on one core)


def batched_matmul_demo(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], seed: int = 0
) -> tuple[MatmulShapeReport, torch.Tensor | None]:
    """Random integer-valued tensors of these shapes and their `@`.

    The result is None when the product does not exist, or when it would exceed
    MAX_DEMO_ELEMENTS or MAX_DEMO_MACS: the shape rule answers without computing, and a
    (100000, 1) @ (1, 100000) typed by a student must not allocate 40 GB.
    """
    report = explain_matmul_shapes(a_shape, b_shape)
    if not report.ok or math.prod(report.out_shape) > MAX_DEMO_ELEMENTS:
        return report, None
    if report.macs > MAX_DEMO_MACS:
        return report, None
    generator = torch.Generator().manual_seed(seed)
    a = torch.randint(-3, 4, a_shape, generator=generator).float()
    b = torch.randint(-3, 4, b_shape, generator=generator).float()
    return report, a @ b


@dataclass(frozen=True)
class ProductRow:
    """One product function applied to the same two tensors."""

    code: str
    accepts: str  # the shapes this function is defined for
    out_shape: tuple[int, ...] | None  # None when torch refused
    result: torch.Tensor | None
    cost: str  # multiply-adds (or multiplications, for *)
    error: str | None  # torch's real error message, first line


PRODUCTS: dict[str, tuple[str, object]] = {
    "A * B": ("any two shapes that broadcast; multiplies matching elements", torch.mul),
    "A @ B": ("same as torch.matmul", torch.matmul),
    "torch.matmul(A, B)": ("1-D to n-D: vectors, matrices, batches that broadcast", torch.matmul),
    "torch.mm(A, B)": ("two matrices only: (m, k) and (k, p)", torch.mm),
    "torch.mv(A, B)": ("a matrix and a vector only: (m, k) and (k,)", torch.mv),
    "torch.dot(A, B)": ("two vectors of the same length only: (k,) and (k,)", torch.dot),
    "torch.bmm(A, B)": ("two batches of matrices only: (b, m, k) and (b, k, p)", torch.bmm),
}


def compare_products(a: torch.Tensor, b: torch.Tensor) -> list[ProductRow]:
    """Run `*`, `@` and torch's product functions on the same a and b, each for real.

    The elementwise product costs one multiplication per output element and adds nothing;
    every matrix-type product costs (batch) * m * k * p multiply-adds, the same number
    whichever function computes it (see explain_matmul_shapes).
    """
    rows = []
    for code, (accepts, function) in PRODUCTS.items():
        try:
            result = function(a, b)
        except (RuntimeError, IndexError, TypeError) as error:
            rows.append(ProductRow(code, accepts, None, None, "", str(error).splitlines()[0]))
            continue
        if code == "A * B":
            cost = f"{result.numel():,} multiplications, no additions"
        else:
            cost = f"{explain_matmul_shapes(tuple(a.shape), tuple(b.shape)).macs:,} multiply-adds"
        rows.append(ProductRow(code, accepts, tuple(result.shape), result, cost, None))
    return rows


PRODUCT_EXAMPLES = {
    "two matrices (2, 2) and (2, 2)": ((2, 2), (2, 2)),
    "matrix and vector (2, 3) and (3,)": ((2, 3), (3,)),
    "two vectors (3,) and (3,)": ((3,), (3,)),
    "batch of matrices (4, 2, 3) and (4, 3, 2)": ((4, 2, 3), (4, 3, 2)),
    "batch and one matrix (4, 2, 3) and (3, 2)": ((4, 2, 3), (3, 2)),
    "column and row (3, 1) and (1, 3)": ((3, 1), (1, 3)),
}


def small_int_operands(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded float tensors of small whole numbers (-3..3): every product is checkable by hand."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randint(-3, 4, a_shape, generator=generator).float()
    b = torch.randint(-3, 4, b_shape, generator=generator).float()
    return a, b
