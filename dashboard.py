"""Audio DL Studio: the entry script.

Run with `make run` (or `streamlit run dashboard.py`). It sets the page config, initialises
the shared session state, draws the shared sidebar (device panel) and routes to the pages
listed in ui/registry.py.
"""

import streamlit as st

from ui.registry import PAGES, sections
from ui.sidebar import render_device_panel
from ui.state import init_session_state

st.set_page_config(
    page_title="Audio DL Studio",
    page_icon=":material/graphic_eq:",
    layout="wide",
)
init_session_state()

navigation = st.navigation(
    {
        section: [
            st.Page(
                page.script,
                title=page.title,
                icon=page.icon,
                url_path=page.url_path,
                default=page is PAGES[0],
            )
            for page in pages
        ]
        for section, pages in sections().items()
    }
)

with st.sidebar:
    render_device_panel()

navigation.run()
