"""A network as data: frozen specs, shape inference, model building, code and JSON.

A `ModelSpec` is an input shape (per example, no batch axis) and a stack of `LayerSpec`s.
The network it describes is the composition f = f_n ∘ … ∘ f_1 of its layers.

- `infer_shapes(spec)` walks the stack without torch and reports, per layer, the input and
  output shape, the parameter count, the multiply-adds, the activation memory and the
  layer's formula; an impossible stack raises `SpecError` naming the layer (1-based) and why.
- `build_model(spec)` builds a `SpecNetwork` (an `nn.Module`) mapping (batch, *input_shape)
  to (batch, *output_shape); `forward_features` returns the input of the final Linear.
- A spec with `members > 1` is a deep ensemble: that many copies of the stack, each with its
  own random start, trained side by side; `build_model` then returns an `EnsembleNetwork`
  whose prediction averages the members' probabilities.
- `spec_to_code(spec)` writes the same network as a standalone PyTorch module (same
  `state_dict` keys, so weights trained here load into it).
- `ModelSpec.to_json()` / `ModelSpec.from_json()` round-trip losslessly.

Shape conventions (per example): (features,) for vectors, (channels, length) for 1-D
signals, (channels, height, width) for images; a log-mel spectrogram is (1, n_mels, frames)
with time on the last axis. GRU/LSTM layers read the last axis as time and flatten every
other axis into the features of one frame.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

SPEC_FORMAT = "audio-dl-studio/model-spec"
SPEC_VERSION = 1
BYTES_PER_VALUE = 4  # activations are float32
MAX_LAYERS = 64
MAX_WIDTH = 8192  # units, channels or hidden size of one layer
MAX_MEMBERS = 8  # copies of the network in one ensemble
MAX_KERNEL = 64
MAX_INPUT_DIM = 100_000
MAX_PARAMETERS = 50_000_000  # keeps a class server responsive


class SpecError(ValueError):
    """A spec that cannot describe a network, with a sentence a student understands.

    `layer_index` is 1-based as the user sees it (None for the spec as a whole);
    `str(error)` is the full message, e.g. "layer 5 Linear expects 512 inputs, receives 2048".
    """

    def __init__(self, layer_index: int | None, message: str):
        super().__init__(message)
        self.layer_index = layer_index
        self.message = message

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- layer catalogue


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a layer kind, as the editor shows it and validation checks it."""

    name: str
    default: Any
    kind: str  # "int", "float", "bool", "choice", "optional_int" (None means inferred)
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerKind:
    """What a layer kind is: its parameters and a one-line description."""

    name: str
    summary: str
    params: tuple[ParamInfo, ...] = ()
    group: str = "other"

    def param_info(self, name: str) -> ParamInfo | None:
        return next((p for p in self.params if p.name == name), None)


def _width(name: str, default: int, help: str) -> ParamInfo:
    return ParamInfo(name, default, "int", help, 1, MAX_WIDTH)


def _in(name: str, help: str) -> ParamInfo:
    return ParamInfo(name, None, "optional_int", help + " (empty: inferred)", 1, MAX_WIDTH)


_KERNEL = ParamInfo("kernel_size", 3, "int", "window size", 1, MAX_KERNEL)
_STRIDE = ParamInfo("stride", 1, "int", "step between windows", 1, MAX_KERNEL)
_PADDING = ParamInfo("padding", 1, "int", "zeros added on each side", 0, MAX_KERNEL)
_BIAS = ParamInfo("bias", True, "bool", "learn an additive bias")
_POOL_KERNEL = ParamInfo("kernel_size", 2, "int", "window size", 1, MAX_KERNEL)
_POOL_STRIDE = ParamInfo("stride", None, "optional_int", "step (empty: kernel size)", 1, MAX_KERNEL)
_OUTPUT_SIZE = ParamInfo("output_size", 1, "int", "output length per channel", 1, 1024)
_RNN_PARAMS = (
    _width("hidden_size", 64, "units of the hidden state"),
    ParamInfo("num_layers", 1, "int", "stacked recurrent layers", 1, 8),
    ParamInfo("bidirectional", False, "bool", "also read the frames backwards"),
    ParamInfo("output", "last", "choice", "summary over time", choices=("last", "mean")),
)

