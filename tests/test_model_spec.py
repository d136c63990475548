"""Model specs: shape inference against real forward passes, counts, code, JSON, errors."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from core.models.build import build_model
from core.models.codegen import safe_name, spec_to_code
from core.models.layers import LAYER_KINDS, SpecError
from core.models.presets import preset_names, preset_spec
from core.models.shapes import (
    check_classifier,
    infer_shapes,
    output_shape,
    parameter_count,
    parse_input_shape,
)
from core.models.spec import LayerSpec, ModelSpec

L = LayerSpec.make

# Stacks that together use every layer kind of the catalogue.
CUSTOM_SPECS = [
    ModelSpec(
        "conv1d_stack",
        (3, 50),
        (
            L("Conv1d", out_channels=8, kernel_size=5, stride=2, padding=0),
            L("BatchNorm1d"),
            L("LeakyReLU", negative_slope=0.2),
            L("MaxPool1d", kernel_size=3, stride=2),
            L("AvgPool1d", kernel_size=2),
            L("AdaptiveAvgPool1d", output_size=4),
            L("LayerNorm"),
            L("Flatten"),
            L("Linear", out_features=6, bias=False),
            L("GELU"),
            L("Softmax"),
        ),
    ),
    ModelSpec(
        "resnet_like",
        (2, 20, 17),
        (
            L("ResidualBlock", out_channels=8),
            L("ResidualBlock", out_channels=8, stride=2),
            L("ResidualBlock", out_channels=12, kernel_size=5),
            L("AvgPool2d", kernel_size=2, stride=1),
            L("AdaptiveAvgPool2d", output_size=3),
            L("AdaptiveMaxPool2d", output_size=2),
            L("Flatten"),
            L("BatchNorm1d"),
            L("Dropout", p=0.1),
            L("Linear", out_features=5),
            L("Sigmoid"),
        ),
    ),
    ModelSpec(
        "lstm_stack",
        (1, 16, 30),
        (
            L("Conv2d", out_channels=4, kernel_size=3, stride=1, padding=1),
            L("Tanh"),
            L("LSTM", hidden_size=12, num_layers=2, bidirectional=True, output="last"),
            L("Linear", out_features=3),
        ),
    ),
    ModelSpec(
        "gru_on_vectors_over_time",
        (7, 9),
        (
            L("GRU", hidden_size=5, bidirectional=True, output="mean"),
            L("ReLU"),
            L("Linear", out_features=2),
        ),
    ),
]
ALL_SPECS = [preset_spec(name) for name in preset_names()] + CUSTOM_SPECS


def test_the_custom_stacks_cover_every_layer_kind():
    used = {layer.kind for spec in ALL_SPECS for layer in spec.layers}
    assert used == set(LAYER_KINDS)


def _per_layer_shapes(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    hooks = [
        module.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
        for module in model.layers
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_inferred_shapes_and_counts_match_a_real_forward_pass(spec):
    torch.manual_seed(0)
    model = build_model(spec).train()
    reports = infer_shapes(spec)
    x = torch.randn(4, *spec.input_shape)
    assert _per_layer_shapes(model, x) == [r.output_shape for r in reports]
    assert tuple(model(x).shape) == (4, *output_shape(spec))
    assert parameter_count(spec) == sum(p.numel() for p in model.parameters())
    for report, module in zip(reports, model.layers, strict=True):
        assert report.parameters == sum(p.numel() for p in module.parameters()), report
        assert report.activation_bytes == 4 * torch.Size(report.output_shape).numel()


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_forward_features_is_the_input_of_the_final_linear(spec):
    model = build_model(spec).eval()
    x = torch.randn(2, *spec.input_shape)
    head = max(i for i, layer in enumerate(spec.layers) if layer.kind == "Linear")
    seen = []
    model.layers[head].register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    model(x)
    torch.testing.assert_close(model.forward_features(x), seen[0])
    assert model.embed is not None


@pytest.mark.parametrize(
    ("layer", "input_shape"),
    [
        (L("Linear", out_features=7), (13,)),
        (L("Conv1d", out_channels=6, kernel_size=4, stride=2, padding=1), (3, 40)),
        (L("Conv2d", out_channels=5, kernel_size=3, stride=2, padding=0), (2, 15, 21)),
        (L("GRU", hidden_size=8), (4, 12)),
    ],
)
def test_multiply_adds_match_torch_flop_counter(layer, input_shape):
    """torch counts 2 FLOPs (a multiply and an add) per multiply-add of a matmul or conv."""
    spec = ModelSpec("one", input_shape, (layer,))
    model = build_model(spec).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, *input_shape))
    flops = counter.get_total_flops()
    if flops == 0:  # the flop counter has no rule for fused RNN kernels
        assert layer.kind == "GRU"
        frames, features, hidden = input_shape[-1], input_shape[0], 8
        assert infer_shapes(spec)[0].multiply_adds == frames * 3 * (features * hidden + hidden**2)
    else:
        assert 2 * infer_shapes(spec)[0].multiply_adds == flops


ENSEMBLE = preset_spec("cnn_logmel").with_members(3)


@pytest.mark.parametrize("spec", [*ALL_SPECS, ENSEMBLE], ids=lambda s: f"{s.name}x{s.members}")
def test_generated_code_builds_the_same_network(spec):
    torch.manual_seed(0)
    code = spec_to_code(spec)
    namespace = {"__name__": "generated"}
    exec(compile(code, "<generated>", "exec"), namespace)  # a fresh namespace: imports included
    classes = [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == "generated"
    ]
    generated = classes[-1]().eval()
    model = build_model(spec).eval()
    assert sum(p.numel() for p in generated.parameters()) == parameter_count(spec)
    generated.load_state_dict(model.state_dict())  # same keys and shapes
    x = torch.randn(3, *spec.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(generated(x), model(x))
        torch.testing.assert_close(generated.forward_features(x), model.forward_features(x))


def test_ensemble_trains_members_alone_and_predicts_their_mean_probability():
    torch.manual_seed(0)
    model = build_model(ENSEMBLE)
    assert len(model.members) == 3
    assert parameter_count(ENSEMBLE) == sum(p.numel() for p in model.parameters())
    assert parameter_count(ENSEMBLE) == 3 * parameter_count(preset_spec("cnn_logmel"))
    x = torch.randn(4, *ENSEMBLE.input_shape)
    with torch.no_grad():
        model.eval()
        probabilities = torch.stack([member(x).softmax(-1) for member in model.members])
        torch.testing.assert_close(model(x).softmax(-1), probabilities.mean(0))
        embedding = torch.cat([member.forward_features(x) for member in model.members], 1)
        torch.testing.assert_close(model.forward_features(x), embedding)
        model.train()
        assert model(x).shape == (3, 4, 10)  # each member's own scores, to learn from
    first, second = (member.layers[0].weight for member in model.members[:2])
    assert not torch.equal(first, second)  # each member starts from its own weights


def test_ensemble_members_round_trip_and_are_checked():
    assert ModelSpec.from_json(ENSEMBLE.to_json()) == ENSEMBLE
    single = preset_spec("cnn_logmel")
    assert "members" not in single.to_dict()  # single networks keep their old JSON
    assert ModelSpec.from_dict(single.to_dict()).members == 1
    for bad in (0, 9, "3", True, 2.5):
        with pytest.raises(SpecError, match="members must be a whole number from 1 to 8"):
            ModelSpec.from_dict({**single.to_dict(), "members": bad})
    huge = ModelSpec("huge", (4000,), (L("Linear", out_features=4000),)).with_members(8)
    with pytest.raises(SpecError, match="8 members bring the ensemble to"):
        build_model(huge)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_json_round_trip_is_lossless(spec):
    text = spec.to_json()
    again = ModelSpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    assert ModelSpec.from_json(spec.to_json(indent=None).encode()) == spec


def test_layers_without_explicit_defaults_round_trip_unchanged():
    spec = ModelSpec(
        "sparse", (4,), (LayerSpec("Linear", (("out_features", 3),)), LayerSpec("ReLU"))
    )
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert spec.layers[0].param("bias") is True  # the catalogue default


def test_with_num_outputs_and_with_input_shape():
    spec = preset_spec("cnn_logmel", num_outputs=4)
    assert output_shape(spec) == (4,)
    check_classifier(spec, 4)
    for frames in (17, 101, 433):
        longer = spec.with_input_shape((1, 64, frames))
        model = build_model(longer).eval()
        assert model(torch.randn(1, 1, 64, frames)).shape == (1, 4)
    assert output_shape(preset_spec("mlp_mfcc", input_shape=(26,), num_outputs=3)) == (3,)
    with pytest.raises(SpecError, match="no Linear"):
        ModelSpec("none", (4,), (L("ReLU"),)).with_num_outputs(2)


@pytest.mark.parametrize(
    ("spec", "index", "message"),
    [
        (
            ModelSpec(
                "wrong_in",
                (8, 16, 16),
                (
                    L("Conv2d", out_channels=8, kernel_size=3, padding=1),
                    L("ReLU"),
                    L("Flatten"),
                    L("Linear", out_features=512, in_features=2048),
                    L("Linear", out_features=10, in_features=512),
                    L("Linear", out_features=10, in_features=512),
                ),
            ),
            6,
            "layer 6 Linear expects 512 inputs, receives 10",
        ),
        (
            ModelSpec(
                "no_flatten",
                (1, 64, 20),
                (L("Conv2d", out_channels=4), L("Linear", out_features=3)),
            ),
            2,
            r"layer 2 Linear needs input a vector \(features,\), receives 4×64×20 "
            r"\(add a Flatten first\)",
        ),
        (
            ModelSpec("tiny", (1, 8, 3), (L("MaxPool2d"), L("MaxPool2d"))),
            2,
            "layer 2 MaxPool2d window 2×2 does not fit input 1×4×1",
        ),
        (
            ModelSpec("channels", (3, 10, 10), (L("Conv2d", out_channels=4, in_channels=1),)),
            1,
            "layer 1 Conv2d expects 1 input channels, receives 3",
        ),
        (
            ModelSpec("unknown", (2,), (L("Dense", units=3),)),
            1,
            "layer 1 has an unknown kind 'Dense'",
        ),
        (
            ModelSpec("param", (2,), (L("Linear", units=3),)),
            1,
            "layer 1 Linear has no parameter 'units'",
        ),
        (
            ModelSpec("neg", (2,), (L("Linear", out_features=0),)),
            1,
            "out_features must be between 1",
        ),
        (ModelSpec("float", (2,), (L("Linear", out_features=2.5),)), 1, "must be a whole number"),
        (ModelSpec("rnn", (5,), (L("GRU"),)), 1, "layer 1 GRU needs a time axis"),
        (ModelSpec("drop", (5,), (L("Dropout", p=1.5),)), 1, "p must be between 0 and 0.95"),
        (ModelSpec("shape", (0, 3), ()), None, "input shape"),
        (
            ModelSpec("huge", (8192,), (L("Linear", out_features=8192),)),
            1,
            "parameters; the app's limit",
        ),
    ],
    ids=lambda v: v.name if isinstance(v, ModelSpec) else None,
)
def test_invalid_stacks_name_the_layer_and_why(spec, index, message):
    with pytest.raises(SpecError, match=message) as caught:
        infer_shapes(spec)
    assert caught.value.layer_index == index
    with pytest.raises(SpecError):
        build_model(spec)


def test_the_issue_example_message():
    spec = ModelSpec(
        "example",
        (32, 8, 8),
        (
            L("Flatten"),
            L("Linear", out_features=512),
            L("ReLU"),
            L("Dropout"),
            L("Linear", out_features=10, in_features=512),
        ),
    )
    assert infer_shapes(spec)[1].formula == "y = W x + b, W: 512×2048"
    bad = spec.with_layers(
        (
            L("ReLU"),
            L("ReLU"),
            L("ReLU"),
            L("Flatten"),
            L("Linear", out_features=5, in_features=512),
        )
    )
    with pytest.raises(SpecError) as caught:
        infer_shapes(bad)
    assert str(caught.value) == "layer 5 Linear expects 512 inputs, receives 2048"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"format": "something-else"}', "not a model spec"),
        ('{"name": "x", "input_shape": "big", "layers": []}', "input_shape must be a list"),
        ('{"name": "x", "input_shape": [2], "layers": {}}', "layers must be a list"),
        (
            '{"name": "x", "input_shape": [2], "layers": [{"params": {}}]}',
            "layer 1 must be an object",
        ),
        (
            '{"name": "x", "input_shape": [2], "layers": [{"kind": "ReLU", "params": {"a": [1]}}]}',
            "parameter a must be",
        ),
        ('{"name": "x", "input_shape": [2], "version": 99, "layers": []}', "version 99"),
    ],
)
def test_hostile_json_gives_a_sentence(text, message):
    with pytest.raises(SpecError, match=message):
        ModelSpec.from_json(text)


def test_spec_json_is_plain_and_readable():
    data = json.loads(preset_spec("mlp_2d").to_json())
    assert data["input_shape"] == [2]
    assert data["layers"][0] == {"kind": "Linear", "params": {"out_features": 8}}


# Random stacks: whatever the shape inference accepts, torch runs with exactly that shape.
# Layers are drawn to suit the rank of what they receive, so most stacks are valid and the
# invalid ones fail on sizes (a kernel larger than its input), which must give a sentence.
_ANY_RANK = st.one_of(
    st.sampled_from([L("ReLU"), L("LayerNorm"), L("Softmax"), L("GELU"), L("Flatten")]),
    st.builds(lambda p: L("Dropout", p=p), st.sampled_from([0.0, 0.5])),
)
_BY_RANK = {
    1: st.one_of(
        _ANY_RANK,
        st.builds(
            lambda n, b: L("Linear", out_features=n, bias=b), st.integers(1, 6), st.booleans()
        ),
        st.just(L("BatchNorm1d")),
    ),
    2: st.one_of(
        _ANY_RANK,
        st.builds(
            lambda c, k, s, p: L("Conv1d", out_channels=c, kernel_size=k, stride=s, padding=p),
            st.integers(1, 4),
            st.integers(1, 4),
            st.integers(1, 3),
            st.integers(0, 2),
        ),
        st.builds(lambda k: L("AvgPool1d", kernel_size=k), st.integers(1, 3)),
        st.builds(lambda k: L("MaxPool1d", kernel_size=k, stride=1), st.integers(1, 3)),
        st.builds(lambda n: L("AdaptiveAvgPool1d", output_size=n), st.integers(1, 3)),
        st.builds(
            lambda h, o, b: L("GRU", hidden_size=h, output=o, bidirectional=b),
            st.integers(1, 4),
            st.sampled_from(["last", "mean"]),
            st.booleans(),
        ),
        st.just(L("BatchNorm1d")),
    ),
    3: st.one_of(
        _ANY_RANK,
        st.builds(
            lambda c, k, s, p: L("Conv2d", out_channels=c, kernel_size=k, stride=s, padding=p),
            st.integers(1, 4),
            st.integers(1, 4),
            st.integers(1, 3),
            st.integers(0, 2),
        ),
        st.builds(
            lambda k, s: L("MaxPool2d", kernel_size=k, stride=s),
            st.integers(1, 3),
            st.sampled_from([None, 1, 2]),
        ),
        st.builds(lambda n: L("AdaptiveAvgPool2d", output_size=n), st.integers(1, 3)),
        st.builds(
            lambda c, s: L("ResidualBlock", out_channels=c, stride=s),
            st.integers(1, 4),
            st.integers(1, 2),
        ),
        st.builds(lambda h: L("LSTM", hidden_size=h, num_layers=2), st.integers(1, 4)),
        st.just(L("BatchNorm2d")),
    ),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from([(3,), (2, 9), (1, 7, 6)]), data=st.data())
def test_random_stacks_either_fail_with_a_sentence_or_match_torch(shape, data):
    layers, current = [], shape
    for _ in range(data.draw(st.integers(1, 6))):
        layers.append(data.draw(_BY_RANK[len(current)]))
        try:
            current = infer_shapes(ModelSpec("random", shape, tuple(layers)))[-1].output_shape
        except SpecError as error:
            assert str(error).startswith(f"layer {len(layers)} "), str(error)
            return
    spec = ModelSpec("random", shape, tuple(layers))
    model = build_model(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert tuple(out.shape[1:]) == output_shape(spec)
    assert parameter_count(spec) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_every_kind_with_its_defaults_is_a_valid_layer(kind):
    if kind.endswith("2d") or kind == "ResidualBlock":
        shape = (2, 8, 8)
    elif kind.endswith("1d") and kind != "BatchNorm1d" or kind in ("GRU", "LSTM"):
        shape = (2, 16)
    else:
        shape = (4,)
    layer = LayerSpec.with_defaults(kind)
    assert {name for name, _ in layer.params} <= {p.name for p in LAYER_KINDS[kind].params}
    spec = ModelSpec("one", shape, (layer,))
    model = build_model(spec).eval()
    assert tuple(model(torch.randn(2, *shape)).shape[1:]) == output_shape(spec)


def test_a_hostile_name_cannot_inject_code():
    name = 'x"""\nimport os\nraise SystemExit("injected")  # ../../etc'
    spec = ModelSpec(name, (2,), (L("Linear", out_features=1),))
    spec = ModelSpec.from_json(spec.to_json())
    assert spec.name == name  # kept as given in the spec
    namespace = {"__name__": "generated"}
    exec(compile(spec_to_code(spec), "<generated>", "exec"), namespace)  # no SystemExit
    assert safe_name(name) == "x_import_os_raise_SystemExit_injected_etc"


