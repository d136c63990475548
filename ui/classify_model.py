"""Classify page, model section: pick a model, see what it expects, import a run, export ONNX."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.devices import resolve_device
from core.inference.classifier import (
    InferenceError,
    InferenceModel,
    ModelChoice,
    available_models,
    card_for,
    describe_model,
    file_stem,
    import_run_archive,
    load_choice,
)
from core.models.card import ModelCardError
from core.models.onnx_export import export_onnx
from core.training.runs import WEIGHTS_FILE, RunError
from ui.classify_card import show_model_card


def _choice_key(choice: ModelChoice) -> str:
    return f"{choice.origin}:{choice.run_id}"


@st.cache_resource(max_entries=8, show_spinner="Loading the model...")
def _load_cached(
    store_root: str, run_id: str, origin: str, owner: str, device: str, weights_mtime: float
) -> InferenceModel:
    # Shared by every session: read-only use only (inference and Grad-CAM never write to it).
    # The owner is part of the key, so a session only reaches its own runs; the weights'
    # mtime too, so a re-trained run is loaded again.
    choice = ModelChoice("", store_root, run_id, origin, owner)
    return load_choice(choice, device=device)


def _weights_mtime(choice: ModelChoice) -> float:
    path = Path(choice.store_root) / choice.run_id / WEIGHTS_FILE
    return path.stat().st_mtime if path.exists() else 0.0


def model_picker(prefix: str) -> InferenceModel | None:
    """The model menu with details, import and export; the loaded model or None."""
    owner = st.session_state.get("session_id", "")
    choices = {_choice_key(c): c for c in available_models(owner)}
    if not choices:
        st.warning(
            "No model is available: the ready-made digits model is missing from models/ and "
            "you have not trained one yet. Train one on the Train page."
        )
        _import_section(prefix, owner)
        return None
    if st.session_state.get(f"{prefix}_model") not in choices:
        st.session_state[f"{prefix}_model"] = next(iter(choices))
    key = st.selectbox(
        "Model",
        list(choices),
        format_func=lambda k: choices[k].label,
        key=f"{prefix}_model",
        help="Ready-made models ship with the app; your own runs appear after training.",
    )
    choice = choices[key]
    device = str(resolve_device(st.session_state.get("device_choice", "auto")))
    try:
        model = _load_cached(
            choice.store_root,
            choice.run_id,
            choice.origin,
            choice.owner,
            device,
            _weights_mtime(choice),
        )
    except (RunError, InferenceError) as error:
        st.error(f"This model cannot be used: {error}")
        _import_section(prefix, owner)
        return None
    _ready_models(list(choices.values()))
    st.session_state[f"{prefix}_card"] = show_model_card(choice)
    with st.expander("What this model expects, import and export", icon=":material/tune:"):
        _details(model)
        _import_section(prefix, owner)
        _export_section(prefix, model)
    return model


def _ready_models(choices: list[ModelChoice]) -> None:
    """What each ready-made model knows: its kind of sound, classes and rate, from its card."""
    rows = []
    for choice in choices:
        if choice.origin != "shipped":
            continue
        try:
            card = card_for(choice)
        except (ModelCardError, RunError) as error:
            rows.append(
                {
                    "model": choice.label,
                    "kind of sound": str(error),
                    "classes": "",
                    "rate": "",
                    "window": "",
                }
            )
            continue
        rows.append(
            {
                "model": choice.label,
                "kind of sound": card.sound or card.data,
                "classes": ", ".join(card.labels),
                "rate": f"{card.sample_rate / 1000:g} kHz",
                "window": f"{card.clip_seconds:g} s",
            }
        )
    if rows:
        with st.expander(f"What the {len(rows)} ready-made models know", icon=":material/list:"):
            st.dataframe(rows, hide_index=True, key="classify_ready_models")
            st.caption(
                "Each model only knows its own classes and kind of sound: give it a clip of "
                "another kind and it still picks one of its classes. The page warns when a "
                "clip does not sound like a model's training clips."
            )


def _details(model: InferenceModel) -> None:
    facts = describe_model(model)
    st.table({"": list(facts), "value": list(facts.values())})
    st.caption(
        "Every clip is resampled to the model's rate and turned into the same features, "
        "cropped or padded to the same window and normalised the same way as in training."
    )


def _import(prefix: str, owner: str) -> None:
    upload = st.session_state.get(f"{prefix}_import")
    if upload is None:
        st.session_state[f"{prefix}_import_message"] = ("error", "Choose an archive first.")
        return
    try:
        run_id = import_run_archive(upload.getvalue(), owner=owner)
    except (InferenceError, RunError) as error:
        st.session_state[f"{prefix}_import_message"] = ("error", f"Not imported: {error}")
        return
    st.session_state[f"{prefix}_model"] = f"run:{run_id}"
    st.session_state[f"{prefix}_import_message"] = ("success", f"Imported as run {run_id}.")


def _import_section(prefix: str, owner: str) -> None:
    st.file_uploader(
        "Import a run archive (.zip of JSON and safetensors)",
        type=["zip", "safetensors"],
        key=f"{prefix}_import",
        help="Archives exported from the Train page. Pickled weights (.pt, .pth) are refused: "
        "opening a pickle can run any program.",
    )
    st.button("Import", key=f"{prefix}_import_button", on_click=_import, args=(prefix, owner))
    message = st.session_state.pop(f"{prefix}_import_message", None)
    if message is not None:
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


def _export_section(prefix: str, model: InferenceModel) -> None:
    def onnx_bytes() -> bytes:
        return export_onnx(model)

    st.download_button(
        "Export to ONNX",
        data=onnx_bytes,
        file_name=f"{file_stem(model.name)}.onnx",
        mime="application/octet-stream",
        key=f"{prefix}_onnx",
        icon=":material/download:",
        on_click="ignore",
        help="The network plus a softmax: input (batch, 1, bins, frames) normalised features, "
        "output class probabilities. Labels and feature settings are in the file's metadata.",
    )
