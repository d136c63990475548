"""Section 1 of the tensor playground: ranks, the torch code behind a tensor, empty tensors and
moving a tensor to the session's device."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from core.devices import format_bytes, resolve_device
from core.tensors.ranks import (
    DTYPES,
    FILLS,
    TensorInputError,
    TensorSpec,
    build_tensor,
    describe_tensor,
    empty_tensor_facts,
    move_to_device,
    parse_shape,
    torch_code,
)
from core.viz.tensors import tensor_heatmap
from ui.tensors_common import publish

RANK_PRESETS = {0: "()", 1: "5", 2: "3, 4", 3: "2, 3, 4"}
LAST_MOVE = "tensors_rank_last_move"


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
            "Rank",
            list(RANK_PRESETS),
            index=2,
            key="tensors_rank_rank",
            horizontal=True,
            on_change=_preset_shape,
        )
        st.session_state.setdefault("tensors_rank_shape", "3, 4")  # callbacks write it too
        shape_text = st.text_input("Shape", key="tensors_rank_shape", max_chars=60)
        fill = st.selectbox("Fill", FILLS, index=2, key="tensors_rank_fill")
        dtype = st.selectbox("dtype", list(DTYPES), key="tensors_rank_dtype")
        seed = st.number_input("Seed", 0, 10_000, 0, key="tensors_rank_seed")
        values = st.text_input(
            "Values (for fill = values)",
            value="1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
            key="tensors_rank_values",
            max_chars=2000,
        )
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
        st.code(f"T = {torch_code(spec)}", language="python", wrap_lines=True)
        st.plotly_chart(tensor_heatmap(tensor), key="tensors_rank_chart")
        st.dataframe(
            pd.DataFrame(
                {
                    "shape": [str(facts.shape)],
                    "rank": [facts.rank],
                    "dtype": [facts.dtype],
                    "device": [facts.device],
                    "stride": [str(facts.stride)],
                    "elements": [facts.numel],
                    "bytes": [f"{facts.numel} × {facts.element_size} = {facts.nbytes}"],
                }
            ),
            hide_index=True,
        )
        st.caption(
            "The **stride** says how many elements to skip in memory to move "
            "one step along each dimension: the numbers live in one flat row, "
            "and the shape and stride say how to read it."
        )
    if facts.numel == 0:
        _empty_note(tensor)
    _move_to_device(tensor, spec)


def _empty_note(tensor: torch.Tensor) -> None:
    st.info(
        f"**An empty tensor.** A size 0 anywhere makes {tuple(tensor.shape)} hold no numbers "
        "at all, yet it is a perfectly legal tensor with a shape, a dtype and a stride. Empty "
        "tensors turn up for real: a batch with no items, the frames of a clip shorter than one "
        "window, the notes found in silence. Reductions then follow their identities: a sum of "
        "nothing is 0, a product 1, a mean 0 / 0 = nan, and a max has no answer at all."
    )
    st.table(
        pd.DataFrame(
            [{"code": f.code, "torch says": f.result} for f in empty_tensor_facts(tensor)]
        ),
        hide_index=True,
    )


def _move_to_device(tensor: torch.Tensor, spec: TensorSpec) -> None:
    st.subheader("Moving T to a device")
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    st.markdown(
        f"The sidebar's device is **{device}**. `T.to(device)` returns a tensor on that device: "
        "a copy of the numbers in the device's own memory when T lives elsewhere, or **T "
        "itself** (no copy) when it is already there. Tensors meeting in one operation must "
        "share a device."
    )
    st.code(f"T_dev = T.to('{device}')", language="python")
    if st.button(f"Run T.to('{device}')", key="tensors_rank_move", icon=":material/move_up:"):
        st.session_state[LAST_MOVE] = (spec, str(device), move_to_device(tensor, device))
    last_spec, last_device, move = st.session_state.get(LAST_MOVE, (None, None, None))
    if move is None or (last_spec, last_device) != (spec, str(device)):
        return  # a move of another tensor, or to another device, is not shown beside this one
    size = lambda n: "unknown" if n is None else format_bytes(n)  # noqa: E731
    st.dataframe(
        pd.DataFrame(
            [
                {"moment": "before T.to()", "memory counter": size(move.allocated_before)},
                {"moment": "T_dev alive", "memory counter": size(move.allocated_after)},
                {"moment": "after del T_dev", "memory counter": size(move.allocated_after_del)},
            ]
        ),
        hide_index=True,
        key="tensors_rank_move_table",
    )
    st.caption(f"On {move.device} the counter is {move.counter}.")
    if move.same_object:
        mixed = (
            ", and `T + T_dev` would fail with `RuntimeError: Expected all tensors to be on the "
            "same device`"
            if tensor.dim()
            else " (`T + T_dev` would still work: a 0-dim CPU scalar may join a GPU operation)"
        )
        st.success(
            f"`T.to('{move.device}') is T` → **True**: T already lives on {move.device}, so "
            "nothing moved and no memory was used. On a GPU, `T.to('cuda')` would copy T's "
            f"{move.nbytes:,} bytes over the bus into the card's memory (its allocated counter "
            "grows by that, rounded up to 512-byte blocks, and falls back after `del`), T itself "
            f"would stay in the computer's memory{mixed}."
        )
    else:
        mixed = (
            f"`T + T_dev` fails: `RuntimeError: {move.mixed_error}`"
            if move.mixed_error
            else "`T + T_dev` works only because T is a 0-dim scalar: torch lets a CPU scalar "
            "join a GPU operation as a plain number."
        )
        st.success(
            f"T's {move.nbytes:,} bytes were copied to {move.device}; T itself stayed on "
            f"{tensor.device}. {mixed}"
        )
