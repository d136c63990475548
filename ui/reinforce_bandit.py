"""The bandit section of the reinforcement-learning page: exploration versus exploitation."""

from __future__ import annotations

import streamlit as st

from core.lessons import rl
from core.viz.paradigms import bandit_figure

RESULTS_KEY = "reinforce_bandit_results"


@st.cache_data(max_entries=8, show_spinner=False)
def _compare(config: rl.BanditConfig) -> dict[str, rl.BanditResult]:
    return rl.compare_bandit_agents(config)


def bandit_settings() -> rl.BanditConfig:
    """The sliders of the bandit experiment, as a BanditConfig."""
    cols = st.columns(4)
    n_arms = cols[0].slider("Arms (k)", 2, 20, 10, key="reinforce_bandit_arms")
    epsilon = cols[1].slider(
        "Exploration ε (epsilon-greedy)", 0.0, 0.5, 0.1, 0.01, key="reinforce_bandit_epsilon"
    )
    steps = cols[2].slider("Pulls per run", 100, 3000, 1000, 100, key="reinforce_bandit_steps")
    runs = cols[3].slider(
        "Runs averaged",
        10,
        200,
        50,
        10,
        key="reinforce_bandit_runs",
        help="Each run is a fresh bandit with new arm means (a new seed).",
    )
    return rl.BanditConfig(n_arms=n_arms, steps=steps, runs=runs, epsilon=epsilon)


def render_bandit_results(config: rl.BanditConfig) -> None:
    """Run on click, then keep showing the last results with a one-line reading of them."""
    if st.button("Run the bandit", key="reinforce_bandit_run", type="primary"):
        st.session_state[RESULTS_KEY] = (config, _compare(config))
    if RESULTS_KEY not in st.session_state:
        st.info("Choose the settings and press **Run the bandit**.")
        return
    shown_config, results = st.session_state[RESULTS_KEY]
    if shown_config != config:
        st.caption("Settings changed: press **Run the bandit** again to update the curves.")
    st.plotly_chart(
        bandit_figure(
            {name: r.cumulative_regret for name, r in results.items()},
            {name: r.optimal_rate for name, r in results.items()},
        ),
        key="reinforce_bandit_chart",
    )
    final = {name: float(r.cumulative_regret[-1]) for name, r in results.items()}
    best = min(final, key=final.get)
    half = shown_config.steps // 2
    late = {
        n: float(r.cumulative_regret[-1] - r.cumulative_regret[half - 1])
        for n, r in results.items()
    }
    st.caption(
        f"After {shown_config.steps} pulls, **{best}** lost the least "
        f"({final[best]:.0f} reward units against always pulling the best arm); random play "
        f"lost {final['random']:.0f}. Regret in the second half of the pulls: "
        + ", ".join(f"{n} {v:.0f}" for n, v in late.items())
        + ". Random play keeps losing at the same rate (linear regret); an agent that learns "
        "loses less and less (sublinear). Pure greedy often locks onto a poor arm forever."
    )
