"""The tensor playground's core, checked against plain torch / NumPy as the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.audio.io import load_audio
from core.tensors import conversions, generators, memory, ranks
from core.tensors.broadcasting import (
    apply_spectral_gain,
    band_gain_curve,
    explain_broadcast,
    stretched_operands,
)
from core.tensors.matmul import (
    PRODUCT_EXAMPLES,
    batched_matmul_demo,
    compare_products,
    explain_matmul_shapes,
    matmul_by_cells,
    matmul_cell,
    matmul_partial,
    small_int_operands,
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


def _reference(statement: str, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The plain statements run by exec: which names share X's memory, were written, see PROBE."""
    ns = {"X": x.clone(), "Y": y.clone()}
    exec(memory.SETUP, {}, ns)
    versions = {name: ns[name]._version for name in ns}
    objects = dict(ns)
    exec(statement, {}, ns)
    written = tuple(n for n in ns if ns[n] is objects[n] and ns[n]._version != versions[n])
    values = {n: ns[n].tolist() for n in ns}
    exec(memory.PROBE, {}, ns)
    seeing = tuple(n for n in ns if ns[n].tolist() != values[n])
    return {"written": written, "seeing": seeing, "values": values}


# The course notes' facts for each statement: what the assigned name becomes, which names see a
# write made by the statement, and whether Y follows a later in-place change to X.
NOTES = {
    "Y = X": (memory.ALIAS, (), True),
    "Y = X.clone()": (memory.NEW, (), False),
    "Y = X[1:]": (memory.VIEW, (), True),
    "Y = X + 1": (memory.NEW, (), False),
    "X += 1": (memory.WRITTEN, ("X", "X_old"), False),
    "X.add_(1)": (memory.WRITTEN, ("X", "X_old"), False),
    "X = X + 1": (memory.NEW, (), False),
    "Y += X": (memory.WRITTEN, ("Y", "Y_old"), False),
    "Y[:] = Y + X": (memory.WRITTEN, ("Y", "Y_old"), False),
    "Y = Y + X": (memory.NEW, (), False),
}


@pytest.mark.parametrize("statement", list(NOTES))
def test_assignment_experiment_agrees_with_plain_python_and_the_notes(statement):
    x, y = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])
    report = memory.run_assignment(statement, x, y)
    reference = _reference(statement, x, y)
    assert set(report.names_written) == set(reference["written"])
    assert set(report.names_seeing_probe) == set(reference["seeing"])
    after = {s.name: s.values for s in report.after}
    assert all(list(after[n]) == reference["values"][n] for n in after)
    outcome, written, y_follows_x = NOTES[statement]
    assert report.outcomes[report.target] == outcome
    assert report.names_written == written
    assert ("Y" in report.names_seeing_probe) == y_follows_x
    summary = report.summary
    if written:
        assert "written in place" in summary and "No existing memory was written" not in summary
    else:
        assert "No existing memory was written: moving a name changes no data" in summary
    assert ("Y too, because Y shares X's memory" in summary) == y_follows_x
    assert torch.equal(y, torch.tensor([10.0, 20.0, 30.0]))  # the inputs are never touched


def test_assignment_is_a_second_name_not_new_memory():
    report = memory.run_assignment("Y = X", torch.ones(3), torch.zeros(3))
    assert "Y is another name for the tensor X names: nothing copied" in report.summary
    assert "new memory" not in report.summary
    assert "does not copy" in report.explanation
    after = {s.name: s for s in report.after}
    assert after["Y"].data_ptr == after["X"].data_ptr  # one memory, two names
    probe = {s.name: s.values for s in report.after_probe}
    assert probe["Y"] == probe["X"] == (101.0, 101.0, 101.0)  # X changed in place: Y too
    assert probe["Y_old"] == (0.0, 0.0, 0.0)
    clone = memory.run_assignment("Y = X.clone()", torch.ones(3), torch.zeros(3))
    assert "new memory" in clone.summary and "copies" in clone.explanation
    view = memory.run_assignment("Y = X[1:]", torch.arange(3.0), torch.zeros(3))
    y_after = next(s for s in view.after if s.name == "Y")
    x_after = next(s for s in view.after if s.name == "X")
    assert y_after.storage_ptr == x_after.storage_ptr and y_after.storage_offset == 1
    assert y_after.data_ptr == x_after.data_ptr + 4  # one float32 further along
    empty_view = memory.run_assignment("Y = X[1:]", torch.ones(1), torch.zeros(1))
    assert "Y shares X's memory but shows none of its numbers" in empty_view.summary


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


