"""Reinforcement learning: a bandit to feel exploration, then an agent that writes melodies."""

import streamlit as st

from ui.reinforce_bandit import bandit_settings, render_bandit_results
from ui.reinforce_melody import (
    PRESETS,
    agent_settings,
    compare_rewards,
    current_agent,
    environment_settings,
    return_figure,
    show_comparison,
    show_greedy_melody,
    train_live,
)
from ui.reinforce_uncertainty import (
    current_learner,
    sample_optimal_melody,
    show_against_optimum,
    train_learner,
    uncertainty_settings,
)

st.title("Reinforcement learning")
st.markdown(
    "An **agent** makes a sequence of decisions in an **environment**. At each step it sees a "
    "**state**, takes an **action**, and receives a **reward**; the sum of rewards over an "
    "episode is the **return**. Its **policy** (what it does in each state) improves by trial "
    "and error. No one tells it the right answer: *the goal lives only in the reward.*"
)

st.header("1. The k-armed bandit: exploration versus exploitation")
st.markdown(
    "One state, k actions (slot machines), each paying a noisy reward around an unknown mean. "
    "**Exploiting** pulls the arm that looks best so far; **exploring** tries others in case "
    "they are better. *Regret* is the reward lost against always pulling the truly best arm. "
    "**Greedy** never explores, **epsilon-greedy** explores at random with probability ε, "
    "**UCB** explores the arms it knows least about (optimism under uncertainty)."
)
render_bandit_results(bandit_settings())

st.header("2. An agent that writes melodies")
st.markdown(
    "**Environment:** a melody of a few steps. **State:** the position and the last note. "
    "**Action:** the next pitch (C4 to C5) or *hold* the last note. **Reward:** the menu below, "
    "each term weighted by you (negative weights punish what positive ones reward). "
    "**Q-learning** learns the value Q(s, a) of each action in each state and plays greedily, "
    "exploring with probability ε. **Policy gradient (REINFORCE)** learns action probabilities "
    "directly, nudging up the actions of episodes that scored above average."
)
config = environment_settings()
if config is None:
    st.stop()
settings = agent_settings()
try:
    state = current_agent(config, settings)
except ValueError as error:
    st.error(str(error))
    st.stop()

cols = st.columns([2, 1, 1])
episodes = cols[0].slider("Episodes to train", 50, 3000, 300, 50, key="reinforce_episodes")
train_clicked = cols[1].button("Train", key="reinforce_train", type="primary")
if cols[2].button("Reset agent", key="reinforce_reset"):
    state["agent"] = type(state["agent"])(state["agent"].env, state["agent"].config)
    state["returns"], state["greedy"] = [], []
if train_clicked:
    train_live(state, episodes)

if state["returns"]:
    st.plotly_chart(return_figure(state), key="reinforce_returns")
    st.caption(
        "The exploring return is noisy because the agent still tries random moves; the greedy "
        "melody's return is what it plays when it only exploits. The dashed line is the best "
        "return any melody can get under this reward, found by dynamic programming."
    )
else:
    st.info("Press **Train** to let the agent play melodies and learn from their rewards.")
show_greedy_melody(state)
st.caption(
    "The agent learns exactly what the reward asks, nothing more: if the best melody sounds "
    "dull (C D C D ...), the reward does not say what makes a melody interesting. Change it."
)

st.header("3. Change the reward, change what is learnt")
st.markdown(
    "The same Q-learning agent, trained from scratch under your reward and under a preset. "
    "Nothing but the reward differs."
)
other = st.selectbox("Compare with", list(PRESETS), index=1, key="reinforce_compare_with")
if st.button("Train both and compare", key="reinforce_compare"):
    with st.spinner("training two agents..."):
        compare_rewards(config, other)
show_comparison(config, other)

st.header("4. Under uncertainty: slippery keys, a noisy audience")
st.markdown(
    "The same melody world (key, length, rhythm and reward from section 2), now **stochastic**: "
    "with some probability the chosen step *slips* to a random one, and every reward comes "
    "with noise. **Value iteration** knows the model (the probability of each next state and "
    "the expected reward) and computes the best policy by dynamic programming: "
    "V(s) ← max over a of [ R(s, a) + Σ P(s′ | s, a) V(s′) ], repeated until nothing changes. "
    "**Q-learning** never sees the model: it only plays and samples. Both chase the same goal, "
    "which lives only in the reward: the largest expected **cumulative reward** (return)."
)
uncertainty, q_config = uncertainty_settings()
learner_state = current_learner(config, uncertainty, q_config)
cols = st.columns([2, 1, 1])
uq_episodes = cols[0].slider(
    "Episodes to learn", 500, 10000, 3000, 500, key="reinforce_uq_episodes"
)
uq_train = cols[1].button("Train Q-learning", key="reinforce_uq_train", type="primary")
if cols[2].button("Reset Q-learning", key="reinforce_uq_reset"):
    del st.session_state["reinforce_uncertain_state"]
    learner_state = current_learner(config, uncertainty, q_config)
if uq_train:
    train_learner(learner_state, uq_episodes)
show_against_optimum(learner_state, config)
st.caption(
    "The sampled returns sit lower than the red line: they pay for exploration (ε) and luck, "
    "while the red line is what the greedy policy earns on average, computed exactly from the "
    "model. Left map: the optimal value of each state (colour) and value iteration's choice "
    "(text). Right: Q-learning's estimate and choice, only in states it has visited; a cross "
    "marks a choice that is not optimal, however little it loses. Slips make the plan that is "
    "best in a calm world second best here; noise does not change the optimum, only how many "
    "samples Q-learning needs (the 1/n step size averages the noise away, a constant one "
    "keeps chasing it)."
)
sample_optimal_melody(learner_state)
