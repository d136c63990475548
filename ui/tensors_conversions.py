"""Section 5 of the tensor playground: conversions between dtypes, and between NumPy and torch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.audio.levels import encode_wav
from core.devices import resolve_device
from core.tensors.conversions import (
    CAST_DTYPES,
    EXAMPLE_VALUES,
    GPU_NUMPY_ERROR,
    audio_precision,
    cast_table,
    dtype_facts,
    numpy_bridge_demo,
    round_trips,
    to_numpy_attempts,
)
from core.tensors.ranks import TensorInputError, parse_values
from ui.tensors_common import load_clip, pick_clip


def render_conversions() -> None:
    st.markdown(
        "Every dtype is a trade: fewer bits mean less memory and faster maths but coarser "
        "numbers. Python floats are 64-bit; a float32 tensor keeps about 7 significant digits, "
        "float16 about 3 (and nothing above 65504), bfloat16 about 2 with float32's range. "
        "Casting a float to an int **truncates toward zero**."
    )
    values_text = st.text_input(
        "Values",
        value=", ".join(repr(v) for v in EXAMPLE_VALUES),
        key="tensors_conv_values",
        max_chars=400,
    )
    dtypes = st.multiselect(
        "dtypes",
        list(CAST_DTYPES),
        default=["float32", "float16", "bfloat16", "int16"],
        key="tensors_conv_dtypes",
    )
    try:
        values = parse_values(values_text)[:20]
    except TensorInputError as error:
        st.error(str(error))
        values = []
    if values and dtypes:
        rows = cast_table(values, dtypes)
        table = pd.DataFrame(
            [
                {
                    "value": r.value,
                    "dtype": r.dtype,
                    "stored": "—" if r.stored is None else f"{r.stored:.10g}",
                    "error": "—" if r.abs_error is None else f"{r.abs_error:.3g}",
                    "note": r.note,
                }
                for r in rows
            ]
        )
        st.dataframe(table, hide_index=True, key="tensors_conv_table")
    facts = [dtype_facts(d) for d in CAST_DTYPES]
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "dtype": f.name,
                    "bits": f.bits,
                    "max": f"{f.max:.4g}",
                    "eps (gap after 1)": "" if f.eps is None else f"{f.eps:.3g}",
                    "≈ digits": "" if f.digits is None else f"{f.digits:.1f}",
                }
                for f in facts
            ]
        ),
        hide_index=True,
    )
    st.markdown("**Tensor, NumPy and Python**: where precision goes on a round trip.")
    value = st.number_input("v", value=0.1, format="%.10f", key="tensors_conv_value")
    st.table(pd.DataFrame([r.__dict__ for r in round_trips(float(value))]))
    _numpy_bridge()
    st.markdown("**On real audio**: store a clip in a smaller dtype and listen to what is lost.")
    clip = pick_clip("tensors_conv_clip")
    if clip is None:
        return
    dtype = st.selectbox(
        "Store as",
        ["float16", "bfloat16", "int16", "int8", "uint8"],
        key="tensors_conv_audio_dtype",
    )
    restored_wav, error_wav, max_error, snr = _stored_audio(clip.path, dtype)
    st.metric(
        "Signal to rounding-noise ratio", f"{snr:.1f} dB", help=f"largest error {max_error:.2e}"
    )
    left, right = st.columns(2)
    left.caption(f"Stored as {dtype} and read back")
    left.audio(restored_wav, format="audio/wav")
    right.caption("The rounding error alone, made loud (normalised to peak 0.5)")
    right.audio(error_wav, format="audio/wav")


@st.cache_data(max_entries=8, show_spinner=False)
def _stored_audio(path: str, dtype: str) -> tuple[bytes, bytes, float, float]:
    samples, sample_rate = load_clip(path)
    restored, max_error, snr = audio_precision(samples, dtype)
    error = restored - samples
    loudest = float(np.abs(error).max()) or 1.0
    error_wav = encode_wav((0.5 * error / loudest).astype(np.float32), sample_rate)
    return encode_wav(restored, sample_rate), error_wav, max_error, snr


def _numpy_bridge() -> None:
    st.subheader("NumPy to torch and back: shared or copied?")
    sharing, steps = numpy_bridge_demo()
    st.markdown(
        "`torch.from_numpy(a)` wraps the array's memory: no copy, so a change to either is a "
        "change to both (`torch.as_tensor(a)` does the same when it can). `torch.tensor(a)` "
        "always **copies**. Run for real: "
        + ", ".join(f"`{code}` shares a's memory: **{same}**" for code, same in sharing.items())
        + "."
    )
    fmt = lambda values: "[" + ", ".join(f"{v:g}" for v in values) + "]"  # noqa: E731
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "code": s.code,
                    "a": fmt(s.array),
                    "torch.from_numpy(a)": fmt(s.shared),
                    "torch.tensor(a)": fmt(s.copied),
                    "torch.as_tensor(a)": fmt(s.as_tensor),
                }
                for s in steps
            ]
        ),
        hide_index=True,
        key="tensors_conv_bridge",
    )
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    st.markdown(
        "The way back, `.numpy()`, only works on a tensor that NumPy can read as it is: in the "
        "computer's memory (CPU) and outside autograd's graph (no grad). "
        f"Run on `w = torch.ones(3, requires_grad=True)` and the sidebar's device, **{device}**:"
    )
    st.table(
        pd.DataFrame(
            [
                {
                    "code": a.code,
                    "works": "yes" if a.ok else "no",
                    "result or torch's error": a.result,
                }
                for a in to_numpy_attempts(device)
            ]
        ),
        hide_index=True,
    )
    if device.type == "cpu":
        st.caption(
            "On a GPU, `.numpy()` on a tensor there is refused too: "
            f"`{GPU_NUMPY_ERROR.format(device='cuda:0')}` "
            "So the habit that works everywhere is `.detach().cpu().numpy()`."
        )
    else:
        st.caption("So the habit that works everywhere is `.detach().cpu().numpy()`.")
