"""The melody section of the reinforcement-learning page: environment, reward menu, agent."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from core.audio.synth import SynthConfig, render_notes
from core.lessons import rl
from core.viz.paradigms import line_curves, piano_roll, table_heatmap

AGENT_KEY = "reinforce_agent_state"  # {"signature", "agent", "returns", "greedy"}
ALGORITHMS = ("Q-learning", "Policy gradient (REINFORCE)")
SYNTH = SynthConfig()

REWARD_LABELS = {
    "in_key": "Stay in the key",
    "end_on_tonic": "End on the tonic",
    "small_steps": "Prefer small steps",
    "no_repeat": "Avoid repeating the last note",
    "rhythm": "Follow the rhythm",
}
# the help under each slider says exactly what core.lessons.rl computes (rl.REWARD_RULES, tested)
REWARD_HELP = {term: (label, rl.REWARD_RULES[term]) for term, label in REWARD_LABELS.items()}
PRESETS = {
    "Hymn: in key, small steps, home at the end": rl.RewardWeights(1, 1, 1, 0.5, 0),
    "Wanderer: leaps, no key, no repeats": rl.RewardWeights(0, 0, -1, 1, 0),
    "Drummer: the rhythm above all": rl.RewardWeights(0.2, 0.5, 0, 0, 2),
}


def _apply_preset() -> None:
    weights = PRESETS[st.session_state["reinforce_preset"]].as_dict()
    for term, value in weights.items():
        st.session_state[f"reinforce_w_{term}"] = float(value)


def environment_settings() -> rl.MelodyConfig | None:
    """Key, scale, length, rhythm and the reward menu; None (with a message) when invalid."""
    cols = st.columns(4)
    tonic = cols[0].selectbox(
        "Key (tonic)", range(12), format_func=lambda p: rl.NOTE_NAMES[p], key="reinforce_tonic"
    )
    scale = cols[1].selectbox("Scale", list(rl.SCALES), key="reinforce_scale")
    length = cols[2].slider("Notes per melody", 3, 16, 8, key="reinforce_length")
    rhythm = cols[3].text_input(
        "Rhythm (x = new note, - = hold)", "x-x-xxx-", max_chars=32, key="reinforce_rhythm"
    )
    st.selectbox(
        "Reward presets",
        list(PRESETS),
        index=None,
        placeholder="or start from a preset",
        key="reinforce_preset",
        on_change=_apply_preset,
    )
    defaults = rl.RewardWeights().as_dict()
    weights = {}
    for col, (term, (label, help_text)) in zip(st.columns(5), REWARD_HELP.items(), strict=True):
        weights[term] = col.slider(
            label, -2.0, 2.0, defaults[term], 0.1, help=help_text, key=f"reinforce_w_{term}"
        )
    try:
        return rl.MelodyConfig(
            length=length,
            tonic=tonic,
            scale=scale,
            rhythm=rhythm.strip(),
            weights=rl.RewardWeights(**weights),
        )
    except ValueError as error:
        st.error(str(error))
        return None


def agent_settings() -> dict:
    """Algorithm and its three knobs; exploration means epsilon or the entropy bonus."""
    cols = st.columns(4)
    algorithm = cols[0].radio("Agent", ALGORITHMS, key="reinforce_algorithm")
    q = algorithm == "Q-learning"
    lr = cols[1].slider("Learning rate", 0.01, 1.0, 0.5 if q else 0.05, 0.01, key="reinforce_lr")
    discount = cols[2].slider(
        "Discount γ",
        0.0,
        1.0,
        1.0,
        0.05,
        key="reinforce_discount",
        help="How much later reward counts: 1 = the whole melody.",
    )
    explore_label = "Exploration ε" if q else "Exploration (entropy bonus)"
    exploration = cols[3].slider(
        explore_label, 0.0, 1.0, 0.2 if q else 0.05, 0.01, key="reinforce_exploration"
    )
    return {
        "algorithm": algorithm,
        "learning_rate": lr,
        "discount": discount,
        "exploration": exploration,
    }


def current_agent(config: rl.MelodyConfig, settings: dict) -> dict:
    """The session's agent for these settings; a fresh one when anything changed."""
    signature = (config, tuple(sorted(settings.items())))
    state = st.session_state.get(AGENT_KEY)
    if state is None or state["signature"] != signature:
        if state is not None:
            st.caption("The environment or the agent changed: a fresh agent starts from scratch.")
        agent = rl.make_agent(env=rl.MelodyEnv(config), **settings)
        state = {"signature": signature, "agent": agent, "returns": [], "greedy": []}
        st.session_state[AGENT_KEY] = state
    return state


