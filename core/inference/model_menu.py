"""The model menu: which trained models a student can pick, load or bring in.

Models come from the run store (`core.training.runs.RunStore`); the shipped ready-made models are
run folders under `models/` read with the same code (`shipped_store()`). A run archive made
elsewhere is checked (never unpickled) before the store imports it (`import_run_archive`).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import torch

from core import paths
from core.inference.model import InferenceError, InferenceModel, model_from_loaded_run
from core.models.card import ModelCard, read_model_card
from core.training.runs import WEIGHTS_FILE, RunStore


def shipped_store():
    """The run store of the ready-made models shipped in models/ (read-only use)."""
    return RunStore(paths.MODELS_DIR)


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model menu: which store and run, and how to describe it."""

    label: str
    store_root: str
    run_id: str
    origin: str  # "shipped" or "run"
    owner: str = ""


def available_models(owner: str | None) -> list[ModelChoice]:
    """The shipped models (oldest first: the digits model stays the default), then `owner`'s
    own runs that have a saved model (newest first).

    owner: the browser session id (None lists every run, for the command line). Runs of
    other students on the same server are never listed.
    """
    choices = []
    for info in sorted(shipped_store().list_runs(), key=lambda info: info.created_utc):
        if info.has_model:
            label = f"{info.name or info.run_id} (ready-made)"
            choices.append(ModelChoice(label, str(paths.MODELS_DIR), info.run_id, "shipped"))
    store = RunStore()
    for info in store.list_runs(owner):
        if info.has_model and info.status != "running":
            accuracy = info.metrics.get("val_accuracy")
            score = f", val. accuracy {accuracy:.0%}" if isinstance(accuracy, float) else ""
            label = f"{info.name or 'run'} · {info.run_id}{score}"
            choices.append(ModelChoice(label, str(store.root), info.run_id, "run", info.owner))
    return choices


def load_choice(choice: ModelChoice, *, device: torch.device | str = "cpu") -> InferenceModel:
    """Load the model of a menu entry; raises core.training.runs.RunError or InferenceError."""
    store = RunStore(choice.store_root)
    owner = None if choice.origin == "shipped" else choice.owner
    run = store.load(choice.run_id, owner=owner, device=device)
    return model_from_loaded_run(run, origin=choice.origin, device=device)


def card_for(choice: ModelChoice) -> ModelCard:
    """The `core.models.card.ModelCard` of a menu entry: its card.json, else derived from its
    run's split and summary. Raises core.models.card.ModelCardError (or
    core.training.runs.RunError for a run id that could escape the store) with a sentence."""
    return read_model_card(RunStore(choice.store_root).run_path(choice.run_id))


# --------------------------------------------------------------------------- importing archives

PICKLE_HINT = (
    "Pickles can run any program when they are opened, so this app never opens them. Save the "
    "weights with safetensors instead: safetensors.torch.save_file(model.state_dict(), "
    "'model.safetensors')."
)


def weights_problem(data: bytes, name: str = "model.safetensors") -> str | None:
    """A sentence when `data` is not safetensors (a pickle renamed, a zip...), else None.

    Looks only at the bytes (never unpickles): safetensors starts with an 8-byte little-endian
    header length followed by a JSON object; `torch.save` writes a zip ("PK") or a pickle
    (protocol byte 0x80).
    """
    if len(data) >= 2 and data[:1] == b"\x80" and data[1] in range(2, 6):
        return f"{name} is a Python pickle (torch.save format), not safetensors. {PICKLE_HINT}"
    if data[:4] == b"PK\x03\x04":
        return (
            f"{name} is a zip file, the format torch.save uses for pickled weights, not "
            f"safetensors. {PICKLE_HINT}"
        )
    if len(data) < 10:
        return f"{name} is too short to hold any weights ({len(data)} bytes)."
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or header_len > len(data) - 8 or data[8:9] != b"{":
        return f"{name} is not a safetensors file (its header is not readable)."
    return None


def import_run_archive(data: bytes, *, owner: str, store: Any = None) -> str:
    """Check and add a run archive (zip of config.json, model.json, model.safetensors, ...).

    Before the run store's own checks (only known members, weights matching the network's
    shapes), the weights are sniffed so a pickle renamed .safetensors gets its own sentence.
    A bare weights file gets a sentence saying what is missing. Returns the new run id;
    raises InferenceError or core.training.runs.RunError with the reason.
    """
    store = store or RunStore()
    if data[:4] != b"PK\x03\x04":
        problem = weights_problem(data, "This file")
        if problem is None:
            problem = (
                "This is a weights file on its own; a run archive is a zip that also holds "
                "model.json (the network, its classes and its feature settings) and "
                "config.json. Download the archive from the run's page and import that."
            )
        raise InferenceError(problem)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if WEIGHTS_FILE in names:
                with archive.open(WEIGHTS_FILE) as handle:
                    head = handle.read(4096)
                problem = weights_problem(head + b"\0" * 10, WEIGHTS_FILE)
                if problem is not None and "header is not readable" not in problem:
                    raise InferenceError(problem)
    except zipfile.BadZipFile:
        raise InferenceError("This file is not a readable zip archive.") from None
    return store.import_archive(data, owner=owner)
