"""Section 3 of the tensor playground: broadcasting, explained and made audible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.audio.levels import encode_wav
from core.tensors.broadcasting import (
    AUDIO_SHAPE_EXAMPLES,
    BroadcastReport,
    apply_spectral_gain,
    band_gain_curve,
    explain_broadcast,
    stretched_operands,
)
from core.tensors.ranks import TensorInputError, parse_shape
from core.viz.tensors import gain_curve_figure, spectrogram_pair_figure
from ui.tensors_common import load_clip, pick_clip, wav_bytes

OWN = "type my own shapes"
BANDS = ("bass", "low mids", "high mids", "treble")
N_FFT, HOP = 2048, 512


def _fill_example() -> None:
    example = st.session_state["tensors_bc_example"]
    if example in AUDIO_SHAPE_EXAMPLES:
        a, b = AUDIO_SHAPE_EXAMPLES[example]
        st.session_state["tensors_bc_a"] = ", ".join(map(str, a))
        st.session_state["tensors_bc_b"] = ", ".join(map(str, b))


def broadcast_table(report: BroadcastReport) -> pd.DataFrame:
    """Shapes aligned from the right.

    A stretched size shows as '1 → n', a missing one as '– → n'.
    """
    width = len(report.aligned[0]) if report.aligned else 0
    columns = [f"dim {j - width}" for j in range(width)]
    stretched = set(report.stretched)
    rows = {}
    for i, row in enumerate(report.aligned):
        cells = []
        for j, size in enumerate(row):
            dim = j - width
            if (i, dim) in stretched:
                cells.append(f"{'–' if size is None else size} → {report.result_shape[dim]}")
            elif size is None:
                cells.append("–")
            elif dim == report.incompatible_dim:
                cells.append(f"{size} ✗")
            else:
                cells.append(str(size))
        rows[f"operand {i + 1}"] = cells
    result = report.result_shape if report.ok else ["?"] * width
    rows["result"] = [str(r) for r in result]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def render_broadcasting() -> None:
    st.markdown(
        "**Broadcasting** lets tensors of different shapes meet in `+`, `*`, ...: line the shapes "
        "up **from the right**; in every column the sizes must be equal, or one of them 1 (a "
        "missing dimension counts as 1). A size 1 is repeated to match, without copying memory."
    )
    st.selectbox(
        "Example", [*AUDIO_SHAPE_EXAMPLES, OWN], key="tensors_bc_example", on_change=_fill_example
    )
    st.session_state.setdefault("tensors_bc_a", "8, 64, 431")  # _fill_example writes them too
    st.session_state.setdefault("tensors_bc_b", "64, 1")
    left, right = st.columns(2)
    a_text = left.text_input("Shape 1", key="tensors_bc_a", max_chars=60)
    b_text = right.text_input("Shape 2", key="tensors_bc_b", max_chars=60)
    try:
        # nothing is allocated here, so shapes may be as large as a student likes
        shapes = [parse_shape(t, max_rank=6, max_elements=10**18) for t in (a_text, b_text)]
    except TensorInputError as error:
        st.error(str(error))
    else:
        report = explain_broadcast(*shapes)
        st.table(broadcast_table(report))
        (st.success if report.ok else st.error)(report.message)
        if report.ok:
            _stretched_copies(shapes)
    st.subheader("Hear it: a gain per frequency band")
    st.markdown(
        "The spectrogram of a clip is a tensor of shape (frequency bins, frames). A gain with "
        "one number per bin has shape (bins, **1**): the 1 stretches over every frame, so each "
        "frequency is scaled by its own gain all through the clip."
    )
    _audible_gain()


MAX_PRINTED = 48  # elements of the broadcast result printed as values


def _stretched_copies(shapes: list[tuple[int, ...]]) -> None:
    st.markdown(
        "**The stretched copies, as values.** `operand.expand(result_shape)` is the tensor "
        "broadcasting pretends to make: every repeated row or column. It is a view with "
        "**stride 0** along each stretched dimension (stepping along it reads the same numbers "
        "again), over the operand's own memory: nothing is copied. Operand 1 holds 0, 1, 2, ...; "
        "operand 2 holds 10, 11, 12, ..."
    )
    report, operands, total = stretched_operands(*shapes)
    if operands is None:
        st.info("These operands are too big to build here; the shape rule above still holds.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "operand": i + 1,
                    "shape": str(o.shape),
                    "stride": str(o.stride),
                    "expanded shape": str(tuple(o.expanded.shape)),
                    "expanded stride": str(o.expanded_stride),
                    "same data_ptr": o.same_data_ptr,
                    "bytes in memory": f"{o.storage_bytes:,}",
                    "bytes a real copy would need": f"{o.logical_bytes:,}",
                }
                for i, o in enumerate(operands)
            ]
        ),
        hide_index=True,
        key="tensors_bc_stretch_table",
    )
    if total is None:
        st.caption(
            f"The sum itself would need {operands[0].logical_bytes:,} bytes of real memory, so "
            "it is not computed here: the stretched views above cost nothing, the result would."
        )
        return
    if total.numel() > MAX_PRINTED:
        st.caption(
            f"The result has {total.numel():,} numbers, too many to print; try the example "
            "'tiny: column (3, 1) and row (4,)' to see every value."
        )
        return
    columns = st.columns(len(operands) + 1)
    for i, (column, operand) in enumerate(zip(columns, operands, strict=False)):
        column.markdown(f"operand {i + 1}`.expand{tuple(total.shape)}`")
        column.code(_values_text(operand.expanded), language="text")
    columns[-1].markdown("operand 1 + operand 2")
    columns[-1].code(_values_text(total), language="text")


def _values_text(tensor: torch.Tensor) -> str:
    return np.array2string(tensor.numpy(), separator=", ")


@st.cache_data(max_entries=8, show_spinner=False)
def _gain_result(path: str, gains_db: tuple[float, ...]):
    samples, sample_rate = load_clip(path)
    gain = band_gain_curve(N_FFT // 2 + 1, sample_rate, gains_db)
    result = apply_spectral_gain(samples, gain, n_fft=N_FFT, hop_length=HOP)
    return gain, result, encode_wav(result.samples, sample_rate)


def _audible_gain() -> None:
    clip = pick_clip("tensors_bc_clip")
    if clip is None:
        return
    columns = st.columns(len(BANDS))
    defaults = (6.0, 0.0, -12.0, -24.0)
    gains = tuple(
        float(column.slider(f"{band} (dB)", -30.0, 12.0, default, 1.0, key=f"tensors_bc_gain_{i}"))
        for i, (column, band, default) in enumerate(zip(columns, BANDS, defaults, strict=True))
    )
    sample_rate = clip.sample_rate
    gain, result, gained_wav = _gain_result(clip.path, gains)
    shape_report = explain_broadcast(result.stft_shape, result.gain_shape)
    st.markdown(f"`STFT {result.stft_shape} * gain {result.gain_shape}`: {shape_report.message}")
    st.plotly_chart(gain_curve_figure(gain, sample_rate), key="tensors_bc_gain_chart")
    st.plotly_chart(
        spectrogram_pair_figure(result.magnitude_before, result.magnitude_after, sample_rate, HOP),
        key="tensors_bc_spec_chart",
    )
    before, after = st.columns(2)
    before.caption("Original")
    before.audio(wav_bytes(clip.samples, sample_rate), format="audio/wav")
    after.caption("With the per-band gain")
    after.audio(gained_wav, format="audio/wav")
    st.caption(
        "To make it audible we multiply the complex STFT (magnitude and phase) by the gain and "
        "run the inverse STFT, which overlap-adds the frames back into a waveform. Multiplying "
        "only a mel spectrogram could not be played back exactly: the mel bands have thrown "
        "away the phase and the fine frequency detail."
    )