def train_live(state: dict, episodes: int) -> None:
    """Train with a progress bar and a return curve redrawn about ten times."""
    progress = st.progress(0.0, text="training...")
    live = st.empty()
    redraw = max(1, episodes // 10)
    for i, event in enumerate(rl.train(state["agent"], episodes), start=1):
        state["returns"].append(event.episode_return)
        state["greedy"].append(event.greedy_return)
        if i % redraw == 0 or i == episodes:
            progress.progress(i / episodes, text=f"episode {event.episode}")
            live.plotly_chart(return_figure(state), key=f"reinforce_live_{event.episode}")
    progress.empty()
    live.empty()


def return_figure(state: dict):
    env = state["agent"].env
    best, _ = rl.optimal_return(env)
    smooth = max(1, min(50, len(state["returns"]) // 20))
    return line_curves(
        {
            "return while learning (exploring)": state["returns"],
            "greedy melody's return": state["greedy"],
        },
        title="Episode return",
        x_title="episode",
        y_title="return",
        smooth=smooth,
        reference=best,
        reference_name="best possible (dynamic programming)",
    )


def melody_audio(env: rl.MelodyEnv, actions: list[int]) -> np.ndarray:
    return render_notes(env.to_notes(actions), SYNTH)


def describe(env: rl.MelodyEnv, actions: list[int]) -> str:
    """'C4 D4 E4 - G4' with its return."""
    notes = " ".join(env.action_label(a) if a != env.HOLD else "–" for a in actions)
    return f"{notes} (return {env.rollout(actions):.1f})"


def show_greedy_melody(state: dict) -> None:
    """Piano roll, notes, player and the agent's table along its greedy melody."""
    agent, env = state["agent"], state["agent"].env
    actions = rl.greedy_melody(agent)
    st.markdown(f"**Greedy melody after {agent.episodes} episodes:** {describe(env, actions)}")
    names = [rl.pitch_name(int(p)) for p in env.pitches]
    st.plotly_chart(
        piano_roll(
            env.to_notes(actions),
            low_pitch=int(env.pitches[0]),
            n_pitches=env.n_pitches,
            in_scale=env.in_scale.tolist(),
            pitch_names=names,
            length=env.length,
            title="The melody of the moment (shaded rows: in the scale)",
        ),
        key="reinforce_piano_roll",
    )
    st.audio(melody_audio(env, actions), sample_rate=SYNTH.sample_rate)
    labels, rows = rl.greedy_path_values(agent)
    columns = [env.action_label(a) for a in range(env.n_actions)]
    is_q = isinstance(agent, rl.QLearningAgent)
    st.plotly_chart(
        table_heatmap(
            rows,
            labels,
            columns,
            title="Q-table along the melody" if is_q else "Policy along the melody",
            value_name="Q(s, a)" if is_q else "π(a | s)",
        ),
        key="reinforce_table",
    )
    meaning = (
        "Q(s, a) estimates the return still to come after playing a in s."
        if is_q
        else "π(a | s) is the probability the policy plays a in s."
    )
    st.caption(
        "Each row is a state the greedy melody visits (position and last note); each column an "
        f"action. {meaning}"
    )


COMPARE_KEY = "reinforce_compare_result"  # (config, preset name, [(title, actions)])


def _train_greedy(config: rl.MelodyConfig, episodes: int) -> list[int]:
    agent = rl.make_agent(
        "Q-learning", rl.MelodyEnv(config), learning_rate=0.5, discount=1.0, exploration=0.2
    )
    for _ in rl.train(agent, episodes):
        pass
    return rl.greedy_melody(agent)


def compare_rewards(config: rl.MelodyConfig, other_name: str, episodes: int = 1500) -> None:
    """Train the same Q-learning agent under two rewards; keep both melodies for display."""
    other = dataclasses.replace(config, weights=PRESETS[other_name])
    melodies = [
        (title, _train_greedy(cfg, episodes))
        for title, cfg in (("Your reward", config), (other_name, other))
    ]
    st.session_state[COMPARE_KEY] = (config, other_name, melodies)


def show_comparison(config: rl.MelodyConfig, other_name: str) -> None:
    """Both melodies side by side, while the settings they were trained for are unchanged."""
    stored = st.session_state.get(COMPARE_KEY)
    if not stored or stored[:2] != (config, other_name):
        return
    for col, (title, actions) in zip(st.columns(2), stored[2], strict=True):
        weights = config.weights if title == "Your reward" else PRESETS[other_name]
        env = rl.MelodyEnv(dataclasses.replace(config, weights=weights))
        stats = rl.melody_statistics(env, actions)
        col.markdown(f"**{title}**  \n{describe(env, actions)}")
        col.audio(melody_audio(env, actions), sample_rate=SYNTH.sample_rate)
        col.caption(
            f"{stats['in_key']:.0%} of the notes in the key, mean interval "
            f"{stats['mean_interval']:.1f} semitones, {stats['holds']} held step(s)."
        )
