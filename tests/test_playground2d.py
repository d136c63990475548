"""The "see the function" playground: data recipes, features, learning, audio points, figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import paths
from core.lessons.audio_points import audio_feature_points, audio_feature_table, clip_audio_features
from core.lessons.playground2d import (
    DATASETS,
    DOMAIN,
    Playground,
    PlaygroundConfig,
    PlaygroundError,
    adapt_spec,
    feature_matrix,
    grid_points,
    make_points,
    split_points,
    train_until,
)
from core.models.layers import SpecError
from core.models.presets import preset_spec
from core.models.spec import LayerSpec
from core.viz.network import decision_figure, loss_figure, neuron_mosaic_figure
from tests.conftest import sine


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_balanced_points_of_the_plane(name):
    points = make_points(name, 400, noise=0.2, seed=3)
    assert points.xy.shape == (400, 2) and points.xy.dtype == np.float32
    assert set(np.unique(points.labels)) == {0, 1}
    assert 0.3 < points.labels.mean() < 0.7
    assert np.abs(points.xy).max() <= DOMAIN + 2.5  # noise may push a point past the edge
    again = make_points(name, 400, noise=0.2, seed=3)
    np.testing.assert_array_equal(points.xy, again.xy)


def test_noise_free_labels_follow_the_rules():
    circle = make_points("circle", 300, noise=0.0)
    radius = np.hypot(circle.xy[:, 0], circle.xy[:, 1])
    np.testing.assert_array_equal(circle.labels, (radius < 2.5).astype(int))
    assert not np.any((radius > 2.5) & (radius < 3.5))  # the gap between disc and ring
    xor = make_points("xor", 300, noise=0.0)
    np.testing.assert_array_equal(xor.labels, (xor.xy[:, 0] * xor.xy[:, 1] >= 0).astype(int))


def test_noise_flips_some_labels_near_the_boundary():
    clean = make_points("xor", 500, noise=0.0, seed=1)
    noisy = make_points("xor", 500, noise=0.5, seed=1)
    rule = (noisy.xy[:, 0] * noisy.xy[:, 1] >= 0).astype(int)
    assert (rule != noisy.labels).mean() > 0.05
    assert (clean.xy[:, 0] * clean.xy[:, 1] >= 0).astype(int).tolist() == clean.labels.tolist()


def test_split_keeps_every_point_once():
    points = make_points("gaussian", 101)
    train, test = split_points(points, 0.3)
    assert len(test) == 30 and len(train) == 71
    together = np.concatenate([train.xy, test.xy])
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, points.xy.tolist()))


def test_feature_matrix_columns():
    xy = np.array([[1.0, 2.0], [-0.5, 3.0]], dtype=np.float32)
    got = feature_matrix(xy, ("x", "y", "x2", "y2", "xy", "sinx", "siny"))
    x, y = xy[:, 0], xy[:, 1]
    expected = np.stack([x, y, x * x, y * y, x * y, np.sin(x), np.sin(y)], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_grid_is_indexed_y_then_x():
    axis, grid = grid_points(5)
    assert grid.shape == (25, 2)
    image_x = grid[:, 0].reshape(5, 5)
    image_y = grid[:, 1].reshape(5, 5)
    np.testing.assert_array_equal(image_x[0], axis)  # a row runs along x
    np.testing.assert_array_equal(image_y[:, 0], axis)  # a column runs along y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dataset", ["xor", "circle"])
def test_defaults_learn_xor_and_circle(dataset, seed):
    playground = train_until(Playground(PlaygroundConfig(dataset=dataset, seed=seed)), epochs=20)
    assert playground.accuracy("test") > 0.95
    assert playground.history.test_loss[-1] < 0.5 * playground.history.test_loss[0]


def test_a_linear_model_cannot_learn_xor_without_the_product_feature():
    linear = PlaygroundConfig(dataset="xor", hidden=())
    assert train_until(Playground(linear), epochs=10).accuracy() < 0.7
    with_product = PlaygroundConfig(dataset="xor", hidden=(), features=("x", "y", "xy"))
    assert train_until(Playground(with_product), epochs=10).accuracy() > 0.95


def test_l1_regularisation_shrinks_the_weights():
    def weight_sum(config):
        playground = train_until(Playground(config), epochs=8)
        return sum(float(w.detach().abs().sum()) for w in playground._weights())

    free = PlaygroundConfig(dataset="circle")
    penalised = PlaygroundConfig(dataset="circle", regularization="L1", regularization_rate=0.01)
    assert weight_sum(penalised) < 0.7 * weight_sum(free)


def test_reset_and_seed_reproduce_the_run():
    playground = Playground(PlaygroundConfig(dataset="spiral", optimizer="SGD"))
    playground.step(30)
    first = list(playground.history.test_loss)
    playground.reset()
    assert playground.steps == 0 and len(playground.history.test_loss) == 1
    playground.step(30)
    assert playground.history.test_loss == pytest.approx(first)
    assert playground.epoch == pytest.approx(30 * 10 / 250)


def test_grid_activations_shapes():
    playground = Playground(PlaygroundConfig(features=("x", "y", "xy"), hidden=(4, 3)))
    axis, probability, layers = playground.grid_activations(20)
    assert axis.shape == (20,) and probability.shape == (20, 20)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert [(name, values.shape) for name, values in layers] == [
        ("inputs", (3, 20, 20)),
        ("hidden 1", (4, 20, 20)),
        ("hidden 2", (3, 20, 20)),
    ]
    np.testing.assert_allclose(layers[0][1][2], np.outer(axis, axis), rtol=1e-5)


def test_an_editor_stack_runs_on_the_playground():
    spec = adapt_spec(preset_spec("mlp_mfcc"), n_features=3)
    assert spec.input_shape == (3,)
    playground = Playground(PlaygroundConfig(features=("x", "y", "x2")), spec=spec)
    playground.step(5)
    _, _, layers = playground.grid_activations(10)
    assert layers[1][1].shape == (8, 10, 10)  # the 128-unit layer shows its first 8 units
    with pytest.raises(SpecError, match="Conv2d needs input"):
        adapt_spec(preset_spec("cnn_logmel"), n_features=2)
    # a classifier's Softmax after the head would turn the logit into a constant 1: left out
    scored = spec.with_layers((*spec.layers, LayerSpec.make("Softmax")))
    assert adapt_spec(scored, 3).layers[-1].kind == "Linear"
    declared = spec.with_layers((LayerSpec.make("Linear", out_features=4, in_features=40),))
    assert adapt_spec(declared, 2).layers[0].param("in_features") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": "moons"}, "Unknown dataset"),
        ({"features": ()}, "at least one input feature"),
        ({"hidden": (9,)}, "1 to 8 neurons"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"noise": 0.9}, "Noise"),
        ({"n_points": 10**6}, "number of points"),
    ],
)
def test_hostile_settings_are_refused_with_a_sentence(changes, message):
    with pytest.raises(PlaygroundError, match=message):
        PlaygroundConfig(**changes)


def test_audio_features_of_a_sine_have_known_values():
    tone = sine(1000.0, 0.5, 8000, amplitude=0.5)
    features = clip_audio_features(tone, 8000)
    assert features["spectral_centroid"] == pytest.approx(1000.0, rel=0.05)
    assert features["rms_db"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)
    assert features["zero_crossing_rate"] == pytest.approx(2 * 1000 / 8000, rel=0.05)
    assert features["spectral_flatness"] < 0.01
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 4000).astype(np.float32)
    assert clip_audio_features(noise)["spectral_flatness"] > 0.3


def test_digit_clips_become_separable_points():
    files = paths.builtin_digit_files()
    zeros = [f for f in files if f.name.startswith("0_")][::16]
    sixes = [f for f in files if f.name.startswith("6_")][::16]
    rows = (audio_feature_table(zeros), audio_feature_table(sixes))
    assert len(rows[0]) == len(zeros) and len(rows[1]) == len(sixes)
    points = audio_feature_points(rows, "spectral_centroid", "zero_crossing_rate", ("zero", "six"))
    assert points.xy.shape == (len(zeros) + len(sixes), 2)
    assert abs(float(points.xy.mean())) < 0.5
    # "six" has a hiss (/s/, /ks/): a higher centroid than "zero" on average
    six_mean = points.xy[points.labels == 1, 0].mean()
    zero_mean = points.xy[points.labels == 0, 0].mean()
    assert six_mean > zero_mean
    config = PlaygroundConfig(dataset="audio", n_points=len(points))
    playground = train_until(Playground(config, points=points), epochs=20)
    assert playground.accuracy("train") > 0.8


def test_music_windows_give_points():
    clips = paths.builtin_music_clips()[:2]
    rows = audio_feature_table(clips, window_seconds=0.5, max_windows=6)
    assert 6 <= len(rows) <= 12
    with pytest.raises(PlaygroundError, match="at least 5"):
        audio_feature_points((rows, rows[:2]), "rms_db", "spectral_centroid", ("a", "b"))


def test_figures_are_light_and_complete():
    playground = Playground(PlaygroundConfig())
    playground.step(3)
    axis, probability, layers = playground.grid_activations(50)
    train, test = playground.train_points, playground.test_points
    fig = decision_figure(axis, probability, train.xy, train.labels, test.xy, test.labels)
    assert [t.type for t in fig.data] == ["heatmap"] + ["scatter"] * 4
    assert np.asarray(fig.data[0].z).shape == (50, 50)
    decided = decision_figure(axis, probability, train.xy, train.labels, discretize=True)
    assert set(np.unique(np.asarray(decided.data[0].z))) <= {0.0, 1.0} and len(decided.data) == 3
    mosaic = neuron_mosaic_figure(layers, ["x", "y"])
    assert len(mosaic.data) == 1  # every neuron in one trace
    z = np.asarray(mosaic.data[0].z, dtype=float)
    assert np.nanmax(np.abs(z)) <= 1.0 + 1e-6
    assert np.isfinite(z).sum() == 25 * 25 * (2 + 8 + 8)  # thumbnails: every 2nd grid point
    full = neuron_mosaic_figure(layers, ["x", "y"], max_tile=50)
    assert np.isfinite(np.asarray(full.data[0].z, dtype=float)).sum() == 50 * 50 * (2 + 8 + 8)
    # resent every frame while playing: the thumbnails weigh about a quarter of the full grid
    assert len(mosaic.to_json()) < 0.3 * len(full.to_json())
    losses = loss_figure(
        playground.history.epochs, playground.history.train_loss, playground.history.test_loss
    )
    assert len(losses.data[0].x) == 2


def test_training_never_touches_the_global_thread_setting():
    before = torch.get_num_threads()
    playground = Playground(PlaygroundConfig())
    playground.step(2)
    playground.grid_activations(10)
    assert torch.get_num_threads() == before


def test_retune_keeps_the_weights_and_refuses_other_changes():
    playground = Playground(PlaygroundConfig())
    playground.step(5)
    weights = [w.detach().clone() for w in playground._weights()]
    faster = PlaygroundConfig(learning_rate=0.1, optimizer="SGD", batch_size=20)
    assert playground.retune(faster)
    assert playground.steps == 5
    assert isinstance(playground.optimizer, torch.optim.SGD)
    assert playground.optimizer.param_groups[0]["lr"] == 0.1
    for before, after in zip(weights, playground._weights(), strict=True):
        torch.testing.assert_close(before, after)
    epoch = playground.epoch
    playground.step(1)
    assert playground.epoch == pytest.approx(epoch + 20 / 250)
    assert not playground.retune(PlaygroundConfig(dataset="xor"))
    assert playground.config == faster


def test_batch_norm_needs_two_points_per_batch():
    spec = preset_spec("mlp_2d")
    spec = spec.with_layers((*spec.layers[:1], LayerSpec.make("BatchNorm1d"), *spec.layers[1:]))
    with pytest.raises(PlaygroundError, match="at least 2 points per batch"):
        Playground(PlaygroundConfig(batch_size=1), spec=spec)
    playground = Playground(PlaygroundConfig(batch_size=2), spec=spec)
    with pytest.raises(PlaygroundError, match="at least 2 points per batch"):
        playground.retune(PlaygroundConfig(batch_size=1))