def test_leaf_in_place_shows_autograds_error_and_the_leaf_rule():
    message, fixes = memory.leaf_in_place_error()
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        w.add_(1)
    assert message == str(info.value)  # torch's own words
    assert "leaf Variable that requires grad" in message
    rule = memory.LEAF_RULE
    assert "leaf" in rule and "accumulates gradients" in rule
    assert "torch.no_grad()" in rule and "w.data" in rule and "w.detach()" in rule
    assert "saved" not in rule  # the rule for tensors saved for backward is another one
    assert [f.code for f in fixes] == [
        "with torch.no_grad(): w.sub_(0.1)",
        "w.data.sub_(0.1)",
        "w.detach().sub_(0.1)",
    ]
    for fix in fixes:  # each really changed w, and w is still a parameter
        assert fix.w_after == pytest.approx((0.9, 0.9, 0.9)) and fix.requires_grad


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


def _names_by_box(figure) -> dict[str, set[str]]:
    """{box text without its address: names whose arrow ends on that box} of a storage_figure."""
    notes = figure.layout.annotations
    boxes = {a.y: a.text.split("<br>", 1)[1] for a in notes if a.text.startswith("storage at")}
    names = {a.y: a.text for a in notes if a.text.startswith("<b>")}
    found: dict[str, set[str]] = {}
    for arrow in (a for a in notes if a.showarrow):
        found.setdefault(boxes[arrow.y], set()).add(names[arrow.ay])
    return found


def test_storage_figure_has_one_box_per_storage():
    from core.viz.tensors import storage_figure

    x, y = torch.ones(3), torch.zeros(3)
    aliased = memory.run_assignment("Y = X", x, y)
    assert len(storage_figure(aliased.before).layout.shapes) == 2  # X | Y and Y_old
    assert _names_by_box(storage_figure(aliased.before)) == {
        "version 0<br>[1, 1, 1]": {"<b>X</b>", "<b>X_old</b>"},
        "version 0<br>[0, 0, 0]": {"<b>Y</b>", "<b>Y_old</b>"},
    }
    assert _names_by_box(storage_figure(aliased.after)) == {  # Y now names X's memory
        "version 0<br>[1, 1, 1]": {"<b>X</b>", "<b>X_old</b>", "<b>Y</b>"},
        "version 0<br>[0, 0, 0]": {"<b>Y_old</b>"},
    }
    rebound = memory.run_assignment("Y += X", x, y)
    assert _names_by_box(storage_figure(rebound.after)) == {  # written in place: Y_old sees it
        "version 0<br>[1, 1, 1]": {"<b>X</b>", "<b>X_old</b>"},
        "version 1<br>[1, 1, 1]": {"<b>Y</b>", "<b>Y_old</b>"},
    }


def test_parse_shape_refuses_absurd_digits():
    with pytest.raises(TensorInputError, match="far too large"):
        parse_shape("9" * 5000)


def test_storage_figure_draws_a_view_on_its_base_storage():
    from core.viz.tensors import storage_figure

    view = memory.run_assignment("Y = X[1:]", torch.arange(3.0), torch.zeros(3))
    figure = storage_figure(view.after)
    assert len(figure.layout.shapes) == 2  # X, X_old and the view Y | Y_old
    assert _names_by_box(figure) == {
        "version 0<br>[0, 1, 2]": {"<b>X</b>", "<b>X_old</b>", "<b>Y</b> (offset 1)"},
        "version 0<br>[0, 0, 0]": {"<b>Y_old</b>"},
    }


