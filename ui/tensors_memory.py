"""Sections 4 and 5 of the tensor playground: memory and aliasing, and conversions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.audio import encode_wav
from core.tensors.conversions import (
    CAST_DTYPES,
    EXAMPLE_VALUES,
    audio_precision,
    cast_table,
    dtype_facts,
    round_trips,
)
from core.tensors.memory import (
    ASSIGNMENT_STATEMENTS,
    AliasExperiment,
    leaf_in_place_error,
    numpy_sharing_demo,
    python_copies_demo,
    run_assignment,
    view_experiments,
)
from core.tensors.ranks import TensorInputError, parse_values
from core.viz.tensors import storage_figure
from ui.tensors_common import load_clip, pick_clip, publish

LAST_EXPERIMENT = "tensors_mem_last"


def _values_tensor(text: str, label: str) -> torch.Tensor | None:
    try:
        values = parse_values(text)
    except TensorInputError as error:
        st.error(f"{label}: {error}")
        return None
    if not 1 <= len(values) <= 8:
        st.error(f"{label}: type between 1 and 8 numbers")
        return None
    return torch.tensor(values)


def render_memory() -> None:
    st.markdown(
        "A Python name is a label on an object; a tensor object points at a block of memory "
        "(its **storage**). `data_ptr()` is the address of the first number; `_version` counts "
        "in-place writes. Run each statement and watch which names see the change."
    )
    left, right, pick = st.columns([1, 1, 1])
    x = _values_tensor(
        left.text_input("X", value="1, 2, 3", key="tensors_mem_x", max_chars=60), "X"
    )
    y = _values_tensor(
        right.text_input("Y", value="10, 20, 30", key="tensors_mem_y", max_chars=60), "Y"
    )
    statement = pick.radio("Statement", list(ASSIGNMENT_STATEMENTS), key="tensors_mem_statement")
    if x is None or y is None:
        return
    if x.shape != y.shape:
        st.warning(f"X has {x.numel()} numbers and Y has {y.numel()}: give both the same count.")
        return
    publish("X", x)
    publish("Y", y)
    if st.button("Run the experiment", key="tensors_mem_run", icon=":material/science:"):
        st.session_state[LAST_EXPERIMENT] = run_assignment(statement, x, y)
    experiment = st.session_state.get(LAST_EXPERIMENT)
    if experiment is None:
        st.info("Choose a statement and press **Run the experiment**. `Y_old = Y` runs first.")
    else:
        _show_experiment(experiment)
    _views_and_copies()


def _show_experiment(experiment: AliasExperiment) -> None:
    st.markdown(f"#### `Y_old = Y; {experiment.statement}`")
    before, after = st.columns(2)
    before.plotly_chart(storage_figure(experiment.before, "before"), key="tensors_mem_before")
    after.plotly_chart(storage_figure(experiment.after, "after"), key="tensors_mem_after")
    rows = [
        {
            "name": b.name,
            "data_ptr before": hex(b.data_ptr),
            "data_ptr after": hex(a.data_ptr),
            "_version before → after": f"{b.version} → {a.version}",
            "values before": str(list(b.values)),
            "values after": str(list(a.values)),
            "sees a change": b.name in experiment.names_seeing_change,
        }
        for b, a in zip(experiment.before, experiment.after, strict=True)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="tensors_mem_table")
    memory = "the same memory" if experiment.y_same_memory else "new memory"
    st.success(
        f"After `{experiment.statement}`, Y names {memory}; in place: {experiment.in_place}. "
        + experiment.explanation
    )


def _views_and_copies() -> None:
    st.subheader("Views and copies")
    st.markdown(
        "A **view** is a new tensor object over the **same** storage with another shape, stride or "
        "offset: writing through it changes the original. A **copy** has storage of its own. "
        "`view` never copies (and fails when it cannot), `reshape` copies only when it must."
    )
    facts = view_experiments()
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "x = torch.arange(12.).reshape(3, 4); then": f.code,
                    "shape": str(f.shape) if f.shape else "",
                    "stride": str(f.stride) if f.stride else "",
                    "offset": f.storage_offset,
                    "contiguous": f.is_contiguous,
                    "shares x's storage": f.shares_storage,
                    "writing to it changes x": f.write_visible,
                    "error": f.error or "",
                }
                for f in facts
            ]
        ),
        hide_index=True,
    )
    same, steps = numpy_sharing_demo()
    st.markdown(f"**`.numpy()` shares memory** (same address: {same}): change one, see the other.")
    st.table(
        pd.DataFrame(
            [
                {"code": s.code, "t": str(list(s.tensor_values)), "a": str(list(s.other_values))}
                for s in steps
            ]
        )
    )
    st.markdown(
        "**`.item()`, `float()` and `.tolist()` copy** into Python objects: later changes miss them."
    )
    st.table(
        pd.DataFrame(
            [
                {
                    "code": s.code,
                    "t": str(list(s.tensor_values)),
                    "item, f, *l": str(list(s.other_values)),
                }
                for s in python_copies_demo()
            ]
        )
    )
    message, fixed = leaf_in_place_error()
    st.markdown(
        "**In-place on a leaf that requires grad.** Autograd needs the original values of a "
        "parameter to compute gradients, so it refuses `w.add_(1)` on `w = torch.ones(3, "
        "requires_grad=True)`:"
    )
    st.code(f"RuntimeError: {message}", language="text")
    st.caption(f"Optimisers update parameters inside `with torch.no_grad():`, which gives {fixed}.")


def render_conversions() -> None:
    st.markdown(
        "Every dtype is a trade: fewer bits mean less memory and faster maths but coarser "
        "numbers. Python floats are 64-bit; a float32 tensor keeps about 7 significant digits, "
        "float16 about 3 (and nothing above 65504), bfloat16 about 2 with float32's range. "
        "Casting a float to an int **truncates toward zero**."
    )
    values_text = st.text_input(
        "Values",
        value=", ".join(repr(v) for v in EXAMPLE_VALUES),
        key="tensors_conv_values",
        max_chars=400,
    )
    dtypes = st.multiselect(
        "dtypes", list(CAST_DTYPES), default=["float32", "float16", "bfloat16", "int16"],
        key="tensors_conv_dtypes",
    )  # fmt: skip
    try:
        values = parse_values(values_text)[:20]
    except TensorInputError as error:
        st.error(str(error))
        values = []
    if values and dtypes:
        rows = cast_table(values, dtypes)
        table = pd.DataFrame(
            [
                {"value": r.value, "dtype": r.dtype, "stored": "—" if r.stored is None else f"{r.stored:.10g}",
                 "error": "—" if r.abs_error is None else f"{r.abs_error:.3g}", "note": r.note}
                for r in rows
            ]
        )  # fmt: skip
        st.dataframe(table, hide_index=True, key="tensors_conv_table")
    facts = [dtype_facts(d) for d in CAST_DTYPES]
    st.dataframe(
        pd.DataFrame([{"dtype": f.name, "bits": f.bits, "max": f"{f.max:.4g}", "eps (gap after 1)": "" if f.eps is None else f"{f.eps:.3g}", "≈ digits": "" if f.digits is None else f"{f.digits:.1f}"} for f in facts]),
        hide_index=True,
    )  # fmt: skip
    st.markdown("**Tensor, NumPy and Python**: where precision goes on a round trip.")
    value = st.number_input("v", value=0.1, format="%.10f", key="tensors_conv_value")
    st.table(pd.DataFrame([r.__dict__ for r in round_trips(float(value))]))
    st.markdown("**On real audio**: store a clip in a smaller dtype and listen to what is lost.")
    clip = pick_clip("tensors_conv_clip")
    if clip is None:
        return
    dtype = st.selectbox(
        "Store as",
        ["float16", "bfloat16", "int16", "int8", "uint8"],
        key="tensors_conv_audio_dtype",
    )
    restored_wav, error_wav, max_error, snr = _stored_audio(clip.path, dtype)
    st.metric(
        "Signal to rounding-noise ratio", f"{snr:.1f} dB", help=f"largest error {max_error:.2e}"
    )
    left, right = st.columns(2)
    left.caption(f"Stored as {dtype} and read back")
    left.audio(restored_wav, format="audio/wav")
    right.caption("The rounding error alone, made loud (normalised to peak 0.5)")
    right.audio(error_wav, format="audio/wav")


@st.cache_data(max_entries=8, show_spinner=False)
def _stored_audio(path: str, dtype: str) -> tuple[bytes, bytes, float, float]:
    samples, sample_rate = load_clip(path)
    restored, max_error, snr = audio_precision(samples, dtype)
    error = restored - samples
    loudest = float(np.abs(error).max()) or 1.0
    error_wav = encode_wav((0.5 * error / loudest).astype(np.float32), sample_rate)
    return encode_wav(restored, sample_rate), error_wav, max_error, snr
