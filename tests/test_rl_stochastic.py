"""Value iteration and Q-learning in the slippery, noisy melody world.

The module under test: core.lessons.rl_stochastic.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.lessons import rl
from core.lessons.rl_stochastic import (
    SampleQLearner,
    SampleQLearningConfig,
    SlipperyMelodyWorld,
    TabularMDP,
    Uncertainty,
    compare_policies,
    deterministic_plan_policy,
    policy_evaluation,
    policy_grid,
    reachable_states,
    train_q_learning,
    value_iteration,
)
from core.viz.paradigms import policy_maps, returns_against_optimum


def _gamble_mdp() -> TabularMDP:
    """Two states. In s0, action 0 ("safe") pays 1 and ends; action 1 ("gamble") pays 0 and
    reaches s1 with probability 0.8 (the episode ends otherwise). In s1 either action pays 2
    and ends."""
    transitions = np.zeros((2, 2, 2))
    transitions[0, 1, 1] = 0.8
    rewards = np.array([[1.0, 0.0], [2.0, 2.0]])
    return TabularMDP(transitions, rewards, start=0)


def test_value_iteration_on_a_hand_made_mdp():
    # gamma 1: gambling is worth 0.8 * 2 = 1.6 > 1, so the optimal first move is to gamble
    result = value_iteration(_gamble_mdp(), discount=1.0)
    np.testing.assert_allclose(result.values, [1.6, 2.0])
    np.testing.assert_allclose(result.q[0], [1.0, 1.6])
    assert result.policy[0] == 1
    # gamma 0.5: the gamble is worth 0.5 * 0.8 * 2 = 0.8 < 1, so play safe
    result = value_iteration(_gamble_mdp(), discount=0.5)
    np.testing.assert_allclose(result.values, [1.0, 2.0])
    assert result.policy[0] == 0
    # exact evaluation of the other policy gives the other hand-computed value
    np.testing.assert_allclose(policy_evaluation(_gamble_mdp(), [1, 0], 0.5), [0.8, 2.0])


def test_value_iteration_on_an_endless_loop_is_a_geometric_series():
    # one state that pays 1 and comes back: V = 1 + 0.9 V, so V = 10
    loop = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)))
    assert value_iteration(loop, discount=0.9).values[0] == pytest.approx(10.0, abs=1e-8)
    assert policy_evaluation(loop, [0], 0.9)[0] == pytest.approx(10.0)
    # with discount 1 the return is infinite: a sentence, not a hang
    with pytest.raises(ValueError, match="never ends"):
        value_iteration(loop, discount=1.0, max_sweeps=200)
    with pytest.raises(ValueError, match="never ends"):
        policy_evaluation(loop, [0], 1.0)


@pytest.mark.parametrize("discount", [1.0, 0.8])
@pytest.mark.parametrize(
    "weights",
    [rl.RewardWeights(), rl.RewardWeights(0.2, 0.5, -1.0, 1.0, 2.0)],
    ids=["default", "rhythm"],
)
def test_without_slips_value_iteration_equals_the_deterministic_optimum(weights, discount):
    melody = rl.MelodyEnv(rl.MelodyConfig(length=6, weights=weights))
    world = SlipperyMelodyWorld(melody, Uncertainty(slip=0.0, reward_noise_std=0.0))
    result = value_iteration(world.model(), discount)
    best, actions = rl.optimal_return(melody, discount)
    assert result.values[world.start] == pytest.approx(best)
    assert result.sweeps == melody.length + 1  # one sweep per step back, one to confirm
    # its greedy melody is an optimal one
    last, played = melody.NO_NOTE, []
    for position in range(melody.length):
        played.append(int(result.policy[world.state_index(position, last)]))
        last = int(melody.next_last[last, played[-1]])
    assert melody.rollout(played) == pytest.approx(melody.rollout(actions))


def test_the_model_is_a_proper_mdp_and_fast():
    melody = rl.MelodyEnv(rl.MelodyConfig(length=16))  # the page's largest world
    world = SlipperyMelodyWorld(melody, Uncertainty(slip=0.3))
    started = time.perf_counter()
    model = world.model()
    result = value_iteration(model)
    assert time.perf_counter() - started < 1.0
    rows = model.transitions.sum(axis=2).reshape(melody.length, melody.n_last, -1)
    np.testing.assert_allclose(rows[:-1], 1.0)  # every step but the last leads somewhere
    np.testing.assert_allclose(rows[-1], 0.0)  # after the last step the melody is over
    assert result.sweeps == melody.length + 1


def test_full_slip_makes_every_choice_equal():
    # with slip 1 the chosen step never matters: all actions of a state have the same value
    world = SlipperyMelodyWorld(rl.MelodyEnv(rl.MelodyConfig(length=4)), Uncertainty(slip=1.0))
    q = value_iteration(world.model()).q
    np.testing.assert_allclose(q, q[:, :1].repeat(q.shape[1], axis=1), atol=1e-12)


def test_sampled_returns_agree_with_the_model():
    world = SlipperyMelodyWorld(
        rl.MelodyEnv(rl.MelodyConfig()), Uncertainty(slip=0.3, reward_noise_std=1.0)
    )
    result = value_iteration(world.model())
    rng = np.random.default_rng(0)
    returns = np.array([world.sample_melody(result.policy, rng)[2] for _ in range(3000)])
    standard_error = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - result.values[world.start]) < 4 * standard_error
    # slips do happen at about the chosen rate (a slip to the chosen step is no change)
    chosen, played, _ = zip(
        *(world.sample_melody(result.policy, rng) for _ in range(500)), strict=True
    )
    changed = np.mean(np.array(chosen) != np.array(played))
    assert changed == pytest.approx(0.3 * (1 - 1 / world.n_actions), abs=0.03)


def test_reward_noise_has_the_chosen_standard_deviation():
    # without slips a fixed policy's return varies only by the noise: std = sigma * sqrt(steps)
    melody = rl.MelodyEnv(rl.MelodyConfig(length=8))
    world = SlipperyMelodyWorld(melody, Uncertainty(slip=0.0, reward_noise_std=0.5))
    policy = value_iteration(world.model()).policy
    rng = np.random.default_rng(1)
    returns = np.array([world.sample_melody(policy, rng)[2] for _ in range(4000)])
    assert returns.std() == pytest.approx(0.5 * np.sqrt(8), rel=0.05)
    assert returns.mean() == pytest.approx(rl.optimal_return(melody)[0], abs=0.1)


def test_planning_for_slips_beats_the_plan_that_ignores_them():
    world = SlipperyMelodyWorld(rl.MelodyEnv(rl.MelodyConfig()), Uncertainty(slip=0.2))
    model = world.model()
    optimum = value_iteration(model).values[world.start]
    plan = policy_evaluation(model, deterministic_plan_policy(world))[world.start]
    calm = rl.optimal_return(world.melody)[0]
    assert optimum > plan + 0.05  # the slip-aware policy is better in the slippery world
    assert optimum < calm - 2  # and slips cost reward: the calm optimum is out of reach


def test_q_learning_approaches_the_value_iteration_optimum():
    melody = rl.MelodyEnv(rl.MelodyConfig(length=4, n_pitches=5, rhythm="x-xx"))
    world = SlipperyMelodyWorld(melody, Uncertainty(slip=0.2, reward_noise_std=0.5))
    optimal = value_iteration(world.model())
    learner = SampleQLearner(world, SampleQLearningConfig(epsilon=0.5, seed=0))
    events = list(train_q_learning(learner, 6000, evaluate_every=100))
    evaluated = [e.greedy_expected_return for e in events if e.greedy_expected_return is not None]
    assert len(evaluated) == 60 and events[-1].episode == 6000
    optimum = optimal.values[world.start]
    assert evaluated[0] < optimum - 0.3  # early on it is clearly worse: the test can fail
    assert evaluated[-1] == pytest.approx(optimum, abs=0.03)
    comparison = compare_policies(world, optimal, learner)
    assert comparison.learner == pytest.approx(evaluated[-1])
    assert comparison.optimum == pytest.approx(optimum)
    assert comparison.agreeing_states > 0.8 * comparison.visited_states


def test_averaging_beats_a_constant_step_size_under_noise():
    melody = rl.MelodyEnv(rl.MelodyConfig(length=6))
    world = SlipperyMelodyWorld(melody, Uncertainty(slip=0.2, reward_noise_std=2.0))
    results = {}
    for step_size in ("1/n", "constant"):
        config = SampleQLearningConfig(step_size=step_size, learning_rate=0.3, seed=0)
        learner = SampleQLearner(world, config)
        for _ in train_q_learning(learner, 2000, evaluate_every=2000):
            pass
        results[step_size] = learner.expected_greedy_return()
    assert results["1/n"] > results["constant"] + 0.5, results


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Uncertainty(slip=1.5), "slip"),
        (lambda: Uncertainty(reward_noise_std=-1.0), "noise"),
        (lambda: SampleQLearningConfig(step_size="1/sqrt(n)"), "step size"),
        (lambda: SampleQLearningConfig(learning_rate=0.0), "rate"),
        (lambda: TabularMDP(np.full((1, 1, 1), 2.0), np.zeros((1, 1))), "sum to at most 1"),
        (lambda: value_iteration(_gamble_mdp(), discount=2.0), "discount"),
        (lambda: policy_evaluation(_gamble_mdp(), [0, 5]), "valid action"),
        (
            lambda: SlipperyMelodyWorld(
                rl.MelodyEnv(rl.MelodyConfig(length=32, n_pitches=36)), Uncertainty()
            ).model(),
            "too many",
        ),
    ],
)
def test_hostile_settings_raise_sentences(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_policy_grid_lays_states_out_by_last_note_and_step():
    melody = rl.MelodyEnv(rl.MelodyConfig(length=3, n_pitches=4))
    world = SlipperyMelodyWorld(melody, Uncertainty())
    values = np.arange(world.n_states, dtype=float)
    policy = np.full(world.n_states, melody.HOLD)
    policy[world.state_index(2, 1)] = 3  # at step 3 after C#4, play D#4
    shown = reachable_states(world)
    grid, labels = policy_grid(world, values, policy, shown)
    assert grid.shape == (melody.n_last, 3)
    assert grid[1, 2] == world.state_index(2, 1) and labels[1][2] == "D#4"
    assert labels[0][0] == "hold"
    # at step 1 only "no note yet" (the last row) can happen
    assert np.isnan(grid[:-1, 0]).all() and grid[-1, 0] == world.start
    assert shown.sum() == world.n_states - (melody.n_last - 1)


def test_policy_maps_share_one_colour_scale_and_mark_wrong_choices():
    left = np.array([[1.0, 2.0], [np.nan, 4.0]])
    right = np.array([[0.0, np.nan], [3.0, 5.0]])
    labels = [["C4", "D4"], ["hold", "E4"]]
    wrong = np.array([[False, False], [True, False]])
    fig = policy_maps(
        [("optimal", left, labels), ("learnt", right, labels)],
        row_labels=["after C4", "no note"],
        column_labels=["step 1", "step 2"],
        wrong=wrong,
    )
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert [(h.zmin, h.zmax) for h in heatmaps] == [(0.0, 5.0), (0.0, 5.0)]
    assert heatmaps[0].text[1][0] == "" and heatmaps[0].text[1][1] == "E4"  # NaN: blank
    crosses = [t for t in fig.data if t.type == "scatter"]
    assert len(crosses) == 1 and list(crosses[0].x) == ["step 1"]
    assert list(crosses[0].y) == ["no note"] and crosses[0].xaxis == "x2"


def test_returns_figure_draws_the_optimum_and_the_plan():
    fig = returns_against_optimum([1.0, 2.0, 3.0], [2, 3], [2.5, 2.9], optimum=3.2, plan_return=3.0)
    lines = {t.name: list(t.y) for t in fig.data}
    assert lines["greedy policy, expected return (exact)"] == [2.5, 2.9]
    assert [s.y0 for s in fig.layout.shapes] == [3.2, 3.0]
    assert "optimum by value iteration (3.20)" in fig.layout.annotations[0].text
