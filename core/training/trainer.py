"""Training as a generator: `train(config)` yields events while it trains a ModelSpec.

    for event in train(TrainConfig(epochs=5), store=RunStore(), owner=session_id):
        if event.kind == "step":
            show(event.progress, event.loss, event.eta_seconds)

Events (`TrainEvent.kind`), in order:
  "started"     once: data, split and model are ready (event.info: sizes, labels, device,
                class balance, leakage, skipped files, parameter count)
  "step"        after every optimiser step: running train loss / accuracy of the epoch
  "epoch_end"   after every epoch: epoch train loss / accuracy
  "evaluation"  after every `eval_every_epochs` epochs: val_loss / val_accuracy
                (the last one also carries the full `Evaluation`)
  then exactly one of
  "finished"    normal end (also after early stopping; event.message says which)
  "stopped"     the cancel flag was set; the weights so far are saved
  "failed"      a NaN/inf loss (message suggests a lower learning rate), bad data or
                settings (a sentence for the student), or out of memory

Every event carries epoch, step, total_steps, progress (0..1), lr, samples_per_second,
elapsed_seconds and eta_seconds. With a `RunStore`, the run is written as it goes (see
core.training.runs); `event.run_id` names it. Under torchrun the same code trains with DDP.

Command line: `python -m core.train --data builtin:digits --epochs 20 --runs-dir runs`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.audio.features import FeatureConfig
from core.audio.input_recipe import (
    NORMALIZATION_MODES,
    InputRecipe,
    InputRecipeConfig,
    Normalization,
    clip_frames_for,
    fit_normalization,
)
from core.data.augment import (
    AugmentConfig,
    augment_batch,
    augment_waveform,
    mixup,
    random_equalizer,
)
from core.data.datasets import AudioDataset, DatasetError, make_windows
from core.data.feature_cache import FeatureCache
from core.data.sources import load_dataset
from core.data.splits import split_dataset
from core.models.build import average_members, member_networks
from core.models.layers import MAX_MEMBERS
from core.training.ddp import (
    DistInfo,
    all_reduce_mean,
    distributed_from_env,
    init_distributed,
    shard_indices,
)
from core.training.evaluate import Evaluation, evaluate_model, forward_batches, scores

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "one_cycle")
log = logging.getLogger(__name__)
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


class TrainingFailed(Exception):
    """Stops a run with a sentence for the student (NaN loss, bad data, out of memory)."""


def train(
    config: TrainConfig,
    *,
    dataset: AudioDataset | None = None,
    spec: Any = None,
    device: torch.device | str | None = None,
    cancel: threading.Event | None = None,
    store: Any = None,
    owner: str = "",
    sweep: Mapping[str, Any] | None = None,
) -> Iterator[TrainEvent]:
    """Train a classifier and yield TrainEvents; the last event is finished, stopped or failed.

    Args:
        config: the TrainConfig (data source, features, optimiser, augmentation, seed...).
        dataset: an AudioDataset to use instead of loading `config.data` (e.g. browser clips).
        spec: a core.models.spec.ModelSpec to train instead of the preset `config.model`; its
            input shape and number of outputs are adapted to the data.
        device: where to train (default: core.devices.resolve_device(config.device)).
        cancel: a threading.Event; once set, training stops before the next step.
        store: a core.training.runs.RunStore to write the run into (None: nothing is written).
        owner: the session id saved with the run.
        sweep: a sweep trial's record (core.jobs.sweeps), saved with the run.

    The same seed, data and device give the same run. Never raises for problems caused by
    the data or settings: they end the run with a "failed" event and a message.
    """
    trainer = _Trainer(
        config, dataset, spec, device, cancel or threading.Event(), store, owner, sweep=sweep
    )
    yield from trainer.run()


class _Trainer:
    """The state of one run; `run()` is the generator behind `train()`."""

    def __init__(self, config, dataset, spec, device, cancel, store, owner, sweep=None):
        self.config = config
        self.dataset = dataset
        self.spec = spec
        self.requested_device = device
        self.cancel = cancel
        self.dist: DistInfo | None = distributed_from_env()
        self.is_main = self.dist is None or self.dist.is_main
        self.store = store if self.is_main else None
        self.owner = owner
        self.sweep = sweep  # a sweep trial's record, saved with the run
        self.run_id: str | None = None
        self.step = 0
        self.epoch = 0
        self.total_steps = 0
        self.started = time.perf_counter()
        self.val_loss: float | None = None
        self.val_accuracy: float | None = None
        self.last_evaluation: Evaluation | None = None
        self.sps = 0.0
        self.failed_examples: dict[int, str] = {}

    # ------------------------------------------------------------------ driver

    def run(self) -> Iterator[TrainEvent]:
        try:
            yield self._prepare()
            yield from self._loop()
        except TrainingFailed as error:
            yield self._final("failed", str(error))
        except (DatasetError, ValueError) as error:  # SpecError, AudioError, bad settings
            yield self._final("failed", str(error))
        except Exception as error:  # an OOM outside the guarded step, or a bug: logged, not raised
            log.exception("training failed")
            yield self._final("failed", f"Training failed: {type(error).__name__}: {error}")

    def _event(self, kind: str, **values: Any) -> TrainEvent:
        elapsed = time.perf_counter() - self.started
        done = self.step / self.total_steps if self.total_steps else 0.0
        eta = (
            elapsed * (1 - done) / done
            if done > 0.02 and kind not in ("finished", "stopped", "failed")
            else None
        )
        values.setdefault("val_loss", self.val_loss)
        values.setdefault("val_accuracy", self.val_accuracy)
        return TrainEvent(
            kind=kind,
            epoch=self.epoch,
            epochs=self.config.epochs,
            step=self.step,
            total_steps=self.total_steps,
            lr=self.optimizer.param_groups[0]["lr"]
            if hasattr(self, "optimizer")
            else self.config.learning_rate,
            samples_per_second=self.sps,
            elapsed_seconds=elapsed,
            eta_seconds=eta if kind not in ("finished", "stopped", "failed") else 0.0,
            run_id=self.run_id,
            **values,
        )

    # ------------------------------------------------------------------ preparation

    def _prepare(self) -> TrainEvent:
        c = self.config
        torch.manual_seed(c.seed)
        np.random.seed(c.seed % 2**32)
        self.device = self._choose_device()
        data = self.dataset if self.dataset is not None else load_dataset(c.data)
        if c.window_seconds:
            data = make_windows(
                data,
                window_seconds=c.window_seconds,
                hop_seconds=c.hop_seconds or c.window_seconds / 2,
            )
        self.data = data
        self.split = split_dataset(
            data,
            method=c.split,
            val_fraction=c.val_fraction,
            seed=c.seed,
            val_groups=c.val_groups,
            val_folds=c.val_folds,
        )
        self.cache = FeatureCache(
            c.features, c.feature_kind, disk=not any(e.in_memory for e in data.examples)
        )
        self.frames = clip_frames_for(c.features, c.clip_seconds)
        self.bins = c.features.num_bins(c.feature_kind)
        # The equaliser adds decibels: only the log-mel is in dB (other kinds ignore it).
        self.equalize = c.augment.needs_decibels and c.feature_kind == "logmel"
        self.raw_features: dict[int, torch.Tensor] = {}  # kept for the equaliser only
        self.normalization = self._fit_normalization()
        # The one waveform-to-input recipe, saved with the model and used by inference.
        self.recipe = InputRecipe(
            InputRecipeConfig(c.features, c.feature_kind, self.frames, self.normalization)
        )
        self.bank = torch.zeros(len(data), 1, self.bins, self.frames)
        self.ready = torch.zeros(len(data), dtype=torch.bool)
        self.targets = torch.as_tensor(data.targets)
        self._build_model()
        self.steps_per_epoch = math.ceil(len(self._shard(list(self.split.train))) / self.batch_size)
        self.total_steps = self.steps_per_epoch * c.epochs
        self._build_optimizer()
        if self.store is not None:
            self.run_id = self.store.create_run(c, owner=self.owner, name=c.name, sweep=self.sweep)
        return self._event(
            "started", message=f"Training on {self.device}.", info=self._start_info()
        )

    def _choose_device(self) -> torch.device:
        from core.devices import configure_tf32, resolve_device

        device = (
            torch.device(self.requested_device)
            if self.requested_device is not None
            else resolve_device(self.config.device)
        )
        if self.dist is not None:
            device = init_distributed(self.dist, device)
        if device.type == "cuda":
            configure_tf32(device)
            torch.backends.cudnn.benchmark = False  # reproducible kernels for a seed
        return device

    def _fit_normalization(self) -> Normalization:
        # The energy gate reads dB: only the log-mel is trimmed.
        trim_db = self.config.trim_db if self.config.feature_kind == "logmel" else None
        if self.config.normalization != "global":
            return Normalization(self.config.normalization, trim_db=trim_db)
        found, failures = self.cache.features_for(self.data, self.split.train)
        self.failed_examples.update({i: "" for i in set(self.split.train) - set(found)})
        if not found:
            raise TrainingFailed(
                "None of the training files could be decoded: " + "; ".join(failures[:3])
            )
        return fit_normalization("global", list(found.values()), trim_db=trim_db)

    def _build_model(self) -> None:
        from core.models.build import build_model
        from core.models.presets import preset_spec
        from core.models.shapes import check_classifier

        shape, classes = (1, self.bins, self.frames), len(self.data.labels)
        if self.spec is None:
            spec = preset_spec(self.config.model, input_shape=shape, num_outputs=classes)
        else:
            spec = self.spec.with_input_shape(shape).with_num_outputs(classes)
        spec = spec.with_members(self.config.members)
        check_classifier(spec, classes)
        torch.manual_seed(self.config.seed)
        self.model_spec = spec
        self.model = build_model(spec).to(self.device)
        self.net = self.model
        if self.dist is not None:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        world = self.dist.world_size if self.dist else 1
        self.batch_size = max(1, self.config.batch_size // world)
        self.micro_batch = self.batch_size

    def _build_optimizer(self) -> None:
        c = self.config
        params = self.model.parameters()
        if c.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                params,
                lr=c.learning_rate,
                momentum=c.momentum,
                weight_decay=c.weight_decay,
                nesterov=True,
            )
        elif c.optimizer == "adam":
            self.optimizer = torch.optim.Adam(
                params, lr=c.learning_rate, weight_decay=c.weight_decay
            )
        else:
            self.optimizer = torch.optim.AdamW(
                params, lr=c.learning_rate, weight_decay=c.weight_decay
            )
        self.step_scheduler, self.epoch_scheduler = None, None
        if c.schedule == "cosine":
            self.step_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(1, self.total_steps)
            )
        elif c.schedule == "one_cycle":
            total_steps = max(2, self.total_steps)
            # OneCycleLR divides by the length of its warm-up phase, pct_start * total - 1
            # steps, which is zero for exactly 4 steps (a tiny run): warm up a little longer.
            warmup_fraction = 0.3 if total_steps == 4 else 0.25
            self.step_scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=c.learning_rate,
                total_steps=total_steps,
                pct_start=warmup_fraction,
            )
        elif c.schedule == "step":
            self.epoch_scheduler = torch.optim.lr_scheduler.StepLR(
                self.optimizer, step_size=c.step_epochs, gamma=c.step_gamma
            )
        from core.devices import make_grad_scaler, precision_policy

        self.scaler = make_grad_scaler(precision_policy(self.device))

    def _start_info(self) -> dict[str, Any]:
        from core.data.splits import class_balance, leakage_report

        leak = leakage_report(self.data, self.split)
        return {
            "dataset": self.data.name,
            "labels": list(self.data.labels),
            "train_examples": len(self.split.train),
            "val_examples": len(self.split.val),
            "class_balance_train": class_balance(self.data, self.split.train),
            "class_balance_val": class_balance(self.data, self.split.val),
            "leakage": leak.message(),
            "leaks": leak.leaks,
            "skipped_files": list(self.data.skipped),
            "device": str(self.device),
            "world_size": self.dist.world_size if self.dist else 1,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "input_shape": [1, self.bins, self.frames],
            "spec": self.model_spec.to_dict(),
        }

    # ------------------------------------------------------------------ data

    def _shard(self, order: list[int]) -> list[int]:
        return shard_indices(order, self.dist)

    def _example(self, index: int) -> torch.Tensor | None:
        """The normalised, fixed-length features (1, bins, frames) of one example."""
        if self.ready[index]:
            return self.bank[index]
        if index in self.failed_examples:
            return None
        from core.audio.clip import AudioError

        try:
            raw = self.cache.features(self.data, self.data.examples[index])
        except (AudioError, OSError) as error:
            self.failed_examples[index] = f"{self.data.examples[index].ref}: {error}"
            return None
        self.bank[index, 0] = self.recipe.fit(raw)
        if self.equalize:  # the equaliser acts before trimming: keep the untrimmed features
            self.raw_features[index] = raw
        self.ready[index] = True
        return self.bank[index]

    def _augmented_example(
        self, index: int, rng: np.random.Generator | None, generator: torch.Generator
    ) -> torch.Tensor | None:
        """Features of one example after the per-clip augmentations, made anew every time:
        waveform changes (when `rng` is given: the features are recomputed from the changed
        audio) and the log-mel equaliser, both before trimming and normalising."""
        if self._example(index) is None:
            return None
        if rng is not None:
            raw = self.cache.compute(self._augmented_wave(index, rng))
        else:
            raw = self.raw_features[index]
        if self.equalize:
            raw = random_equalizer(raw, self.config.augment.eq_db, generator)
        return self.recipe.fit(raw)[None]

    def _augmented_wave(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """One example's audio after the waveform-domain augmentations (decoded once)."""
        from core.data.datasets import load_example_audio

        if not hasattr(self, "waves"):
            self.waves: dict[int, np.ndarray] = {}
        if index not in self.waves:
            self.waves[index] = load_example_audio(
                self.data, self.data.examples[index], self.config.features.sample_rate
            )
        return augment_waveform(
            self.waves[index], self.config.features.sample_rate, self.config.augment, rng
        )

    def _batch(
        self,
        indices: Sequence[int],
        rng: np.random.Generator | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and targets of `indices`; with a `generator` (training), the per-clip
        augmentations (waveform when `rng` is given, equaliser) are applied."""
        per_clip = generator is not None and (rng is not None or self.equalize)
        if per_clip:
            items = [(i, self._augmented_example(i, rng, generator)) for i in indices]
        else:
            items = [(i, self._example(i)) for i in indices]
        kept = [(i, x) for i, x in items if x is not None]
        if not kept:
            return torch.empty(0, 1, self.bins, self.frames), torch.empty(0, dtype=torch.long)
        if not per_clip and all(self.ready[i] for i, _ in kept):
            index = torch.as_tensor([i for i, _ in kept])
            return self.bank.index_select(0, index), self.targets.index_select(0, index)
        return torch.stack([x for _, x in kept]), self.targets[[i for i, _ in kept]]

    def _val_tensors(self) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        x, y = self._batch(self.split.val)
        kept = [i for i in self.split.val if self.ready[i]]
        return x, y, [self.data.examples[i] for i in kept]

    # ------------------------------------------------------------------ loop

    def _loop(self) -> Iterator[TrainEvent]:
        c = self.config
        generator = torch.Generator().manual_seed(
            c.seed + 1009 * (self.dist.rank if self.dist else 0)
        )
        rng = np.random.default_rng(c.seed + 7 * (self.dist.rank if self.dist else 0))
        best, best_state, waited = None, None, 0
        for epoch in range(1, c.epochs + 1):
            self.epoch = epoch
            order = torch.randperm(
                len(self.split.train),
                generator=torch.Generator().manual_seed(c.seed * 1000 + epoch),
            ).tolist()
            shard = self._shard([self.split.train[i] for i in order])
            result = yield from self._epoch(
                shard, generator, rng if c.augment.needs_waveform else None
            )
            if result is not None:
                yield result
                return
            if self.epoch_scheduler is not None:
                self.epoch_scheduler.step()
            if epoch % c.eval_every_epochs == 0 or epoch == c.epochs:
                yield self._evaluate(final=False)
                metric = (
                    self.val_accuracy
                    if c.early_stopping_metric == "val_accuracy"
                    else -(self.val_loss or 0.0)
                )
                if best is None or metric > best:
                    best, waited = metric, 0
                    if c.early_stopping_patience is not None:
                        best_state = {
                            k: v.detach().clone() for k, v in self.model.state_dict().items()
                        }
                else:
                    waited += 1
                if (
                    c.early_stopping_patience is not None
                    and waited >= c.early_stopping_patience
                    and epoch < c.epochs
                ):
                    self.model.load_state_dict(best_state)
                    yield self._final(
                        "finished",
                        f"Stopped early at epoch {epoch}: {c.early_stopping_metric} did not "
                        f"improve for {waited} evaluations; the best weights are kept.",
                    )
                    return
        if best_state is not None:
            self.model.load_state_dict(best_state)
        yield self._final("finished", f"Finished {c.epochs} epochs.")

    def _epoch(self, shard: list[int], generator: torch.Generator, rng: np.random.Generator | None):
        """One epoch of steps (a generator of step events); returns a final event or None."""
        self.net.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen, epoch_start, recorded = 0, time.perf_counter(), []
        for start in range(0, len(shard), self.batch_size):
            if self.cancel.is_set():
                return self._final(
                    "stopped", f"Stopped by request at epoch {self.epoch}, step {self.step}."
                )
            x, y = self._batch(shard[start : start + self.batch_size], rng, generator)
            if y.numel() == 0:
                continue
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss, hits = self._optimizer_step(x, y, generator)
            seen += y.numel()
            loss_sum += loss.detach() * y.numel()
            correct += hits
            self.step += 1
            self.sps = seen / max(1e-9, time.perf_counter() - epoch_start)
            event = self._event("step", loss=float(loss), accuracy=None)
            if self.step % self.config.log_every_steps == 0:
                event = dataclasses.replace(
                    event, loss=loss_sum.item() / seen, accuracy=correct.item() / seen
                )
                recorded.append(event.record())
            yield event
        self._write_metrics(recorded)
        totals = all_reduce_mean(torch.stack([loss_sum / max(1, seen), correct / max(1, seen)]))
        event = self._event(
            "epoch_end",
            loss=totals[0].item(),
            accuracy=totals[1].item(),
            message=self._skip_message(),
        )
        self._write_metrics([event.record()])
        yield event
        return None

    def _optimizer_step(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment, forward, backward and update on one batch; (loss, correct count)."""
        from core.devices import OutOfMemoryEverywhere, run_with_oom_fallback

        c = self.config
        x = augment_batch(x, c.augment, generator)
        partner, lam = y, 1.0
        if c.augment.mixup_alpha > 0:
            x, y, partner, lam = mixup(x, y, c.augment.mixup_alpha, generator)

        def step(micro: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
            return self._accumulate(x, y, partner, lam, micro)

        try:
            outcome = run_with_oom_fallback(
                step, batch_size=self.micro_batch, device=self.device, fallback_device=None
            )
        except OutOfMemoryEverywhere as error:
            raise TrainingFailed(
                f"Out of memory on {self.device} even one example at a time: {error}"
            ) from None
        self.micro_batch = outcome.batch_size
        loss, hits = outcome.value
        reduced = all_reduce_mean(loss.detach()) if self.dist else loss.detach()
        if not torch.isfinite(reduced):
            raise TrainingFailed(
                f"The loss became {float(reduced)} at step {self.step + 1} (epoch {self.epoch}): "
                f"the learning rate {c.learning_rate:g} is probably too high. Try "
                f"{c.learning_rate / 10:g} or lower, or enable gradient clipping."
            )
        if c.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            self._clip_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.step_scheduler is not None and self.step + 1 < self.total_steps:
            self.step_scheduler.step()
        return reduced, hits

    def _accumulate(self, x, y, partner, lam, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of one batch in chunks of `micro` (several chunks only after an OOM)."""
        from core.devices import autocast_context

        self.optimizer.zero_grad(set_to_none=True)
        n = y.shape[0]
        total, hits = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for start in range(0, n, micro):
            part = slice(start, start + micro)
            last = start + micro >= n
            sync = contextlib.nullcontext() if last or self.dist is None else self.net.no_sync()
            with sync:
                with autocast_context(self.device):
                    logits = self.net(x[part])
                    loss = self._loss(logits, y[part], partner[part], lam)
                # an ensemble's members each get the gradient of their own loss, not 1/members of it
                members = logits.shape[0] if logits.dim() == 3 else 1
                self.scaler.scale(loss * (members * y[part].numel() / n)).backward()
            total += loss.detach().float() * (y[part].numel() / n)
            if logits.dim() == 3:  # an ensemble's members: score what they predict together
                logits = average_members(logits.detach())
            hits += (logits.argmax(1) == y[part]).sum()
        return total, hits

    def _clip_gradients(self) -> None:
        """Clip each member's gradient norm on its own (as if trained alone)."""
        for member in member_networks(self.model):
            nn.utils.clip_grad_norm_(member.parameters(), self.config.grad_clip_norm)

    def _loss(self, logits, y, partner, lam) -> torch.Tensor:
        """Cross-entropy of (batch, classes) scores; of an ensemble's (members, batch, classes)
        scores, the mean over members of each member's own loss."""
        smoothing = self.config.label_smoothing
        if logits.dim() == 3:
            members = logits.shape[0]
            y, partner = y.repeat(members), partner.repeat(members)
            return self._loss(logits.flatten(0, 1), y, partner, lam)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        if lam < 1.0:
            loss = lam * loss + (1 - lam) * F.cross_entropy(
                logits.float(), partner, label_smoothing=smoothing
            )
        return loss

    # ------------------------------------------------------------------ evaluation and end

    def _evaluate(self, *, final: bool) -> TrainEvent:
        x, y, refs = self._val_tensors()
        if final and self.is_main:
            c = self.config
            self.last_evaluation = evaluate_model(
                self.model,
                x,
                y,
                labels=self.data.labels,
                refs=refs,
                device=self.device,
                embeddings=c.embeddings,
                tsne=c.tsne and c.embeddings,
                seed=c.seed,
            )
            self.val_loss, self.val_accuracy = (
                self.last_evaluation.loss,
                self.last_evaluation.accuracy,
            )
        else:
            logits, _ = forward_batches(self.model, x, self.device)
            self.val_loss, self.val_accuracy = scores(logits, y)
        event = self._event("evaluation", evaluation=self.last_evaluation if final else None)
        self._write_metrics([event.record()])
        return event

    def _final(self, kind: str, message: str) -> TrainEvent:
        evaluation = None
        if kind != "failed" and hasattr(self, "model") and self.is_main:
            evaluation = self._evaluate(final=True).evaluation
        if self.store is not None and self.run_id is not None:
            self._save_run(kind, message, evaluation)
        return self._event(kind, message=message, evaluation=evaluation)

    def _save_run(self, kind: str, message: str, evaluation: Evaluation | None) -> None:
        if kind != "failed":
            self.store.save_model(
                self.run_id,
                self.model,
                spec=self.model_spec,
                labels=self.data.labels,
                recipe=self.recipe.config,
            )
        metrics = {
            "epochs_done": self.epoch,
            "steps": self.step,
            "val_accuracy": self.val_accuracy,
            "val_loss": self.val_loss,
        }
        self.store.finish(
            self.run_id,
            kind,
            message=message,
            metrics=metrics,
            duration_seconds=time.perf_counter() - self.started,
            evaluation=evaluation.to_dict() if evaluation is not None else None,
            skipped_examples=list(self.failed_examples.values()),
            world_size=self.dist.world_size if self.dist else 1,
        )

    def _write_metrics(self, records: list[dict[str, Any]]) -> None:
        if self.store is not None and self.run_id is not None and records:
            self.store.append_metrics(self.run_id, records)

    def _skip_message(self) -> str:
        if not self.failed_examples:
            return ""
        return f"{len(self.failed_examples)} example(s) could not be decoded and were left out."


# --------------------------------------------------------------------------- command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m core.train", description="Train an audio classifier and save it as a run."
    )
    p.add_argument(
        "--data",
        default=defaults.data,
        help="builtin:digits, a folder per class, a zip, esc50:PATH, urbansound8k:PATH, "
        "gtzan:PATH, speechcommands:PATH",
    )
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument(
        "--runs-dir", default=None, help="run store root (default: AUDIO_DL_RUNS_DIR or ./runs)"
    )
    p.add_argument("--model", default=defaults.model, help="preset name")
    p.add_argument(
        "--members",
        type=int,
        default=defaults.members,
        help="copies of the network trained side by side as an ensemble (1: one network)",
    )
    p.add_argument(
        "--spec", default=None, help="a ModelSpec JSON file to train instead of the preset"
    )
    p.add_argument(
        "--split",
        default=defaults.split,
        choices=("random", "stratified", "group", "holdout", "fold"),
    )
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument(
        "--val-groups",
        default="",
        help="comma-separated groups for --split holdout (e.g. a speaker)",
    )
    p.add_argument("--val-folds", default="", help="comma-separated folds for --split fold")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.learning_rate)
    p.add_argument("--optimizer", default=defaults.optimizer, choices=OPTIMIZERS)
    p.add_argument("--schedule", default=defaults.schedule, choices=SCHEDULES)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device)
    p.add_argument(
        "--normalization",
        default=None,
        choices=NORMALIZATION_MODES,
        help=f"default: {defaults.normalization} (or the recipe's with --auto-recipe)",
    )
    p.add_argument(
        "--clip-seconds",
        type=float,
        default=None,
        help=f"default: {defaults.clip_seconds} (or the recipe's with --auto-recipe)",
    )
    p.add_argument(
        "--auto-recipe",
        action="store_true",
        help="measure the data and choose sample rate, mel bands, clip length, trimming, "
        "normalisation and augmentation from it (core.data.profile; printed with reasons); "
        "--clip-seconds, --normalization and --no-augment still win",
    )
    p.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    p.add_argument("--no-augment", action="store_true", help="switch every augmentation off")
    p.add_argument("--no-tsne", action="store_true", help="skip the t-SNE projection at the end")
    p.add_argument("--name", default="", help="a label for the run")
    p.add_argument("--owner", default="cli")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the command-line flags describe."""
    return TrainConfig(
        data=args.data,
        epochs=args.epochs,
        model=args.model,
        split=args.split,
        val_fraction=args.val_fraction,
        val_groups=tuple(g.strip() for g in args.val_groups.split(",") if g.strip()),
        val_folds=tuple(int(f) for f in args.val_folds.split(",") if f.strip()),
        batch_size=args.batch_size,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=args.device,
        early_stopping_patience=args.patience,
        members=args.members,
        normalization=args.normalization or TrainConfig.normalization,
        clip_seconds=TrainConfig.clip_seconds if args.clip_seconds is None else args.clip_seconds,
        augment=AugmentConfig.off() if args.no_augment else AugmentConfig(),
        tsne=not args.no_tsne,
        name=args.name,
    )


def recipe_from_data(
    config: TrainConfig, args: argparse.Namespace, dataset: AudioDataset
) -> TrainConfig:
    """`config` with the recipe chosen from the data (--auto-recipe); its reasons go to stderr.

    Flags the user gave explicitly (--clip-seconds, --normalization, --no-augment) win.
    """
    from core.data.profile import apply_recipe, recipe_for_dataset

    recipe = recipe_for_dataset(dataset)
    print(f"recipe for {recipe.kind}: {recipe.profile.summary()}", file=sys.stderr)
    for name, choice in recipe.choices().items():
        print(f"  {name}: {choice.reason}", file=sys.stderr)
    chosen = apply_recipe(config, recipe)
    explicit = {
        "clip_seconds": args.clip_seconds,
        "normalization": args.normalization,
        "augment": config.augment if args.no_augment else None,
    }
    return dataclasses.replace(chosen, **{k: v for k, v in explicit.items() if v is not None})


class ProgressBar:
    """A one-line text progress bar on stderr (no dependency), redrawn at most 10 times/s."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.width = max(1, total), width
        self.stream = stream or sys.stderr
        self.last = 0.0

    def update(self, done: int, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} {text}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _describe(event: TrainEvent) -> str:
    parts = [f"epoch {event.epoch}/{event.epochs}"]
    if event.loss is not None:
        parts.append(f"loss {event.loss:.3f}")
    if event.val_accuracy is not None:
        parts.append(f"val acc {event.val_accuracy:.3f}")
    parts.append(f"{event.samples_per_second:.0f} samples/s")
    if event.eta_seconds:
        parts.append(f"ETA {event.eta_seconds:.0f} s")
    return " · ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: train, show progress, write a run, print where it is. Exit 0 on success."""
    from core.models.spec import ModelSpec
    from core.training.ddp import shutdown_distributed
    from core.training.runs import RunStore

    args = _parse_args(argv)
    try:
        config = config_from_args(args)
        spec = (
            ModelSpec.from_json(Path(args.spec).read_text(encoding="utf-8")) if args.spec else None
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dataset = None
    if args.auto_recipe:
        try:
            dataset = load_dataset(config.data)
            config = recipe_from_data(config, args, dataset)
        except (DatasetError, ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    dist = distributed_from_env()
    main_process = dist is None or dist.is_main
    store = RunStore(args.runs_dir)
    bar, final = None, None
    try:
        for event in train(config, dataset=dataset, spec=spec, store=store, owner=args.owner):
            if not main_process:
                final = event
                continue
            if event.kind == "started":
                info = event.info
                print(
                    f"{info['dataset']}: {info['train_examples']} training / "
                    f"{info['val_examples']} validation examples, {len(info['labels'])} classes, "
                    f"{info['parameters']} parameters, on {info['device']} (x{info['world_size']})",
                    file=sys.stderr,
                )
                bar = ProgressBar(event.total_steps)
            elif bar is not None and event.kind in ("step", "epoch_end", "evaluation"):
                bar.update(event.step, _describe(event), force=event.kind != "step")
            final = event
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
        shutdown_distributed()
    if final is None:
        return 1
    if main_process:
        print(f"{final.kind}: {final.message}", file=sys.stderr)
        if final.val_accuracy is not None:
            print(f"validation accuracy {final.val_accuracy:.4f}", file=sys.stderr)
        if final.run_id:
            print(f"run {final.run_id} in {store.root / final.run_id}")
    return 0 if final.kind == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
