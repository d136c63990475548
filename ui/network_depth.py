"""Network builder, part 4: "Deep enough", the depth experiment on the 2-D playground data.

The experiment runs when the student presses Run (a few seconds, with a progress bar);
its result stays in st.session_state["network_depth_result"] until the next run.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.lessons.depth_experiment import (
    DEPTH_ACTIVATIONS,
    FAMILIES,
    MAX_DEPTH,
    NO_ACTIVATION,
    DepthExperimentConfig,
    DepthExperimentError,
    DepthResult,
    run_depth_experiment,
)
from core.lessons.playground2d import DATASETS
from core.viz.depth import boundaries_figure, depth_accuracy_figure

RESULT_KEY = "network_depth_result"

WHY_LINEAR = (
    "**Why 0 hidden layers draw a straight line.** Without a hidden layer the network computes "
    "p = σ(w₁x + w₂y + b). It says class 1 where p > 0.5, that is where w₁x + w₂y + b > 0: one "
    "side of a straight line. XOR puts class 1 in two opposite quadrants, and no line has both "
    "on one side, so a linear model stays near chance (50 %). A hidden layer with a nonlinear "
    "activation lets the network combine several lines into a bent boundary. Stacking Linear "
    "layers *without* an activation does not help: W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂) "
    "is again one linear map (choose the activation 'none' to see it)."
)


def _settings() -> DepthExperimentConfig | None:
    c = st.columns(4)
    dataset = c[0].selectbox(
        "Data",
        DATASETS,
        index=DATASETS.index("xor"),
        key="network_depth_dataset",
        persist_state="session",
    )
    noise = c[1].slider(
        "Noise", 0.0, 0.5, 0.0, 0.05, key="network_depth_noise", persist_state="session"
    )
    activation = c[2].selectbox(
        "Activation",
        DEPTH_ACTIVATIONS,
        key="network_depth_activation",
        persist_state="session",
        help="'none': hidden layers without a nonlinearity, to see that they stay linear.",
    )
    width = c[3].slider(
        "Neurons per hidden layer", 1, 16, 8, key="network_depth_width", persist_state="session"
    )
    d = st.columns(4)
    depths = d[0].multiselect(
        "Hidden layers to compare",
        list(range(MAX_DEPTH + 1)),
        [0, 1, 2, 3],
        key="network_depth_depths",
        persist_state="session",
    )
    seeds = d[1].slider(
        "Seeds per network", 1, 5, 3, key="network_depth_seeds", persist_state="session"
    )
    epochs = d[2].select_slider(
        "Full-batch steps",
        [50, 100, 200, 300, 500, 1000],
        300,
        key="network_depth_epochs",
        persist_state="session",
    )
    equal = d[3].checkbox(
        "Also compare at an equal parameter count",
        True,
        key="network_depth_equal",
        persist_state="session",
        help="For each depth, the width whose network has about as many parameters as the "
        "deepest fixed-width one.",
    )
    try:
        return DepthExperimentConfig(
            dataset=dataset,
            noise=float(noise),
            activation=activation,
            width=int(width),
            depths=tuple(sorted(int(x) for x in depths)),
            seeds=int(seeds),
            epochs=int(epochs),
            compare_equal_parameters=bool(equal),
        )
    except DepthExperimentError as error:
        st.error(str(error))
        return None


def _run(config: DepthExperimentConfig) -> None:
    bar = st.progress(0.0, text="Training…")
    for event in run_depth_experiment(config):
        bar.progress(event.progress, text=event.message)
        if event.result is not None:
            st.session_state[RESULT_KEY] = event.result
    bar.empty()


def render_depth_experiment() -> None:
    """Settings, the Run button, and the last result: table, accuracy plot, boundaries."""
    st.markdown(
        "How deep does a network need to be? The same points are learnt by networks with 0, 1, "
        "2 and 3 hidden layers, each from several random starts; then depth is weighed against "
        "width with the number of parameters held equal."
    )
    config = _settings()
    if st.button(
        "Run the experiment", key="network_depth_run", type="primary", disabled=config is None
    ):
        _run(config)
    result: DepthResult | None = st.session_state.get(RESULT_KEY)
    if result is None:
        st.info("Press **Run the experiment**: it trains a few dozen small networks in seconds.")
        st.markdown(WHY_LINEAR)
        return
    _render_result(result)


def _render_result(result: DepthResult) -> None:
    c = result.config
    st.caption(
        f"{c.dataset}, {len(result.train_points)} training and {len(result.test_points)} test "
        f"points; activation {c.activation}; {c.epochs} full-batch Adam steps (learning rate "
        f"{c.learning_rate:g}); {c.seeds} seed(s) of the initial weights; "
        f"{result.trainings} trainings in {result.seconds:.1f} s."
    )
    rows = result.summary()
    table = pd.DataFrame(
        {
            "family": [r.family for r in rows],
            "hidden layers": [r.depth for r in rows],
            "neurons per layer": [r.width for r in rows],
            "parameters": [r.parameters for r in rows],
            "test accuracy (mean)": [f"{r.mean_test_accuracy:.1%}" for r in rows],
            "± (std over seeds)": [f"{r.std_test_accuracy:.1%}" for r in rows],
            "worst seed": [f"{r.min_test_accuracy:.1%}" for r in rows],
            "train accuracy": [f"{r.mean_train_accuracy:.1%}" for r in rows],
        }
    )
    left, right = st.columns([3, 2])
    left.dataframe(table, hide_index=True, key="network_depth_table")
    right.plotly_chart(depth_accuracy_figure(rows), key="network_depth_accuracy")
    _verdict(result)
    for family in FAMILIES:
        boundaries = result.boundaries(family)
        if not boundaries:
            continue
        st.markdown(f"**Decision boundaries, {family}** (seed 0; black line: p = 0.5)")
        panels = [(f"{plan.label} · {plan.parameters} params", grid) for plan, grid in boundaries]
        st.plotly_chart(
            boundaries_figure(
                result.axis, panels, result.test_points.xy, result.test_points.labels
            ),
            key=f"network_depth_boundaries_{family.replace(' ', '_')}",
        )
    st.caption("Points shown: the test points, which no network trained on.")
    st.markdown(WHY_LINEAR)


def _verdict(result: DepthResult) -> None:
    """One sentence on what this run shows, from its own numbers."""
    rows = {(r.family, r.depth): r for r in result.summary()}
    linear = rows.get((FAMILIES[0], 0))
    if linear is not None and result.config.dataset == "xor":
        st.markdown(
            f"With no hidden layer the test accuracy is {linear.mean_test_accuracy:.0%}: a "
            "straight line cannot separate XOR's quadrants."
        )
    if result.config.activation == NO_ACTIVATION:
        st.warning(
            "Without an activation every network here is a linear model, whatever its depth: "
            "the boundaries are all straight lines."
        )
    equal = sorted((r for r in result.summary() if r.family == FAMILIES[1]), key=lambda r: r.depth)
    if len(equal) < 2:
        return
    means = [r.mean_test_accuracy for r in equal]
    spread = max(max(r.std_test_accuracy for r in equal), 0.01)
    budget = f"At about {equal[0].parameters} parameters"
    if max(means) - min(means) <= spread:
        st.markdown(
            f"{budget} every arrangement reaches about the same test accuracy "
            f"({min(means):.1%} to {max(means):.1%}, within the spread over seeds): on this "
            "data depth and width trade one for the other."
        )
        return
    best = max(equal, key=lambda r: (r.mean_test_accuracy, -r.depth))
    worst = min(equal, key=lambda r: (r.mean_test_accuracy, r.depth))
    st.markdown(
        f"{budget} the best test accuracy is {best.mean_test_accuracy:.1%} with {best.depth} "
        f"hidden layer(s) of {best.width}, the worst {worst.mean_test_accuracy:.1%} with "
        f"{worst.depth} of {worst.width}. Differences smaller than the spread over seeds (up "
        f"to {spread:.1%}) are not evidence either way: add seeds to be sure."
    )