LAYER_KINDS: dict[str, LayerKind] = {
    kind.name: kind
    for kind in (
        LayerKind(
            "Linear",
            "fully connected: every output a weighted sum of every input",
            (_width("out_features", 64, "outputs"), _in("in_features", "inputs"), _BIAS),
            "weights",
        ),
        LayerKind(
            "Conv1d",
            "1-D convolution: one small filter slid along the length",
            (
                _width("out_channels", 16, "filters"),
                _KERNEL,
                _STRIDE,
                _PADDING,
                _in("in_channels", "input channels"),
                _BIAS,
            ),
            "weights",
        ),
        LayerKind(
            "Conv2d",
            "2-D convolution: one small filter slid over height and width",
            (
                _width("out_channels", 16, "filters"),
                _KERNEL,
                _STRIDE,
                _PADDING,
                _in("in_channels", "input channels"),
                _BIAS,
            ),
            "weights",
        ),
        LayerKind(
            "ResidualBlock",
            "two 3×3 convolutions with batch norm, added to a skip connection",
            (
                _width("out_channels", 32, "filters"),
                ParamInfo("stride", 1, "int", "downsampling of the first conv", 1, 4),
                ParamInfo("kernel_size", 3, "int", "window size (odd)", 1, 15),
            ),
            "weights",
        ),
        LayerKind(
            "GRU",
            "gated recurrent unit over the frames (last axis = time)",
            _RNN_PARAMS,
            "weights",
        ),
        LayerKind(
            "LSTM",
            "long short-term memory over the frames (last axis = time)",
            _RNN_PARAMS,
            "weights",
        ),
        LayerKind(
            "BatchNorm1d",
            "normalise each channel over the batch, then scale and shift",
            (_in("num_features", "channels"),),
            "normalisation",
        ),
        LayerKind(
            "BatchNorm2d",
            "normalise each channel over the batch and the plane, then scale and shift",
            (_in("num_features", "channels"),),
            "normalisation",
        ),
        LayerKind("LayerNorm", "normalise over the last axis of each example", (), "normalisation"),
        LayerKind(
            "Dropout",
            "zero random units while training",
            (ParamInfo("p", 0.5, "float", "probability of zeroing", 0.0, 0.95),),
            "normalisation",
        ),
        LayerKind(
            "MaxPool1d",
            "keep the largest value of each window",
            (_POOL_KERNEL, _POOL_STRIDE),
            "pooling",
        ),
        LayerKind(
            "MaxPool2d",
            "keep the largest value of each window",
            (_POOL_KERNEL, _POOL_STRIDE),
            "pooling",
        ),
        LayerKind("AvgPool1d", "average each window", (_POOL_KERNEL, _POOL_STRIDE), "pooling"),
        LayerKind("AvgPool2d", "average each window", (_POOL_KERNEL, _POOL_STRIDE), "pooling"),
        LayerKind(
            "AdaptiveAvgPool1d", "average down to a fixed length", (_OUTPUT_SIZE,), "pooling"
        ),
        LayerKind(
            "AdaptiveAvgPool2d",
            "average down to a fixed size, any input size",
            (_OUTPUT_SIZE,),
            "pooling",
        ),
        LayerKind(
            "AdaptiveMaxPool2d",
            "maximum down to a fixed size, any input size",
            (_OUTPUT_SIZE,),
            "pooling",
        ),
        LayerKind("Flatten", "lay every value of an example out in one vector", (), "shape"),
        LayerKind("ReLU", "max(0, x)", (), "activation"),
        LayerKind(
            "LeakyReLU",
            "max(αx, x)",
            (ParamInfo("negative_slope", 0.01, "float", "slope α for x < 0", 0.0, 1.0),),
            "activation",
        ),
        LayerKind("GELU", "x·Φ(x), a smooth ReLU", (), "activation"),
        LayerKind("Tanh", "tanh(x), squashes to (−1, 1)", (), "activation"),
        LayerKind("Sigmoid", "1/(1+e^(−x)), squashes to (0, 1)", (), "activation"),
        LayerKind(
            "Softmax", "exponentiate and normalise the last axis to sum to 1", (), "activation"
        ),
    )
}


