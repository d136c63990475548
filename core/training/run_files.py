"""The files of one run and of a run archive: their names, and reading them without trust.

core.training.runs keeps the store (folders, listing, writing); this module is what a run's files
are and how a shared archive or a weights file is checked before anything is built from it:
safetensors only (never a pickle), a capped zip of known member names, shapes checked against
the network the spec builds. core.training.runs re-exports every name here.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load
from torch import nn

from core.models.build import build_model
from core.models.layers import SpecError
from core.models.spec import ModelSpec

RUN_FORMAT = "audio-dl-studio/run"
MODEL_FORMAT = "audio-dl-studio/model"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
WEIGHTS_FILE = "model.safetensors"
MODEL_FILE = "model.json"
SUMMARY_FILE = "summary.json"
CARD_FILE = (
    "card.json"  # a ready model's card (core.models.card), checked against the model on reading
)
ARCHIVE_MEMBERS = (CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, MODEL_FILE, SUMMARY_FILE, CARD_FILE)
MAX_ARCHIVE_BYTES = 512 * 1024**2  # uncompressed; the largest model a student trains is far smaller


class RunError(ValueError):
    """A run cannot be found, read or imported; str() is a sentence for the student."""


def model_from_files(meta: Mapping[str, Any], weights: bytes) -> tuple[nn.Module, Any]:
    """Rebuild a network from model.json contents and safetensors bytes.

    Raises RunError when the spec is invalid or a tensor's name or shape does not match.
    """
    if meta.get("format") != MODEL_FORMAT:
        raise RunError("model.json is not a model description from this app.")
    try:
        spec = ModelSpec.from_dict(meta.get("spec"))
        model = build_model(spec)
    except SpecError as error:
        raise RunError(f"The saved network cannot be built: {error}.") from None
    try:
        state = load(weights)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise RunError(f"The weights file is not valid safetensors ({error}).") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise RunError(
            f"The weights do not fit the network: missing {', '.join(missing[:3]) or 'none'}, "
            f"unexpected {', '.join(extra[:3]) or 'none'}."
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise RunError(
                f"The weights do not fit the network: {key} has shape {tuple(state[key].shape)} "
                f"in the file but the network expects {tuple(tensor.shape)}."
            )
    model.load_state_dict(state)
    return model.eval(), spec


def read_archive(data: bytes) -> dict[str, bytes]:
    """The members of a run archive (zip bytes) by name; RunError for anything not a run."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise RunError("This file is not a run archive (not a zip).") from None
    with archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        unknown = [n for n in names if n not in ARCHIVE_MEMBERS]
        if unknown:
            raise RunError(
                f"The archive holds unexpected files ({', '.join(unknown[:3])}); only run files "
                "are accepted."
            )
        if len(set(names)) != len(names):
            raise RunError("The archive holds the same file twice.")
        if sum(i.file_size for i in infos) > MAX_ARCHIVE_BYTES:
            raise RunError("The archive is too large to be a run.")
        for needed in (CONFIG_FILE, MODEL_FILE, WEIGHTS_FILE):
            if needed not in names:
                raise RunError(f"The archive lacks {needed}.")
        members = {}
        budget = MAX_ARCHIVE_BYTES
        for info in infos:
            with archive.open(info) as handle:
                content = handle.read(budget + 1)
            budget -= len(content)
            if budget < 0:
                raise RunError("The archive is too large to be a run.")
            members[info.filename] = content
    return members


def parse_member(members: Mapping[str, bytes], name: str) -> dict[str, Any]:
    """One JSON member of an archive as a dict; RunError when it is not a JSON object."""
    try:
        value = json.loads(members[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{name} in the archive is not valid JSON ({error}).") from None
    if not isinstance(value, dict):
        raise RunError(f"{name} in the archive is not a JSON object.")
    return value
