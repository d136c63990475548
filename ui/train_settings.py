"""Train page, sections 2 and 3: features, model and the hyperparameter sliders.

`features_and_model(data)` and `hyperparameters(data, ...)` draw the widgets (keys
train_*) and return what they describe; `build_config` turns it all into the TrainConfig
(a bad combination is shown as an error and blocks Start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from core.audio.features import FeatureConfig
from core.audio.input_recipe import clip_frames_for
from core.data.augment import AugmentConfig, preview_augmentation
from core.data.datasets import DatasetError
from core.data.profile import TRIM_DB
from core.data.splits import leakage_report, split_dataset
from core.devices import resolve_device
from core.jobs.cluster import cluster_address, connected
from core.models.layers import SpecError
from core.models.presets import preset_description, preset_spec
from core.models.shapes import parameter_count
from core.models.spec import ModelSpec
from core.training.config import MAX_WORKERS
from core.training.support import set_dropout
from core.training.trainer import TrainConfig, default_feature_config
from core.training.transfer import RANDOM_START
from core.viz.audio import spectrogram_figure
from ui.train_augment import audition, augment_settings, augment_widget_values
from ui.train_dataset import DataChoice, first_example_audio
from ui.train_start import LEARNING_RATE_KEY, START_KEY, start_choice

PREVIEW_RATE = 16000  # rate of the preview samples (ui.train_dataset thumbnails)
PRESETS = ("cnn_logmel", "crnn_logmel")  # the presets that read a log-mel image
BUILDER = "network from the Network builder page"
LEARNING_RATES = [
    1e-5,
    2e-5,
    5e-5,
    1e-4,
    2e-4,
    5e-4,
    1e-3,
    2e-3,
    3e-3,
    5e-3,
    1e-2,
    2e-2,
    5e-2,
    0.1,
    0.2,
    0.5,
    1.0,
]
BATCH_SIZES = [4, 8, 16, 32, 64, 128, 256]
WEIGHT_DECAYS = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
MAX_ENSEMBLE = 5  # members on the slider: each one costs the time of one network
NORMALIZATIONS = ["instance", "utterance", "global", "none"]  # instance: the engine's default
SPLITS = {
    "stratified": "stratified (each class split 80/20)",
    "random": "random",
    "group": "by group (speaker or source file)",
    "holdout": "hold out one group",
}


@dataclass(frozen=True)
class Model:
    """The network to train (adapted to the data) and what it costs."""

    spec: ModelSpec | None
    parameters: int  # of all the members together
    error: str = ""
    members: int = 1  # copies trained side by side (a deep ensemble)
    start_from: str = RANDOM_START  # a ready model's name (core.training.transfer)


RECIPE_KEY = "train_recipe_for"  # the data whose measured defaults the sliders were set to


def apply_recipe_defaults(data: DataChoice) -> dict:
    """The feature sliders' defaults for this data: the measured recipe's (or the engine's).

    When the data changes (a new zip, folder or set of recordings), the sliders are set to the
    new recipe once; after that they are the student's to move. Returns {widget key: value}.
    """
    base = default_feature_config()
    recipe = data.recipe
    defaults = {
        "train_sample_rate": base.sample_rate,
        "train_n_mels": base.n_mels,
        "train_hop_ms": _ms(base.hop_length, base.sample_rate),
        "train_win_ms": _ms(base.window_length, base.sample_rate),
        "train_clip_seconds": TrainConfig.clip_seconds,
        "train_trim": TrainConfig.trim_db is not None,
        "train_normalization": TrainConfig.normalization,
        **augment_widget_values(TrainConfig().augment),
        START_KEY: TrainConfig.start_from,
        LEARNING_RATE_KEY: TrainConfig.learning_rate,
    }
    if recipe is not None:
        defaults.update(
            {
                "train_sample_rate": int(recipe.sample_rate.value),
                "train_n_mels": int(recipe.n_mels.value),
                "train_clip_seconds": float(recipe.clip_seconds.value),
                "train_trim": recipe.trim_db.value is not None,
                "train_normalization": str(recipe.normalization.value),
                **augment_widget_values(recipe.augment.value),
                START_KEY: str(recipe.start_from.value),
                LEARNING_RATE_KEY: float(recipe.learning_rate.value),
            }
        )
    changed = st.session_state.get(RECIPE_KEY) != data.recipe_key
    for key, value in defaults.items():
        if changed or key not in st.session_state:
            st.session_state[key] = value
    st.session_state[RECIPE_KEY] = data.recipe_key
    return defaults


def recipe_panel(data: DataChoice) -> None:
    """What was measured, the defaults it led to and why (every one stays a slider below)."""
    recipe = data.recipe
    if recipe is None:
        st.warning(
            "None of the sampled clips could be measured, so the defaults are the "
            "spoken digits' recipe; check that your clips have sound."
        )
        return
    with st.expander(f"Defaults chosen from your data: {recipe.kind}", expanded=True):
        st.markdown(
            "\n".join(f"- **{name}**: {choice.reason}" for name, choice in recipe.choices().items())
        )
        st.caption(recipe.profile.summary() + " Every choice stays adjustable below.")


def feature_settings(data: DataChoice) -> tuple[FeatureConfig, str, str, float, float | None]:
    """Feature widgets and the example image; returns (config, kind, normalization, clip s,
    trim_db or None).

    The defaults are chosen from the data (core.data.profile: recipe_panel says why); the
    spoken digits get the engine's own (core.training.trainer.TrainConfig), tuned for them.
    """
    recipe_panel(data)
    defaults = apply_recipe_defaults(data)
    left, right = st.columns([2, 3])
    with left:
        kind = st.radio(
            "Features",
            ["logmel", "mfcc"],
            horizontal=True,
            key="train_feature_kind",
            format_func={"logmel": "log-mel", "mfcc": "MFCC"}.get,
        )
        rate = st.select_slider(
            "Sample rate (Hz)",
            sorted({8000, 16000, 22050, defaults["train_sample_rate"]}),
            key="train_sample_rate",
            help="Clips are resampled to this rate; half of it is the highest "
            "frequency the features keep.",
        )
        n_mels = st.select_slider(
            "Mel bands",
            sorted({16, 32, 40, 64, 80, 128, defaults["train_n_mels"]}),
            key="train_n_mels",
        )
        hop_ms = st.select_slider("Hop (ms between frames)", [5, 10, 20, 40], key="train_hop_ms")
        win_ms = st.select_slider("Window (ms)", [16, 25, 32, 64], key="train_win_ms")
        clip_seconds = st.slider(
            "Clip length (s)",
            0.25,
            4.0,
            step=0.25,
            key="train_clip_seconds",
            help="Every example is cut (around its middle) or padded to this length.",
        )
        trim = st.toggle(
            "Trim silence, stretch the sound to the clip",
            key="train_trim",
            disabled=kind != "logmel",
            help="Cuts the frames 20 dB under the loudest at both ends and stretches "
            "what is left to the clip length: lines up words said at different paces; "
            "erases how long a note rings. Log-mel only.",
        )
        normalization = st.selectbox(
            "Normalisation",
            NORMALIZATIONS,
            key="train_normalization",
            help="instance: each clip to mean 0, std 1 (removes loudness, "
            "keeps the spectral shape; the default); utterance: each of a "
            "clip's bands to mean 0, std 1; global: statistics of the "
            "training split.",
        )
    win = int(rate * win_ms / 1000)
    config = FeatureConfig(
        sample_rate=rate,
        n_fft=max(256, 2 ** math.ceil(math.log2(win))),
        win_length=win,
        hop_length=int(rate * hop_ms / 1000),
        n_mels=n_mels,
        n_mfcc=min(20, n_mels),
        f_max=rate / 2,
    )
    frames = clip_frames_for(config, clip_seconds)
    with right:
        samples = first_example_audio(data.dataset)
        if samples is not None:
            view = preview_augmentation(
                samples,
                PREVIEW_RATE,
                augment=AugmentConfig.off(),
                feature_config=config,
                kind=kind,
                normalization="utterance" if normalization == "global" else normalization,
                clip_frames=frames,
            )
            figure = spectrogram_figure(
                view.original_features,
                rate,
                config.hop_length,
                y_axis="mfcc" if kind == "mfcc" else "mel",
                f_max=rate / 2,
                height=260,
                colorbar_title="z" if normalization != "none" else "dB",
            )
            st.plotly_chart(figure, key="train_feature_image", config={"displayModeBar": False})
            bins = config.num_bins(kind)
            st.caption(
                f"What the network sees of the first clip: {bins} × {frames} numbers "
                f"({bins} {'coefficients' if kind == 'mfcc' else 'bands'} × {frames} frames)."
            )
    trim_db = TRIM_DB if trim else None  # the engine trims log-mel only
    return config, kind, normalization, clip_seconds, trim_db


def _ms(samples: int, rate: int) -> int:
    """A length in samples as whole milliseconds, snapped to the slider's steps."""
    ms = 1000 * samples / rate
    return min((5, 10, 16, 20, 25, 32, 40, 64), key=lambda step: abs(step - ms))


def model_settings(
    shape: tuple[int, int, int],
    classes: int,
    features: FeatureConfig,
    kind: str,
    normalization: str,
) -> Model:
    """Where the weights start, the preset or builder network, dropout, and the parameter
    count for this data (a ready model to start from brings its own network)."""
    start, problem = start_choice(features, kind, normalization)
    if problem:
        return Model(None, 0, problem)
    has_builder = isinstance(st.session_state.get("network_spec"), ModelSpec)
    options = list(PRESETS) + [BUILDER] * has_builder
    choice = st.selectbox(
        "Network",
        options,
        key="train_model",
        format_func=lambda n: n if n == BUILDER else f"{n}: {preset_description(n)}",
        disabled=start is not None,
    )
    if start is None and not has_builder:
        st.caption("Build your own on the Network builder page and it will appear here.")
    if start is not None:
        base = start.spec
    elif choice == BUILDER:
        base = st.session_state["network_spec"]
    else:
        base = preset_spec(choice)
    first = next((layer.param("p") for layer in base.layers if layer.kind == "Dropout"), None)
    left, right = st.columns(2)
    with left:
        dropout = st.slider(
            "Dropout",
            0.0,
            0.7,
            float(first if first is not None else 0.0),
            0.05,
            key="train_dropout",
            disabled=first is None,
            help="Share of activations zeroed at random while training.",
        )
    with right:
        members = st.slider(
            "Ensemble members",
            1,
            MAX_ENSEMBLE,
            TrainConfig.members,
            key="train_members",
            help="Copies of the network, each from its own random start, trained side by "
            "side; a prediction averages their probabilities. They make different "
            "mistakes on voices they never heard, so together they are right more "
            "often. Each member costs the time of one network: 1 trains fastest.",
        )
    try:
        spec, _ = set_dropout(base, dropout)
        spec = spec.with_input_shape(shape).with_num_outputs(classes)
        count = parameter_count(spec.with_members(members))
    except (SpecError, ValueError) as error:
        st.error(f"This network cannot read the features: {error}")
        return Model(None, 0, str(error))
    note = "" if first is not None else " · no Dropout layer in this network"
    each = f" ({members} members of {count // members:,})" if members > 1 else ""
    st.caption(
        f"**{count:,} parameters**{each} for input {shape[0]}×{shape[1]}×{shape[2]} and {classes} "
        f"classes{note}."
    )
    return Model(spec, count, members=members, start_from=start.name if start else RANDOM_START)


def hyperparameters() -> dict:
    """The optimisation sliders; returns TrainConfig fields."""
    c1, c2, c3 = st.columns(3)
    with c1:
        lr = st.select_slider(
            "Learning rate",
            LEARNING_RATES,
            key=LEARNING_RATE_KEY,  # its default follows the recipe and the start (ui.train_start)
            format_func=lambda v: f"{v:g}",
            help="Log scale. Too high and the loss explodes; too low and nothing moves.",
        )
        batch = st.select_slider("Batch size", BATCH_SIZES, value=32, key="train_batch")
        epochs = st.slider("Epochs", 1, 100, 10, key="train_epochs")
    with c2:
        optimizer = st.selectbox("Optimiser", ["adamw", "adam", "sgd"], key="train_optimizer")
        schedule = st.selectbox(
            "Schedule", ["one_cycle", "cosine", "step", "constant"], key="train_schedule"
        )
        weight_decay = st.select_slider(
            "Weight decay",
            WEIGHT_DECAYS,
            value=1e-2,
            key="train_wd",
            format_func=lambda v: f"{v:g}",
        )
    with c3:
        smoothing = st.slider("Label smoothing", 0.0, 0.3, 0.1, 0.05, key="train_smoothing")
        clip = st.toggle("Clip gradients (norm 5)", value=True, key="train_grad_clip")
        seed = int(st.number_input("Seed", 0, 1_000_000, 0, key="train_seed"))
        tsne = st.toggle(
            "t-SNE map of the embeddings",
            value=True,
            key="train_tsne",
            help="Drawn once at the end; takes a few seconds more.",
        )
    return dict(
        learning_rate=lr,
        batch_size=batch,
        epochs=epochs,
        optimizer=optimizer,
        schedule=schedule,
        weight_decay=weight_decay,
        label_smoothing=smoothing,
        grad_clip_norm=5.0 if clip else None,
        seed=seed,
        tsne=tsne,
        workers=workers_setting(),
    )


def workers_setting() -> int:
    """Data-parallel workers (TrainConfig.workers), offered for a class cluster: when the app
    joins one (AUDIO_DL_RAY_ADDRESS / RAY_ADDRESS) or its Ray has several machines or GPUs.
    Elsewhere one worker: more processes on one CPU would not train faster."""
    info = connected()
    if cluster_address() is None and (info is None or (info.nodes < 2 and info.gpus < 2)):
        return 1
    return int(
        st.number_input(
            "Workers (data-parallel)",
            1,
            MAX_WORKERS,
            1,
            key="train_workers",
            help="Train one network on several workers at once (DDP): each gets its share of "
            "every batch, one GPU each on a GPU, and their gradients are averaged, so the "
            "batch size above is split between them. Still one training and one run.",
        )
    )


def split_settings(data: DataChoice, seed: int) -> tuple[dict, str]:
    """Split widgets and the leakage check; returns (TrainConfig fields, blocking error)."""
    left, right = st.columns(2)
    method = left.selectbox(
        "Validation split", list(SPLITS), format_func=SPLITS.get, key="train_split"
    )
    fields = {"split": method, "val_fraction": 0.2, "val_groups": ()}
    if method == "holdout":
        groups = sorted({e.group for e in data.dataset.examples})
        fields["val_groups"] = (right.selectbox("Validation group", groups, key="train_holdout"),)
    else:
        fields["val_fraction"] = right.slider(
            "Validation share", 0.1, 0.5, 0.2, 0.05, key="train_val_fraction"
        )
    try:
        split = split_dataset(
            data.dataset,
            method=method,
            val_fraction=fields["val_fraction"],
            seed=seed,
            val_groups=fields["val_groups"],
        )
    except DatasetError as error:
        hint = " With few clips per class, raise the validation share or add clips."
        st.error(str(error) + (hint if "empty" in str(error) else ""))
        return fields, str(error)
    report = leakage_report(data.dataset, split)
    shown = st.warning if report.leaks else st.caption
    shown(f"{len(split.train)} training / {len(split.val)} validation clips. {report.message()}")
    return fields, ""


def device_caption() -> None:
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    st.caption(f"Training runs on **{device}** (change it in the sidebar).")


def augmentation_section(feature_config, kind, normalization, clip_seconds, data) -> AugmentConfig:
    config = augment_settings(kind)
    frames = clip_frames_for(feature_config, clip_seconds)
    audition(
        config,
        first_example_audio(data.dataset),
        feature_config,
        kind,
        "utterance" if normalization == "global" else normalization,
        frames,
    )
    return config


def build_config(data: DataChoice, **fields) -> TrainConfig | None:
    """The TrainConfig of all the settings (None, with the sentences shown, if invalid)."""
    train_share = 1 - fields.get("val_fraction", 0.2)
    steps = math.ceil(len(data.dataset) * train_share / fields["batch_size"])
    try:
        return TrainConfig(
            data=data.source,
            model=st.session_state.get("train_model", "cnn_logmel")
            if st.session_state.get("train_model") in PRESETS
            else "cnn_logmel",
            log_every_steps=max(1, min(10, steps // 8)),
            **fields,
        )
    except ValueError as error:
        st.error(str(error))
        return None