# --------------------------------------------------------------------------- specs


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
        index = _last_linear_index(self)
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


def _last_linear_index(spec: ModelSpec) -> int | None:
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
                    f"layer {number} {raw['kind']}: parameter {key} must be a number, true/false or text",
                )
        layers.append(LayerSpec(raw["kind"], tuple(sorted(params.items()))))
    members = data.get("members", 1)
    _check_members(members)
    return ModelSpec(name, tuple(shape), tuple(layers), members)


# --------------------------------------------------------------------------- shape inference


@dataclass(frozen=True)
class LayerReport:
    """What one layer does to one example (no batch axis)."""

    index: int  # 1-based, as the user sees it
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameters: int
    multiply_adds: int  # per example, forward pass
    activation_bytes: int  # float32 output of this layer, per example
    formula: str

    @property
    def label(self) -> str:
        return f"f{self.index}: {self.kind}"


def format_shape(shape: tuple[int, ...]) -> str:
    """(1, 64, 101) -> "1×64×101"."""
    return "×".join(str(d) for d in shape)


def _check_params(index: int, layer: LayerSpec) -> None:
    info = LAYER_KINDS.get(layer.kind)
    if info is None:
        raise SpecError(
            index,
            f"layer {index} has an unknown kind {layer.kind!r}; known kinds: {', '.join(LAYER_KINDS)}",
        )
    where = f"layer {index} {layer.kind}"
    for name, value in layer.params:
        p = info.param_info(name)
        if p is None:
            known = ", ".join(q.name for q in info.params) or "none"
            raise SpecError(index, f"{where} has no parameter {name!r} (its parameters: {known})")
        if p.kind in ("int", "optional_int"):
            if value is None and p.kind == "optional_int":
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise SpecError(index, f"{where}: {name} must be a whole number, got {value!r}")
        elif p.kind == "float":
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise SpecError(index, f"{where}: {name} must be a number, got {value!r}")
        elif p.kind == "bool":
            if not isinstance(value, bool):
                raise SpecError(index, f"{where}: {name} must be true or false, got {value!r}")
        elif p.kind == "choice" and value not in p.choices:
            raise SpecError(
                index, f"{where}: {name} must be one of {', '.join(p.choices)}, got {value!r}"
            )
        if p.low is not None and isinstance(value, (int, float)) and not p.low <= value <= p.high:
            raise SpecError(
                index, f"{where}: {name} must be between {p.low:g} and {p.high:g}, got {value}"
            )