# --- issue 17: empty tensors, the torch code, devices, products, stretched copies, NumPy ------


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 3, 4), (0,), (2, 0, 3)])
def test_empty_tensors_are_drawn_and_explained(shape):
    from core.viz.tensors import tensor_heatmap

    tensor = build_tensor(TensorSpec(shape, "arange"))
    assert tensor.shape == shape and describe_tensor(tensor).numel == 0
    figure = tensor_heatmap(tensor)
    assert f"shape {shape}: 0 elements" in figure.layout.annotations[0].text
    facts = {f.code: f.result for f in ranks.empty_tensor_facts(tensor)}
    plain = torch.zeros(shape)
    assert facts["T.sum()"] == str(plain.sum()) == "tensor(0.)"
    assert facts["T.prod()"] == str(plain.prod()) == "tensor(1.)"
    assert facts["T.float().mean()"] == "tensor(nan)"
    with pytest.raises(RuntimeError) as info:
        plain.max()
    assert facts["T.max()"] == f"RuntimeError: {str(info.value).splitlines()[0]}"


def test_matmul_figure_with_an_empty_inner_size():
    from core.viz.tensors import matmul_step_figure

    a, b = torch.ones(2, 0), torch.ones(0, 2)
    figure = matmul_step_figure(a, b, matmul_partial(a, b, 4), 1, 1)
    assert np.array_equal(figure.data[2].z, np.zeros((2, 2)))  # sums of nothing are 0


@pytest.mark.parametrize("fill", ranks.FILLS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (0, 3)])
def test_torch_code_builds_the_same_tensor(fill, dtype, shape):
    values = ", ".join(str(1.5 * i - 2) for i in range(math.prod(shape)))
    spec = TensorSpec(shape, fill, dtype, seed=3, values=values)
    built = eval(ranks.torch_code(spec), {"torch": torch})  # what a student would paste
    expected = build_tensor(spec)
    assert built.dtype == expected.dtype and torch.equal(built, expected)


def test_moving_to_the_cpu_is_no_copy():
    tensor = torch.ones(3, 4)
    move = ranks.move_to_device(tensor, "cpu")
    assert move.same_object and tensor.to("cpu") is tensor
    assert move.nbytes == 48 and move.mixed_error is None and "RSS" in move.counter


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_moving_to_cuda_grows_and_frees_the_allocated_counter():
    tensor = torch.ones(1000, 1000)
    move = ranks.move_to_device(tensor, "cuda")
    assert not move.same_object
    grew = move.allocated_after - move.allocated_before
    assert 4_000_000 <= grew < 4_000_000 + 512 * 1024
    assert move.allocated_after_del == move.allocated_before
    assert "Expected all tensors to be on the same device" in move.mixed_error
    scalar = ranks.move_to_device(torch.tensor(2.0), "cuda")
    assert scalar.mixed_error is None  # a CPU scalar may join a GPU operation


@pytest.mark.parametrize("example", list(PRODUCT_EXAMPLES))
def test_products_side_by_side_agree_with_plain_torch(example):
    a, b = small_int_operands(*PRODUCT_EXAMPLES[example])
    calls = {
        "A * B": lambda: a * b,
        "A @ B": lambda: a @ b,
        "torch.matmul(A, B)": lambda: torch.matmul(a, b),
        "torch.mm(A, B)": lambda: torch.mm(a, b),
        "torch.mv(A, B)": lambda: torch.mv(a, b),
        "torch.dot(A, B)": lambda: torch.dot(a, b),
        "torch.bmm(A, B)": lambda: torch.bmm(a, b),
    }
    rows = compare_products(a, b)
    assert [r.code for r in rows] == list(calls)
    for row in rows:
        try:
            expected = calls[row.code]()
        except RuntimeError as error:
            assert row.out_shape is None and row.error == str(error).splitlines()[0]
            continue
        assert row.error is None and torch.equal(row.result, expected)
        assert row.out_shape == tuple(expected.shape)


