"""What defines a training and what it reports: `TrainConfig` and `TrainEvent`.

`TrainConfig` is frozen and saved as JSON in every run (config.json), so a run can be trained
again exactly; the Train page, the command line (`python -m core.train`), sweeps and tests all
build it. `TrainEvent` is one progress report of the `train()` generator
(core.training.trainer), whose docstring lists the kinds in order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from core.audio.features import FeatureConfig
from core.audio.input_recipe import NORMALIZATION_MODES
from core.data.augment import AugmentConfig
from core.models.layers import MAX_MEMBERS
from core.training.evaluate import Evaluation

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "one_cycle")
MAX_WORKERS = 64  # data-parallel workers of one job
EVENT_KINDS = ("started", "step", "epoch_end", "evaluation", "finished", "stopped", "failed")


def default_feature_config() -> FeatureConfig:
    """Log-mel settings for spoken words: the 0-4 kHz telephone band at 8 kHz, 25 ms windows
    every 10 ms, 32 mel bands (few enough to blur a voice's pitch harmonics, which differ
    between speakers, while keeping the formants, which carry the word)."""
    return FeatureConfig(
        sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=32, f_max=4000.0
    )


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved as JSON in the run's config.json."""

    # --- data
    data: str = (
        "builtin:digits"  # core.data.sources.load_dataset source (ignored if a dataset is passed)
    )
    split: str = "stratified"  # random | stratified | group | holdout | fold
    val_fraction: float = 0.2  # share of examples (or groups) for validation
    val_groups: tuple[str, ...] = ()  # "holdout": these groups (e.g. a speaker) are validation
    val_folds: tuple[int, ...] = ()  # "fold": these official folds are validation
    window_seconds: float | None = None  # cut longer clips into windows of this length
    hop_seconds: float | None = None  # ... this far apart (None: half a window)
    # --- features
    features: FeatureConfig = field(default_factory=default_feature_config)
    feature_kind: str = "logmel"  # logmel | mfcc | mel | stft
    clip_seconds: float = 1.0  # every example cropped / padded to this length
    # instance: one mean/std per clip | utterance: per band (CMVN) | global: train stats | none
    normalization: str = "instance"
    # logmel only: cut frames this many dB below the loudest at both ends, stretch the word
    # to clip_seconds (a speaker's pace and silences say nothing about the word; None: off)
    trim_db: float | None = 20.0
    # --- model
    model: str = "cnn_logmel"  # preset name, used when train() gets no spec
    # a ready model in models/ (its name) whose weights the network starts from instead of
    # random ones (core.training.transfer); "" starts from random weights. The network, the
    # features and the normalisation are then the ready model's own.
    start_from: str = ""
    # a deep ensemble: this many copies of the network, each from its own random start, trained
    # side by side on the same batches; predictions average their probabilities (1: one network)
    members: int = 3
    # --- optimisation
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "adamw"  # sgd (with momentum) | adam | adamw
    learning_rate: float = 3e-3  # peak learning rate
    momentum: float = 0.9  # sgd only
    weight_decay: float = 1e-2
    schedule: str = "one_cycle"  # constant | step | cosine | one_cycle
    step_epochs: int = 10  # "step": multiply the rate by step_gamma every step_epochs epochs
    step_gamma: float = 0.1
    label_smoothing: float = 0.1
    grad_clip_norm: float | None = 5.0  # clip the gradient norm (None: no clipping)
    early_stopping_patience: int | None = None  # stop after this many evaluations without gain
    early_stopping_metric: str = "val_accuracy"  # val_accuracy | val_loss
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # --- running
    seed: int = 0
    device: str = "auto"  # core.devices choice, used when train() gets no device
    # data-parallel processes a job trains in (core.jobs.distributed: Ray workers, one GPU each
    # on a GPU); batch_size is the global batch, split between them. train() itself trains in
    # as many processes as its launcher started (one, torchrun's or Ray Train's).
    workers: int = 1
    eval_every_epochs: int = 1
    log_every_steps: int = 10  # metrics.jsonl gets a step record this often
    embeddings: bool = True  # final evaluation: embeddings with PCA
    tsne: bool = True  # ... and t-SNE
    name: str = ""  # a label for the run

    def __post_init__(self) -> None:
        problems = list(_config_problems(self))
        if problems:
            raise ValueError("Invalid training settings: " + " ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from to_dict() / config.json; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown training settings: {', '.join(unknown)}.")
        values = dict(data)
        values.setdefault("trim_db", None)  # runs saved before trimming existed: crop/pad
        values.setdefault("members", 1)  # ... and before ensembles: one network
        if isinstance(values.get("features"), dict):
            values["features"] = FeatureConfig.from_dict(values["features"])
        if isinstance(values.get("augment"), dict):
            # runs saved before the equaliser existed trained without it
            values["augment"] = AugmentConfig(**{"eq_db": 0.0, **values["augment"]})
        for name in ("val_groups", "val_folds"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def _config_problems(c: TrainConfig) -> Iterator[str]:
    if c.optimizer not in OPTIMIZERS:
        yield f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {c.optimizer!r}."
    if c.schedule not in SCHEDULES:
        yield f"schedule must be one of {', '.join(SCHEDULES)}, got {c.schedule!r}."
    if not (isinstance(c.epochs, int) and 1 <= c.epochs <= 10_000):
        yield f"epochs must be a whole number from 1 to 10000, got {c.epochs}."
    if not (isinstance(c.batch_size, int) and 1 <= c.batch_size <= 65_536):
        yield f"batch_size must be a whole number from 1 to 65536, got {c.batch_size}."
    if not (math.isfinite(c.learning_rate) and c.learning_rate > 0):
        yield f"learning_rate must be a positive number, got {c.learning_rate}."
    if not 0 <= c.weight_decay < 10:
        yield f"weight_decay must be between 0 and 10, got {c.weight_decay}."
    if not 0 <= c.label_smoothing < 1:
        yield f"label_smoothing must be between 0 and 1, got {c.label_smoothing}."
    if c.grad_clip_norm is not None and not c.grad_clip_norm > 0:
        yield f"grad_clip_norm must be positive or None, got {c.grad_clip_norm}."
    if not 0.05 <= c.clip_seconds <= 600:
        yield f"clip_seconds must be between 0.05 and 600 s, got {c.clip_seconds}."
    if c.normalization not in NORMALIZATION_MODES:
        modes = ", ".join(NORMALIZATION_MODES)
        yield f"normalization must be one of {modes}, got {c.normalization!r}."
    if c.trim_db is not None and not (isinstance(c.trim_db, (int, float)) and 0 < c.trim_db <= 120):
        yield f"trim_db must be between 0 and 120 dB (or None for no trimming), got {c.trim_db}."
    if c.early_stopping_metric not in ("val_accuracy", "val_loss"):
        yield (
            "early_stopping_metric must be val_accuracy or val_loss, "
            f"got {c.early_stopping_metric!r}."
        )
    if c.early_stopping_patience is not None and c.early_stopping_patience < 1:
        yield "early_stopping_patience must be at least 1 (or None for no early stopping)."
    if not (isinstance(c.members, int) and 1 <= c.members <= MAX_MEMBERS):
        yield f"members must be a whole number from 1 to {MAX_MEMBERS}, got {c.members}."
    if not (isinstance(c.workers, int) and 1 <= c.workers <= MAX_WORKERS):
        yield f"workers must be a whole number from 1 to {MAX_WORKERS}, got {c.workers}."
    if not (isinstance(c.start_from, str) and len(c.start_from) <= 100):
        yield "start_from must be the name of a ready model (or empty for random weights)."
    if c.eval_every_epochs < 1 or c.log_every_steps < 1:
        yield "eval_every_epochs and log_every_steps must be at least 1."


@dataclass(frozen=True)
class TrainEvent:
    """One progress report from `train()`; see the module docstring for the kinds.

    loss / accuracy: training figures (running mean over the epoch so far for "step", the
    epoch's mean for "epoch_end"); val_loss / val_accuracy: the latest evaluation.
    lr: learning rate now; samples_per_second: training throughput of this epoch;
    eta_seconds: estimated time left (None until measurable).
    """

    kind: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    lr: float = 0.0
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    samples_per_second: float = 0.0
    elapsed_seconds: float = 0.0
    eta_seconds: float | None = None
    message: str = ""
    run_id: str | None = None
    evaluation: Evaluation | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def progress(self) -> float:
        """Share of the optimiser steps done, 0..1."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def is_final(self) -> bool:
        return self.kind in ("finished", "stopped", "failed")

    def record(self) -> dict[str, Any]:
        """The JSON line written to metrics.jsonl for this event."""
        keys = (
            "kind",
            "epoch",
            "step",
            "lr",
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "samples_per_second",
            "elapsed_seconds",
        )
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
