"""Sections 1 and 2 of the tensor playground: ranks, and matrix multiplication step by step."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from core.tensors.matmul import (
    batched_matmul_demo,
    explain_matmul_shapes,
    matmul_cell,
    matmul_partial,
)
from core.tensors.ranks import (
    DTYPES,
    FILLS,
    TensorInputError,
    TensorSpec,
    build_tensor,
    describe_tensor,
    parse_shape,
)
from core.viz.tensors import matmul_step_figure, tensor_heatmap
from ui.tensors_common import publish

RANK_PRESETS = {0: "()", 1: "5", 2: "3, 4", 3: "2, 3, 4"}


def _preset_shape() -> None:
    st.session_state["tensors_rank_shape"] = RANK_PRESETS[st.session_state["tensors_rank_rank"]]


def render_ranks() -> None:
    st.markdown(
        "A tensor is a box of numbers with a **shape**. Its **rank** is how many indices you "
        "need to reach one number: rank 0 is a single number, rank 1 a vector, rank 2 a matrix, "
        "rank 3 a stack of matrices (a batch of spectrograms is rank 3: batch, bands, frames)."
    )
    controls, view = st.columns([1, 2])
    with controls:
        st.radio(
            "Rank", list(RANK_PRESETS), index=2, key="tensors_rank_rank", horizontal=True,
            on_change=_preset_shape,
        )  # fmt: skip
        st.session_state.setdefault("tensors_rank_shape", "3, 4")  # callbacks write it too
        shape_text = st.text_input("Shape", key="tensors_rank_shape", max_chars=60)
        fill = st.selectbox("Fill", FILLS, index=2, key="tensors_rank_fill")
        dtype = st.selectbox("dtype", list(DTYPES), key="tensors_rank_dtype")
        seed = st.number_input("Seed", 0, 10_000, 0, key="tensors_rank_seed")
        values = st.text_input(
            "Values (for fill = values)", value="1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
            key="tensors_rank_values", max_chars=2000,
        )  # fmt: skip
    try:
        spec = TensorSpec(parse_shape(shape_text), fill, dtype, int(seed), values)
        tensor = build_tensor(spec)
    except TensorInputError as error:
        view.error(str(error))
        return
    publish("T", tensor)
    facts = describe_tensor(tensor)
    with view:
        st.markdown(f"`T` is **{facts.rank_name}** of shape `{facts.shape}`.")
        st.plotly_chart(tensor_heatmap(tensor), key="tensors_rank_chart")
        st.dataframe(
            pd.DataFrame(
                {
                    "shape": [str(facts.shape)], "rank": [facts.rank], "dtype": [facts.dtype],
                    "device": [facts.device], "stride": [str(facts.stride)],
                    "elements": [facts.numel], "bytes": [f"{facts.numel} × {facts.element_size} = {facts.nbytes}"],
                }
            ),
            hide_index=True,
        )  # fmt: skip
        st.caption(
            "The **stride** says how many elements to skip in memory to move one step along each "
            "dimension: the numbers live in one flat row, and the shape and stride say how to read it."
        )


def _next_cell(total: int) -> None:
    st.session_state["tensors_mm_cell"] = min(st.session_state.get("tensors_mm_cell", 0) + 1, total)


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
        "Next cell", key="tensors_mm_next", on_click=_next_cell, args=(total,), disabled=False,
        icon=":material/skip_next:",
    )  # fmt: skip
    done = slider.slider("Cells computed", 0, total, key="tensors_mm_cell")
    current = matmul_cell(a, b, done - 1) if done > 0 else None
    partial = matmul_partial(a, b, done)
    st.plotly_chart(
        matmul_step_figure(a, b, partial, current.row if current else None, current.col if current else None),
        key="tensors_mm_chart",
    )  # fmt: skip
    if current is not None:
        st.markdown(
            f"**C[{current.row}, {current.col}]** = row {current.row} of A · column {current.col} of B"
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
