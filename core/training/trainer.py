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
core.training.runs); `event.run_id` names it. Under torchrun or Ray Train (several
processes, core.training.ddp) the same code trains with DDP.

The command line around it is core/train.py (`python -m core.train --data builtin:digits`).
What a run needs around the loop lives beside it: the settings and events in
core.training.config, the examples' features in core.training.examples, the optimiser in
core.training.optim. This module stays a little over 500 lines on purpose: `_Trainer` is the
state of one run, read top to bottom as the course's training loop (prepare, loop over
epochs, one optimiser step, evaluate, save); cutting its steps apart would make a student
jump between files to follow one step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.audio.input_recipe import (
    InputRecipe,
    InputRecipeConfig,
    Normalization,
    clip_frames_for,
    fit_normalization,
)
from core.data.augment import (
    augment_batch,
    mixup,
)
from core.data.datasets import AudioDataset, DatasetError, make_windows
from core.data.feature_cache import FeatureCache
from core.data.sources import load_dataset
from core.data.splits import Split, class_balance, leakage_report, split_dataset
from core.devices import (
    OutOfMemoryEverywhere,
    autocast_context,
    configure_tf32,
    make_grad_scaler,
    precision_policy,
    resolve_device,
    run_with_oom_fallback,
)
from core.models.build import average_members, build_model, member_networks
from core.models.presets import preset_spec
from core.models.shapes import check_classifier

# TrainConfig and TrainEvent live in core.training.config; they are imported here too because
# this is where most readers (and callers) look for what train() takes and yields.
from core.training.config import (
    EVENT_KINDS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    TrainEvent,
    default_feature_config,
)
from core.training.ddp import (
    DistInfo,
    all_reduce_mean,
    distributed_from_env,
    init_distributed,
    shard_indices,
)
from core.training.evaluate import Evaluation, evaluate_model, forward_batches, scores
from core.training.examples import ExampleBank
from core.training.optim import build_optimizer
from core.training.transfer import (
    ReadyStart,
    check_input,
    copied_parameters,
    head_first_epochs,
    load_ready_start,
    load_start_weights,
    network_spec,
)

