"""Choosing the collection to explore: built-in digits or music windows, or an uploaded zip."""

from __future__ import annotations

import streamlit as st

from core.lessons import unsupervised as uns

SOURCES = {
    "digits": "Spoken digits (200 clips: 10 digits x 4 speakers)",
    "music": "Music windows (2 s windows of the built-in recordings)",
    "zip": "Upload a zip of audio files",
}
UPLOAD_KEY = "explore_zip_collection"  # (file_id, Collection | error sentence)


@st.cache_data(max_entries=2, show_spinner="Loading the built-in clips...")
def _builtin(source: str) -> uns.Collection:
    if source == "digits":
        return uns.builtin_digit_collection(n_clips=200)
    return uns.builtin_music_collection()


def pick_collection() -> tuple[str, uns.Collection] | None:
    """(collection id, collection) for the user's choice, or None with a message in the page."""
    source = st.radio(
        "Collection", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="explore_source"
    )
    if source != "zip":
        try:
            return source, _builtin(source)
        except (OSError, ValueError) as error:
            st.error(f"The built-in clips could not be loaded: {error}")
            return None
    upload = st.file_uploader(
        "A zip of audio files (sub-folders become labels; at most "
        f"{uns.ZIP_MAX_FILES} files, {uns.ZIP_MAX_BYTES // 1024**2} MB unpacked, "
        f"first {uns.ZIP_MAX_CLIP_SECONDS:.0f} s of each file)",
        type=["zip"],
        key="explore_zip",
    )
    if upload is None:
        st.info("Upload a zip, or pick a built-in collection.")
        return None
    cached = st.session_state.get(UPLOAD_KEY)
    if cached is None or cached[0] != upload.file_id:
        with st.spinner("Unpacking and decoding the zip..."):
            try:
                result = uns.collection_from_zip(upload.getvalue())
            except ValueError as error:  # DatasetError and "too few clips" are ValueErrors
                result = str(error)
        st.session_state[UPLOAD_KEY] = cached = (upload.file_id, result)
    if isinstance(cached[1], str):
        st.error(cached[1])
        return None
    return f"zip:{upload.file_id}", cached[1]


def describe_collection(collection: uns.Collection) -> None:
    """One line on what was loaded, and what was left out and why."""
    labels = ", ".join(collection.label_names) or "none"
    seconds = sum(len(c.samples) for c in collection.clips) / collection.sample_rate
    st.caption(
        f"{len(collection)} clips, {seconds:.0f} s in all, resampled to "
        f"{collection.sample_rate} Hz. Labels known (never used for learning): {labels}."
    )
    if collection.skipped:
        st.warning(f"{len(collection.skipped)} file(s) left out.")
        with st.expander("What was left out, and why"):
            st.text("\n".join(collection.skipped[:200]))