def _window_out(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def _need_rank(
    index: int, kind: str, shape: tuple[int, ...], ranks: tuple[int, ...], what: str
) -> None:
    if len(shape) not in ranks:
        hint = " (add a Flatten first)" if ranks == (1,) else ""
        raise SpecError(
            index, f"layer {index} {kind} needs input {what}, receives {format_shape(shape)}{hint}"
        )


def _check_declared(
    index: int, kind: str, name: str, declared: Any, actual: int, noun: str
) -> None:
    if declared is not None and declared != actual:
        raise SpecError(index, f"layer {index} {kind} expects {declared} {noun}, receives {actual}")


def _conv_like(
    index: int, layer: LayerSpec, shape: tuple[int, ...], dims: int
) -> tuple[tuple[int, ...], int, int, str]:
    kind = layer.kind
    what = "(channels, length)" if dims == 1 else "(channels, height, width)"
    _need_rank(index, kind, shape, (dims + 1,), what)
    in_c, spatial = shape[0], shape[1:]
    _check_declared(index, kind, "in_channels", layer.param("in_channels"), in_c, "input channels")
    out_c, k, s, p = (layer.param(n) for n in ("out_channels", "kernel_size", "stride", "padding"))
    out_spatial = tuple(_window_out(n, k, s, p) for n in spatial)
    if min(out_spatial) < 1:
        raise SpecError(
            index,
            f"layer {index} {kind} kernel {k} does not fit input {format_shape(shape)} (with padding {p}): use a smaller kernel, fewer pooling layers or more frames",
        )
    bias = layer.param("bias")
    kernel_numel = k**dims
    params = out_c * in_c * kernel_numel + (out_c if bias else 0)
    macs = out_c * math.prod(out_spatial) * in_c * kernel_numel
    kernel_text = "×".join([str(k)] * dims)
    bias_text = "b_c + " if bias else ""
    formula = f"y_c = {bias_text}Σ_k W_c,k ⋆ x_k, W: {out_c}×{in_c}×{kernel_text}, stride {s}, padding {p}"
    return (out_c, *out_spatial), params, macs, formula


def _pool(
    index: int, layer: LayerSpec, shape: tuple[int, ...], dims: int
) -> tuple[tuple[int, ...], str]:
    kind = layer.kind
    what = "(channels, length)" if dims == 1 else "(channels, height, width)"
    _need_rank(index, kind, shape, (dims + 1,), what)
    k = layer.param("kernel_size")
    s = layer.param("stride") or k
    out_spatial = tuple(_window_out(n, k, s, 0) for n in shape[1:])
    if min(out_spatial) < 1:
        window = "×".join([str(k)] * dims)
        raise SpecError(
            index,
            f"layer {index} {kind} window {window} does not fit input {format_shape(shape)}: use fewer pooling layers or more frames",
        )
    op = "max" if kind.startswith("Max") else "mean"
    window = "×".join([str(k)] * dims)
    return (shape[0], *out_spatial), f"y = {op} over each {window} window, stride {s}"


def _rnn(
    index: int, layer: LayerSpec, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], int, int, str]:
    kind = layer.kind
    if len(shape) < 2:
        raise SpecError(
            index,
            f"layer {index} {kind} needs a time axis, input (features, frames) or (channels, bins, frames); receives {format_shape(shape)}",
        )
    frames = shape[-1]
    features = math.prod(shape[:-1])
    hidden, num_layers = layer.param("hidden_size"), layer.param("num_layers")
    directions = 2 if layer.param("bidirectional") else 1
    gates = 3 if kind == "GRU" else 4
    params = macs = 0
    layer_in = features
    for _ in range(num_layers):
        per_direction = gates * (layer_in * hidden + hidden * hidden + 2 * hidden)
        params += directions * per_direction
        macs += directions * frames * gates * (layer_in * hidden + hidden * hidden)
        layer_in = hidden * directions
    summary = "h_T (last frame)" if layer.param("output") == "last" else "mean_t h_t"
    cell = "GRU" if kind == "GRU" else "LSTM"
    formula = f"h_t = {cell}(x_t, h_(t−1)) over {frames} frames of {features} features, hidden {hidden}; y = {summary}"
    return (hidden * directions,), params, macs, formula


def _residual(
    index: int, layer: LayerSpec, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], int, int, str]:
    _need_rank(index, "ResidualBlock", shape, (3,), "(channels, height, width)")
    in_c = shape[0]
    out_c, s, k = layer.param("out_channels"), layer.param("stride"), layer.param("kernel_size")
    if k % 2 == 0:
        raise SpecError(
            index,
            f"layer {index} ResidualBlock needs an odd kernel_size so the skip path lines up, got {k}",
        )
    p = k // 2
    h, w = (_window_out(n, k, s, p) for n in shape[1:])
    if min(h, w) < 1:
        raise SpecError(
            index, f"layer {index} ResidualBlock does not fit input {format_shape(shape)}"
        )
    params = out_c * in_c * k * k + 2 * out_c + out_c * out_c * k * k + 2 * out_c
    macs = h * w * out_c * (in_c * k * k + out_c * k * k) + 2 * out_c * h * w
    projection = s != 1 or in_c != out_c
    if projection:
        params += out_c * in_c + 2 * out_c
        macs += h * w * out_c * in_c
    skip = "P x (1×1 conv + BN)" if projection else "x"
    formula = f"y = ReLU(BN(conv(ReLU(BN(conv(x))))) + {skip}), convs {k}×{k}, {in_c}→{out_c} channels, stride {s}"
    return (out_c, h, w), params, macs, formula


_ACTIVATION_FORMULAS = {
    "ReLU": "y = max(0, x), elementwise",
    "GELU": "y = x·Φ(x), elementwise (Φ: standard normal CDF)",
    "Tanh": "y = tanh(x), elementwise",
    "Sigmoid": "y = 1 / (1 + e^(−x)), elementwise",
    "Softmax": "y_i = e^(x_i) / Σ_j e^(x_j) over the last axis",
}


