"""Classifying many files at once, and the table and file names a page offers to download."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.audio.clip import DEFAULT_MAX_SECONDS, AudioError
from core.audio.io import load_audio
from core.inference.clip import UNSURE_PROBABILITY, classify_clip
from core.inference.model import InferenceModel


@dataclass(frozen=True)
class BatchRow:
    """One file of a batch: its answer or the reason it could not be classified."""

    file: str
    label: str
    confidence: float
    unsure: bool
    duration_seconds: float
    note: str


def classify_files(
    model: InferenceModel,
    sources: Sequence[tuple[str, Any]],
    *,
    max_seconds: float | None = None,
    threshold: float = UNSURE_PROBABILITY,
) -> list[BatchRow]:
    """Classify many files (name, path/bytes/file-like); a bad file gets a row with its error.

    Each file is decoded at the model's rate (at most `max_seconds`, default the app cap).
    """
    rows = []
    for name, source in sources:
        try:
            clip = load_audio(
                source,
                name=name,
                sample_rate=model.sample_rate,
                max_seconds=max_seconds or DEFAULT_MAX_SECONDS,
            )
        except AudioError as error:
            rows.append(BatchRow(name, "", math.nan, True, math.nan, str(error)))
            continue
        result = classify_clip(model, clip.samples, clip.sample_rate, threshold=threshold)
        pred = result.prediction
        note = " ".join((*clip.notices, *result.warnings, pred.reason)).strip()
        rows.append(
            BatchRow(name, pred.label, pred.confidence, pred.unsure, clip.duration_seconds, note)
        )
    return rows


def batch_csv(rows: Sequence[BatchRow]) -> bytes:
    """The batch table as UTF-8 CSV bytes (file, class, confidence, unsure, seconds, note)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "class", "confidence", "unsure", "duration_seconds", "note"])
    for r in rows:
        confidence = "" if math.isnan(r.confidence) else f"{r.confidence:.4f}"
        seconds = "" if math.isnan(r.duration_seconds) else f"{r.duration_seconds:.3f}"
        writer.writerow([r.file, r.label, confidence, r.unsure, seconds, r.note])
    return buffer.getvalue().encode("utf-8")


def file_stem(name: str) -> str:
    """A safe file stem for downloads derived from a model or clip name."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(name).stem)
    return stem.strip("_")[:60] or "model"
