"""Train page, section 1: choose or build the data set, then preview it.

Sources: the built-in spoken digits, an uploaded zip of class folders (extracted safely by
core.data.datasets), a folder on the server (only under AUDIO_DL_DATA_ROOTS), or clips recorded
or uploaded per class in the browser, Teachable-Machine style. Recorded clips live in
st.session_state["train_clips"] ({class name: {digest: AudioClip}}) until removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from core.audio.clip import UPLOAD_TYPES, AudioClip, AudioError
from core.audio.features import FeatureConfig, make_feature_transform
from core.audio.io import probe_audio
from core.audio.levels import encode_wav
from core.data.datasets import (
    AudioDataset,
    AudioExample,
    DatasetError,
    builtin_digits,
    content_hash,
    dataset_from_clips,
    load_example_audio,
)
from core.data.profile import RecipeChoice, recipe_for_dataset
from core.data.sources import load_dataset
from core.data.splits import class_balance
from core.data.zips import dataset_from_zip
from core.training.support import (
    allowed_data_roots,
    check_server_path,
    class_warnings,
    limit_per_class,
)
from core.viz.audio import spectrogram_figure, spectrogram_thumbnail
from core.viz.training import class_counts_figure
from ui.audio_input import decode_upload
from ui.fingerprint import fingerprint

DIGITS, ZIP, SERVER, RECORD = (
    "Built-in spoken digits",
    "Zip of class folders",
    "Server folder",
    "Record per class",
)
CLIPS_KEY = "train_clips"
SEEN_KEY = "train_clips_seen"  # digests already added per class, so a removed clip stays removed
RECORD_RATE = 16000
THUMBNAIL_HOP = 160  # samples between the thumbnails' log-mel frames (10 ms at RECORD_RATE)
MAX_RECORD_SECONDS = 30.0
MAX_CLASSES = 12


@dataclass(frozen=True)
class DataChoice:
    """The data set to train on and how to describe it in the run and the exported script."""

    dataset: AudioDataset
    source: str  # TrainConfig.data
    label: str  # shown in the run's name
    limit: int  # clips per class kept (0 = all)
    script_data: str  # what the exported script loads ("" = recorded clips: ask for --data)
    blocking: tuple[str, ...]  # errors that keep Start disabled
    recipe: RecipeChoice | None = None  # the defaults measured from the data (None: unmeasurable)
    recipe_key: str = ""  # changes when the data does: the page then resets its sliders


@st.cache_data(max_entries=4, show_spinner="Reading the zip...")
def _zip_dataset(digest: str, name: str, _data: bytes) -> AudioDataset:
    return dataset_from_zip(_data, name=name)


@st.cache_data(max_entries=4, show_spinner=False)
def _load_source(source: str) -> AudioDataset:
    return builtin_digits() if source == "builtin:digits" else load_dataset(source)


def dataset_section() -> DataChoice | None:
    """Source picker, quick-subset control and preview; the DataChoice or None."""
    kind = st.segmented_control(
        "Data source",
        [DIGITS, ZIP, SERVER, RECORD],
        default=DIGITS,
        required=True,
        key="train_data_source",
    )
    try:
        picked = _pick(kind)
    except (DatasetError, AudioError) as error:
        st.error(str(error))
        return None
    if picked is None:
        return None
    dataset, source, label, script_data = picked
    recipe, recipe_key = measured_recipe(dataset)
    limit = int(
        st.number_input(
            "Clips per class (0 = all)",
            min_value=0,
            max_value=100_000,
            value=0,
            step=10,
            key="train_limit",
            help="A random (seeded) subset per class: a quick first run.",
        )
    )
    dataset = limit_per_class(dataset, limit)
    blocking = _preview(dataset)
    return DataChoice(
        dataset, source, label, limit, script_data, tuple(blocking), recipe, recipe_key
    )


def measured_recipe(dataset: AudioDataset) -> tuple[RecipeChoice | None, str]:
    """(the recipe chosen from a sample of the data set's clips, a key naming the data).

    Measured on the whole data set, not the quick subset, so the defaults do not move with
    "clips per class". The key hashes the clips' names (and the bytes of clips recorded in
    the browser); None when no sampled clip could be measured.
    """
    parts = [dataset.name]
    for example in dataset.examples:
        parts.append(example.ref)
        if example.in_memory:
            parts.append(content_hash(dataset, example))
    key = fingerprint("\0".join(parts).encode())
    return _recipe_cached(key, dataset), key


@st.cache_data(max_entries=8, show_spinner="Measuring a sample of the clips...")
def _recipe_cached(key: str, _dataset: AudioDataset) -> RecipeChoice | None:
    try:
        return recipe_for_dataset(_dataset)
    except ValueError:
        return None


def _pick(kind: str | None) -> tuple[AudioDataset, str, str, str] | None:
    if kind == ZIP:
        upload = st.file_uploader("A zip with one folder per class", type=["zip"], key="train_zip")
        if upload is None:
            st.caption("Each folder name is a class; the audio files inside are its examples.")
            return None
        data = upload.getvalue()
        digest = fingerprint(data)
        return _zip_dataset(digest, upload.name, data), f"zip:{upload.name}", upload.name, ""
    if kind == SERVER:
        roots = allowed_data_roots()
        text = st.text_input(
            "Folder or zip on the server",
            key="train_server_path",
            placeholder=str(roots[0]) if roots else "switched off on this server",
        )
        if not roots or text.strip():
            path = check_server_path(text, roots)
            return _load_source(str(path)), str(path), path.name, str(path)
        st.caption(f"Allowed folders: {', '.join(str(r) for r in roots)}.")
        return None
    if kind == RECORD:
        return _recorded()
    return _load_source("builtin:digits"), "builtin:digits", "digits", "builtin:digits"


# --------------------------------------------------------------------------- recording


def _recorded() -> tuple[AudioDataset, str, str, str] | None:
    # Widget values are dropped when the student visits another page; the recorded clips are
    # not, so the class names they are filed under are kept beside them.
    text = st.text_input(
        "Class names, separated by commas",
        key="train_rec_classes",
        value=st.session_state.get("train_rec_names", "yes, no"),
    )
    st.session_state["train_rec_names"] = text
    names = list(dict.fromkeys(n.strip()[:40] for n in text.split(",") if n.strip()))[:MAX_CLASSES]
    clips: dict[str, dict[str, AudioClip]] = st.session_state.setdefault(CLIPS_KEY, {})
    for index, (name, column) in enumerate(
        zip(names, st.columns(max(1, min(len(names), 4))) * 3, strict=False)
    ):
        with column.container(border=True):
            _class_recorder(index, name, clips.setdefault(name, {}))
    pairs = [(name, clip) for name in names for clip in clips.get(name, {}).values()]
    counts = {name: len(clips.get(name, {})) for name in names}
    if sum(counts.values()) == 0:
        st.info("Record or upload a few clips for each class (5 or more each works best).")
        return None
    if len([n for n in names if counts[n]]) < 2:
        errors, _ = class_warnings(counts)
        for error in errors:
            st.error(error)
        return None
    return dataset_from_clips(pairs), "clips:recorded", "recorded clips", ""


def _class_recorder(index: int, name: str, store: dict[str, AudioClip]) -> None:
    st.markdown(f"**{name}** · {len(store)} clip(s)")
    seen: set[str] = st.session_state.setdefault(SEEN_KEY, {}).setdefault(name, set())
    recording = st.audio_input(
        f"Record '{name}'", sample_rate=RECORD_RATE, key=f"train_rec_{index}"
    )
    uploads = st.file_uploader(
        f"or upload '{name}' clips",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        key=f"train_rec_up_{index}",
    )
    incoming = ([recording] if recording is not None else []) + list(uploads or [])
    for item in incoming:
        data = item.getvalue()
        digest = fingerprint(data)
        if digest in seen:
            continue
        seen.add(digest)
        try:
            store[digest] = decode_upload(
                data,
                getattr(item, "name", "recording"),
                sample_rate=RECORD_RATE,
                max_seconds=MAX_RECORD_SECONDS,
            )
        except AudioError as error:
            st.error(f"{name}: {error}")
    for digest, clip in list(store.items()):
        left, right = st.columns([4, 1])
        left.audio(encode_wav(clip.samples, clip.sample_rate), format="audio/wav")
        if right.button("✕", key=f"train_rec_rm_{index}_{digest}", help="Remove this clip"):
            del store[digest]
            st.rerun()


# --------------------------------------------------------------------------- preview


def _thumbnail(dataset: AudioDataset, example: AudioExample):
    """(samples at 16 kHz, log-mel (64, frames)) of one example, for players and thumbnails."""
    # A browser clip's key is its position, so its content must be part of the cache key.
    token = content_hash(dataset, example) if example.in_memory else ""
    return _thumbnail_cached(example, token, dataset)


@st.cache_data(max_entries=64, show_spinner=False)
def _thumbnail_cached(example: AudioExample, token: str, _dataset: AudioDataset):
    """(samples at 16 kHz, log-mel (64, frames), top band edge in Hz) of one example."""
    samples = load_example_audio(_dataset, example, RECORD_RATE)
    # Mel bands end at the recording's own Nyquist frequency: an 8 kHz file has nothing
    # above 4 kHz, and empty bands would fill half the picture.
    native = (
        _dataset.memory[example.source][1]
        if example.in_memory
        else probe_audio(example.source).sample_rate
    )
    f_max = min(RECORD_RATE, native) / 2
    config = FeatureConfig(
        sample_rate=RECORD_RATE,
        n_fft=512,
        hop_length=THUMBNAIL_HOP,
        n_mels=64,
        f_max=f_max,
    )
    with torch.no_grad():
        logmel = make_feature_transform(config, "logmel")(torch.as_tensor(samples)).numpy()
    return samples, logmel, f_max


def example_view(
    dataset: AudioDataset, example, *, height: int = 170, key: str = "", picture: bool = False
) -> None:
    """A player and a small log-mel spectrogram of one example (errors shown, not raised).
    picture: the spectrogram as a picture (spectrogram_thumbnail) instead of a plotly
    heatmap with hover, for lists of clips: a browser draws a picture for next to nothing."""
    try:
        samples, logmel, f_max = _thumbnail(dataset, example)
    except (AudioError, OSError, KeyError) as error:
        st.warning(f"{example.ref}: cannot be played ({error}).")
        return
    st.audio(encode_wav(samples, RECORD_RATE), format="audio/wav")
    if picture:
        st.image(spectrogram_thumbnail(logmel, height=height), width="stretch")
        return
    st.plotly_chart(
        (spectrogram_figure(logmel, RECORD_RATE, THUMBNAIL_HOP, f_max=f_max, height=height)),
        key=key or None,
        config={"displayModeBar": False},
    )


def _preview(dataset: AudioDataset) -> list[str]:
    counts = class_balance(dataset)
    errors, warnings = class_warnings(counts)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(class_counts_figure(counts), key="train_counts_chart")
        st.caption(f"{dataset.name}: {len(dataset)} clips in {len(dataset.labels)} classes.")
    with right:
        label = st.selectbox("Listen to class", dataset.labels, key="train_preview_class")
        members = [e for e in dataset.examples if dataset.labels[e.label] == label]
        if members:
            by_name = {e.ref: e for e in members}
            if st.session_state.get("train_preview_clip") not in by_name:
                st.session_state.pop("train_preview_clip", None)  # a clip of another class
            chosen = st.selectbox("Clip", list(by_name), key="train_preview_clip")
            example_view(dataset, by_name[chosen], key="train_preview_spec")
    _thumbnails(dataset)
    for error in errors:
        st.error(error)
    for warning in warnings:
        st.warning(warning)
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} file(s) left out"):
            st.text("\n".join(dataset.skipped[:200]))
    return errors


def _thumbnails(dataset: AudioDataset, count: int = 4) -> None:
    """Spectrograms of the first clip of up to `count` classes, side by side."""
    firsts = {}
    for example in dataset.examples:
        firsts.setdefault(example.label, example)
    shown = list(firsts.values())[:count]
    for column, example in zip(st.columns(count), shown, strict=False):
        with column:
            st.caption(f"class {dataset.labels[example.label]} · {example.ref}")
            try:
                _, logmel, f_max = _thumbnail(dataset, example)
            except (AudioError, OSError, KeyError):
                st.caption("(cannot be decoded)")
                continue
            # A picture, not a plotly heatmap (core.viz.audio.spectrogram_thumbnail says why);
            # the clip picked above is the one to hover, with its player.
            st.image(spectrogram_thumbnail(logmel), width="stretch")
            seconds = logmel.shape[1] * THUMBNAIL_HOP / RECORD_RATE
            st.caption(f"0 to {f_max / 1000:g} kHz, mel scale · {seconds:.1f} s")


def first_example_audio(dataset: AudioDataset) -> np.ndarray | None:
    """Samples (16 kHz) of the data set's first example, for the feature and augment previews."""
    if not dataset.examples:
        return None
    example = dataset.examples[0]
    try:
        return _thumbnail(dataset, example)[0]
    except (AudioError, OSError, KeyError):
        return None