def _infer_layer(index: int, layer: LayerSpec, shape: tuple[int, ...]) -> LayerReport:
    """Report of one layer on an input of `shape`; raises SpecError when it cannot apply."""
    _check_params(index, layer)
    kind = layer.kind
    params = macs = 0
    out = shape
    if kind == "Linear":
        _need_rank(index, kind, shape, (1,), "a vector (features,)")
        n_in, n_out = shape[0], layer.param("out_features")
        _check_declared(index, kind, "in_features", layer.param("in_features"), n_in, "inputs")
        bias = layer.param("bias")
        params = n_in * n_out + (n_out if bias else 0)
        macs = n_in * n_out
        out = (n_out,)
        formula = f"y = W x + b, W: {n_out}×{n_in}" if bias else f"y = W x, W: {n_out}×{n_in}"
    elif kind in ("Conv1d", "Conv2d"):
        out, params, macs, formula = _conv_like(index, layer, shape, 1 if kind == "Conv1d" else 2)
    elif kind == "ResidualBlock":
        out, params, macs, formula = _residual(index, layer, shape)
    elif kind in ("GRU", "LSTM"):
        out, params, macs, formula = _rnn(index, layer, shape)
    elif kind in ("BatchNorm1d", "BatchNorm2d"):
        ranks, what = (
            ((1, 2), "(channels,) or (channels, length)")
            if kind == "BatchNorm1d"
            else ((3,), "(channels, height, width)")
        )
        _need_rank(index, kind, shape, ranks, what)
        _check_declared(
            index, kind, "num_features", layer.param("num_features"), shape[0], "channels"
        )
        params, macs = 2 * shape[0], math.prod(shape)
        formula = f"y = γ (x − μ) / √(σ² + ε) + β per channel, γ, β: {shape[0]}"
    elif kind == "LayerNorm":
        params, macs = 2 * shape[-1], math.prod(shape)
        formula = f"y = γ (x − mean) / √(var + ε) + β over the last axis, γ, β: {shape[-1]}"
    elif kind == "Dropout":
        p = layer.param("p")
        formula = (
            f"y = m ⊙ x / (1 − p), m ~ Bernoulli(1 − p), p = {p:g} (training); y = x (evaluation)"
        )
    elif kind in ("MaxPool1d", "AvgPool1d", "MaxPool2d", "AvgPool2d"):
        out, formula = _pool(index, layer, shape, 1 if kind.endswith("1d") else 2)
    elif kind.startswith("Adaptive"):
        dims = 1 if kind.endswith("1d") else 2
        what = "(channels, length)" if dims == 1 else "(channels, height, width)"
        _need_rank(index, kind, shape, (dims + 1,), what)
        size = layer.param("output_size")
        out = (shape[0], *([size] * dims))
        op = "max" if "Max" in kind else "mean"
        formula = f"y = {op} over regions that tile the input, {format_shape(out[1:])} per channel"
    elif kind == "Flatten":
        out = (math.prod(shape),)
        formula = f"y = vec(x): {format_shape(shape)} → {out[0]}"
    elif kind == "LeakyReLU":
        formula = f"y = max(αx, x), α = {layer.param('negative_slope'):g}, elementwise"
    else:
        formula = _ACTIVATION_FORMULAS[kind]
    return LayerReport(
        index, kind, shape, tuple(out), params, macs, math.prod(out) * BYTES_PER_VALUE, formula
    )


def _check_input_shape(shape: tuple[int, ...]) -> None:
    if not 1 <= len(shape) <= 3 or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape
    ):
        raise SpecError(
            None,
            f"the input shape {shape} must be 1 to 3 positive whole numbers, e.g. (2,) or (1, 64, 101)",
        )
    if math.prod(shape) > MAX_INPUT_DIM * 10:
        raise SpecError(
            None,
            f"the input {format_shape(shape)} has more than {MAX_INPUT_DIM * 10} values per example",
        )


