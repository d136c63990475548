"""Section 4 of the tensor playground: names, memory, views and copies."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from core.tensors.memory import (
    ASSIGNMENT_STATEMENTS,
    LEAF_RULE,
    OUTCOME_TEXT,
    PROBE,
    SETUP,
    AliasExperiment,
    leaf_in_place_error,
    numpy_sharing_demo,
    python_copies_demo,
    run_assignment,
    view_experiments,
)
from core.tensors.ranks import TensorInputError, parse_values
from core.viz.tensors import storage_figure
from ui.tensors_common import publish

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
        "in-place writes. Each experiment runs `X_old = X; Y_old = Y`, then your statement, "
        f"then `{PROBE}` (a change to X's memory in place), and shows which names see what."
    )
    left, right, pick = st.columns([1, 1, 1])
    x = _values_tensor(
        left.text_input("X", value="1, 2, 3", key="tensors_mem_x", max_chars=60), "X"
    )
    y = _values_tensor(
        right.text_input("Y", value="10, 20, 30", key="tensors_mem_y", max_chars=60), "Y"
    )
    statement = pick.radio("Statement", list(ASSIGNMENT_STATEMENTS), key="tensors_mem_statement")
    x_text, y_text = st.session_state["tensors_mem_x"], st.session_state["tensors_mem_y"]
    if x is None or y is None:
        return
    if x.shape != y.shape:
        st.warning(f"X has {x.numel()} numbers and Y has {y.numel()}: give both the same count.")
        return
    publish("X", x)
    publish("Y", y)
    if st.button("Run the experiment", key="tensors_mem_run", icon=":material/science:"):
        st.session_state[LAST_EXPERIMENT] = ((x_text, y_text), run_assignment(statement, x, y))
    inputs, experiment = st.session_state.get(LAST_EXPERIMENT, (None, None))
    if experiment is None or inputs != (x_text, y_text):
        st.info("Choose a statement and press **Run the experiment**.")
    else:
        _show_experiment(experiment)
    _views_and_copies()


def _show_experiment(experiment: AliasExperiment) -> None:
    st.markdown(f"#### `{SETUP}; {experiment.statement}; {PROBE}`")
    columns = st.columns(3)
    for column, snapshots, title, key in (
        (columns[0], experiment.before, f"after {SETUP}", "before"),
        (columns[1], experiment.after, f"after {experiment.statement}", "after"),
        (columns[2], experiment.after_probe, f"after {PROBE}", "probe"),
    ):
        column.plotly_chart(storage_figure(snapshots, title), key=f"tensors_mem_{key}")
    show = lambda values: "[" + ", ".join(f"{v:g}" for v in values) + "]"  # noqa: E731
    rows = [
        {
            "name": b.name,
            "data_ptr before → after": f"{hex(b.data_ptr)} → {hex(a.data_ptr)}",
            "_version before → after": f"{b.version} → {a.version}",
            "values before": show(b.values),
            f"after {experiment.statement}": show(a.values),
            "what happened to the name": OUTCOME_TEXT[experiment.outcomes[b.name]],
            "its memory was written": b.name in experiment.names_written,
            f"after {PROBE}": show(p.values),
            "sees the change to X": b.name in experiment.names_seeing_probe,
        }
        for b, a, p in zip(experiment.before, experiment.after, experiment.after_probe, strict=True)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="tensors_mem_table")
    st.success(experiment.summary)
    st.markdown(experiment.explanation)


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
        "**`.item()`, `float()` and `.tolist()` copy** "
        "into Python objects: later changes miss them."
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
    message, fixes = leaf_in_place_error()
    st.markdown(
        "**In-place on a leaf that requires grad.** Autograd refuses `w.add_(1)` on "
        "`w = torch.ones(3, requires_grad=True)`:"
    )
    st.code(f"RuntimeError: {message}", language="text")
    st.markdown(f"Why: {LEAF_RULE}")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "on a fresh w": f.code,
                    "w afterwards": str([round(v, 4) for v in f.w_after]),
                    "w.requires_grad": f.requires_grad,
                }
                for f in fixes
            ]
        ),
        hide_index=True,
        key="tensors_mem_leaf_fixes",
    )
    st.caption(
        "All three change w's own memory (`w.detach()` is a view of it, not a copy). Prefer "
        "`torch.no_grad()`: `.data` also hides the change from autograd's safety checks."
    )
