"""Cross-page session state, initialised once per session by dashboard.py.

Page-local keys carry their page's prefix (`train_lr`, `classify_upload`); only the keys
shared between pages are set here.
"""

from __future__ import annotations

import uuid

import streamlit as st

SHARED_DEFAULTS = {
    # "auto" lets core.devices pick; the sidebar changes it per session.
    "device_choice": "auto",
}


def init_session_state() -> None:
    """Set the shared keys once, without overwriting what the user already chose."""
    for key, value in SHARED_DEFAULTS.items():
        st.session_state.setdefault(key, value)
    # A stable id per browser session: jobs and runs are owned by it, so students sharing
    # one server never see each other's work.
    st.session_state.setdefault("session_id", uuid.uuid4().hex[:12])