def parse_input_shape(text: str) -> tuple[int, ...]:
    """A typed shape such as "3, 100", "1×64×101" or "(40,)" as a tuple; SpecError if not one."""
    cleaned = text.strip().strip("()[]")
    parts = [p for p in re.split(r"[,×xX*\s]+", cleaned) if p] if len(text) <= 100 else []
    if not parts or not all(p.isdecimal() for p in parts):
        raise SpecError(
            None, f"{text[:40]!r} is not a shape: type 1 to 3 whole numbers such as 3, 100"
        )
    shape = tuple(int(p) for p in parts)
    _check_input_shape(shape)
    return shape


def infer_shapes(spec: ModelSpec) -> list[LayerReport]:
    """Walk the stack: one `LayerReport` per layer, in order (no torch involved).

    Raises `SpecError` on the first layer that cannot apply to what it receives, e.g.
    "layer 5 Linear expects 512 inputs, receives 2048", or when the network exceeds the
    app's limits (MAX_LAYERS layers, MAX_PARAMETERS parameters).
    """
    _check_input_shape(spec.input_shape)
    if len(spec.layers) > MAX_LAYERS:
        raise SpecError(
            None, f"the network has {len(spec.layers)} layers; the limit is {MAX_LAYERS}"
        )
    reports: list[LayerReport] = []
    shape = tuple(spec.input_shape)
    total = 0
    for index, layer in enumerate(spec.layers, start=1):
        report = _infer_layer(index, layer, shape)
        total += report.parameters
        if total > MAX_PARAMETERS:
            raise SpecError(
                index,
                f"layer {index} {layer.kind} brings the network to {total:,} parameters; the app's limit is {MAX_PARAMETERS:,}",
            )
        reports.append(report)
        shape = report.output_shape
    return reports


def output_shape(spec: ModelSpec) -> tuple[int, ...]:
    """Shape of one example's output (the input shape for an empty stack)."""
    reports = infer_shapes(spec)
    return reports[-1].output_shape if reports else tuple(spec.input_shape)


def parameter_count(spec: ModelSpec) -> int:
    """Number of trainable parameters; equals sum(p.numel() for p in build_model(spec).parameters())."""
    return spec.members * sum(report.parameters for report in infer_shapes(spec))


def check_classifier(spec: ModelSpec, num_classes: int | None = None) -> None:
    """Raise SpecError unless the network ends in a vector of scores (of `num_classes`)."""
    out = output_shape(spec)
    if len(out) != 1:
        raise SpecError(
            None,
            f"the network ends in shape {format_shape(out)}; a classifier must end in a vector of class scores: add Flatten and Linear",
        )
    if num_classes is not None and out[0] != num_classes:
        raise SpecError(
            None, f"the network ends in {out[0]} outputs but there are {num_classes} classes"
        )


