"""Tensor playground: ranks, matrix products step by step, broadcasting, memory, conversions,
generators and a safe expression console. Each section's UI lives in ui/tensors_*.py."""

import streamlit as st

from ui.tensors_broadcast import render_broadcasting
from ui.tensors_console import render_console
from ui.tensors_conversions import render_conversions
from ui.tensors_generators import render_generators
from ui.tensors_matmul import render_matmul
from ui.tensors_memory import render_memory
from ui.tensors_ranks import render_ranks

st.title("Tensor playground")
st.markdown(
    "PyTorch keeps every signal, spectrogram and network weight in **tensors**. Build some, "
    "multiply them by hand, stretch them by broadcasting, find out when two names share memory, "
    "and try your own expressions. Each tab explains one idea beside the thing to play with."
)

# Only the open tab runs: all seven together took 1.9 s of the server's time on every page
# switch and rerun (the broadcasting tab's spectrograms alone 0.6 s; bench_class), the Ranks
# tab alone 0.1 s. The choice of tab is kept (key), and a click on another tab reruns.
SECTIONS = {
    "1 · Ranks": render_ranks,
    "2 · Matrix multiplication": render_matmul,
    "3 · Broadcasting": render_broadcasting,
    "4 · Memory": render_memory,
    "5 · Conversions": render_conversions,
    "6 · Generators": render_generators,
    "7 · Expression console": render_console,
}
# Streamlit forgets the values of widgets it did not draw, so a closed tab's settings are
# kept here and given back when it opens again (buttons and toggles, bools, are not: a
# button's value cannot be set).
kept = st.session_state.setdefault("tensors_kept_widgets", {})
for key, value in kept.items():
    st.session_state.setdefault(key, value)
tabs = st.tabs(list(SECTIONS), key="tensors_tab", on_change="rerun")
for tab, render in zip(tabs, SECTIONS.values(), strict=True):
    with tab:
        if tab.open:
            render()
kept.update(
    {
        key: value
        for key, value in st.session_state.items()
        if key.startswith("tensors_")
        and key != "tensors_tab"
        and not isinstance(value, bool | dict)
    }
)
