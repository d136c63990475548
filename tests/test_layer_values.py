"""Composition with values: each layer's output for one clip, checked against the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core import paths
from core.audio.input_recipe import InputRecipe
from core.audio.io import load_audio
from core.inference.classifier import shipped_store
from core.lessons.layer_values import (
    LayerValuesError,
    layer_outputs,
    trace_clip,
    trace_untrained,
    untrained_network,
)
from core.models.build import build_model
from core.models.presets import preset_spec
from core.models.spec import LayerSpec, ModelSpec
from core.viz.layer_values import class_probability_figure, feature_maps_figure, vector_figure


@pytest.fixture(scope="module")
def shipped_run():
    return shipped_store().load("digits-cnn")  # the digit clip below is for the digits model


@pytest.fixture(scope="module")
def digit_clip():
    return load_audio(paths.DIGITS_DIR / "7_george_3.wav")


def test_layer_by_layer_equals_running_the_sequential_directly():
    torch.manual_seed(0)
    network = build_model(preset_spec("cnn_logmel", input_shape=(1, 32, 40))).eval()
    x = torch.randn(1, 1, 32, 40)
    values = layer_outputs(network, x, spec=preset_spec("cnn_logmel", input_shape=(1, 32, 40)))
    assert len(values) == len(network.layers) + 1
    assert values[0].kind == "input" and values[0].shape == (1, 32, 40)
    with torch.no_grad():
        h = x
        for value, module in zip(values[1:], network.layers, strict=True):
            h = module(h)  # the Sequential's own modules, one at a time
            torch.testing.assert_close(value.values, h[0])
        torch.testing.assert_close(values[-1].values, network(x)[0])
    assert [v.kind for v in values[1:5]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert values[1].shape == (16, 32, 40) and values[4].shape == (16, 16, 20)
    assert values[3].values.min() >= 0  # after a ReLU
    relu = values[3].statistics()
    assert relu["min"] == 0.0 and 0.0 < relu["zeros"] < 1.0  # some units switched off
    assert relu["zeros"] == pytest.approx(float((values[2].values <= 0).float().mean()))
    assert values[2].statistics()["mean"] == pytest.approx(float(values[2].values.mean()))
    assert [v.expression for v in values[:5]] == [
        "x",
        "f1(x)",
        "f2(f1(x))",
        "f3(f2(f1(x)))",
        "f4(…f1(x))",
    ]


def test_the_shipped_model_traced_on_a_real_clip(shipped_run, digit_clip):
    trace = trace_clip(shipped_run, digit_clip.samples, digit_clip.sample_rate)
    recipe = InputRecipe.from_run(shipped_run.info.path)  # model.json read afresh
    x = recipe(torch.from_numpy(digit_clip.samples))
    assert digit_clip.sample_rate == recipe.sample_rate
    torch.testing.assert_close(trace.layers[0].values, x[0])  # the training recipe's input
    with torch.no_grad():
        expected = torch.softmax(shipped_run.model(x), dim=-1)[0].numpy()
    np.testing.assert_allclose(trace.probabilities, expected, atol=1e-5)
    assert trace.labels == tuple(shipped_run.labels)
    assert trace.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert trace.layers[-1].shape == (len(shipped_run.labels),)
    # a convolution's output is a stack of feature maps over (bands, frames)
    conv = next(v for v in trace.layers if v.kind == "Conv2d")
    assert conv.values.ndim == 3 and conv.shape[1:] == trace.layers[0].shape[1:]
    # the model was trained on these recordings: it should hear the 7 (not an exact number:
    # the shipped model may be retrained)
    assert trace.predicted_label == "7"


def test_an_ensemble_traces_one_member_and_reports_the_mean():
    spec = preset_spec("mlp_2d").with_members(3)
    torch.manual_seed(1)
    ensemble = build_model(spec).eval()
    x = torch.randn(1, 2)
    traces = [layer_outputs(ensemble, x, spec=spec, member=m) for m in range(3)]
    with torch.no_grad():
        for m, values in enumerate(traces):
            torch.testing.assert_close(values[-1].values, ensemble.members[m](x)[0])
        mean = torch.stack([torch.softmax(ensemble.members[m](x), -1) for m in range(3)]).mean(0)
        torch.testing.assert_close(torch.softmax(ensemble(x), -1), mean)
    with pytest.raises(LayerValuesError, match="3 member"):
        layer_outputs(ensemble, x, member=3)


def test_the_editor_network_untrained_on_a_clip(digit_clip):
    spec = preset_spec("cnn_logmel", input_shape=(1, 40, 80), num_outputs=4)
    trace = trace_untrained(spec, digit_clip.samples, digit_clip.sample_rate, seed=2)
    assert trace.layers[0].shape == (1, 40, 80)
    assert trace.labels == ("output 0", "output 1", "output 2", "output 3")
    with torch.no_grad():
        direct = untrained_network(spec, seed=2)(trace.layers[0].values[None])
    np.testing.assert_allclose(trace.probabilities, torch.softmax(direct, -1)[0].numpy(), atol=1e-5)
    with pytest.raises(LayerValuesError, match="Choose the log-mel input"):
        trace_untrained(preset_spec("mlp_mfcc"), digit_clip.samples, digit_clip.sample_rate)


def test_hostile_inputs_are_sentences(digit_clip):
    network = build_model(preset_spec("mlp_2d"))
    with pytest.raises(LayerValuesError, match="evaluation mode"):
        layer_outputs(network.train(), torch.zeros(1, 2))
    with pytest.raises(LayerValuesError, match="batch axis of 1"):
        layer_outputs(network.eval(), torch.zeros(4, 2))
    with pytest.raises(LayerValuesError, match="layer stack"):
        layer_outputs(nn.Linear(2, 2).eval(), torch.zeros(1, 2))
    with pytest.raises(LayerValuesError, match="non-empty mono"):
        trace_untrained(preset_spec("cnn_logmel"), np.zeros(0, np.float32), 16000)
    with pytest.raises(LayerValuesError, match="not numbers"):
        trace_untrained(preset_spec("cnn_logmel"), np.full(800, np.nan, np.float32), 16000)
    shaped = ModelSpec("s", (1, 64, 101), (LayerSpec.make("Flatten"),))
    with pytest.raises(LayerValuesError, match="not a vector of class scores|ends in shape"):
        trace_untrained(
            shaped.with_layers((LayerSpec.make("Conv2d", out_channels=2),)),
            digit_clip.samples,
            digit_clip.sample_rate,
        )


def test_figures_of_maps_vectors_and_probabilities():
    maps = np.random.default_rng(0).normal(size=(32, 16, 25)).astype(np.float32)
    figure = feature_maps_figure(maps, max_channels=12, columns=6)
    z = np.asarray(figure.data[0].z, dtype=float)
    assert z.shape == (2 * 16 + 2, 6 * 25 + 5 * 2)  # 2 rows × 6 tiles, gaps of 16 // 8
    assert np.isfinite(z).sum() == 12 * 16 * 25  # exactly the 12 channels shown
    assert [a.text for a in figure.layout.annotations][:2] == ["ch 0", "ch 1"]
    single = feature_maps_figure(maps[0])
    np.testing.assert_array_equal(np.asarray(single.data[0].z, dtype=float), maps[0])
    bars = vector_figure(np.array([1.0, -2.0, 0.5]))
    assert bars.data[0].type == "bar" and list(bars.data[0].y) == [1.0, -2.0, 0.5]
    strip = vector_figure(np.arange(130, dtype=np.float32), wrap=64)
    assert np.asarray(strip.data[0].z, dtype=float).shape == (3, 64)
    assert strip.data[0].zmin == -129 and strip.data[0].zmax == 129
    probabilities = class_probability_figure(["a", "b"], np.array([0.25, 0.75]))
    assert list(probabilities.data[0].y) == [0.25, 0.75]
