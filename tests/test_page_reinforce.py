"""The reinforcement-learning page through the real entry script (AppTest)."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.lessons import rl
from core.lessons import rl_stochastic as rs
from tests.apptest_helpers import open_page

PAGE = "pages/reinforce.py"


@pytest.fixture
def app() -> AppTest:
    at = open_page(PAGE)
    assert not at.exception, at.exception
    return at


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def _chart(at: AppTest, key: str) -> str:
    """The plotly spec of the chart with this widget key."""
    return next(c.proto.spec for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))


def test_bandit_runs_and_reads_its_regret(app):
    app.slider(key="reinforce_bandit_steps").set_value(400)
    app.slider(key="reinforce_bandit_runs").set_value(20)
    app.button(key="reinforce_bandit_run").click().run()
    assert not app.exception, app.exception
    text = _markdown(app)
    assert "After 400 pulls" in text and "random play lost" in text


def test_q_learning_trains_and_plays_its_melody(app):
    assert app.title[0].value == "Reinforcement learning"
    assert "after 0 episodes" in _markdown(app)
    app.slider(key="reinforce_episodes").set_value(400)
    app.button(key="reinforce_train").click().run()
    assert not app.exception, app.exception
    assert "after 400 episodes" in _markdown(app)
    # the greedy melody of the moment is playable
    assert len(app.get("audio")) >= 1
    # continuing training keeps the same agent
    app.button(key="reinforce_train").click().run()
    assert "after 800 episodes" in _markdown(app)


def test_policy_gradient_and_reward_change_give_a_fresh_agent(app):
    app.radio(key="reinforce_algorithm").set_value("Policy gradient (REINFORCE)").run()
    app.slider(key="reinforce_episodes").set_value(100)
    app.button(key="reinforce_train").click().run()
    assert not app.exception, app.exception
    assert "after 100 episodes" in _markdown(app)
    assert "Policy along the melody" in _chart(app, "reinforce_table")
    app.slider(key="reinforce_w_rhythm").set_value(2.0).run()
    assert "a fresh agent starts from scratch" in _markdown(app)
    assert "after 0 episodes" in _markdown(app)


def test_hostile_rhythm_is_a_sentence_not_a_crash(app):
    app.text_input(key="reinforce_rhythm").input("x?y!").run()
    assert not app.exception, app.exception
    assert any("only 'x'" in e.value for e in app.error)


def test_comparing_two_rewards_shows_two_melodies(app):
    app.selectbox(key="reinforce_compare_with").set_value(
        "Wanderer: leaps, no key, no repeats"
    ).run()
    app.button(key="reinforce_compare").click().run()
    assert not app.exception, app.exception
    text = _markdown(app)
    assert "Your reward" in text and "mean interval" in text
    assert len(app.get("audio")) >= 3
    # the comparison stays on screen while other widgets move
    app.slider(key="reinforce_episodes").set_value(100).run()
    assert "Your reward" in _markdown(app)
    # and goes away when the reward it was trained for changes
    app.slider(key="reinforce_w_in_key").set_value(-1.0).run()
    assert "Your reward" not in _markdown(app)


def test_reward_sliders_explain_exactly_what_the_reward_computes(app):
    no_repeat = app.slider(key="reinforce_w_no_repeat")
    assert no_repeat.label == "Avoid repeating the last note"
    assert no_repeat.help == rl.REWARD_RULES["no_repeat"]
    assert "C D C is not penalised" in no_repeat.help


def test_value_iteration_beside_q_learning_under_uncertainty(app):
    # before training: value iteration's optimum is already there, Q-learning has not played
    text = _markdown(app)
    assert "Value iteration** converged in 9 sweeps over 112 states" in text
    assert "8 steps need 8 sweeps and one more confirms" in text
    assert "it has not played yet" in text
    app.slider(key="reinforce_slip").set_value(0.3).run()
    app.slider(key="reinforce_noise").set_value(0.5).run()
    app.slider(key="reinforce_uq_episodes").set_value(1000).run()
    app.button(key="reinforce_uq_train").click().run()
    assert not app.exception, app.exception
    text = _markdown(app)
    assert "greedy policy after 1000 episodes" in text
    visited = re.search(r"optimal one in (\d+) of the (\d+) states it has visited", text)
    assert visited and 0 < int(visited[1]) <= int(visited[2]) <= 112
    returns = _chart(app, "reinforce_uncertain_returns")
    assert "against the optimum" in returns and "optimum by value iteration" in returns
    maps = _chart(app, "reinforce_policy_maps")
    assert "Value iteration: V*(s)" in maps and "Q-learning: max Q" in maps
    # the numbers on the page are the core's: value iteration on the same world
    world = rs.SlipperyMelodyWorld(
        rl.MelodyEnv(rl.MelodyConfig()), rs.Uncertainty(slip=0.3, reward_noise_std=0.5)
    )
    optimum = rs.value_iteration(world.model()).values[world.start]
    assert f"the best expected return is **{optimum:.2f}**" in text
    # training again continues the same learner
    app.button(key="reinforce_uq_train").click().run()
    assert "greedy policy after 2000 episodes" in _markdown(app)
    # a new slip starts from scratch
    app.slider(key="reinforce_slip").set_value(0.1).run()
    assert "Q-learning starts from scratch" in _markdown(app)


def test_constant_step_size_and_a_sampled_episode(app):
    app.radio(key="reinforce_uq_step").set_value("constant").run()
    app.slider(key="reinforce_uq_alpha").set_value(0.2).run()
    app.slider(key="reinforce_uq_episodes").set_value(500).run()
    app.button(key="reinforce_uq_train").click().run()
    assert not app.exception, app.exception
    audio_before = len(app.get("audio"))
    app.button(key="reinforce_uncertain_sample_button").click().run()
    assert not app.exception, app.exception
    text = _markdown(app)
    assert "One episode" in text and "sampled return" in text
    assert len(app.get("audio")) == audio_before + 1
    # reset: a fresh learner that has not played, with the same settings
    app.button(key="reinforce_uq_reset").click().run()
    assert not app.exception, app.exception
    assert "greedy policy after 0 episodes" in _markdown(app)
    assert "it has not played yet" in _markdown(app)
