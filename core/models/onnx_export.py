"""Export a trained classifier to ONNX, to run it outside PyTorch (onnxruntime, browsers, C++).

The exported graph maps normalised features (batch, 1, bins, clip_frames) to class
probabilities (batch, classes): the network plus a softmax. The spectrogram front end stays
outside the graph on purpose: it is fully described by the model's input recipe, written into
the file's metadata (`metadata_props`: "input_recipe", the whole `core.audio.input_recipe` recipe as
one JSON object, and its parts under the keys earlier files had) together with the class
names, so anyone can rebuild the input with `InputRecipe.from_json`, librosa or core.audio.features.

Exporter: torch.onnx's TorchScript-based exporter (`dynamo=False`). In torch 2.11 the
default torch.export-based exporter needs the separate `onnxscript` package; the classic
exporter handles every layer of core.models.spec (conv, pooling, batch norm, GRU/LSTM) and
its deprecation warning is silenced here because the student cannot act on it.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import torch
from torch import nn

OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


class _WithSoftmax(nn.Module):
    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(x), dim=-1)


def export_onnx(model) -> bytes:
    """ONNX bytes of an inference.InferenceModel (network + softmax, batch axis dynamic).

    The metadata keys "labels", "input_recipe" (InputRecipe.to_json()), "feature_config",
    "feature_kind", "clip_frames" and "normalization" hold JSON strings (the last four are
    the recipe's parts, as files exported before "input_recipe" had them). Raises
    RuntimeError with a sentence when the network cannot be exported.
    """
    # Lazy: onnx is optional and slow to import; only the export needs it.
    import onnx

    network = model.network.to("cpu").eval() if model.device.type != "cpu" else model.network
    wrapper = _WithSoftmax(network).eval()
    example = torch.zeros(1, *model.recipe.config.input_shape)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(
                wrapper,
                (example,),
                buffer,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
            )
    except Exception as error:  # the exporter raises many types for unsupported operators
        raise RuntimeError(f"This network could not be exported to ONNX ({error}).") from None
    finally:
        if model.device.type != "cpu":
            model.network.to(model.device)
    proto = onnx.load_from_string(buffer.getvalue())
    recipe = model.recipe.to_dict()
    metadata = {
        "labels": json.dumps(list(model.labels)),
        "input_recipe": model.recipe.to_json(),
        "feature_config": json.dumps(recipe["feature_config"]),
        "feature_kind": recipe["feature_kind"],
        "clip_frames": str(recipe["clip_frames"]),
        "normalization": json.dumps(recipe["normalization"]),
        "producer": "Audio DL Studio",
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        f"{model.name}: input '{INPUT_NAME}' (batch, 1, {model.num_bins}, {model.clip_frames}) "
        f"normalised {model.feature_kind} features; output '{OUTPUT_NAME}' (batch, "
        f"{model.num_classes}) class probabilities in the order of metadata 'labels'."
    )
    return proto.SerializeToString()


def onnx_metadata(data: bytes) -> dict[str, str]:
    """The metadata_props of an ONNX file as a dict."""
    # Lazy: onnx is optional and slow to import; only the export needs it.
    import onnx

    return {p.key: p.value for p in onnx.load_from_string(data).metadata_props}


def run_onnx(data: bytes, features: np.ndarray) -> np.ndarray:
    """Run exported ONNX bytes with onnxruntime on the CPU: (N, 1, bins, frames) -> (N, C)."""
    # Lazy: onnxruntime is optional and slow to import; only the check needs it.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # predictable on a shared machine
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(features, dtype=np.float32)
    return session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
