"""Section 2 of the tensor playground: matrix multiplication step by step, `*` against `@`,
torch's product functions side by side, and batched products."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from core.tensors.matmul import (
    PRODUCT_EXAMPLES,
    batched_matmul_demo,
    compare_products,
    explain_matmul_shapes,
    matmul_cell,
    matmul_partial,
    small_int_operands,
)
from core.tensors.ranks import TensorInputError, parse_shape
from core.viz.tensors import matmul_step_figure
from ui.tensors_common import publish


def _next_cell(total: int, drawn_cell: int) -> None:
    # one cell per click even when Streamlit runs the callback twice (a click whose rerun
    # preempts a fragment run, such as the sidebar's memory refresh)
    st.session_state["tensors_mm_cell"] = min(drawn_cell + 1, total)


def _matrix_inputs() -> tuple[torch.Tensor, torch.Tensor] | None:
    left, right, seed_col = st.columns(3)
    a_text = left.text_input("Shape of A", value="2, 3", key="tensors_mm_a_shape", max_chars=60)
    b_text = right.text_input("Shape of B", value="3, 2", key="tensors_mm_b_shape", max_chars=60)
    seed = seed_col.number_input("Seed", 0, 10_000, 0, key="tensors_mm_seed")
    try:
        a_shape = parse_shape(a_text, max_rank=2, max_elements=64)
        b_shape = parse_shape(b_text, max_rank=2, max_elements=64)
    except TensorInputError as error:
        st.error(f"{error} (the stepper draws matrices of at most 64 numbers)")
        return None
    if len(a_shape) != 2 or len(b_shape) != 2:
        st.warning("The stepper walks through two matrices: give both shapes two sizes, like 2, 3.")
        return None
    report = explain_matmul_shapes(a_shape, b_shape)
    if not report.ok:
        st.warning(report.message)
        return None
    generator = torch.Generator().manual_seed(int(seed))
    # small integers, so every product and running sum can be checked by hand
    a = torch.randint(-3, 4, a_shape, generator=generator).float()
    b = torch.randint(-3, 4, b_shape, generator=generator).float()
    return a, b


def render_matmul() -> None:
    st.markdown(
        "In `C = A @ B` every output cell `C[i, j]` pairs **row i of A** with **column j of B**: "
        "multiply them number by number and add the products up. So the rows of A and the "
        "columns of B must have the same length (A's last size equals B's first)."
    )
    matrices = _matrix_inputs()
    if matrices is not None:
        a, b = matrices
        publish("A", a)
        publish("B", b)
        _stepper(a, b)
    _products()
    st.subheader("Batched products")
    st.markdown(
        "With more than two dimensions, `@` multiplies the **last two** as matrices and treats "
        "the others as a batch, which broadcasts like any elementwise operation."
    )
    left, right = st.columns(2)
    a_text = left.text_input(
        "Batched A shape", value="4, 2, 3", key="tensors_mm_batch_a", max_chars=60
    )
    b_text = right.text_input(
        "Batched B shape", value="3, 5", key="tensors_mm_batch_b", max_chars=60
    )
    try:
        a_shape, b_shape = (
            parse_shape(t, max_rank=4, max_elements=100_000) for t in (a_text, b_text)
        )
    except TensorInputError as error:
        st.error(str(error))
        return
    report, result = batched_matmul_demo(a_shape, b_shape)
    if not report.ok:
        st.warning(report.message)
    elif result is None:
        st.info(
            f"{report.message} That is too big to compute here; the rule alone gives the shape."
        )
    else:
        st.success(f"{report.message} torch.matmul gives shape {tuple(result.shape)}.")


def _stepper(a: torch.Tensor, b: torch.Tensor) -> None:
    total = a.shape[0] * b.shape[1]
    if total == 0:
        st.info("A size is 0, so C has no cells to compute (its shape still follows the rule).")
        return
    st.session_state["tensors_mm_cell"] = min(st.session_state.get("tensors_mm_cell", 0), total)
    buttons, slider = st.columns([1, 3])
    buttons.button(
        "Next cell",
        key="tensors_mm_next",
        on_click=_next_cell,
        args=(total, st.session_state["tensors_mm_cell"]),
        disabled=False,
        icon=":material/skip_next:",
    )
    done = slider.slider("Cells computed", 0, total, key="tensors_mm_cell")
    current = matmul_cell(a, b, done - 1) if done > 0 else None
    partial = matmul_partial(a, b, done)
    st.plotly_chart(
        matmul_step_figure(
            a, b, partial, current.row if current else None, current.col if current else None
        ),
        key="tensors_mm_chart",
    )
    if current is not None:
        st.markdown(
            f"**C[{current.row}, {current.col}]** = row "
            f"{current.row} of A · column {current.col} of B"
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "k": range(len(current.products)),
                    f"A[{current.row}, k]": current.a_values,
                    f"B[k, {current.col}]": current.b_values,
                    "product": current.products,
                    "running sum": current.running,
                }
            ),
            hide_index=True,
        )
    else:
        st.info("Press **Next cell** (or move the slider) to compute the first output cell.")
    reference = torch.matmul(a, b).double()
    if done == total:
        same = torch.equal(partial, reference)
        st.success(
            f"All {total} cells done. Equal to torch.matmul(A, B): **{same}**. "
            f"Cost: {a.shape[0]} × {a.shape[1]} × {b.shape[1]} = "
            f"{a.shape[0] * a.shape[1] * b.shape[1]} multiply-adds."
        )


def _fill_product_example() -> None:
    a_shape, b_shape = PRODUCT_EXAMPLES[st.session_state["tensors_mm_ops_example"]]
    st.session_state["tensors_mm_ops_a"] = ", ".join(map(str, a_shape))
    st.session_state["tensors_mm_ops_b"] = ", ".join(map(str, b_shape))


def _products() -> None:
    st.subheader("`*` against `@`, and torch's product functions")
    st.markdown(
        "`A * B` multiplies **matching elements** (after broadcasting): no sums, the result has "
        "the broadcast shape. `A @ B` is the **matrix product**: rows times columns, summed. "
        "`torch.mm`, `mv`, `dot` and `bmm` compute the same product but each accepts only one "
        "kind of shape; `matmul` (which `@` calls) accepts them all. Here all run on the same "
        "A and B, and torch's own refusals are shown."
    )
    st.selectbox(
        "Example",
        list(PRODUCT_EXAMPLES),
        key="tensors_mm_ops_example",
        on_change=_fill_product_example,
    )
    st.session_state.setdefault("tensors_mm_ops_a", "2, 2")  # the callback writes them too
    st.session_state.setdefault("tensors_mm_ops_b", "2, 2")
    left, right = st.columns(2)
    a_text = left.text_input("A shape", key="tensors_mm_ops_a", max_chars=60)
    b_text = right.text_input("B shape", key="tensors_mm_ops_b", max_chars=60)
    try:
        shapes = [parse_shape(t, max_rank=3, max_elements=64) for t in (a_text, b_text)]
    except TensorInputError as error:
        st.error(f"{error} (this comparison prints every result, so at most 64 numbers each)")
        return
    a, b = small_int_operands(*shapes)
    rows = compare_products(a, b)
    st.markdown(f"A has shape `{tuple(a.shape)}`, B has shape `{tuple(b.shape)}`:")
    st.table(
        pd.DataFrame(
            [
                {
                    "code": r.code,
                    "shape out": "refused" if r.out_shape is None else str(r.out_shape),
                    "cost": r.cost,
                    "torch's error": r.error or "",
                    "accepts": r.accepts,
                }
                for r in rows
            ]
        ),
        hide_index=True,
    )
    shown = st.columns(4)
    for column, (name, value) in zip(
        shown,
        (("A", a), ("B", b), ("A * B", rows[0].result), ("A @ B", rows[1].result)),
        strict=True,
    ):
        column.markdown(f"`{name}`")
        column.code("refused (see the table)" if value is None else _show(value), language="text")


def _show(tensor: torch.Tensor) -> str:
    return (
        str(tensor.to(torch.int64).tolist())
        if tensor.dim() < 2
        else "\n".join(str(row) for row in tensor.to(torch.int64).tolist())
    )
