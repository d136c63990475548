"""A network as a composition of functions, with values: every layer's output for one clip.

A `SpecNetwork` is f = f_n ∘ … ∘ f_1 (its `layers` nn.Sequential). Feeding one clip's
model input x through the layers one at a time gives x, f1(x), f2(f1(x)), …, and the last
of these is exactly what the whole network returns (tested). For a convolutional network
the first values are images (channels × mel bands × frames: the spectrogram read as an
image, then one feature map per learnt filter); after the recurrent or flattening layer
they are vectors; the last are the class scores.

An ensemble (`EnsembleNetwork`) is several such compositions whose probabilities are
averaged: one member is traced, and both that member's and the ensemble's probabilities
are returned.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.audio.features import FeatureConfig
from core.audio.input_recipe import InputRecipe, Normalization
from core.models.build import build_model, member_networks
from core.models.spec import ModelSpec


class LayerValuesError(ValueError):
    """A network or input that cannot be traced; str() is a sentence for the student."""


@dataclass(frozen=True)
class LayerValue:
    """One step of the composition for one example.

    index: 0 for the input x, i for the output of layer f_i. kind: "input" or the layer's
    kind ("Conv2d", "ReLU", …). description: the layer with its settings. values: the
    output with the batch axis removed, float32 on the CPU, e.g. (channels, bins, frames)
    after a Conv2d, (classes,) after the final Linear.
    """

    index: int
    kind: str
    description: str
    values: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def statistics(self) -> dict[str, float]:
        """min, max, mean and the share of exact zeros (what a ReLU switched off) of values."""
        v = self.values.float()
        if v.numel() == 0:
            return {"min": 0.0, "max": 0.0, "mean": 0.0, "zeros": 0.0}
        return {
            "min": float(v.min()),
            "max": float(v.max()),
            "mean": float(v.mean()),
            "zeros": float((v == 0).float().mean()),
        }

    @property
    def expression(self) -> str:
        """The value written as a composition: x, f1(x), f2(f1(x)), f3(f2(f1(x))), f4(…(x))."""
        if self.index == 0:
            return "x"
        if self.index <= 3:
            inner = "x"
            for i in range(1, self.index + 1):
                inner = f"f{i}({inner})"
            return inner
        return f"f{self.index}(…f1(x))"


def _single_network(network: nn.Module, member: int) -> nn.Module:
    members = member_networks(network)
    if not 0 <= member < len(members):
        raise LayerValuesError(
            f"This network has {len(members)} member(s); member {member} is not one."
        )
    single = members[member]
    if not isinstance(getattr(single, "layers", None), nn.Sequential):
        raise LayerValuesError(
            "Only networks built from a layer stack (a model spec) can be run layer by layer."
        )
    return single


def _descriptions(spec: ModelSpec | None, modules: Sequence[nn.Module]) -> list[tuple[str, str]]:
    if spec is not None and len(spec.layers) == len(modules):
        return [(layer.kind, layer.describe()) for layer in spec.layers]
    return [(type(m).__name__, type(m).__name__) for m in modules]


@torch.inference_mode()
def layer_outputs(
    network: nn.Module, x: torch.Tensor, *, spec: ModelSpec | None = None, member: int = 0
) -> list[LayerValue]:
    """x, f1(x), f2(f1(x)), … for one example, through the network's layers one at a time.

    network: a `SpecNetwork` or an `EnsembleNetwork` (then member `member` is traced) in
    evaluation mode (in training mode dropout would make the values random, so it is
    refused). x: (1, *input_shape). spec: names the layers (else the modules' class names).
    Returns len(layers) + 1 values, the input first; the last equals the traced network's
    own output for x.
    """
    if network.training:
        raise LayerValuesError("Put the network in evaluation mode (network.eval()) first.")
    if x.ndim < 2 or x.shape[0] != 1:
        raise LayerValuesError(
            f"Give one example with a batch axis of 1, not shape {tuple(x.shape)}."
        )
    single = _single_network(network, member)
    modules = list(single.layers)
    device = next(single.parameters(), torch.empty(0)).device
    h = x.to(device=device, dtype=torch.float32)
    values = [LayerValue(0, "input", "the model input", h[0].detach().float().cpu())]
    for i, ((kind, description), module) in enumerate(
        zip(_descriptions(spec, modules), modules, strict=True), start=1
    ):
        h = module(h)
        values.append(LayerValue(i, kind, description, h[0].detach().float().cpu()))
    return values


@dataclass(frozen=True)
class ClipTrace:
    """One clip through a classifier, layer by layer.

    layers: `layer_outputs` of the traced member (input first). labels: class names.
    probabilities: (classes,) of the whole network (an ensemble's mean probability).
    member_probabilities: (classes,) softmax of the traced member's scores.
    members: how many networks the model averages; member: which one is traced.
    """

    layers: list[LayerValue]
    labels: tuple[str, ...]
    probabilities: np.ndarray
    member_probabilities: np.ndarray
    members: int
    member: int

    @property
    def predicted_label(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]


def spectrogram_input(samples: np.ndarray, sample_rate: int, recipe: InputRecipe) -> torch.Tensor:
    """A waveform (n,) at `sample_rate` Hz as the network input (1, 1, bins, clip_frames).

    The training recipe itself (`InputRecipe.clip`): resampling, features, crop/pad or
    trim-and-stretch, normalisation. Raises LayerValuesError for an empty or broken clip.
    """
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise LayerValuesError("The clip must be a non-empty mono waveform.")
    if not np.isfinite(y).all():
        raise LayerValuesError("The clip contains samples that are not numbers (NaN or inf).")
    return recipe.clip(y, sample_rate).model_input


def _check_spectrogram_network(spec: ModelSpec | None, bins: int, frames: int) -> None:
    if spec is not None and tuple(spec.input_shape) != (1, bins, frames):
        raise LayerValuesError(
            f"This network takes inputs of shape {tuple(spec.input_shape)}, not a spectrogram "
            f"of 1 × {bins} bands × {frames} frames: choose a network trained on spectrograms."
        )


@torch.inference_mode()
def trace_clip(run: Any, samples: np.ndarray, sample_rate: int, *, member: int = 0) -> ClipTrace:
    """A clip through a trained run (`core.training.runs.LoadedRun`), every layer's output kept.

    samples: mono float (n,) at `sample_rate` Hz, prepared exactly as training prepared
    its clips (the run's InputRecipe). member: which member of an ensemble to trace (0 for
    a single network).
    """
    recipe = run.recipe
    _check_spectrogram_network(run.spec, recipe.bins, recipe.clip_frames)
    x = spectrogram_input(samples, sample_rate, recipe)
    return _trace(run.model, x, run.spec, tuple(run.labels), member)


def _trace(
    network: nn.Module,
    x: torch.Tensor,
    spec: ModelSpec | None,
    labels: tuple[str, ...],
    member: int,
) -> ClipTrace:
    layers = layer_outputs(network, x, spec=spec, member=member)
    scores = layers[-1].values
    if scores.ndim != 1:
        raise LayerValuesError(
            f"The network ends in shape {tuple(scores.shape)}, not a vector of class scores."
        )
    device = next(network.parameters(), torch.empty(0)).device
    whole = network(x.to(device)).float().cpu()[0]
    members = len(member_networks(network))
    if not labels or len(labels) != scores.numel():
        labels = tuple(f"output {i}" for i in range(scores.numel()))
    return ClipTrace(
        layers=layers,
        labels=labels,
        probabilities=torch.softmax(whole, dim=-1).numpy(),
        member_probabilities=torch.softmax(scores, dim=-1).numpy(),
        members=members,
        member=member,
    )


def untrained_network(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """The spec's network with seeded random weights, in evaluation mode (one member)."""
    return build_model(spec.with_members(1), seed=seed).eval()


@torch.inference_mode()
def trace_untrained(
    spec: ModelSpec,
    samples: np.ndarray,
    sample_rate: int,
    *,
    feature_config: FeatureConfig | None = None,
    seed: int = 0,
) -> ClipTrace:
    """A clip through the editor's network with random weights (nothing learnt yet).

    The spec must take a log-mel spectrogram (1, n_mels, frames); the clip gets the
    default feature recipe with that many mel bands and frames, per-clip normalisation.
    Raises LayerValuesError with a sentence for any other input shape.
    """
    shape = tuple(spec.input_shape)
    if len(shape) != 3 or shape[0] != 1:
        raise LayerValuesError(
            f"The editor's network takes inputs of shape {shape}; a clip becomes a spectrogram "
            "of 1 × mel bands × frames. Choose the log-mel input on the Build tab."
        )
    _, bins, frames = shape
    try:
        config = feature_config or FeatureConfig(n_mels=bins)
    except ValueError as error:
        raise LayerValuesError(f"No log-mel recipe has {bins} mel bands: {error}") from error
    recipe = _untrained_recipe(config, frames)
    x = spectrogram_input(samples, sample_rate, recipe)
    return _trace(untrained_network(spec, seed), x, spec, (), 0)


@functools.lru_cache(maxsize=4)
def _untrained_recipe(config: FeatureConfig, frames: int) -> InputRecipe:
    """The editor network's recipe (log-mel, per-clip CMVN), built once per shape: its filter
    bank is a buffer, and the page traces a clip on every change of the network."""
    return InputRecipe.make(config, "logmel", frames, Normalization("utterance"))
