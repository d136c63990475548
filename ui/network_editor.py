"""Network builder, part 1: presets, the input to show shapes for, and the layer stack editor.

The spec being built lives in st.session_state["network_spec"] (a core.models.spec.ModelSpec);
the Train page trains that key. Each layer carries a stable id (network_layer_ids) so its
parameter widgets keep their own state while layers move around.
"""

from __future__ import annotations

import itertools

import streamlit as st

from core.models.layers import LAYER_KINDS, ParamInfo, SpecError
from core.models.presets import preset_description, preset_names, preset_spec
from core.models.shapes import parse_input_shape
from core.models.spec import LayerSpec, ModelSpec

SPEC_KEY = "network_spec"
IDS_KEY = "network_layer_ids"
SELECTED_KEY = "network_selected"
DEFAULT_PRESET = "cnn_logmel"
INPUT_KINDS = {
    "point": "2-D point",
    "mfcc": "MFCC vector",
    "logmel": "log-mel 1×n_mels×T",
    "custom": "other shape",
}
MAX_FEATURES, MAX_MELS, MAX_FRAMES = 4096, 512, 10_000
INPUT_DEFAULTS = {
    "network_input_kind": "logmel",
    "network_n_features": 40,
    "network_n_mels": 64,
    "network_frames": 101,
    "network_custom_shape": "3, 100",
}
_ids = itertools.count(1)


def current_spec() -> ModelSpec:
    """The spec being built (the default audio classifier until the user changes it)."""
    spec = st.session_state.setdefault(SPEC_KEY, preset_spec(DEFAULT_PRESET))
    ids = st.session_state.get(IDS_KEY)
    if ids is None or len(ids) != len(spec.layers):  # replaced elsewhere: new ids
        st.session_state[IDS_KEY] = [next(_ids) for _ in spec.layers]
        _sync_input_widgets(spec)
    return spec


def set_spec(spec: ModelSpec, ids: list[int] | None = None) -> None:
    """Replace the spec (and its layer ids: fresh ones unless given)."""
    st.session_state[SPEC_KEY] = spec
    st.session_state[IDS_KEY] = ids if ids is not None else [next(_ids) for _ in spec.layers]


def load_spec(spec: ModelSpec) -> None:
    """Load a whole new spec (preset or JSON): new ids, input widgets follow its shape."""
    set_spec(spec)
    st.session_state[SELECTED_KEY] = 0
    _sync_input_widgets(spec)


def _sync_input_widgets(spec: ModelSpec) -> None:
    """Point the input widgets at the spec's input shape (custom when no preset kind fits)."""
    shape = spec.input_shape
    if len(shape) == 3 and shape[0] == 1 and shape[1] <= MAX_MELS and shape[2] <= MAX_FRAMES:
        st.session_state.update(
            network_input_kind="logmel", network_n_mels=shape[1], network_frames=shape[2]
        )
    elif shape == (2,):
        st.session_state["network_input_kind"] = "point"
    elif len(shape) == 1 and shape[0] <= MAX_FEATURES:
        st.session_state.update(network_input_kind="mfcc", network_n_features=shape[0])
    else:
        st.session_state.update(
            network_input_kind="custom", network_custom_shape=", ".join(map(str, shape))
        )


def _load_preset() -> None:
    load_spec(preset_spec(st.session_state["network_preset"]))


def render_presets() -> None:
    columns = st.columns([3, 1])
    columns[0].selectbox(
        "Preset",
        preset_names(),
        index=preset_names().index(DEFAULT_PRESET),
        format_func=lambda n: f"{n}: {preset_description(n)}",
        key="network_preset",
    )
    columns[1].button(
        "Load preset",
        key="network_load_preset",
        on_click=_load_preset,
        width="stretch",
    )


def render_input_choice(spec: ModelSpec) -> ModelSpec:
    """Widgets for the input the shapes are shown for; returns the spec on that input."""
    # Defaults go through session state (never value=): loading a preset sets these keys.
    for key, default in INPUT_DEFAULTS.items():
        st.session_state.setdefault(key, default)
    columns = st.columns([2, 1, 1])
    kind = columns[0].segmented_control(
        "Input",
        list(INPUT_KINDS),
        format_func=INPUT_KINDS.get,
        key="network_input_kind",
        required=True,
    )
    if kind == "point":
        shape = (2,)
    elif kind == "mfcc":
        n = columns[1].number_input("Features", 1, MAX_FEATURES, key="network_n_features")
        shape = (int(n),)
    elif kind == "logmel":
        mels = columns[1].number_input("Mel bands", 1, MAX_MELS, key="network_n_mels")
        frames = columns[2].number_input("Frames T", 1, MAX_FRAMES, key="network_frames")
        shape = (1, int(mels), int(frames))
    else:
        text = columns[1].text_input("Shape per example", key="network_custom_shape", max_chars=100)
        try:
            shape = parse_input_shape(text)
        except SpecError as error:
            columns[2].error(str(error))
            return spec
    if shape != spec.input_shape:
        spec = spec.with_input_shape(shape)
        set_spec(spec, st.session_state[IDS_KEY])
    return spec


def _layer_label(index: int, layer: LayerSpec) -> str:
    return f"{index + 1}. {layer.describe()}"


def _stack_changed_since(drawn_ids: tuple[int, ...]) -> bool:
    """Whether the stack differs from the one a button was drawn with.

    Streamlit 1.67 can run a button's callback twice for one click when the click's rerun
    preempts a fragment run (the playground's, while it plays); an edit checked against the
    stack the student saw then acts once.
    """
    return tuple(st.session_state[IDS_KEY]) != drawn_ids


