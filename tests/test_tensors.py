"""The tensor playground's core, checked against plain torch / NumPy as the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.audio import load_audio
from core.tensors import conversions, generators, memory
from core.tensors.broadcasting import apply_spectral_gain, band_gain_curve, explain_broadcast
from core.tensors.matmul import (
    batched_matmul_demo,
    explain_matmul_shapes,
    matmul_by_cells,
    matmul_cell,
    matmul_partial,
)
from core.tensors.ranks import (
    TensorInputError,
    TensorSpec,
    build_tensor,
    describe_tensor,
    parse_shape,
)
from tests.conftest import sine

FAST = settings(max_examples=60, deadline=None)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)

# --- ranks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("()", ()),
        ("5", (5,)),
        ("3, 4", (3, 4)),
        ("(2, 3, 4)", (2, 3, 4)),
        ("2x3", (2, 3)),
        ("[2 3]", (2, 3)),
    ],
)
def test_parse_shape_reads_common_spellings(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["2, -1", "a, 3", "1,2,3,4,5", "100, 100", "2.5"])
def test_parse_shape_refuses_with_a_reason(text):
    with pytest.raises(TensorInputError) as info:
        parse_shape(text)
    assert str(info.value)


def test_build_tensor_fills_and_facts_match_torch():
    arange = build_tensor(TensorSpec((2, 3), "arange", "float32"))
    assert torch.equal(arange, torch.arange(6.0).reshape(2, 3))
    facts = describe_tensor(arange.t())
    assert facts.stride == (1, 3) and not facts.is_contiguous
    assert facts.nbytes == 24 and facts.rank_name == "a matrix"
    first = build_tensor(TensorSpec((3, 4), "random", "float32", seed=7))
    assert torch.equal(first, build_tensor(TensorSpec((3, 4), "random", "float32", seed=7)))
    assert not torch.equal(first, build_tensor(TensorSpec((3, 4), "random", "float32", seed=8)))
    ints = build_tensor(TensorSpec((5,), "random", "int64", seed=1))
    assert ints.dtype == torch.int64 and int(ints.min()) >= 0 and int(ints.max()) <= 9
    scalar = build_tensor(TensorSpec((), "values", "float64", values="2.5"))
    assert scalar.dim() == 0 and float(scalar) == 2.5
    with pytest.raises(TensorInputError, match="needs exactly 4 values"):
        build_tensor(TensorSpec((2, 2), "values", values="1, 2, 3"))


# --- matrix multiplication --------------------------------------------------------------------


@FAST
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**16))
def test_step_by_step_product_equals_torch_matmul(m, k, p, seed):
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, p, generator=generator)
    assert torch.allclose(matmul_by_cells(a, b), torch.matmul(a, b), atol=1e-5)
    assert torch.allclose(matmul_partial(a, b, m * p), torch.matmul(a, b).double(), atol=1e-5)
    ints_a, ints_b = a.round(), b.round()  # integer values: every sum is exact in float32
    assert torch.equal(matmul_partial(ints_a, ints_b, m * p), (ints_a @ ints_b).double())


def test_cell_lists_products_and_running_sum():
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = torch.tensor([[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]])
    step = matmul_cell(a, b, 3)  # row 1, column 1
    assert (step.row, step.col) == (1, 1)
    assert step.products == (32.0, 50.0, 72.0)
    assert step.running == (32.0, 82.0, 154.0) and step.value == float((a @ b)[1, 1])
    partial = matmul_partial(a, b, 2)
    assert torch.isnan(partial[1]).all() and not torch.isnan(partial[0]).any()
    with pytest.raises(IndexError):
        matmul_cell(a, b, 4)


def test_mismatched_inner_dims_are_explained_not_thrown():
    report = explain_matmul_shapes((2, 3), (4, 5))
    assert not report.ok and "inner sizes 3 and 4" in report.message
    with pytest.raises(ValueError, match="inner sizes"):
        matmul_cell(torch.ones(2, 3), torch.ones(4, 5), 0)


@FAST
@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple),
    st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple),
)
def test_matmul_shape_rules_agree_with_torch(a_shape, b_shape):
    report = explain_matmul_shapes(a_shape, b_shape)
    try:
        expected = tuple(torch.matmul(torch.ones(a_shape), torch.ones(b_shape)).shape)
    except RuntimeError:
        assert not report.ok, report.message
        return
    assert report.ok and report.out_shape == expected
    k = a_shape[-1]
    assert report.macs == math.prod(expected) * k


def test_batched_matmul_counts_multiply_adds():
    report = explain_matmul_shapes((5, 1, 2, 3), (4, 3, 6))
    assert report.out_shape == (5, 4, 2, 6) and report.batch_shape == (5, 4)
    assert report.macs == 5 * 4 * 2 * 3 * 6
    report, result = batched_matmul_demo((5, 1, 2, 3), (4, 3, 6))
    assert result.shape == report.out_shape


def test_batched_demo_refuses_to_compute_huge_products():
    report, result = batched_matmul_demo((100_000, 1), (1, 100_000))
    assert report.ok and report.out_shape == (100_000, 100_000) and result is None


# --- broadcasting -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(shapes, shapes)
def test_broadcast_explanation_agrees_with_torch(a, b):
    report = explain_broadcast(a, b)
    try:
        expected = tuple(torch.broadcast_shapes(a, b))
    except RuntimeError:
        assert not report.ok
        dim = report.incompatible_dim
        sizes = {s[dim] for s in (a, b) if len(s) >= -dim}
        assert len(sizes - {1}) == 2, (a, b, dim)  # exactly that column has two real sizes
        return
    assert report.result_shape == expected
    width = len(expected)
    for operand, dim in report.stretched:
        size = report.aligned[operand][dim + width]
        assert size in (None, 1) and expected[dim] != 1


def test_audio_shaped_examples():
    ok = explain_broadcast((8, 64, 431), (64, 1))
    assert ok.result_shape == (8, 64, 431)
    assert set(ok.stretched) == {(1, -3), (1, -1)}
    wrong = explain_broadcast((8, 64, 431), (64,))
    assert wrong.incompatible_dim == -1 and "431 vs 64" in wrong.message


def test_unit_gain_returns_the_input_and_a_cut_removes_its_band():
    sr = 16_000
    low, high = sine(200, 1.0, sr, 0.3), sine(5000, 1.0, sr, 0.3)
    x = low + high
    unity = band_gain_curve(1025, sr, (0.0, 0.0, 0.0))
    assert unity.shape == (1025, 1)
    same = apply_spectral_gain(x, unity)
    assert np.allclose(same.samples, x, atol=1e-4)
    cut = apply_spectral_gain(x, band_gain_curve(1025, sr, (0.0, 0.0, -40.0)))
    spectrum = np.abs(np.fft.rfft(cut.samples[2048:-2048]))
    freqs = np.fft.rfftfreq(len(cut.samples) - 4096, 1 / sr)
    level = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (200, 5000)}
    assert level[5000] < 0.05 * level[200]  # the treble band lost more than 26 dB
    assert cut.stft_shape == (1025, cut.magnitude_before.shape[1]) and cut.gain_shape == (1025, 1)


def test_gain_on_a_builtin_clip_keeps_length_and_stays_finite(music_clips):
    clip = load_audio(music_clips[0], sample_rate=22_050, max_seconds=3.0)
    gain = band_gain_curve(1025, clip.sample_rate, (6.0, 0.0, -12.0, -24.0))
    result = apply_spectral_gain(clip.samples, gain)
    assert result.samples.shape == clip.samples.shape
    assert np.isfinite(result.samples).all() and np.abs(result.samples).max() <= 1.0


# --- memory -----------------------------------------------------------------------------------


def test_assignment_facts_agree_with_data_ptr_and_version():
    x, y = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])
    for statement, code in {
        "Y = X": "Y = X",
        "Y += X": "Y += X",
        "Y[:] = Y + X": "Y[:] = Y + X",
        "Y = Y + X": "Y = Y + X",
    }.items():
        report = memory.run_assignment(statement, x, y)
        ns = {"X": x.clone(), "Y": y.clone()}
        ns["Y_old"] = ns["Y"]
        ptr, version = ns["Y"].data_ptr(), ns["Y"]._version
        exec(code, {}, ns)  # the plain statement, as the reference
        assert report.y_same_memory == (ns["Y"].data_ptr() == ptr), statement
        assert report.in_place == (ns["Y_old"]._version != version), statement
        after = {s.name: s for s in report.after}
        assert after["Y"].values == tuple(ns["Y"].tolist())
        assert after["Y_old"].values == tuple(ns["Y_old"].tolist())
    assert memory.run_assignment("Y += X", x, y).names_seeing_change == ("Y", "Y_old")
    assert memory.run_assignment("Y = Y + X", x, y).names_seeing_change == ("Y",)
    assert torch.equal(y, torch.tensor([10.0, 20.0, 30.0]))  # the inputs are never touched


def test_views_share_storage_and_copies_do_not():
    facts = {f.code: f for f in memory.view_experiments()}
    for code in ("x.view(4, 3)", "x.reshape(4, 3)", "x.transpose(0, 1)", "x[1:, ::2]"):
        assert facts[code].shares_storage and facts[code].write_visible, code
    for code in ("x.clone()", "x.transpose(0, 1).contiguous()", "x.transpose(0, 1).reshape(-1)"):
        assert not facts[code].shares_storage and not facts[code].write_visible, code
    assert facts["x[1:, ::2]"].storage_offset == 4 and facts["x[1:, ::2]"].stride == (4, 2)
    assert "view size is not compatible" in facts["x.transpose(0, 1).view(-1)"].error


def test_numpy_shares_and_python_values_copy():
    same, steps = memory.numpy_sharing_demo()
    assert same and all(s.tensor_values == s.other_values for s in steps)
    assert steps[-1].tensor_values[0] == 200.0
    before, after = memory.python_copies_demo()
    assert before.other_values == after.other_values and after.tensor_values[0] == 15.0


def test_leaf_in_place_shows_autograds_error():
    message, fixed = memory.leaf_in_place_error()
    assert "leaf Variable that requires grad" in message
    assert "0.9000" in fixed


# --- conversions ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.1, 1 / 3, -2.7, 1000.1, 1e-8, 65504.0])
def test_float16_rounding_matches_numpy(value):
    row = conversions.cast_value(value, "float16")
    assert row.stored == float(np.float16(value))
    assert row.abs_error == abs(float(np.float16(value)) - value)


def test_casts_report_overflow_truncation_and_undefined():
    assert conversions.cast_value(70000.0, "float16").note == "overflow to inf"
    assert conversions.cast_value(-2.7, "int32").stored == -2.0
    assert conversions.cast_value(300.0, "int8").stored is None
    bf = conversions.cast_value(0.1, "bfloat16")
    assert bf.stored == float(torch.tensor(0.1).bfloat16().double())
    assert conversions.dtype_facts("float16").max == 65504.0


def test_audio_precision_by_dtype():
    x = sine(440, 0.5, 16_000, 0.5)
    restored, error, snr16 = conversions.audio_precision(x, "int16")
    assert np.allclose(restored, np.round(x * 32767) / 32767, atol=1e-7)
    assert error <= 0.5 / 32767 + 1e-7
    snr8 = conversions.audio_precision(x, "int8")[2]
    snr_half = conversions.audio_precision(x, "float16")[2]
    assert snr16 > 80 and 35 < snr8 < 50 and snr_half > 60  # 6 dB per bit, roughly
    round_trip = {r.code: r for r in conversions.round_trips(0.1)}
    assert round_trip["t.item()"].value_text == repr(float(np.float32(0.1)))


# --- generators -------------------------------------------------------------------------------


def test_frames_match_slicing_and_count():
    x = np.arange(1000, dtype=np.float32)
    got = list(generators.frames(x, 256, 100))
    assert len(got) == generators.frame_count(1000, 256, 100) == 8
    for index, frame in got:
        assert np.array_equal(frame, x[index * 100 : index * 100 + 256])


def test_generator_pauses_at_yield_and_keeps_its_locals():
    x = np.arange(600, dtype=np.float32)
    gen = generators.frames(x, 256, 256)
    assert generators.snapshot(gen).state == "GEN_CREATED"
    next(gen)
    paused = generators.snapshot(gen)
    assert paused.state == "GEN_SUSPENDED"
    assert "yield" in generators.FRAMES_SOURCE_LINES[paused.paused_line]
    assert paused.local_summary["start"] == "0" and paused.local_summary["index"] == "0"
    next(gen)
    assert generators.snapshot(gen).local_summary["start"] == "256"
    assert next(gen, None) is None
    assert generators.snapshot(gen).state == "GEN_CLOSED"


def test_lazy_needs_far_less_memory_than_eager():
    x = sine(440, 2.0, 16_000)
    eager, lazy = generators.lazy_vs_eager_bytes(x, 1024, 256)
    frames = generators.frame_count(len(x), 1024, 256)
    assert eager >= frames * 1024 * 4 * 0.9  # every frame copied and kept
    assert lazy < 10 * 1024 * 4  # about one frame at a time


def test_data_loader_yields_batches_of_frames():
    x = np.arange(5000, dtype=np.float32)
    loader = generators.frame_batches(x, 512, 256, batch_size=4)
    batches = list(loader)
    n = generators.frame_count(5000, 512, 256)
    assert len(batches) == math.ceil(n / 4)
    assert batches[0].shape == (4, 512) and batches[-1].shape[0] == n - 4 * (len(batches) - 1)
    assert torch.equal(batches[1][0], torch.from_numpy(x[4 * 256 : 4 * 256 + 512]))


# --- plot builders ----------------------------------------------------------------------------


def test_heatmap_draws_one_panel_per_matrix():
    from core.viz.tensors import tensor_heatmap

    assert len(tensor_heatmap(torch.tensor(3.0)).data) == 1
    assert tensor_heatmap(torch.arange(5.0)).data[0].z.shape == (1, 5)
    stack = tensor_heatmap(torch.arange(24.0).reshape(2, 3, 4))
    assert len(stack.data) == 2 and stack.data[1].xaxis == "x2"
    assert stack.data[1].z[0, 0] == 12.0


def test_matmul_figure_outlines_row_column_and_cell():
    from core.viz.tensors import matmul_step_figure

    a, b = torch.ones(2, 3), torch.ones(3, 4)
    figure = matmul_step_figure(a, b, matmul_partial(a, b, 6), 1, 2)
    boxes = {shape.xref: shape for shape in figure.layout.shapes}
    assert (boxes["x"].y0, boxes["x"].y1) == (0.5, 1.5)  # row 1 of A
    assert (boxes["x2"].x0, boxes["x2"].x1) == (1.5, 2.5)  # column 2 of B
    assert (boxes["x3"].x0, boxes["x3"].y0) == (1.5, 0.5)  # cell (1, 2) of C


def test_storage_figure_has_one_box_per_storage():
    from core.viz.tensors import storage_figure

    x, y = torch.ones(3), torch.zeros(3)
    aliased = memory.run_assignment("Y = X", x, y)
    assert len(storage_figure(aliased.before).layout.shapes) == 2  # X | Y and Y_old
    assert len(storage_figure(aliased.after).layout.shapes) == 2  # X and Y | Y_old
    rebound = memory.run_assignment("Y += X", x, y)
    assert len(storage_figure(rebound.after).layout.shapes) == 2


def test_parse_shape_refuses_absurd_digits():
    with pytest.raises(TensorInputError, match="far too large"):
        parse_shape("9" * 5000)