@pytest.mark.gpu
@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_built_models_run_on_the_gpu_like_on_the_cpu(spec):
    device = torch.device("cuda" if torch.cuda.is_available() else "mps")
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x = torch.randn(4, *spec.input_shape)
    with torch.no_grad():
        cpu = model(x)
        gpu = model.to(device)(x.to(device)).cpu()
    # TF32 convolutions and matmuls on CUDA round to about 1e-3 relative
    torch.testing.assert_close(gpu, cpu, rtol=5e-3, atol=5e-3 * float(cpu.abs().max()))


@pytest.mark.parametrize(
    ("text", "shape"),
    [("3, 100", (3, 100)), ("1×64×101", (1, 64, 101)), ("(40,)", (40,)), ("[2]", (2,))],
)
def test_typed_shapes_parse(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a, b", "is not a shape"),
        ("", "is not a shape"),
        ("2²", "is not a shape"),
        ("9" * 500, "is not a shape"),
        ("1, 2, 3, 4", "1 to 3 positive whole numbers"),
        ("0, 3", "1 to 3 positive whole numbers"),
        ("100000, 100", "values per example"),
    ],
)
def test_hostile_typed_shapes_are_refused(text, message):
    with pytest.raises(SpecError, match=message):
        parse_input_shape(text)


def test_a_seeded_build_repeats_its_weights_and_leaves_the_global_generator_alone():
    spec = preset_spec("mlp_2d")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = build_model(spec, seed=7).state_dict()
    second = build_model(spec, seed=7).state_dict()
    other = build_model(spec, seed=8).state_dict()
    # Other sessions' random draws continue as if nothing had been built.
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
