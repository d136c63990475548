"""The reinforcement-learning page through the real entry script (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import rl
from tests.apptest_helpers import open_page

PAGE = "pages/reinforce.py"


@pytest.fixture
def app() -> AppTest:
    at = open_page(PAGE)
    assert not at.exception, at.exception
    return at


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


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
    assert "Policy along the melody" in str(app.get("plotly_chart")[-1].proto.spec)
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
