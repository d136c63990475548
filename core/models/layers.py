"""The layer catalogue: every kind of layer a spec may use, its parameters and limits.

`LAYER_KINDS` maps a kind's name (the torch.nn class it builds) to a `LayerKind`: a
one-line description, its parameters (`ParamInfo`: default, type, range, help) and its
group. The limits (`MAX_*`) keep a class server responsive whatever a student types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
