"""A network as data: frozen `LayerSpec`s in a `ModelSpec`, and their JSON.

A `ModelSpec` is an input shape (per example, no batch axis) and a stack of `LayerSpec`s.
The network it describes is the composition f = f_n ∘ … ∘ f_1 of its layers. A spec with
`members > 1` is a deep ensemble: that many copies of the stack, each with its own random
start. `ModelSpec.to_json()` / `ModelSpec.from_json()` round-trip losslessly; a file that
cannot describe a network raises `SpecError` with a sentence.

The rest of the package works on specs: `layers` (the catalogue of kinds and limits),
`shapes` (`infer_shapes`: shapes, parameters and multiply-adds without torch), `build`
(`build_model`: the `nn.Module`) and `codegen` (`spec_to_code`: standalone PyTorch code).

Shape conventions (per example): (features,) for vectors, (channels, length) for 1-D
signals, (channels, height, width) for images; a log-mel spectrogram is (1, n_mels, frames)
with time on the last axis. GRU/LSTM layers read the last axis as time and flatten every
other axis into the features of one frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from core.models.layers import (
    LAYER_KINDS,
    MAX_LAYERS,
    MAX_MEMBERS,
    MAX_WIDTH,
    SPEC_FORMAT,
    SPEC_VERSION,
    SpecError,
)


@dataclass(frozen=True)
class LayerSpec:
    """One layer: its kind and its parameters as a sorted tuple of (name, value) pairs.

    Values are JSON scalars (int, float, bool, str or None). Missing parameters take the
    catalogue default, so `LayerSpec.make("Linear", out_features=10)` is a complete layer.
    """

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, kind: str, **params: Any) -> LayerSpec:
        """A layer of `kind` with these parameters (order-independent, hashable)."""
        return cls(kind, tuple(sorted(params.items())))

    @classmethod
    def with_defaults(cls, kind: str) -> LayerSpec:
        """A layer of `kind` with every catalogue default written out (None ones left out)."""
        info = LAYER_KINDS.get(kind)
        params = {p.name: p.default for p in info.params if p.default is not None} if info else {}
        return cls.make(kind, **params)

    def param(self, name: str, default: Any = None) -> Any:
        """The value of `name`: the given one, else `default`, else the catalogue default."""
        for key, value in self.params:
            if key == name:
                return value
        if default is not None:
            return default
        info = LAYER_KINDS.get(self.kind)
        param_info = info.param_info(name) if info else None
        return param_info.default if param_info else None

    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def with_params(self, **changes: Any) -> LayerSpec:
        """A copy with some parameters changed."""
        merged = {**dict(self.params), **changes}
        return LayerSpec.make(self.kind, **merged)

    def describe(self) -> str:
        """Short label, e.g. "Linear(out_features=10)"."""
        shown = ", ".join(f"{k}={v}" for k, v in self.params if v is not None)
        return f"{self.kind}({shown})"


@dataclass(frozen=True)
class ModelSpec:
    """A network: an input shape per example (no batch axis) and a stack of layers.

    `members` > 1 makes it an ensemble of that many independently initialised copies.
    """

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...] = field(default_factory=tuple)
    members: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [{"kind": layer.kind, "params": dict(layer.params)} for layer in self.layers],
        }
        if self.members != 1:  # single networks keep the JSON they always had
            data["members"] = self.members
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        """Parse a dict (hostile input): raise SpecError with a sentence on any problem."""
        return _spec_from_dict(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        """Parse JSON text (hostile input); `ModelSpec.from_json(s.to_json()) == s`."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise SpecError(None, f"the spec is not valid JSON ({error})") from None
        return _spec_from_dict(data)

    def with_num_outputs(self, n: int) -> ModelSpec:
        """The same spec whose final Linear has `n` outputs (the number of classes)."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_WIDTH:
            raise SpecError(None, f"the number of outputs must be between 1 and {MAX_WIDTH}")
        index = last_linear_index(self)
        if index is None:
            raise SpecError(None, "the network has no Linear layer to set the number of outputs on")
        layers = list(self.layers)
        layers[index] = layers[index].with_params(out_features=n)
        return replace(self, layers=tuple(layers))

    def with_input_shape(self, shape: tuple[int, ...]) -> ModelSpec:
        """The same layers on another input shape (e.g. another number of frames)."""
        return replace(self, input_shape=tuple(int(d) for d in shape))

    def with_layers(self, layers: list[LayerSpec] | tuple[LayerSpec, ...]) -> ModelSpec:
        return replace(self, layers=tuple(layers))

    def with_members(self, members: int) -> ModelSpec:
        """The same stack as an ensemble of `members` copies (1: a single network)."""
        _check_members(members)
        return replace(self, members=members)


def _check_members(members: Any) -> None:
    if not isinstance(members, int) or isinstance(members, bool) or not 1 <= members <= MAX_MEMBERS:
        raise SpecError(None, f"members must be a whole number from 1 to {MAX_MEMBERS}")


def last_linear_index(spec: ModelSpec) -> int | None:
    """0-based index of the spec's last Linear layer (the classifier head), None if it has none."""
    indices = [i for i, layer in enumerate(spec.layers) if layer.kind == "Linear"]
    return indices[-1] if indices else None


def _spec_from_dict(data: Any) -> ModelSpec:
    if not isinstance(data, dict):
        raise SpecError(None, "the spec must be a JSON object with name, input_shape and layers")
    if data.get("format", SPEC_FORMAT) != SPEC_FORMAT:
        raise SpecError(None, f"this is not a model spec (format {data.get('format')!r})")
    version = data.get("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise SpecError(
            None, f"spec version {version!r} is not supported (this app reads {SPEC_VERSION})"
        )
    name = data.get("name", "network")
    if not isinstance(name, str) or len(name) > 200:
        raise SpecError(None, "the spec's name must be a text of at most 200 characters")
    shape = data.get("input_shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 3
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    ):
        raise SpecError(
            None, "input_shape must be a list of 1 to 3 whole numbers, e.g. [1, 64, 101]"
        )
    raw_layers = data.get("layers")
    if not isinstance(raw_layers, list):
        raise SpecError(None, "layers must be a list of {kind, params} objects")
    if len(raw_layers) > MAX_LAYERS:
        raise SpecError(None, f"the spec has {len(raw_layers)} layers; the limit is {MAX_LAYERS}")
    layers = []
    for number, raw in enumerate(raw_layers, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
            raise SpecError(number, f"layer {number} must be an object with a 'kind' text")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            raise SpecError(number, f"layer {number} {raw['kind']}: params must be an object")
        for key, value in params.items():
            if value is not None and not isinstance(value, (int, float, bool, str)):
                raise SpecError(
                    number,
                    f"layer {number} {raw['kind']}: parameter {key} "
                    "must be a number, true/false or text",
                )
        layers.append(LayerSpec(raw["kind"], tuple(sorted(params.items()))))
    members = data.get("members", 1)
    _check_members(members)
    return ModelSpec(name, tuple(shape), tuple(layers), members)