def _move(drawn_ids: tuple[int, ...], offset: int) -> None:
    if _stack_changed_since(drawn_ids):
        return
    spec, ids = st.session_state[SPEC_KEY], list(st.session_state[IDS_KEY])
    layers, i = list(spec.layers), st.session_state.get(SELECTED_KEY, 0)
    j = i + offset
    if 0 <= i < len(layers) and 0 <= j < len(layers):
        layers[i], layers[j] = layers[j], layers[i]
        ids[i], ids[j] = ids[j], ids[i]
        set_spec(spec.with_layers(layers), ids)
        st.session_state[SELECTED_KEY] = j


def _remove(drawn_ids: tuple[int, ...]) -> None:
    if _stack_changed_since(drawn_ids):
        return
    spec, ids = st.session_state[SPEC_KEY], list(st.session_state[IDS_KEY])
    i = st.session_state.get(SELECTED_KEY, 0)
    if 0 <= i < len(spec.layers):
        layers = list(spec.layers)
        del layers[i], ids[i]
        set_spec(spec.with_layers(layers), ids)
        st.session_state[SELECTED_KEY] = max(0, min(i, len(layers) - 1))


def _insert(drawn_ids: tuple[int, ...]) -> None:
    if _stack_changed_since(drawn_ids):
        return
    spec, ids = st.session_state[SPEC_KEY], list(st.session_state[IDS_KEY])
    kind = st.session_state.get("network_add_kind", "Linear")
    i = st.session_state.get(SELECTED_KEY, len(spec.layers) - 1) + 1 if spec.layers else 0
    i = min(i, len(spec.layers))
    layers = list(spec.layers)
    layers.insert(i, LayerSpec.with_defaults(kind))
    ids.insert(i, next(_ids))
    set_spec(spec.with_layers(layers), ids)
    st.session_state[SELECTED_KEY] = i


def _apply_param(layer_id: int, name: str, key: str) -> None:
    """Widget callback: write one edited parameter into the spec before the page renders."""
    spec, ids = st.session_state[SPEC_KEY], st.session_state[IDS_KEY]
    if layer_id not in ids:
        return
    i = ids.index(layer_id)
    value = st.session_state[key]
    if (
        isinstance(value, float)
        and LAYER_KINDS[spec.layers[i].kind].param_info(name).kind != "float"
    ):
        value = int(value)
    layers = list(spec.layers)
    layers[i] = layers[i].with_params(**{name: value})
    set_spec(spec.with_layers(layers), ids)


def _param_widget(info: ParamInfo, value, layer_id: int) -> None:
    key = f"network_p{layer_id}_{info.name}"
    common = {
        "key": key,
        "help": info.help,
        "on_change": _apply_param,
        "args": (layer_id, info.name, key),
    }
    if info.kind == "bool":
        st.checkbox(info.name, value=bool(value), **common)
    elif info.kind == "choice":
        st.selectbox(info.name, info.choices, index=info.choices.index(value), **common)
    elif info.kind == "float":
        st.number_input(info.name, float(info.low), float(info.high), float(value), 0.05, **common)
    else:
        start = None if value is None else int(value)
        st.number_input(
            info.name, int(info.low), int(info.high), start, 1, placeholder="inferred", **common
        )


def render_stack_editor(spec: ModelSpec) -> ModelSpec:
    """Pick a layer, edit its parameters, move, remove or insert; returns the edited spec."""
    ids = st.session_state[IDS_KEY]
    drawn_ids = tuple(ids)  # the stack these buttons act on (see _stack_changed_since)
    layers = list(spec.layers)
    left, right = st.columns([2, 3])
    with left:
        if layers:
            st.session_state[SELECTED_KEY] = min(
                st.session_state.get(SELECTED_KEY, 0), len(layers) - 1
            )
            st.radio(
                "Layers (f₁ first)",
                range(len(layers)),
                format_func=lambda i: _layer_label(i, layers[i]),
                key=SELECTED_KEY,
            )
        else:
            st.info("The stack is empty: the network is the identity. Add a layer.")
        add = st.columns([2, 1])
        add[0].selectbox("New layer", list(LAYER_KINDS), key="network_add_kind")
        add[1].button(
            "Add after", key="network_add", on_click=_insert, args=(drawn_ids,), width="stretch"
        )
    if not layers:
        return spec
    i = st.session_state[SELECTED_KEY]
    layer, info = layers[i], LAYER_KINDS.get(layers[i].kind)
    with right:
        st.markdown(f"**Layer {i + 1}: {layer.kind}**" + (f": {info.summary}" if info else ""))
        moves = st.columns(3)
        moves[0].button(
            "Move up",
            key="network_up",
            on_click=_move,
            args=(drawn_ids, -1),
            disabled=i == 0,
            width="stretch",
        )
        moves[1].button(
            "Move down",
            key="network_down",
            on_click=_move,
            args=(drawn_ids, 1),
            disabled=i == len(layers) - 1,
            width="stretch",
        )
        moves[2].button(
            "Remove", key="network_remove", on_click=_remove, args=(drawn_ids,), width="stretch"
        )
        if info is None:
            st.warning(f"Unknown layer kind {layer.kind!r}: remove it or load another spec.")
            return spec
        cells = st.columns(3)
        for n, param in enumerate(info.params):
            with cells[n % 3]:
                _param_widget(param, layer.param(param.name), ids[i])
        if not info.params:
            st.caption("This layer has no parameters to set.")
    return spec
