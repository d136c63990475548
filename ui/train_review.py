"""Train page, sections 5 (results) and 6 (compare runs) as one named fragment.

Why a fragment: these sections change when a training ends, when a run is picked or deleted,
and when a result tab opens; none of that changes the data and settings sections above them.
A job's end reruns section 4 and this fragment together (ui.train_live.rerun_with_review),
and a click in here reruns only this fragment: on the 2-core machine the whole Train page's
rerun cost Chromium's main thread about 1 s more, taken from the workers of a class sharing it.
"""

from __future__ import annotations

import streamlit as st

from core.jobs.manager import JobManager
from ui.train_compare import compare_section
from ui.train_live import REVIEW_FRAGMENT, REVIEW_QUEUED_KEY
from ui.train_results import results_section


@st.fragment(key=REVIEW_FRAGMENT)
def review_sections(jobs: JobManager, owner: str) -> None:
    """Section 5, the results of a finished run, and section 6, the comparison of runs."""
    st.session_state.pop(REVIEW_QUEUED_KEY, None)  # section 4 ran before this, in this run
    st.header("5. Results")
    results_section(jobs.store, owner)
    st.header("6. Compare runs")
    compare_section(jobs.store, jobs, owner)
