"""'Deep enough': known answers on XOR, parameter budgets, the training loop against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.lessons.depth_experiment import (
    FAMILIES,
    NO_ACTIVATION,
    DepthExperimentConfig,
    DepthExperimentError,
    depth_experiment,
    depth_spec,
    plan_networks,
    run_depth_experiment,
    train_full_batch,
    train_seeds_full_batch,
    width_for_budget,
)
from core.models.shapes import parameter_count
from core.viz.depth import boundaries_figure, depth_accuracy_figure

FIXED, EQUAL = FAMILIES


def test_xor_needs_a_hidden_layer_zero_fails_two_solve_it():
    config = DepthExperimentConfig(
        dataset="xor", depths=(0, 2), seeds=2, compare_equal_parameters=False
    )
    result = depth_experiment(config)
    linear = result.row(FIXED, 0)
    deep = result.row(FIXED, 2)
    assert linear.max_test_accuracy < 0.75  # a straight line: about chance on XOR
    assert deep.min_test_accuracy > 0.95
    assert linear.parameters == 3 and deep.parameters == parameter_count(
        depth_spec(2, (8, 8), "Tanh")
    )


def test_the_linear_model_boundary_is_a_straight_line():
    result = depth_experiment(
        DepthExperimentConfig(depths=(0, 2), seeds=1, compare_equal_parameters=False)
    )
    (linear_plan, linear), (_, deep) = result.boundaries(FIXED)
    assert linear_plan.depth == 0 and linear.shape == (40, 40)
    # logit(p) of a linear model is an affine function a·x + b·y + c of the plane: exactly
    gx, gy = np.meshgrid(result.axis, result.axis)
    design = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], axis=1)

    def affine_residual(p: np.ndarray) -> float:
        logit = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1)).ravel()
        fit, *_ = np.linalg.lstsq(design, logit, rcond=None)
        return float(np.abs(design @ fit - logit).max())

    assert affine_residual(linear) < 1e-3
    assert affine_residual(deep) > 1.0  # two hidden layers bend it


def test_hidden_layers_without_activation_stay_linear():
    config = DepthExperimentConfig(
        depths=(3,), activation=NO_ACTIVATION, seeds=1, compare_equal_parameters=False
    )
    result = depth_experiment(config)
    assert result.row(FIXED, 3).max_test_accuracy < 0.75
    assert [layer.kind for layer in depth_spec(2, (4, 4), NO_ACTIVATION).layers] == ["Linear"] * 3


def _parameters_by_formula(n_inputs: int, depth: int, width: int) -> int:
    # (inputs + 1)·w for the first layer, (w + 1)·w for each further one, w + 1 for the output
    return (n_inputs + 1) * width + (depth - 1) * (width + 1) * width + width + 1


@pytest.mark.parametrize(("depth", "expected_width"), [(1, 44), (2, 11), (3, 8)])
def test_equal_parameter_widths_match_the_reference_network(depth, expected_width):
    budget = parameter_count(depth_spec(2, (8, 8, 8), "Tanh"))
    assert budget == _parameters_by_formula(2, 3, 8) == 177
    width = width_for_budget(2, depth, budget)
    assert width == expected_width
    counts = {w: _parameters_by_formula(2, depth, w) for w in range(1, 513)}
    assert abs(counts[width] - budget) == min(abs(c - budget) for c in counts.values())


def test_a_large_budget_gets_a_wide_single_layer():
    budget = parameter_count(depth_spec(2, (16,) * 5, "ReLU"))
    assert budget == _parameters_by_formula(2, 5, 16) == 1153
    assert width_for_budget(2, 1, budget, "ReLU") == 288  # 4 · 288 + 1 = 1153 exactly


def test_plan_lists_fixed_width_then_equal_parameters():
    plans = plan_networks(DepthExperimentConfig())
    assert [(p.family, p.depth, p.width) for p in plans] == [
        (FIXED, 0, 0),
        (FIXED, 1, 8),
        (FIXED, 2, 8),
        (FIXED, 3, 8),
        (EQUAL, 1, 44),
        (EQUAL, 2, 11),
        (EQUAL, 3, 8),
    ]
    assert all(p.parameters == 177 for p in plans if p.family == EQUAL)


def test_events_count_every_network_and_end_with_the_result():
    config = DepthExperimentConfig(depths=(1, 2), seeds=2, epochs=30)
    events = list(run_depth_experiment(config))
    total = len(plan_networks(config)) * 2
    assert [e.done for e in events[:-1]] == list(range(1, total + 1))
    assert all(e.kind == "progress" and e.run is not None for e in events[:-1])
    assert events[-1].kind == "finished" and events[-1].progress == 1.0
    result = events[-1].result
    assert len(result.runs) == total and result.seconds > 0
    # the 2 × 8 network is in both families (2 × 8 = the budget's own network): trained once
    fixed = [r for r in result.runs if r.plan.family == FIXED and r.plan.depth == 2]
    equal = [r for r in result.runs if r.plan.family == EQUAL and r.plan.depth == 2]
    assert [r.test_accuracy for r in fixed] == [r.test_accuracy for r in equal]
    assert sum(r.boundary is not None for r in result.runs) == len(plan_networks(config))
    assert result.trainings == total - 2  # the shared 2 × 8 network, once per seed


def test_full_batch_training_equals_plain_torch():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(50, 2)).astype(np.float32))
    y = (x[:, 0] * x[:, 1] > 0).float()
    network, loss = train_full_batch(
        depth_spec(2, (5,), "Tanh"), x, y, epochs=25, learning_rate=0.05, seed=3
    )
    torch.manual_seed(3)
    plain = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1))
    optimizer = torch.optim.Adam(plain.parameters(), lr=0.05)
    for _ in range(25):
        plain_loss = nn.functional.binary_cross_entropy_with_logits(plain(x).squeeze(-1), y)
        optimizer.zero_grad()
        plain_loss.backward()
        optimizer.step()
    assert loss == pytest.approx(float(plain_loss.detach()), abs=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(network(x), plain(x))


@pytest.mark.parametrize("hidden", [(), (6, 6)])
def test_seeds_trained_together_equal_seeds_trained_one_by_one(hidden):
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(-5, 5, size=(60, 2)).astype(np.float32))
    y = (x[:, 0] * x[:, 1] > 0).float()
    spec = depth_spec(2, hidden, "ReLU")
    together = train_seeds_full_batch(spec, x, y, seeds=3, epochs=40, learning_rate=0.03)
    assert len(together) == 3
    for seed, (network, loss) in enumerate(together):
        alone, alone_loss = train_full_batch(spec, x, y, epochs=40, learning_rate=0.03, seed=seed)
        assert loss == pytest.approx(alone_loss, rel=1e-4, abs=1e-6)
        assert not network.training
        with torch.no_grad():
            torch.testing.assert_close(network(x), alone(x), rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # different seeds really are different networks
        assert not torch.allclose(together[0][0](x), together[1][0](x))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": "moons"}, "Unknown dataset"),
        ({"depths": ()}, "at least one depth"),
        ({"depths": (1, 1)}, "different numbers"),
        ({"depths": (9,)}, "from 0 to 5"),
        ({"width": 0}, "width"),
        ({"seeds": 99}, "seeds"),
        ({"epochs": 0}, "epochs"),
        ({"activation": "Swish"}, "Unknown activation"),
        ({"features": ()}, "input feature"),
    ],
)
def test_hostile_settings_are_refused_with_a_sentence(changes, message):
    with pytest.raises(DepthExperimentError, match=message):
        DepthExperimentConfig(**changes)


def test_figures_show_every_family_and_panel():
    result = depth_experiment(DepthExperimentConfig(depths=(0, 1), seeds=2, epochs=20))
    figure = depth_accuracy_figure(result.summary())
    names = [t.name for t in figure.data if t.name]
    assert names == [FIXED, EQUAL]
    fixed_line = next(t for t in figure.data if t.name == FIXED)
    assert list(fixed_line.x) == [0, 1]
    assert list(fixed_line.y) == [r.mean_test_accuracy for r in result.summary()[:2]]
    panels = [(plan.label, grid) for plan, grid in result.boundaries(FIXED)]
    figure = boundaries_figure(
        result.axis, panels, result.train_points.xy, result.train_points.labels
    )
    assert [a.text for a in figure.layout.annotations] == ["0 hidden (linear)", "1 × 8"]
    assert sum(t.type == "heatmap" for t in figure.data) == 2
    assert figure.layout.showlegend is False  # the 0.5 contours are not a legend's business


def test_the_command_line_prints_the_summary(capsys):
    from core.lessons.depth_experiment import main

    main(["--dataset", "circle", "--depths", "0,1", "--seeds", "1", "--epochs", "20"])
    lines = capsys.readouterr().out.splitlines()
    # the deepest network (1 × 8) is the equal-parameter family's only one: trained once
    assert lines[0].startswith("circle: 2 trainings in")
    assert len(lines) == 1 + 3 and "1 hidden ×   8 (  33 params)" in lines[2]
    with pytest.raises(SystemExit):
        main(["--depths", "9"])
