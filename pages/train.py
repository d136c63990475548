"""Train: build a data set, tune hyperparameters with sliders, watch training, listen to errors."""

import streamlit as st

from core.audio.input_recipe import clip_frames_for
from core.devices import resolve_device
from core.jobs.manager import get_job_manager
from ui.train_augment import augment_from_session, augment_summary
from ui.train_dataset import dataset_section
from ui.train_live import attach_session, train_and_watch
from ui.train_review import review_sections
from ui.train_settings import (
    augmentation_section,
    build_config,
    device_caption,
    feature_settings,
    hyperparameters,
    model_settings,
    split_settings,
)
from ui.train_sweep import sweep_section

st.title("Train")
st.caption(
    "**Supervised learning**: the network learns from labelled examples (clips and their "
    "classes); a loss compares its predictions with the labels."
)
st.markdown(
    "Train an audio classifier and see what each setting does. The network sees each clip as "
    "a **log-mel spectrogram** (or MFCCs), makes a guess, and the **loss** says how wrong it "
    "was; the **optimiser** nudges every weight to lower it, one **batch** at a time. An "
    "**epoch** is one pass over the training clips. The **validation** clips are never trained "
    "on: their accuracy tells you how well the network handles sounds it has not heard."
)
owner = attach_session()
jobs = get_job_manager()

st.header("1. Data")
data = dataset_section()

config = spec = None
if data is not None:
    st.header("2. Features and model")
    features, kind, normalization, clip_seconds, trim_db = feature_settings(data)
    bins = features.num_bins(kind)
    frames = clip_frames_for(features, clip_seconds)
    model = model_settings(
        (1, bins, frames), len(data.dataset.labels), features, kind, normalization
    )

    st.header("3. Hyperparameters")
    device_caption()
    fields = hyperparameters()
    split_fields, split_error = split_settings(data, fields["seed"])
    # A tracked expander: its twenty switches and sliders are drawn only while it is open (a
    # fifth of what Chromium did on every visit to the page); closed, the session's values
    # are used and a caption says which are on. (Its label stays the same: a new label
    # would make it a new expander, closed again.)
    augmentation = st.expander(
        "Augmentation: new training examples from old ones",
        key="train_augment_open",
        on_change="rerun",
    )
    if augmentation.open:
        with augmentation:
            augment = augmentation_section(features, kind, normalization, clip_seconds, data)
    else:
        augment = augment_from_session(kind)
        st.caption(f"Augmentation on: {augment_summary(augment)}.")
    name = st.text_input("Run name", value=data.label, max_chars=120, key="train_run_name")
    if data.limit and not name.endswith(f"{data.limit}/class"):
        name = f"{name} · {data.limit}/class"  # the subset travels with the run (its script)
    config = build_config(
        data,
        features=features,
        feature_kind=kind,
        normalization=normalization,
        clip_seconds=clip_seconds,
        trim_db=trim_db,
        augment=augment,
        name=name,
        members=model.members,
        start_from=model.start_from,
        **fields,
        **split_fields,
    )
    spec = model.spec
    if data.blocking or split_error:
        config = None  # the reasons are shown above

st.header("4. Train and watch")
device = resolve_device(st.session_state.get("device_choice", "auto"))
train_and_watch(jobs, owner, config, spec, data, device)
sweep_section(jobs, owner, config, spec, data, device)
review_sections(jobs, owner)  # sections 5 and 6
