"""Ready-made model specs: each a function returning the layer stack of one preset.

`preset_spec(name, input_shape=..., num_outputs=...)` adapts a preset to the data at hand:
the input shape (e.g. the number of MFCC statistics or log-mel frames) and the number of
classes (the out_features of the final Linear). Each preset lives in its own function so
that tuning one never touches another.
"""

from __future__ import annotations

from collections.abc import Callable

from core.models.layers import SpecError
from core.models.spec import LayerSpec, ModelSpec

L = LayerSpec.make

DEFAULT_LOGMEL_SHAPE = (1, 64, 101)  # 1 channel × 64 mel bands × 101 frames (1 s at hop 10 ms)
DEFAULT_MFCC_FEATURES = 40  # 20 MFCCs × (mean, standard deviation) over time
DEFAULT_CLASSES = 10  # the ten spoken digits


def mlp_2d() -> ModelSpec:
    """A 2-8-8-2 MLP on points of the plane (the playground's network)."""
    layers = (
        L("Linear", out_features=8),
        L("Tanh"),
        L("Linear", out_features=8),
        L("Tanh"),
        L("Linear", out_features=2),
    )
    return ModelSpec("mlp_2d", (2,), layers)


def mlp_mfcc() -> ModelSpec:
    """An MLP on a clip's MFCC statistics (a vector per clip: no time axis left)."""
    layers = (
        L("Linear", out_features=128),
        L("ReLU"),
        L("Dropout", p=0.2),
        L("Linear", out_features=64),
        L("ReLU"),
        L("Linear", out_features=DEFAULT_CLASSES),
    )
    return ModelSpec("mlp_mfcc", (DEFAULT_MFCC_FEATURES,), layers)


def _conv_stage(channels: int) -> tuple[LayerSpec, ...]:
    """3×3 convolution, batch norm, ReLU, then 2×2 max pooling: halves height and width."""
    return (
        L("Conv2d", out_channels=channels, kernel_size=3, padding=1, bias=False),
        L("BatchNorm2d"),
        L("ReLU"),
        L("MaxPool2d", kernel_size=2),
    )


def cnn_logmel() -> ModelSpec:
    """The app's default audio classifier: convolutions on a 1×n_mels×frames log-mel, then a
    bidirectional GRU that reads the resulting frames in order, forwards and backwards.

    Three conv-BN-ReLU-pool stages find local time-frequency shapes (formant movements) and
    shrink the image 8× on both axes; the GRU sees each remaining frame's whole frequency
    layout, in both directions so every state knows how the word starts and ends, and its
    states are averaged over time, so any number of frames works. Global average pooling
    instead of the GRU throws away where in frequency and time a shape sits, and on unseen
    speakers of the spoken digits it measured clearly worse; the bidirectional GRU measured
    about a point better than a one-way GRU of 96 units (tests/benchmarks/bench_training.py,
    docs/ARCHITECTURE.md).
    """
    layers = (
        *_conv_stage(16),
        *_conv_stage(32),
        *_conv_stage(64),
        L("GRU", hidden_size=64, bidirectional=True, output="mean"),
        L("Dropout", p=0.3),
        L("Linear", out_features=DEFAULT_CLASSES),
    )
    return ModelSpec("cnn_logmel", DEFAULT_LOGMEL_SHAPE, layers)


def crnn_logmel() -> ModelSpec:
    """A CRNN: two conv stages summarise the mel axis, a GRU reads the frames in order."""
    layers = (
        *_conv_stage(16),
        *_conv_stage(32),
        L("GRU", hidden_size=64, output="mean"),
        L("Dropout", p=0.3),
        L("Linear", out_features=DEFAULT_CLASSES),
    )
    return ModelSpec("crnn_logmel", DEFAULT_LOGMEL_SHAPE, layers)


_PRESETS: dict[str, tuple[Callable[[], ModelSpec], str]] = {
    "mlp_2d": (mlp_2d, "MLP for 2-D points"),
    "mlp_mfcc": (mlp_mfcc, "MLP on MFCC statistics"),
    "cnn_logmel": (cnn_logmel, "CNN on log-mel spectrograms (default audio classifier)"),
    "crnn_logmel": (crnn_logmel, "CRNN: convolutions then a GRU over frames"),
}


def preset_names() -> list[str]:
    """Names of the presets, in menu order."""
    return list(_PRESETS)


def preset_description(name: str) -> str:
    """One line describing a preset."""
    return _PRESETS[name][1]


def preset_spec(
    name: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_outputs: int | None = None,
) -> ModelSpec:
    """The preset `name`, optionally on another input shape and with `num_outputs` classes."""
    if name not in _PRESETS:
        raise SpecError(None, f"unknown preset {name!r}; presets: {', '.join(_PRESETS)}")
    spec = _PRESETS[name][0]()
    if input_shape is not None:
        spec = spec.with_input_shape(input_shape)
    if num_outputs is not None:
        spec = spec.with_num_outputs(num_outputs)
    return spec
