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

ranks, matmul, broadcasting, memory, conversions, generators, console = st.tabs(
    [
        "1 · Ranks",
        "2 · Matrix multiplication",
        "3 · Broadcasting",
        "4 · Memory",
        "5 · Conversions",
        "6 · Generators",
        "7 · Expression console",
    ]
)
with ranks:
    render_ranks()
with matmul:
    render_matmul()
with broadcasting:
    render_broadcasting()
with memory:
    render_memory()
with conversions:
    render_conversions()
with generators:
    render_generators()
with console:
    # last, so that it sees the tensors the other tabs have just built
    render_console()
