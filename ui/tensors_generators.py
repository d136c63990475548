"""Section 6 of the tensor playground: a generator of audio frames, stepped with next()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.tensors.generators import (
    FRAMES_SOURCE_LINES,
    frame_batches,
    frame_count,
    frames,
    lazy_vs_eager_bytes,
    snapshot,
)
from core.viz.tensors import frame_figure
from ui.tensors_common import load_clip, pick_clip

# The live generator and DataLoader iterator are kept in session_state. Generators cannot be
# pickled, but Streamlit keeps session_state in the server's memory (never serialised unless
# a teacher turns on runner.enforceSerializableSessionState), so the very same generator object,
# paused inside its frame, survives reruns. That is the lesson itself: the paused frame keeps
# its locals. Recomputing from a step counter would be deterministic but would re-run the
# generator from the start on every click and hide exactly that.
GEN_KEY = "tensors_gen_live"
LOADER_KEY = "tensors_gen_loader_live"
# the code the DataLoader step shows, next to the batch it produced
LOADER_CODE = """\
loader = DataLoader(FrameDataset(samples, window, hop), batch_size=batch_size)
batches = iter(loader)
batch = next(batches)   # shape (batch_size, window)"""


def _restart() -> None:
    st.session_state.pop(GEN_KEY, None)
    st.session_state.pop(LOADER_KEY, None)


def _live(samples: np.ndarray, window: int, hop: int) -> dict:
    # the clip's name, not id(samples): st.cache_data hands out a fresh copy on every rerun
    params = (st.session_state.get("tensors_gen_clip"), len(samples), window, hop)
    live = st.session_state.get(GEN_KEY)
    if live is None or live["params"] != params:
        live = {"params": params, "gen": frames(samples, window, hop), "last": None, "calls": 0}
        st.session_state[GEN_KEY] = live
    return live


def _step(drawn_calls: int) -> None:
    live = st.session_state.get(GEN_KEY)
    # a click advances the generator the page showed, once: Streamlit can run a callback
    # twice when the click's rerun preempts a fragment run (the sidebar's memory refresh)
    if live is None or live["calls"] != drawn_calls:
        return
    live["calls"] += 1
    live["last"] = next(live["gen"], None)  # None once the generator is exhausted


def _highlighted_source(paused_line: int | None) -> str:
    lines = [line.rstrip("\n") for line in FRAMES_SOURCE_LINES]
    if paused_line is not None:
        lines[paused_line] += "  # <-- paused here"
    return "\n".join(lines)


def render_generators() -> None:
    st.markdown(
        "A function with `yield` is a **generator function**: calling it runs nothing yet and "
        "returns a generator. Each `next()` runs the body up to the next `yield`, hands out the "
        "value and **pauses there**, keeping its local variables. Audio is read this way, one "
        "frame at a time, instead of all frames at once."
    )
    clip = pick_clip("tensors_gen_clip")
    if clip is None:
        return
    samples, sample_rate = clip.samples, clip.sample_rate
    left, right = st.columns(2)
    window = left.select_slider(
        "window (samples)", [256, 512, 1024, 2048, 4096], 2048, key="tensors_gen_window"
    )
    hop = right.select_slider(
        "hop (samples)", [128, 256, 512, 1024, 2048, 4096], 1024, key="tensors_gen_hop"
    )
    live = _live(samples, window, hop)
    total = frame_count(len(samples), window, hop)
    first, second, _ = st.columns([1, 1, 3])
    first.button(
        "next(gen)",
        key="tensors_gen_next",
        on_click=_step,
        args=(live["calls"],),
        icon=":material/skip_next:",
    )
    second.button("Restart", key="tensors_gen_restart", on_click=_restart, icon=":material/replay:")
    state = snapshot(live["gen"])
    st.code(_highlighted_source(state.paused_line), language="python", line_numbers=True)
    facts, kept = st.columns([2, 3])
    with facts:
        st.markdown(f"`gen = frames(samples, window={window}, hop={hop})`, state **{state.state}**")
        st.caption(f"{live['calls']} calls to next() so far; {total} frames in all.")
        if live["calls"] and live["last"] is None:
            st.info(
                "The generator is exhausted: next() "
                "raised StopIteration (a for loop's signal to stop)."
            )
        st.caption(
            "The same generator object lives in your session between clicks (session state keeps "
            "it in the server's memory), so each click is one more next() on the paused frame."
        )
    if state.local_summary:
        table = {
            "kept in the paused frame": list(state.local_summary),
            "value": list(state.local_summary.values()),
        }
        kept.dataframe(pd.DataFrame(table), hide_index=True)
    index = live["last"][0] if live["last"] is not None else None
    st.plotly_chart(frame_figure(samples, sample_rate, window, hop, index), key="tensors_gen_chart")
    _lazy_vs_eager(clip.path, window, hop, total)
    _data_loader(samples, window, hop)


@st.cache_data(max_entries=8, show_spinner=False)
def _peaks(path: str, window: int, hop: int) -> tuple[int, int]:
    return lazy_vs_eager_bytes(load_clip(path)[0], window, hop)


def _lazy_vs_eager(path: str, window: int, hop: int, total: int) -> None:
    eager, lazy = _peaks(path, window, hop)
    st.markdown(
        f"**Lazy versus eager.** Copying all {total} frames into a list "
        f"first peaks at **{eager / 1e6:.2f} MB**; taking them one at a "
        f"time from the generator peaks at **{lazy / 1e6:.3f} MB** (measured "
        "with tracemalloc): the generator holds one frame at a time."
    )


def _data_loader(samples: np.ndarray, window: int, hop: int) -> None:
    st.markdown(
        "**A DataLoader works the same way**: `iter(loader)` gives an iterator and each `next()` "
        "collects `batch_size` items into one batch tensor, so a training loop never holds the "
        "whole dataset as batches at once."
    )
    batch_size = st.select_slider("batch_size", [1, 2, 4, 8, 16, 32], 8, key="tensors_gen_batch")
    loader_state = st.session_state.get(LOADER_KEY)
    params = (st.session_state.get("tensors_gen_clip"), window, hop, batch_size)
    if loader_state is None or loader_state["params"] != params:
        loader = frame_batches(samples, window, hop, batch_size)
        loader_state = {
            "params": params,
            "it": iter(loader),
            "batches": 0,
            "shape": None,
            "len": len(loader),
        }
        st.session_state[LOADER_KEY] = loader_state
    if st.button("next(batches)", key="tensors_gen_next_batch", icon=":material/skip_next:"):
        batch = next(loader_state["it"], None)
        loader_state["shape"] = None if batch is None else tuple(batch.shape)
        loader_state["batches"] += batch is not None
    st.code(LOADER_CODE, language="python")
    if loader_state["shape"] is not None:
        st.success(
            f"Batch {loader_state['batches']} of {loader_state['len']}: "
            f"shape {loader_state['shape']}."
        )
    elif loader_state["batches"]:
        st.info("No more batches: the loader's iterator is exhausted, one epoch is over.")