# --------------------------------------------------------------------------- modules


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a skip path (1×1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, 1, padding, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class FramesRNN(nn.Module):
    """A GRU or LSTM over the last axis (time): (batch, *features, frames) -> (batch, hidden).

    Every axis but the first and the last is flattened into one frame's features; the output
    is the final hidden state of each direction ("last") or the mean over frames ("mean").
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        output: str = "last",
    ):
        super().__init__()
        rnn_class = nn.GRU if cell == "GRU" else nn.LSTM
        self.rnn = rnn_class(
            input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.flatten(1, -2).transpose(1, 2)  # (batch, frames, features)
        sequence, hidden = self.rnn(frames)
        if self.output == "mean":
            return sequence.mean(dim=1)
        if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
            hidden = hidden[0]
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(hidden[-directions:]), dim=-1)


_CUSTOM_MODULES = {"ResidualBlock": ResidualBlock, "FramesRNN": FramesRNN}


def _module_call(layer: LayerSpec, report: LayerReport) -> tuple[str, tuple, dict[str, Any]]:
    """(constructor name, positional args, keyword args) of one layer on its input shape.

    The model builder and the code generator share it, so the generated code builds
    exactly the modules `build_model` builds.
    """
    kind, shape, p = layer.kind, report.input_shape, layer.param
    if kind == "Linear":
        return "nn.Linear", (shape[0], p("out_features")), {"bias": p("bias")}
    if kind in ("Conv1d", "Conv2d"):
        args = (shape[0], p("out_channels"), p("kernel_size"))
        return (
            f"nn.{kind}",
            args,
            {"stride": p("stride"), "padding": p("padding"), "bias": p("bias")},
        )
    if kind == "ResidualBlock":
        return (
            "ResidualBlock",
            (shape[0], p("out_channels")),
            {"stride": p("stride"), "kernel_size": p("kernel_size")},
        )
    if kind in ("GRU", "LSTM"):
        kwargs = {
            "num_layers": p("num_layers"),
            "bidirectional": p("bidirectional"),
            "output": p("output"),
        }
        return "FramesRNN", (kind, math.prod(shape[:-1]), p("hidden_size")), kwargs
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return f"nn.{kind}", (shape[0],), {}
    if kind == "LayerNorm":
        return "nn.LayerNorm", (shape[-1],), {}
    if kind == "Dropout":
        return "nn.Dropout", (float(p("p")),), {}
    if kind in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
        return f"nn.{kind}", (p("kernel_size"),), {"stride": p("stride") or p("kernel_size")}
    if kind.startswith("Adaptive"):
        return f"nn.{kind}", (p("output_size"),), {}
    if kind == "Flatten":
        return "nn.Flatten", (), {}
    if kind == "LeakyReLU":
        return "nn.LeakyReLU", (float(p("negative_slope")),), {}
    if kind == "Softmax":
        return "nn.Softmax", (), {"dim": -1}
    return f"nn.{kind}", (), {}


def _instantiate(name: str, args: tuple, kwargs: dict[str, Any]) -> nn.Module:
    constructor = _CUSTOM_MODULES.get(name) or getattr(nn, name.removeprefix("nn."))
    return constructor(*args, **kwargs)


class SpecNetwork(nn.Module):
    """The network of a spec: `layers` (nn.Sequential) applied in order.

    forward: (batch, *input_shape) -> (batch, *output_shape).
    forward_features: the input of the final Linear (the penultimate embedding), or the
    output when the stack has no Linear.
    """

    def __init__(self, layers: list[nn.Module], head_index: int):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.head_index = head_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[: self.head_index](x)

    embed = forward_features


def average_members(member_logits: torch.Tensor) -> torch.Tensor:
    """(members, batch, classes) scores -> (batch, classes): log of the mean probability.

    Averaging probabilities, not raw scores, lets a confident member outvote unsure ones
    only as far as its probabilities say; softmax of the result is the mean probability.
    """
    log_probs = member_logits.float().log_softmax(dim=-1)
    return torch.logsumexp(log_probs, dim=0) - math.log(member_logits.shape[0])


class EnsembleNetwork(nn.Module):
    """Several copies of one network, each with its own random start (a deep ensemble).

    Different starts make different mistakes, above all on inputs unlike the training data
    (a new voice), so their average is more often right than any one of them.

    forward, training mode: every member's scores (members, batch, classes), so each member
    learns from the labels on its own (trained on their average instead, the members would
    lean on each other and grow alike). Evaluation mode: `average_members` of them, (batch,
    classes), like a single classifier. forward_features: the members' embeddings side by
    side, (batch, members × D).
    """

    def __init__(self, members: list[SpecNetwork]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        member_logits = torch.stack([member(x) for member in self.members])
        return member_logits if self.training else average_members(member_logits)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member.forward_features(x).flatten(1) for member in self.members], 1)

    embed = forward_features


def member_networks(model: nn.Module) -> list[nn.Module]:
    """The single networks inside `model`: an ensemble's members, else [model] itself."""
    members = getattr(model, "members", None)
    return list(members) if isinstance(members, nn.ModuleList) else [model]


def build_model(spec: ModelSpec, *, seed: int | None = None) -> SpecNetwork | EnsembleNetwork:
    """Build the spec's network (fresh random weights, on the CPU; move it with `.to(device)`).

    A spec with members > 1 gives an `EnsembleNetwork` of that many `SpecNetwork`s.
    seed: draw the initial weights from this seed (the same seed, the same weights) without
    touching torch's global random state, which every session of the server shares.
    Raises SpecError when the stack is invalid (see `infer_shapes`).
    """
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(spec)
    reports = infer_shapes(spec)
    head = _last_linear_index(spec)

    def single() -> SpecNetwork:
        modules = [
            _instantiate(*_module_call(layer, report))
            for layer, report in zip(spec.layers, reports, strict=True)
        ]
        return SpecNetwork(modules, len(modules) if head is None else head)

    if spec.members == 1:
        return single()
    total = parameter_count(spec)
    if total > MAX_PARAMETERS:
        raise SpecError(
            None,
            f"{spec.members} members bring the ensemble to {total:,} parameters; the app's limit is {MAX_PARAMETERS:,}",
        )
    return EnsembleNetwork([single() for _ in range(spec.members)])


# --------------------------------------------------------------------------- code generation


def safe_name(name: str) -> str:
    """The spec's name reduced to letters, digits, "-" and "_" (for file names and code).

    A spec's name comes from a user's JSON: it must never close a docstring in the
    generated code or climb folders in a file name.
    """
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:80] or "network"


