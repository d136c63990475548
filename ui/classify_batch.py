"""Classify page, many clips: upload several files (or take built-in ones), get a table and CSV."""

from __future__ import annotations

import streamlit as st

from core.audio.clip import UPLOAD_TYPES
from core.inference.classifier import InferenceModel, batch_csv, classify_files, file_stem
from core.paths import DIGITS_DIR

MAX_FILES = 200  # one batch; more is a job for the command line
BUILTIN_BATCH = tuple(f"{digit}_nicolas_{take}.wav" for digit in range(10) for take in (0, 1))


def show_batch(prefix: str, model: InferenceModel) -> None:
    """File uploader (many files) or a built-in set -> table (file, class, confidence) + CSV."""
    uploads = st.file_uploader(
        "Upload clips", type=list(UPLOAD_TYPES), accept_multiple_files=True,
        key=f"{prefix}_batch_upload",
        help=f"Up to {MAX_FILES} files; each is classified on its own.",
    )  # fmt: skip
    builtin = st.toggle(
        "Use 20 built-in spoken digits instead", key=f"{prefix}_batch_builtin",
        help="Two takes of each digit by one speaker; the ready-made model trained on some "
        "takes of every speaker, so a few of these may be clips it has seen.",
    )  # fmt: skip
    if builtin:
        sources = [(name, DIGITS_DIR / name) for name in BUILTIN_BATCH]
    elif uploads:
        sources = [(u.name, u) for u in uploads]
    else:
        st.caption("Upload clips (or use the built-in set) to classify them all at once.")
        return
    if len(sources) > MAX_FILES:
        st.warning(f"{len(sources)} files: only the first {MAX_FILES} are classified.")
        sources = sources[:MAX_FILES]
    with st.spinner(f"Classifying {len(sources)} clips..."):
        rows = classify_files(model, sources)
    failed = sum(1 for r in rows if not r.label)
    if failed:
        st.warning(f"{failed} of {len(rows)} files could not be read: see the note column.")
    table = [
        {"file": r.file, "class": r.label or "—",
         "confidence": None if r.confidence != r.confidence else round(r.confidence, 3),
         "unsure": r.unsure, "seconds": None if r.duration_seconds != r.duration_seconds
         else round(r.duration_seconds, 2), "note": r.note}
        for r in rows
    ]  # fmt: skip
    st.dataframe(table, key=f"{prefix}_batch_table", hide_index=True)
    st.download_button(
        "Download CSV", batch_csv(rows), file_name=f"{file_stem(model.name)}_predictions.csv",
        mime="text/csv", key=f"{prefix}_batch_csv", icon=":material/download:",
        on_click="ignore",
    )  # fmt: skip
