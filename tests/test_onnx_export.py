"""ONNX export: onnxruntime gives the same probabilities as PyTorch, for any batch size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.audio.features import FeatureConfig
from core.audio.input_recipe import InputRecipe, Normalization
from core.inference.classifier import (
    InferenceModel,
    model_from_loaded_run,
    prepare_clip,
    shipped_store,
)
from core.models.build import build_model
from core.models.onnx_export import export_onnx, onnx_metadata, run_onnx
from core.models.presets import preset_spec
from tests.conftest import sine

CONFIG = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32, f_max=4000.0)


def _model(preset: str, members: int = 1) -> InferenceModel:
    torch.manual_seed(0)
    spec = preset_spec(preset, input_shape=(1, 32, 41), num_outputs=4).with_members(members)
    network = build_model(spec).eval()
    # Non-trivial batch-norm statistics, so a wrong eval-mode export would show.
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return InferenceModel(
        network=network,
        labels=("w", "x", "y", "z"),
        recipe=InputRecipe.make(CONFIG, "logmel", 41, Normalization("utterance")),
        spec=spec,
        name=preset,
    )


@pytest.mark.parametrize(
    "preset, members", [("cnn_logmel", 1), ("crnn_logmel", 1), ("cnn_logmel", 3)]
)
def test_onnx_matches_pytorch(preset, members):
    model = _model(preset, members)
    data = export_onnx(model)
    x = torch.randn(5, 1, 32, 41)
    expected = model.probabilities(x).numpy()
    got = run_onnx(data, x.numpy())
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(run_onnx(data, x[:1].numpy()), expected[:1], atol=1e-5)


def test_onnx_metadata_rebuilds_the_input():
    model = _model("cnn_logmel")
    meta = onnx_metadata(export_onnx(model))
    assert json.loads(meta["labels"]) == ["w", "x", "y", "z"]
    assert FeatureConfig.from_dict(json.loads(meta["feature_config"])) == CONFIG
    assert meta["feature_kind"] == "logmel" and meta["clip_frames"] == "41"
    assert json.loads(meta["normalization"])["mode"] == "utterance"
    # The whole recipe as one object: the exported file rebuilds the input exactly.
    recipe = InputRecipe.from_json(meta["input_recipe"])
    assert recipe.config == model.recipe.config
    y = sine(440, 0.5, 8000)
    assert torch.equal(recipe.clip(y, 8000).model_input, prepare_clip(y, 8000, model).model_input)


def test_the_shipped_model_exports_with_the_same_answers():
    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    x = torch.cat(
        [prepare_clip(sine(f, 0.7, 16000), 16000, model).model_input for f in (200, 900, 2500)]
    )
    np.testing.assert_allclose(
        run_onnx(export_onnx(model), x.numpy()), model.probabilities(x).numpy(), atol=1e-5
    )
