"""Network builder, part 2: the composition view, the graph, the code and the JSON spec."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.models.codegen import safe_name, spec_to_code
from core.models.layers import SpecError
from core.models.shapes import LayerReport, format_shape, infer_shapes
from core.models.spec import ModelSpec
from core.viz.network import human_bytes, human_count, layer_cost_figure, network_dot
from ui.network_editor import load_spec

MAX_SPEC_BYTES = 1_000_000  # a spec is a few kB; anything larger is not one


def checked_reports(spec: ModelSpec) -> tuple[list[LayerReport], SpecError | None]:
    """Reports of every layer, or of the layers before the failing one and the error."""
    try:
        return infer_shapes(spec), None
    except SpecError as error:
        valid = (error.layer_index or 1) - 1
        try:
            return infer_shapes(spec.with_layers(spec.layers[:valid])), error
        except SpecError:
            return [], error


def render_composition(spec: ModelSpec) -> None:
    """f = f_n ∘ … ∘ f_1 with each formula and the shape at every step, totals and graph."""
    reports, error = checked_reports(spec)
    st.latex(_composition_latex(len(spec.layers)))
    if error is not None:
        st.error(f"This stack cannot run: {error}.")
    if reports:
        table = pd.DataFrame(
            {
                "layer": [f"f{r.index}: {r.kind}" for r in reports],
                "formula": [r.formula for r in reports],
                "input": [format_shape(r.input_shape) for r in reports],
                "output": [format_shape(r.output_shape) for r in reports],
                "parameters": [r.parameters for r in reports],
                "multiply-adds": [r.multiply_adds for r in reports],
                "activations": [human_bytes(r.activation_bytes) for r in reports],
            }
        )
        # tall enough for every layer: the composition reads top to bottom without scrolling
        st.dataframe(table, hide_index=True, height=36 * (len(table) + 1) + 3, key="network_table")
    if error is None:
        _render_totals(spec, reports)
    # A tracked expander, closed until opened: the graph's layout (Graphviz compiled to
    # WebAssembly, in the browser) and the cost chart were drawn on every visit to the page.
    graph = st.expander("Graph and cost per layer", key="network_graph_open", on_change="rerun")
    if graph.open:
        with graph:
            st.graphviz_chart(network_dot(spec, reports))
            if reports:
                st.plotly_chart(layer_cost_figure(reports), key="network_costs")


def _composition_latex(n: int) -> str:
    if n == 0:
        return r"f = \mathrm{id}"
    if n <= 3:
        return "f = " + r" \circ ".join(f"f_{{{i}}}" for i in range(n, 0, -1))
    return rf"f = f_{{{n}}} \circ f_{{{n - 1}}} \circ \dots \circ f_1"


def _render_totals(spec: ModelSpec, reports: list[LayerReport]) -> None:
    out = reports[-1].output_shape if reports else spec.input_shape
    depth = sum(1 for r in reports if r.parameters)
    columns = st.columns(5)
    columns[0].metric("Parameters", f"{sum(r.parameters for r in reports):,}")
    columns[1].metric("Multiply-adds / example", human_count(sum(r.multiply_adds for r in reports)))
    columns[2].metric(
        "Activation memory / example", human_bytes(sum(r.activation_bytes for r in reports))
    )
    columns[3].metric("Depth (layers with weights)", depth)
    columns[4].metric("Output", format_shape(out))
    if len(out) != 1:
        st.warning(
            f"The network ends in shape {format_shape(out)}: a classifier must end in a vector of "
            "class scores. Add a Flatten (or an adaptive pooling) and a Linear."
        )


def render_code_and_spec(spec: ModelSpec, *, shown: bool = True) -> None:
    """The stack as PyTorch code and as JSON (only when `shown`: its tab is open); load a JSON
    spec back by upload or paste (always drawn, so a pasted spec survives a visit to another
    tab). The two highlighted code blocks are about a third of the page's elements (1300 of
    3700), which Chromium would otherwise lay out on every visit to the page."""
    if shown:
        _code_and_spec(spec)
    st.markdown("**Load a spec**")
    left, right = st.columns(2)
    left.file_uploader("Upload a JSON spec", type=["json"], key="network_upload")
    right.text_area("…or paste one", key="network_paste", height=120)
    st.button("Load this spec", key="network_load_json", on_click=_load_json)
    outcome = st.session_state.pop("network_json_outcome", None)
    if outcome is not None:
        kind, message = outcome
        {"error": st.error, "warning": st.warning, "success": st.success}[kind](message)


def _code_and_spec(spec: ModelSpec) -> None:
    try:
        code = spec_to_code(spec)
    except SpecError as error:
        st.error(f"Fix the stack to get its code: {error}.")
        code = None
    if code is not None:
        st.code(code, language="python")
        st.download_button(
            "Download the code (.py)",
            code,
            f"{safe_name(spec.name)}.py",
            "text/x-python",
            key="network_download_code",
        )
    text = spec.to_json()
    with st.expander("JSON spec (what the Train page trains)"):
        st.code(text, language="json")
    st.download_button(
        "Download the spec (.json)",
        text,
        f"{safe_name(spec.name)}.json",
        "application/json",
        key="network_download_json",
    )


def _load_json() -> None:
    """Button callback (runs before the page renders, so the editor shows the new spec)."""
    upload = st.session_state.get("network_upload")
    pasted = st.session_state.get("network_paste") or ""
    st.session_state["network_json_outcome"] = _parse_and_load(upload, pasted)


def _parse_and_load(upload, pasted: str) -> tuple[str, str]:
    if upload is not None:
        if upload.size > MAX_SPEC_BYTES:
            return (
                "error",
                f"{upload.name} is {upload.size:,} bytes: a "
                "spec is a few kilobytes, this is not one.",
            )
        text = upload.getvalue()
    elif pasted.strip():
        text = pasted[:MAX_SPEC_BYTES]
    else:
        return "warning", "Upload a .json file or paste a spec first."
    try:
        spec = ModelSpec.from_json(text)
        infer_shapes(spec)
    except SpecError as error:
        return "error", f"This spec cannot be loaded: {error}."
    load_spec(spec)
    return "success", f"Loaded {spec.name!r}: {len(spec.layers)} layers."
