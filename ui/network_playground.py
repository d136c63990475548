"""Network builder, part 3: "See the function", a TensorFlow-Playground-style lab.

State lives in st.session_state under network_pg_* keys: the running Playground
(network_pg_state), the settings it was built from (network_pg_built) and whether it is
playing (network_pg_playing). While playing, a fragment reruns every PLAY_INTERVAL_S and
advances the training by a few steps; the rest of the page stays as it is. The page draws
these controls only while their tab is open; `persist_state="session"` keeps their values
while they are not drawn.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from core.audio.clip import AudioError
from core.audio.io import load_audio
from core.lessons.audio_points import (
    AUDIO_FEATURES,
    audio_feature_points,
    digit_feature_rows,
    speech_and_music_clips,
    speech_and_music_rows,
)
from core.lessons.playground2d import (
    ACTIVATIONS,
    DATASETS,
    FEATURES,
    MAX_HIDDEN_LAYERS,
    MAX_NEURONS,
    OPTIMIZERS,
    REGULARIZATIONS,
    Playground,
    PlaygroundConfig,
    PlaygroundError,
    Points,
)
from core.models.layers import SpecError
from core.models.spec import ModelSpec
from core.viz.network import decision_figure, loss_figure, neuron_mosaic_figure

PLAY_INTERVAL_S = 0.3
AUDIO_SETS = {
    "audio_digits": "audio: two spoken digits",
    "audio_speech_music": "audio: speech vs music",
}
LEARNING_RATES = (0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
REG_RATES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@st.cache_data(max_entries=12, show_spinner="Measuring the clips…")
def _digit_rows(digit: int) -> list[dict[str, float]]:
    return digit_feature_rows(digit)


@st.cache_data(max_entries=1, show_spinner="Measuring speech and music windows…")
def _speech_music_rows() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    return speech_and_music_rows()


def _first_digit_file(digit: int) -> Path | None:
    return next((f for f in paths.builtin_digit_files() if f.name.startswith(f"{digit}_")), None)


def _listen(names: tuple[str, str], examples: list[Path | None]) -> None:
    """One example of each class: hear what the two axes are measuring."""
    with st.expander("Listen to one example of each class"):
        for column, name, path in zip(st.columns(2), names, examples, strict=True):
            if path is None:
                continue
            try:
                clip = load_audio(path, max_seconds=5.0)
            except AudioError as error:
                column.warning(f"{path.name}: {error}")
                continue
            column.caption(f"{name}: {path.name}")
            column.audio(clip.samples, sample_rate=clip.sample_rate)


def _data_controls() -> tuple[str, Points | None, dict]:
    """Dataset widgets; returns (dataset, audio points or None, data settings)."""
    c = st.columns(4)
    options = [*DATASETS, *AUDIO_SETS]
    name = c[0].selectbox(
        "Data",
        options,
        format_func=lambda n: AUDIO_SETS.get(n, n),
        key="network_pg_dataset",
        persist_state="session",
    )
    settings = {
        "test_fraction": c[2].slider(
            "Test share", 0.1, 0.9, 0.5, 0.1, key="network_pg_test", persist_state="session"
        ),
        "batch_size": c[3].slider(
            "Batch size", 1, 30, 10, key="network_pg_batch", persist_state="session"
        ),
    }
    if name in DATASETS:
        settings["noise"] = c[1].slider(
            "Noise", 0.0, 0.5, 0.0, 0.05, key="network_pg_noise", persist_state="session"
        )
        return name, None, settings
    a = st.columns(4)
    fx = a[2].selectbox(
        "x axis",
        list(AUDIO_FEATURES),
        format_func=AUDIO_FEATURES.get,
        key="network_pg_fx",
        persist_state="session",
    )
    fy = a[3].selectbox(
        "y axis",
        list(AUDIO_FEATURES),
        1,
        format_func=AUDIO_FEATURES.get,
        key="network_pg_fy",
        persist_state="session",
    )
    if name == "audio_digits":
        d0 = a[0].selectbox(
            "Class 0",
            range(10),
            0,
            format_func=DIGIT_NAMES.__getitem__,
            key="network_pg_d0",
            persist_state="session",
        )
        d1 = a[1].selectbox(
            "Class 1",
            range(10),
            6,
            format_func=DIGIT_NAMES.__getitem__,
            key="network_pg_d1",
            persist_state="session",
        )
        if d0 == d1:
            raise PlaygroundError("Choose two different digits.")
        rows, names = (_digit_rows(d0), _digit_rows(d1)), (DIGIT_NAMES[d0], DIGIT_NAMES[d1])
        examples = [_first_digit_file(d0), _first_digit_file(d1)]
    else:
        rows, names = _speech_music_rows(), ("speech", "music and sounds")
        examples = [_first_digit_file(0), next(iter(speech_and_music_clips()[1]), None)]
    _listen(names, examples)
    return "audio", audio_feature_points(rows, fx, fy, names), settings


def _network_controls(editor_spec: ModelSpec) -> tuple[dict, ModelSpec | None]:
    c = st.columns([3, 2, 2])
    features = c[0].pills(
        "Input features",
        list(FEATURES),
        selection_mode="multi",
        default=["x", "y"],
        format_func=lambda k: FEATURES[k][0],
        key="network_pg_features",
        persist_state="session",
    )
    source = c[1].radio(
        "Network",
        ["quick controls", "the editor's stack"],
        key="network_pg_source",
        persist_state="session",
        horizontal=True,
    )
    activation = c[2].selectbox(
        "Activation", ACTIVATIONS, key="network_pg_activation", persist_state="session"
    )
    hidden: tuple[int, ...] = ()
    if source == "quick controls":
        h = st.columns([2, *[1] * MAX_HIDDEN_LAYERS])
        depth = h[0].slider(
            "Hidden layers",
            0,
            MAX_HIDDEN_LAYERS,
            2,
            key="network_pg_depth",
            persist_state="session",
        )
        hidden = tuple(
            int(
                h[i + 1].number_input(
                    f"Neurons {i + 1}",
                    1,
                    MAX_NEURONS,
                    8 if i < 2 else 4,
                    key=f"network_pg_n{i}",
                    persist_state="session",
                )
            )
            for i in range(depth)
        )
    settings = {
        "features": tuple(f for f in FEATURES if f in (features or [])),
        "hidden": hidden,
        "activation": activation,
    }
    return settings, (editor_spec if source != "quick controls" else None)


def _training_controls() -> dict:
    c = st.columns(5)
    return {
        "learning_rate": c[0].select_slider(
            "Learning rate", LEARNING_RATES, 0.01, key="network_pg_lr", persist_state="session"
        ),
        "optimizer": c[1].selectbox(
            "Optimiser", OPTIMIZERS, 1, key="network_pg_optimizer", persist_state="session"
        ),
        "regularization": c[2].selectbox(
            "Regularisation", REGULARIZATIONS, key="network_pg_reg", persist_state="session"
        ),
        "regularization_rate": c[3].select_slider(
            "Regularisation rate",
            REG_RATES,
            0.0,
            key="network_pg_reg_rate",
            persist_state="session",
        ),
    } | {
        "_steps": c[4].slider(
            "Steps per frame", 1, 50, 10, key="network_pg_steps", persist_state="session"
        )
    }


def current_playground(editor_spec: ModelSpec) -> Playground | None:
    """Widgets for data, network and training; the matching Playground (built or retuned)."""
    try:
        dataset, points, data = _data_controls()
        net, spec = _network_controls(editor_spec)
        training = _training_controls()
        steps = training.pop("_steps")
        n_points = len(points) if points is not None else 500
        config = PlaygroundConfig(
            dataset=dataset,
            n_points=n_points,
            seed=st.session_state.get("network_pg_seed", 0),
            **data,
            **net,
            **training,
        )
    except PlaygroundError as error:
        st.error(str(error))
        return None
    st.session_state["network_pg_steps_per_frame"] = steps
    try:
        return _build_or_retune(config, spec, points)
    except PlaygroundError as error:
        st.error(str(error))
    except SpecError as error:
        st.error(
            f"The editor's stack cannot run on {len(config.features)} input features: {error}. "
            "Use the quick controls or change the stack."
        )
    return None


def _build_or_retune(
    config: PlaygroundConfig, spec: ModelSpec | None, points: Points | None
) -> Playground:
    """Keep the running playground when only training settings changed, else start anew."""
    built = (config, spec, None if points is None else points.xy.tobytes())
    playground = st.session_state.get("network_pg_state")
    previous = st.session_state.get("network_pg_built", (None,))
    if playground is not None and previous[1:] == built[1:] and playground.retune(config):
        st.session_state["network_pg_built"] = built
        return playground
    playground = Playground(config, points=points, spec=spec)
    st.session_state.update(
        network_pg_state=playground, network_pg_built=built, network_pg_playing=False
    )
    return playground


def _set_playing(playing: bool) -> None:
    # Set, never toggle: Streamlit 1.67 can run a button's callback twice when the click's
    # full rerun preempts a running fragment run (seen with Pause while playing), and a
    # toggle run twice would undo the click and keep the playground playing.
    st.session_state["network_pg_playing"] = playing


def _regenerate() -> None:
    st.session_state["network_pg_seed"] = st.session_state.get("network_pg_seed", 0) + 1


def render_buttons(playground: Playground) -> bool:
    """Play/pause, single step, reset, regenerate and display options; returns playing."""
    playing = st.session_state.get("network_pg_playing", False)
    c = st.columns(6)
    c[0].button(
        "Pause" if playing else "Play",
        key="network_pg_play",
        on_click=_set_playing,
        args=(not playing,),
        type="primary",
        width="stretch",
    )
    if c[1].button("Step", key="network_pg_step", width="stretch"):
        playground.step(1)
    if c[2].button("Reset", key="network_pg_reset", width="stretch"):
        playground.reset()
    c[3].button("Regenerate data", key="network_pg_regen", on_click=_regenerate, width="stretch")
    c[4].checkbox("Show test data", key="network_pg_show_test", persist_state="session")
    c[5].checkbox("Discretise output", key="network_pg_discrete", persist_state="session")
    return playing


def render_live(playing: bool) -> None:
    """The animated part: runs as a fragment, every PLAY_INTERVAL_S while playing."""
    st.fragment(_live_view, run_every=PLAY_INTERVAL_S if playing else None)()


def _live_view() -> None:
    playground: Playground | None = st.session_state.get("network_pg_state")
    if playground is None:
        return
    if st.session_state.get("network_pg_playing"):
        playground.step(st.session_state.get("network_pg_steps_per_frame", 10))
    history = playground.history
    m = st.columns(4)
    m[0].metric("Epoch", f"{playground.epoch:.1f}")
    m[1].metric("Train loss", f"{history.train_loss[-1]:.3f}")
    m[2].metric("Test loss", f"{history.test_loss[-1]:.3f}")
    m[3].metric("Test accuracy", f"{playground.accuracy():.0%}")
    axis, probability, layers = playground.grid_activations(50)
    train, test = playground.train_points, playground.test_points
    show_test = st.session_state.get("network_pg_show_test", False)
    left, right = st.columns([3, 2])
    left.plotly_chart(
        decision_figure(
            axis,
            probability,
            train.xy,
            train.labels,
            test.xy if show_test else None,
            test.labels if show_test else None,
            discretize=st.session_state.get("network_pg_discrete", False),
            axis_names=train.axis_names,
            class_names=train.class_names,
        ),
        key="network_pg_output",
    )
    right.plotly_chart(
        loss_figure(history.epochs, history.train_loss, history.test_loss), key="network_pg_losses"
    )
    right.caption(
        "Orange: class 0 (output near 0); blue: class 1. The background is the network's output "
        "at every point of the plane; below, the function each neuron computes."
    )
    st.caption(
        "What every neuron computes over the plane: the input features, then each hidden layer"
    )
    names = [FEATURES[f][0] for f in playground.config.features]
    st.plotly_chart(neuron_mosaic_figure(layers, names), key="network_pg_neurons")
