"""Shape inference without torch: what each layer of a spec receives and returns.

`infer_shapes(spec)` walks the stack and reports, per layer, the input and output shape,
the parameter count, the multiply-adds, the activation memory and the layer's formula; an
impossible stack raises `SpecError` naming the layer (1-based) and why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from core.models.layers import (
    BYTES_PER_VALUE,
    LAYER_KINDS,
    MAX_INPUT_DIM,
    MAX_LAYERS,
    MAX_PARAMETERS,
    SpecError,
)
from core.models.spec import LayerSpec, ModelSpec


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
            f"layer {index} has an unknown kind {layer.kind!r}; "
            f"known kinds: {', '.join(LAYER_KINDS)}",
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
            f"layer {index} {kind} kernel {k} does not fit input {format_shape(shape)} "
            f"(with padding {p}): use a smaller kernel, fewer pooling layers or more frames",
        )
    bias = layer.param("bias")
    kernel_numel = k**dims
    params = out_c * in_c * kernel_numel + (out_c if bias else 0)
    macs = out_c * math.prod(out_spatial) * in_c * kernel_numel
    kernel_text = "×".join([str(k)] * dims)
    bias_text = "b_c + " if bias else ""
    formula = (
        f"y_c = {bias_text}Σ_k W_c,k ⋆ x_k, W: {out_c}×{in_c}×{kernel_text}, "
        f"stride {s}, padding {p}"
    )
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
            f"layer {index} {kind} window {window} does not fit input {format_shape(shape)}: "
            "use fewer pooling layers or more frames",
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
            f"layer {index} {kind} needs a time axis, input (features, frames) or "
            f"(channels, bins, frames); receives {format_shape(shape)}",
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
    formula = (
        f"h_t = {cell}(x_t, h_(t−1)) over {frames} frames of {features} features, "
        f"hidden {hidden}; y = {summary}"
    )
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
            f"layer {index} ResidualBlock needs an odd kernel_size "
            f"so the skip path lines up, got {k}",
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
    formula = (
        f"y = ReLU(BN(conv(ReLU(BN(conv(x))))) + {skip}), convs {k}×{k}, "
        f"{in_c}→{out_c} channels, stride {s}"
    )
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
            f"the input shape {shape} must be 1 to 3 positive whole numbers, "
            "e.g. (2,) or (1, 64, 101)",
        )
    if math.prod(shape) > MAX_INPUT_DIM * 10:
        raise SpecError(
            None,
            f"the input {format_shape(shape)} has more than {MAX_INPUT_DIM * 10} "
            "values per example",
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
                f"layer {index} {layer.kind} brings the network to {total:,} parameters; "
                f"the app's limit is {MAX_PARAMETERS:,}",
            )
        reports.append(report)
        shape = report.output_shape
    return reports


def output_shape(spec: ModelSpec) -> tuple[int, ...]:
    """Shape of one example's output (the input shape for an empty stack)."""
    reports = infer_shapes(spec)
    return reports[-1].output_shape if reports else tuple(spec.input_shape)


def parameter_count(spec: ModelSpec) -> int:
    """Number of trainable parameters.

    Equals sum(p.numel() for p in build_model(spec).parameters()).
    """
    return spec.members * sum(report.parameters for report in infer_shapes(spec))


def check_classifier(spec: ModelSpec, num_classes: int | None = None) -> None:
    """Raise SpecError unless the network ends in a vector of scores (of `num_classes`)."""
    out = output_shape(spec)
    if len(out) != 1:
        raise SpecError(
            None,
            f"the network ends in shape {format_shape(out)}; a classifier must end "
            "in a vector of class scores: add Flatten and Linear",
        )
    if num_classes is not None and out[0] != num_classes:
        raise SpecError(
            None, f"the network ends in {out[0]} outputs but there are {num_classes} classes"
        )