def test_product_costs_and_refusals():
    a, b = small_int_operands((2, 3), (3,))
    rows = {r.code: r for r in compare_products(a, b)}
    assert rows["A * B"].cost == "6 multiplications, no additions"  # (2, 3) * (3,) -> (2, 3)
    assert rows["torch.mv(A, B)"].cost == "6 multiply-adds"  # 2 rows x 3 products
    assert rows["torch.mm(A, B)"].error == "mat2 must be a matrix"
    a, b = small_int_operands((4, 2, 3), (4, 3, 2))
    rows = {r.code: r for r in compare_products(a, b)}
    assert rows["torch.bmm(A, B)"].cost == "48 multiply-adds" == rows["A @ B"].cost
    column, row = small_int_operands((3, 1), (1, 3))
    products = compare_products(column, row)
    assert torch.equal(products[0].result, products[1].result)  # an outer product both ways


@pytest.mark.parametrize("shapes", [((3, 1), (4,)), ((8, 64, 431), (64, 1)), ((2, 1, 3), (4, 1))])
def test_stretched_copies_are_views_that_match_broadcast_tensors(shapes):
    report, operands, total = stretched_operands(*shapes)
    values = [o.values for o in operands]
    expected = torch.broadcast_tensors(*values)
    for operand, reference in zip(operands, expected, strict=True):
        assert torch.equal(operand.expanded, reference)
        assert operand.expanded_stride == tuple(reference.stride())
        assert operand.same_data_ptr  # nothing copied
        assert operand.storage_bytes == operand.values.numel() * 4
        assert operand.logical_bytes == math.prod(report.result_shape) * 4
    for index, dim in report.stretched:  # stride 0 exactly where a dimension repeats
        assert operands[index].expanded_stride[dim] == 0
    assert torch.equal(total, values[0] + values[1])
    assert stretched_operands((2, 3), (4,))[1] is None  # incompatible: nothing built


def test_huge_stretched_views_cost_nothing_and_their_sum_is_not_computed():
    report, operands, total = stretched_operands((1_000_000, 1), (1, 1_000_000))
    assert report.result_shape == (1_000_000, 1_000_000) and total is None
    assert [o.storage_bytes for o in operands] == [4_000_000, 4_000_000]
    assert operands[0].logical_bytes == 4 * 10**12  # what a real copy would need
    assert operands[0].expanded_stride == (1, 0) and operands[1].expanded_stride == (0, 1)


def test_from_numpy_shares_and_tensor_copies():
    sharing, steps = conversions.numpy_bridge_demo()
    assert sharing == {
        "torch.from_numpy(a)": True,
        "torch.tensor(a)": False,
        "torch.as_tensor(a)": True,
    }
    changed = steps[1]  # a[0] = 100
    assert changed.array[0] == changed.shared[0] == changed.as_tensor[0] == 100.0
    assert changed.copied[0] == 0.0
    last = steps[2]  # the shared tensor doubled in place: the array doubled
    assert last.array == last.shared == (200.0, 2.0, 4.0, 6.0)


def test_numpy_needs_a_cpu_tensor_without_grad():
    attempts = {a.code: a for a in conversions.to_numpy_attempts("cpu")}
    with pytest.raises(RuntimeError) as info:
        torch.ones(3, requires_grad=True).numpy()
    assert not attempts["w.numpy()"].ok
    assert attempts["w.numpy()"].result == f"RuntimeError: {info.value}"
    assert attempts["w.detach().numpy()"].ok and attempts["w.detach().cpu().numpy()"].ok
    # The refusal shown for GPUs on a CPU-only machine is torch's template for any device
    with pytest.raises(TypeError) as info:
        torch.ones(3, device="meta").numpy()
    assert f"TypeError: {info.value}" == conversions.GPU_NUMPY_ERROR.format(device="meta")
    meta = conversions.to_numpy_attempts("meta")
    assert meta[2].result == conversions.GPU_NUMPY_ERROR.format(device="meta")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_numpy_on_a_gpu_tensor_is_refused_with_the_text_shown_on_cpu_machines():
    attempts = conversions.to_numpy_attempts("cuda:0")
    assert attempts[2].result == conversions.GPU_NUMPY_ERROR.format(device="cuda:0")
    assert attempts[3].ok