def _class_name(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words) or "Network"
    return text if text[0].isalpha() else "Net" + text


def _format_call(name: str, args: tuple, kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def spec_to_code(spec: ModelSpec) -> str:
    """A runnable standalone PyTorch module for the spec (imports included).

    Its class has the same `state_dict` keys as `build_model(spec)`, so trained weights load
    into it (for an ensemble, the last class holds the members); running the file prints the
    output shape of a random batch.
    """
    import inspect

    reports = infer_shapes(spec)
    calls = [
        _module_call(layer, report) for layer, report in zip(spec.layers, reports, strict=True)
    ]
    used = {name for name, _, _ in calls}
    class_name = _class_name(spec.name)
    head = _last_linear_index(spec)
    head_index = len(calls) if head is None else head
    out_shape = reports[-1].output_shape if reports else spec.input_shape
    lines = [
        f'"""{safe_name(spec.name)}: generated by Audio DL Studio from a model spec.',
        "",
        f"Input (batch, {', '.join(map(str, spec.input_shape))}) -> output (batch, {', '.join(map(str, out_shape))}); "
        f"{sum(r.parameters for r in reports):,} parameters.",
        '"""',
        "",
        *(["import math", ""] if spec.members > 1 else []),
        "import torch",
        "from torch import nn",
        "",
    ]
    for helper in ("ResidualBlock", "FramesRNN"):
        if helper in used:
            lines += ["", inspect.getsource(_CUSTOM_MODULES[helper]).rstrip(), ""]
    lines += [
        "",
        f"class {class_name}(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        "        self.layers = nn.Sequential(",
    ]
    for (name, args, kwargs), report in zip(calls, reports, strict=True):
        lines.append(
            f"            {_format_call(name, args, kwargs)},  # {report.index}: -> {format_shape(report.output_shape)}"
        )
    lines += [
        "        )",
        f"        self.head_index = {head_index}  # the final Linear: forward_features stops before it",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        return self.layers(x)",
        "",
        "    def forward_features(self, x: torch.Tensor) -> torch.Tensor:",
        "        return self.layers[: self.head_index](x)",
        "",
    ]
    if spec.members > 1:
        lines += _ensemble_code(class_name, spec.members)
        class_name += "Ensemble"
    lines += [
        "",
        'if __name__ == "__main__":',
        f"    model = {class_name}(){'.eval()' if spec.members > 1 else ''}",
        f"    x = torch.randn(2, {', '.join(map(str, spec.input_shape))})",
        '    print(model(x).shape, sum(p.numel() for p in model.parameters()), "parameters")',
        "",
    ]
    return "\n".join(lines)


def _ensemble_code(member_class: str, members: int) -> list[str]:
    """The lines of an ensemble class over `member_class`, as `EnsembleNetwork` computes it."""
    return [
        "",
        "",
        f"class {member_class}Ensemble(nn.Module):",
        f'    """{members} copies of {member_class}, each trained from its own random start."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.members = nn.ModuleList([{member_class}() for _ in range({members})])",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        member_logits = torch.stack([member(x) for member in self.members])",
        "        if self.training:  # each member learns from the labels on its own",
        "            return member_logits",
        "        # evaluation: the log of the members' mean probability",
        "        log_probs = member_logits.log_softmax(dim=-1)",
        "        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))",
        "",
        "    def forward_features(self, x: torch.Tensor) -> torch.Tensor:",
        "        return torch.cat([m.forward_features(x).flatten(1) for m in self.members], 1)",
    ]
