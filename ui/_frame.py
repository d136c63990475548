"""Make every script run go through dashboard.py (see ui/__init__.py for why)."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager  # private: pinned Streamlit version


def route_through_entry_script() -> None:
    """If Streamlit is still in folder-of-pages mode, leave it and rerun through the entry."""
    if PagesManager.uses_pages_directory and st.runtime.exists():
        PagesManager.uses_pages_directory = False
        st.rerun()