__all__ = [
    "EVENT_KINDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainConfig",
    "TrainEvent",
    "TrainingFailed",
    "default_feature_config",
    "train",
]

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        config: TrainConfig,
        dataset: AudioDataset | None,
        spec: Any,
        device: torch.device | str | None,
        cancel: threading.Event,
        store: Any,
        owner: str,
        sweep: Mapping[str, Any] | None = None,
    ):
        # --- what was asked for
        self.config = config
        self.dataset = dataset
        self.spec = spec
        self.requested_device = device
        self.cancel = cancel
        self.dist: DistInfo | None = distributed_from_env()
        self.is_main = self.dist is None or self.dist.is_main
        self.store = store if self.is_main else None  # only rank 0 writes the run
        self.owner = owner
        self.sweep = sweep  # a sweep trial's record, saved with the run
        # --- made by _prepare(): data, split, recipe, model, optimiser (None until then)
        self.device: torch.device | None = None
        self.data: AudioDataset | None = None
        self.split: Split | None = None
        self.cache: FeatureCache | None = None
        self.frames = 0  # clip frames of the model input
        self.bins = 0  # feature bins of the model input
        self.recipe: InputRecipe | None = None
        self.examples: ExampleBank | None = None
        self.model_spec: Any = None  # core.models.spec.ModelSpec, adapted to the data
        self.model: nn.Module | None = None
        self.started_from: list[str] = []  # tensors copied from config.start_from's model
        # ... frozen for the first head_first_epochs epochs while a new head learns alone
        self.frozen_first: list[nn.Parameter] = []
        self.head_first_epochs = 0
        self.net: nn.Module | None = None  # the model, wrapped in DDP when distributed
        self.batch_size = 0  # examples per step in this process
        self.micro_batch = 0  # ... fed at once (smaller after an out-of-memory)
        self.optimizer: torch.optim.Optimizer | None = None
        self.step_scheduler: Any = None
        self.epoch_scheduler: Any = None
        self.scaler: Any = None  # torch.amp.GradScaler
        self.steps_per_epoch = 0
        # --- progress
        self.run_id: str | None = None
        self.step = 0
        self.epoch = 0
        self.total_steps = 0
        self.started = time.perf_counter()
        self.val_loss: float | None = None
        self.val_accuracy: float | None = None
        self.last_evaluation: Evaluation | None = None
        self.sps = 0.0

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
            if self.optimizer is not None
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
        normalization, unreadable = self._fit_normalization()
        # The one waveform-to-input recipe, saved with the model and used by inference.
        self.recipe = InputRecipe(
            InputRecipeConfig(c.features, c.feature_kind, self.frames, normalization)
        )
        self.examples = ExampleBank(
            data,
            self.cache,
            self.recipe,
            augment=c.augment,
            # The equaliser adds decibels: only the log-mel is in dB (other kinds ignore it).
            equalize=c.augment.needs_decibels and c.feature_kind == "logmel",
            failed=unreadable,
        )
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

    def _fit_normalization(self) -> tuple[Normalization, dict[int, str]]:
        """The normalisation, and the training examples that could not be read to fit it."""
        # The energy gate reads dB: only the log-mel is trimmed.
        trim_db = self.config.trim_db if self.config.feature_kind == "logmel" else None
        if self.config.normalization != "global":
            return Normalization(self.config.normalization, trim_db=trim_db), {}
        found, failures = self.cache.features_for(self.data, self.split.train)
        unreadable = {i: "" for i in set(self.split.train) - set(found)}
        if not found:
            raise TrainingFailed(
                "None of the training files could be decoded: " + "; ".join(failures[:3])
            )
        return fit_normalization("global", list(found.values()), trim_db=trim_db), unreadable

    def _build_model(self) -> None:
        shape, classes = (1, self.bins, self.frames), len(self.data.labels)
        start = self._ready_start()
        if start is not None:  # the ready model's own network (a given spec is not used)
            spec = network_spec(start, shape, classes)
        elif self.spec is None:
            spec = preset_spec(self.config.model, input_shape=shape, num_outputs=classes)
        else:
            spec = self.spec.with_input_shape(shape).with_num_outputs(classes)
        spec = spec.with_members(self.config.members)
        check_classifier(spec, classes)
        torch.manual_seed(self.config.seed)
        self.model_spec = spec
        self.model = build_model(spec)
        if start is not None:
            self.started_from = load_start_weights(self.model, start, tuple(self.data.labels))
            if len(self.started_from) < len(start.state):  # a new head: it learns alone first
                self.head_first_epochs = head_first_epochs(self.config.epochs)
                self.frozen_first = copied_parameters(self.model, self.started_from)
        self.model = self.model.to(self.device)
        self.net = self.model
        if self.dist is not None:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.batch_size = max(1, self.config.batch_size // self._world_size())
        self.micro_batch = self.batch_size

    def _ready_start(self) -> ReadyStart | None:
        """The ready model config.start_from names, checked against the input (None: random)."""
        if not self.config.start_from:
            return None
        start = load_ready_start(self.config.start_from)  # StartError: a sentence, run failed
        c = self.config
        check_input(start, c.features, c.feature_kind, c.normalization)
        return start

    def _build_optimizer(self) -> None:
        self.optimizer, self.step_scheduler, self.epoch_scheduler = build_optimizer(
            self.model.parameters(), self.config, self.total_steps
        )
        self.scaler = make_grad_scaler(precision_policy(self.device))

    def _start_info(self) -> dict[str, Any]:
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
            "world_size": self._world_size(),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "start_from": self.config.start_from,  # "" : random weights
            "tensors_started_from": len(self.started_from),
            "head_first_epochs": self.head_first_epochs,
            "input_shape": [1, self.bins, self.frames],
            "spec": self.model_spec.to_dict(),
        }

    # ------------------------------------------------------------------ data

    def _shard(self, order: list[int]) -> list[int]:
        return shard_indices(order, self.dist)

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
            if self._stop_requested():
                return self._final(
                    "stopped", f"Stopped by request at epoch {self.epoch}, step {self.step}."
                )
            x, y = self.examples.batch(shard[start : start + self.batch_size], rng, generator)
            if y.numel() == 0:
                continue
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss, hits = self._optimizer_step(x, y, generator)
            seen += y.numel()
            loss_sum += loss.detach() * y.numel()
            correct += hits
            self.step += 1
            # every process trains on as many examples per step: the run's rate is world x ours
            self.sps = seen * self._world_size() / max(1e-9, time.perf_counter() - epoch_start)
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
            message=self.examples.skip_message(),
        )
        self._write_metrics([event.record()])
        yield event
        return None

    def _world_size(self) -> int:
        return self.dist.world_size if self.dist else 1

    def _stop_requested(self) -> bool:
        """Whether Stop was pressed. Under DDP only rank 0 reads the job's cancel flag; its
        answer is shared with every rank (one small all-reduce per step), so all of them stop
        before the same step: a rank stopping alone would leave the others waiting for ever in
        their next gradient all-reduce."""
        if self.dist is None:
            return self.cancel.is_set()
        pressed = torch.tensor(float(self.cancel.is_set()), device=self.device)
        return bool(all_reduce_mean(pressed) > 0)

    def _optimizer_step(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment, forward, backward and update on one batch; (loss, correct count)."""
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
        if self.epoch <= self.head_first_epochs:  # the copied layers wait for the new head
            for parameter in self.frozen_first:
                parameter.grad = None  # the optimiser skips a parameter without a gradient
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
        x, y, refs = self.examples.evaluation_tensors(self.split.val)
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
        if kind != "failed" and self.model is not None and self.is_main:
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
            skipped_examples=list(self.examples.failed.values()) if self.examples else [],
            world_size=self._world_size(),
        )

    def _write_metrics(self, records: list[dict[str, Any]]) -> None:
        if self.store is not None and self.run_id is not None and records:
            self.store.append_metrics(self.run_id, records)
