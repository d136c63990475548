"""Section 7 of the tensor playground: the safe expression console."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from core.tensors.console_rules import ConsoleError, ConsoleLimits
from core.tensors.safe_eval import evaluate
from ui.tensors_common import named_tensors, publish

EXAMPLES = (
    "A @ B",
    "X[:, None] * w",
    "torch.softmax(Z, dim=-1)",
    "T.sum(dim=0)",
    "(A @ B).shape",
    "B @ A @ B",
    "A @ A",
    "torch.zeros(10**10)",
    "().__class__.__base__.__subclasses__()",
)


def _use_example() -> None:
    st.session_state["tensors_console_expr"] = st.session_state["tensors_console_example"]


def render_console() -> None:
    st.markdown(
        "Type one Python expression over the page's tensors and `torch`. The console reads it "
        "as a tree and runs only what is on its allow-list: tensor maths, no files, no imports, "
        "no names starting with `_`, and no tensor bigger than "
        f"{ConsoleLimits().max_elements:,} numbers. Errors are explained, not thrown."
    )
    generator = torch.Generator().manual_seed(0)
    publish("w", torch.tensor([0.5, 1.0, 2.0]))
    publish("Z", torch.randn(2, 5, generator=generator))
    names = named_tensors()
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": n,
                    "shape": str(tuple(t.shape)),
                    "dtype": str(t.dtype).removeprefix("torch."),
                    "from": _origin(n),
                }
                for n, t in sorted(names.items())
            ]
        ),
        hide_index=True,
    )
    st.selectbox("Examples", EXAMPLES, key="tensors_console_example", on_change=_use_example)
    st.session_state.setdefault("tensors_console_expr", "A @ B")  # _use_example writes it too
    source = st.text_input("Expression", key="tensors_console_expr", max_chars=400)
    try:
        result = evaluate(source, names)
    except ConsoleError as error:
        st.error(str(error))
        return
    details = f"{result.kind}"
    if result.shape is not None:
        details += f", shape {result.shape}, dtype {result.dtype.removeprefix('torch.')}"
    st.success(f"{details} · computed in {result.seconds * 1000:.1f} ms")
    st.code(result.preview, language="text")


def _origin(name: str) -> str:
    return {
        "T": "Ranks",
        "A": "Matrix multiplication",
        "B": "Matrix multiplication",
        "X": "Memory",
        "Y": "Memory",
        "w": "a per-item gain",
        "Z": "random logits",
    }.get(name, "")
