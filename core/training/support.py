"""Small helpers the Train page needs around the training engine (no streamlit here).

They sit beside core.training.trainer / core.data.datasets rather than inside them: picking a
quick subset of a data set, deciding which server folders a teacher allows, warnings about
class balance, finding the validation clips of a finished run again (to play them), setting
the dropout of a network spec, and one row per run for the comparison table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.data.datasets import AudioDataset, AudioExample, DatasetError, make_windows
from core.data.splits import split_dataset

DATA_ROOTS_ENV = "AUDIO_DL_DATA_ROOTS"  # os.pathsep-separated folders a server path may be in
MIN_CLIPS_PER_CLASS = 2  # one to train on, one to check with
FEW_CLIPS_PER_CLASS = 5
IMBALANCE_RATIO = 3.0  # largest class / smallest class above this: a warning


def limit_per_class(dataset: AudioDataset, per_class: int, *, seed: int = 0) -> AudioDataset:
    """At most `per_class` examples of each class, drawn at random (seeded) for a quick run.

    per_class <= 0 keeps everything. The draw is spread over the whole class (so over
    speakers too), and the kept examples stay in their original order.
    """
    if per_class <= 0:
        return dataset
    rng = np.random.default_rng(seed)
    targets = dataset.targets
    keep: list[int] = []
    for label in range(len(dataset.labels)):
        members = np.flatnonzero(targets == label)
        keep.extend(rng.permutation(members)[:per_class].tolist())
    return dataset.subset(sorted(keep))


def allowed_data_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    """The folders under which a server path may be read (env AUDIO_DL_DATA_ROOTS).

    Empty (the default) means server paths are switched off: a public class server should
    never let a student list its disks. A teacher sets e.g. AUDIO_DL_DATA_ROOTS=/data.
    """
    value = (env if env is not None else os.environ).get(DATA_ROOTS_ENV, "")
    return [Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip()]


def check_server_path(text: str, roots: Sequence[Path]) -> Path:
    """The resolved folder or zip `text` names, if it lies under one of `roots`.

    Raises DatasetError with a sentence when server paths are off, the path is outside the
    allowed roots (symbolic links and '..' are resolved first) or does not exist.
    """
    if not roots:
        raise DatasetError(
            f"Reading folders on the server is switched off. A teacher can allow it by starting "
            f"the app with {DATA_ROOTS_ENV}=/path/to/datasets."
        )
    text = text.strip()
    if not text:
        raise DatasetError("Type the path of a folder (one sub-folder per class) or a zip file.")
    path = Path(text).expanduser().resolve()
    if not any(path == root or path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise DatasetError(f"{text} is outside the folders this server allows ({allowed}).")
    if not path.exists():
        raise DatasetError(f"{text} does not exist on the server.")
    return path


def class_warnings(counts: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the clips per class, as sentences.

    Errors block training: fewer than two classes, or a class with fewer than
    MIN_CLIPS_PER_CLASS clips. Warnings: few clips, or a largest/smallest ratio above
    IMBALANCE_RATIO (accuracy then flatters the model: predicting the big class is easy).
    """
    errors, warnings = [], []
    present = {k: v for k, v in counts.items() if v > 0}
    if len(present) < 2:
        errors.append("Training needs at least two classes with clips in them.")
    short = [f"{k} ({v})" for k, v in counts.items() if v < MIN_CLIPS_PER_CLASS]
    if short:
        errors.append(
            f"Each class needs at least {MIN_CLIPS_PER_CLASS} clips, one to learn from and one to "
            f"check with; add clips to: {', '.join(short)}."
        )
    few = [k for k, v in counts.items() if MIN_CLIPS_PER_CLASS <= v < FEW_CLIPS_PER_CLASS]
    if few:
        warnings.append(
            f"Only a few clips in {', '.join(few)}: the validation score will jump around; "
            f"aim for {FEW_CLIPS_PER_CLASS}+ per class."
        )
    if len(present) >= 2:
        big, small = max(present.values()), min(present.values())
        if big / small > IMBALANCE_RATIO:
            warnings.append(
                f"The classes are imbalanced ({big} vs {small} clips): a model can score well by "
                "mostly guessing the big classes; look at per-class recall, not only accuracy."
            )
    return errors, warnings


def validation_examples(
    dataset: AudioDataset, train_config: Any, count: int
) -> list[AudioExample] | None:
    """The validation examples of a run, in the order its Evaluation lists them.

    Re-does the engine's deterministic windowing and split (same method, fraction, seed,
    groups, folds) on `dataset`. Returns None when the result does not have `count`
    examples (different data, or clips that failed to decode), so the caller never plays
    the wrong clip.
    """
    c = train_config
    try:
        data = dataset
        if c.window_seconds:
            data = make_windows(
                data,
                window_seconds=c.window_seconds,
                hop_seconds=c.hop_seconds or c.window_seconds / 2,
            )
        split = split_dataset(
            data,
            method=c.split,
            val_fraction=c.val_fraction,
            seed=c.seed,
            val_groups=c.val_groups,
            val_folds=c.val_folds,
        )
    except (DatasetError, ValueError, OSError):
        return None
    examples = [data.examples[i] for i in split.val]
    return examples if len(examples) == count else None


def set_dropout(spec: Any, p: float) -> tuple[Any, int]:
    """The spec with every Dropout layer's probability set to `p`; (spec, layers changed)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    layers = [
        layer.with_params(p=float(p)) if layer.kind == "Dropout" else layer for layer in spec.layers
    ]
    changed = sum(layer.kind == "Dropout" for layer in spec.layers)
    return spec.with_layers(layers), changed


def records_of(events: Sequence[Any]) -> list[dict[str, Any]]:
    """Metric records (as in metrics.jsonl) of TrainEvents, for the live curves."""
    return [e.record() for e in events if e.kind in ("step", "epoch_end", "evaluation")]


COMPARE_SETTINGS = {
    "learning_rate": "lr",
    "batch_size": "batch",
    "epochs": "epochs",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "weight_decay": "weight decay",
    "label_smoothing": "label smoothing",
    "split": "split",
    "seed": "seed",
    "feature_kind": "features",
    "model": "model",
}


def run_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One flat row per core.training.runs.RunInfo: name, status, final metrics and key settings."""
    rows = []
    for run in runs:
        config, metrics = dict(run.train_config), dict(run.metrics)
        row = {
            "run": run.run_id,
            "name": run.name,
            "status": run.status,
            "created (UTC)": run.created_utc,
            "val accuracy": metrics.get("val_accuracy"),
            "val loss": metrics.get("val_loss"),
            "epochs done": metrics.get("epochs_done"),
        }
        features = config.get("features") or {}
        row.update({label: config.get(key) for key, label in COMPARE_SETTINGS.items()})
        row["mel bands"] = features.get("n_mels") if isinstance(features, dict) else None
        rows.append(row)
    return rows
