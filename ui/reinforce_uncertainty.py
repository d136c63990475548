"""The "RL under uncertainty" section: value iteration on the known model beside Q-learning
from samples, in the melody world with slippery actions and noisy rewards."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from core.lessons import rl
from core.lessons import rl_stochastic as rs
from core.viz.paradigms import piano_roll, policy_maps, returns_against_optimum
from ui.reinforce_melody import SYNTH, melody_audio

STATE_KEY = "reinforce_uncertain_state"  # {"signature", "learner", "returns", "evaluated"}
SAMPLE_KEY = "reinforce_uncertain_sample"  # (signature, seed, chosen, played, return)
STEP_SIZE_LABELS = {
    "1/n": "1/n: the average of its samples",
    "constant": "constant α",
}


def uncertainty_settings() -> tuple[rs.Uncertainty, rs.SampleQLearningConfig]:
    """Slip, reward noise and the Q-learner's step size and exploration."""
    cols = st.columns(4)
    slip = cols[0].slider(
        "Slip probability",
        0.0,
        0.6,
        0.2,
        0.05,
        key="reinforce_slip",
        help="With this probability the chosen step (a pitch or a hold) is "
        "replaced by one drawn at random from all steps.",
    )
    noise = cols[1].slider(
        "Reward noise (std)",
        0.0,
        3.0,
        1.0,
        0.1,
        key="reinforce_noise",
        help="Gaussian noise of this standard deviation is added to every "
        "reward; its mean is 0, so the expected reward is unchanged.",
    )
    step_size = cols[2].radio(
        "Q-learning step size",
        list(STEP_SIZE_LABELS),
        format_func=STEP_SIZE_LABELS.get,
        key="reinforce_uq_step",
    )
    alpha = 0.1
    if step_size == "constant":
        alpha = cols[2].slider("α", 0.01, 1.0, 0.1, 0.01, key="reinforce_uq_alpha")
    epsilon = cols[3].slider("Exploration ε", 0.0, 1.0, 0.3, 0.05, key="reinforce_uq_epsilon")
    return (
        rs.Uncertainty(slip=slip, reward_noise_std=noise),
        rs.SampleQLearningConfig(step_size=step_size, learning_rate=alpha, epsilon=epsilon),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _solve(config: rl.MelodyConfig, uncertainty: rs.Uncertainty):
    """Value iteration on the exact model; (result, milliseconds it took)."""
    world = rs.SlipperyMelodyWorld(rl.MelodyEnv(config), uncertainty)
    model = world.model()
    started = time.perf_counter()
    result = rs.value_iteration(model)
    return result, (time.perf_counter() - started) * 1000


def current_learner(
    config: rl.MelodyConfig, uncertainty: rs.Uncertainty, q_config: rs.SampleQLearningConfig
) -> dict:
    """The session's Q-learner for these settings; a fresh one when anything changed."""
    signature = (config, uncertainty, q_config)
    state = st.session_state.get(STATE_KEY)
    if state is None or state["signature"] != signature:
        if state is not None:
            st.caption("The world or the learner changed: Q-learning starts from scratch.")
        world = rs.SlipperyMelodyWorld(rl.MelodyEnv(config), uncertainty)
        state = {
            "signature": signature,
            "learner": rs.SampleQLearner(world, q_config),
            "returns": [],
            "evaluated": [],
        }
        st.session_state[STATE_KEY] = state
    return state


def train_learner(state: dict, episodes: int) -> None:
    """Q-learning for `episodes` more episodes, with a progress bar."""
    progress = st.progress(0.0, text="Q-learning...")
    for i, event in enumerate(rs.train_q_learning(state["learner"], episodes), start=1):
        state["returns"].append(event.episode_return)
        if event.greedy_expected_return is not None:
            state["evaluated"].append((event.episode, event.greedy_expected_return))
            progress.progress(i / episodes, text=f"episode {event.episode}")
    progress.empty()


def show_against_optimum(state: dict, config: rl.MelodyConfig) -> None:
    """The return plot, the verdict in numbers and the two policies side by side."""
    learner = state["learner"]
    world = learner.world
    optimal, elapsed_ms = _solve(config, world.uncertainty)
    comparison = rs.compare_policies(world, optimal, learner)
    st.markdown(
        f"**Value iteration** converged in {optimal.sweeps} sweeps over {world.n_states} states "
        f"({elapsed_ms:.0f} ms; each sweep carries the rewards one step further back, so "
        f"{world.length} steps need {world.length} sweeps and one more confirms that nothing "
        f"changes): the best expected return is **{comparison.optimum:.2f}**. The "
        f"plan that is best without slips earns {comparison.deterministic_plan:.2f} here. "
        f"**Q-learning's** greedy policy after {learner.episodes} episodes earns "
        f"**{comparison.learner:.2f}** on average ({_share(comparison)})."
    )
    if state["returns"]:
        episodes, values = zip(*state["evaluated"], strict=True)
        smooth = max(1, min(100, len(state["returns"]) // 30))
        st.plotly_chart(
            returns_against_optimum(
                state["returns"],
                episodes,
                values,
                optimum=comparison.optimum,
                plan_return=comparison.deterministic_plan,
                smooth=smooth,
            ),
            key="reinforce_uncertain_returns",
        )
    shown = rs.reachable_states(world)
    visited = learner.visits.sum(axis=1) > 0
    greedy = learner.greedy_policy()
    rows = np.arange(world.n_states)
    wrong = visited & (optimal.q[rows, greedy] < optimal.values - 1e-9)
    value_grid, value_labels = rs.policy_grid(world, optimal.values, optimal.policy, shown)
    q_grid, q_labels = rs.policy_grid(world, learner.q.max(axis=1), greedy, shown & visited)
    wrong_grid, _ = rs.policy_grid(world, wrong.astype(float), greedy, shown)
    melody = world.melody
    row_labels = [melody.action_label(p) for p in range(melody.n_pitches)] + ["no note yet"]
    st.plotly_chart(
        policy_maps(
            [
                ("Value iteration: V*(s) and its choice", value_grid, value_labels),
                ("Q-learning: max Q(s, ·) and its choice", q_grid, q_labels),
            ],
            row_labels=row_labels,
            column_labels=[f"step {i + 1}" for i in range(world.length)],
            wrong=np.nan_to_num(wrong_grid) > 0,
        ),
        key="reinforce_policy_maps",
    )


def _share(comparison: rs.PolicyComparison) -> str:
    if comparison.visited_states == 0:
        return "it has not played yet: press **Train Q-learning**"
    gap = comparison.optimum - comparison.learner
    return (
        f"{gap:.2f} below the optimum; its choice is an optimal one in "
        f"{comparison.agreeing_states} of the {comparison.visited_states} states it has visited"
    )


def sample_optimal_melody(state: dict) -> None:
    """Play one episode of value iteration's policy; show which steps slipped."""
    learner = state["learner"]
    world = learner.world
    optimal, _ = _solve(world.melody.config, world.uncertainty)
    stored = st.session_state.get(SAMPLE_KEY)
    if st.button("Play the optimal policy once", key="reinforce_uncertain_sample_button"):
        seed = 0 if stored is None else stored[1] + 1
        chosen, played, total = world.sample_melody(optimal.policy, np.random.default_rng(seed))
        stored = (state["signature"], seed, chosen, played, total)
        st.session_state[SAMPLE_KEY] = stored
    if stored is None or stored[0] != state["signature"]:
        return
    _, _, chosen, played, total = stored
    melody = world.melody
    steps = [
        melody.action_label(p)
        if p == c
        else f"~~{melody.action_label(c)}~~ {melody.action_label(p)}"
        for c, p in zip(chosen, played, strict=True)
    ]
    slips = sum(c != p for c, p in zip(chosen, played, strict=True))
    st.markdown(
        f"**One episode** ({slips} slipped step(s), crossed out: chosen, then played): "
        f"{' · '.join(steps)}, sampled return {total:.2f}"
    )
    names = [rl.pitch_name(int(p)) for p in melody.pitches]
    st.plotly_chart(
        piano_roll(
            melody.to_notes(played),
            low_pitch=int(melody.pitches[0]),
            n_pitches=melody.n_pitches,
            in_scale=melody.in_scale.tolist(),
            pitch_names=names,
            length=melody.length,
            title="What was played",
        ),
        key="reinforce_uncertain_roll",
    )
    st.audio(melody_audio(melody, played), sample_rate=SYNTH.sample_rate)
