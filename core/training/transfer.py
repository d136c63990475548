"""Transfer learning: start a training from a ready model's weights instead of random ones.

A network trained on many sounds has learnt features (onsets, harmonic stacks, bright or dark
spectra) that help with sounds it never heard. Starting a new training from those weights and
fine-tuning them on a student's few clips is how Teachable Machine and Edge Impulse train
audio classifiers: on rendered instrument notes, trained on one soundfont and scored on
another that neither the training nor the starting network heard, networks started from
weights learnt on other soundfonts scored 0.89-0.95 where the same network from random
weights scored 0.68-0.95 (four pairs; tests/benchmarks/bench_recipes.py, docs/ARCHITECTURE.md
"Starting from a ready model").

What carries over: every layer of the ready network except its last Linear layer (the
classifier head, one output per class) when the new data has other classes; with the very
same classes in the same order the head is kept too. The input must be the ready model's
own (sample rate, bands, windows, feature kind, normalisation), because its first layer learnt
patterns of exactly those numbers; `start_settings` gives those settings and `check_input`
says in a sentence when a config does not match. Every member of an ensemble starts from the
same weights (they still drift apart: each sees the batches with its own dropout).

Only the ready models shipped in models/ can be started from: their weights are safetensors
read by name (never unpickled), and the name a page or command line passes is looked up among
them, never used as a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core import paths
from core.audio.features import FeatureConfig
from core.data.starting_weights import FINE_TUNE_LEARNING_RATE, ready_models
from core.models.spec import ModelSpec, last_linear_index
from core.training.run_files import RunError
from core.training.runs import RunStore

RANDOM_START = ""  # TrainConfig.start_from for random weights


def head_first_epochs(epochs: int) -> int:
    """Epochs at the start of a run in which only a new head learns (the layers copied from
    the ready model are frozen), then everything is fine-tuned: "linear probing, then
    fine-tuning" (Kumar et al., ICLR 2022). A random head's first, large gradients would
    otherwise reshape the copied layers before the head knows anything. A third of the run,
    at most 3 epochs; none in a run of fewer than 3 epochs."""
    return min(3, epochs // 3)


class StartError(ValueError):
    """A ready model cannot be started from; str() is a sentence for the student."""


@dataclass(frozen=True)
class ReadyStart:
    """A ready model's network, weights and input, as a starting point.

    state: its weights by name (one network: the first member of an ensemble); labels: the
    classes its head was trained on, in output order; features / feature_kind /
    normalization / clip_seconds: the input it was trained on.
    """

    name: str
    spec: ModelSpec
    state: dict[str, torch.Tensor]
    labels: tuple[str, ...]
    features: FeatureConfig
    feature_kind: str
    normalization: str
    clip_seconds: float
    trim_db: float | None

    def describe(self) -> str:
        """One line for the page: the name, its classes and the input it reads."""
        f = self.features
        return (
            f"{self.name}: {len(self.labels)} classes ({', '.join(self.labels[:6])}"
            f"{', ...' if len(self.labels) > 6 else ''}); reads {f.sample_rate / 1000:g} kHz "
            f"{self.feature_kind}, {f.n_mels} bands, {self.normalization} normalisation"
        )


def ready_names() -> list[str]:
    """The names of the shipped ready models that have weights (oldest first)."""
    return list(ready_models())


def load_ready_start(name: str) -> ReadyStart:
    """The ready model called `name` (models/<run>/config.json's name), loaded on the CPU.

    Raises StartError with a sentence when there is no such ready model or its files are
    broken. `name` is only compared with the shipped models' names, never opened as a path.
    """
    models = ready_models()
    if name not in models:
        known = ", ".join(models) or "none"
        raise StartError(f"There is no ready model called {name!r} to start from (known: {known}).")
    try:
        loaded = RunStore(paths.MODELS_DIR).load(models[name].name)
    except RunError as error:
        raise StartError(f"The ready model {name!r} cannot be read: {error}") from None
    state = loaded.model.state_dict()
    if loaded.spec.members > 1:  # an ensemble: its first member is the starting network
        state = {k.split(".", 2)[2]: v for k, v in state.items() if k.startswith("members.0.")}
    return ReadyStart(
        name=name,
        spec=loaded.spec.with_members(1),
        state={k: v.detach().clone() for k, v in state.items()},
        labels=loaded.labels,
        features=loaded.feature_config,
        feature_kind=loaded.feature_kind,
        normalization=str(loaded.normalization.get("mode", "none")),
        clip_seconds=float(loaded.info.train_config.get("clip_seconds", 1.0)),
        trim_db=loaded.info.train_config.get("trim_db"),
    )


def start_settings(start: ReadyStart) -> dict[str, Any]:
    """The TrainConfig fields of a training started from `start`: its input, its clip length
    and trimming (changeable: the network reads any number of frames), its network and the
    fine-tuning learning rate (dataclasses.replace(config, **start_settings(start)))."""
    return {
        "start_from": start.name,
        "features": start.features,
        "feature_kind": start.feature_kind,
        "normalization": start.normalization,
        "clip_seconds": start.clip_seconds,
        "trim_db": start.trim_db,
        "model": str(start.spec.name or "cnn_logmel"),
        "learning_rate": FINE_TUNE_LEARNING_RATE,
    }


def check_input(start: ReadyStart, features: FeatureConfig, kind: str, normalization: str) -> None:
    """Raise StartError (a sentence) unless the training reads the input `start` learnt on."""
    wanted = (start.features, start.feature_kind, start.normalization)
    if (features, kind, normalization) != wanted:
        f = start.features
        raise StartError(
            f"Starting from {start.name} needs the input it learnt on: {f.sample_rate} Hz "
            f"{start.feature_kind} with {f.n_mels} bands, {_ms(f.win_length, f.sample_rate)} ms "
            f"windows every {_ms(f.hop_length, f.sample_rate)} ms and {start.normalization} "
            "normalisation; set the features to those, or start from random weights."
        )


def _ms(samples: int, rate: int) -> str:
    return f"{1000 * samples / rate:g}"


def network_spec(start: ReadyStart, input_shape: tuple[int, ...], classes: int) -> ModelSpec:
    """The ready model's network on this data's input shape with one output per class."""
    return start.spec.with_input_shape(input_shape).with_num_outputs(classes)


def copied_parameters(model: nn.Module, copied: list[str]) -> list[nn.Parameter]:
    """The parameters of `model` (any number of members) that load_start_weights filled."""
    names = set(copied)
    return [
        parameter
        for name, parameter in model.named_parameters()
        if (name.split(".", 2)[2] if name.startswith("members.") else name) in names
    ]


def load_start_weights(model: nn.Module, start: ReadyStart, labels: tuple[str, ...]) -> list[str]:
    """Copy `start`'s weights into `model` (built from network_spec, any number of members).

    The head (the last Linear layer) is copied only when `labels` are the ready model's own
    classes in the same order; otherwise it keeps its random start. Returns the names of the
    tensors copied (of one member). Raises StartError when a layer other than the head does
    not fit, i.e. the network is not the ready model's.
    """
    head = f"layers.{last_linear_index(start.spec)}."
    keep_head = tuple(labels) == start.labels
    own = model.state_dict()
    members = sorted({int(k.split(".")[1]) for k in own if k.startswith("members.")})
    prefixes = [f"members.{m}." for m in members] or [""]  # an ensemble, or one network
    copied: list[str] = []
    with torch.no_grad():
        for prefix in prefixes:
            for name, tensor in start.state.items():
                if name.startswith(head) and not keep_head:
                    continue
                target = own.get(prefix + name)
                if target is None or target.shape != tensor.shape:
                    raise StartError(
                        f"The network does not fit {start.name}'s weights ({name}); start from "
                        "random weights or use the ready model's own network."
                    )
                target.copy_(tensor.to(target.device, target.dtype))
                if prefix == prefixes[0]:
                    copied.append(name)
    return copied
