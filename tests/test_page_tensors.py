"""The tensor playground page through the real entry script, driven by widget keys."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.paths import REPO_ROOT

PAGE = "pages/tensors.py"


@pytest.fixture(scope="module")
def app() -> AppTest:
    app = AppTest.from_file(str(REPO_ROOT / "dashboard.py"), default_timeout=120)
    app.run()
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def _open(app, tab: str) -> None:
    """Open a tab as a click would: only the open tab's section runs."""
    app.session_state["tensors_tab"] = tab
    app.run()
    assert not app.exception, app.exception


def test_opens_with_every_section_and_runs_only_the_open_one(app):
    assert "Tensor playground" in [t.value for t in app.title]
    assert len(app.tabs) == 7
    assert app.text_input(key="tensors_rank_shape").value  # the first tab, open by default
    # The other tabs cost nothing until opened (all seven took 1.9 s of every page switch).
    assert "broadcast to" not in texts(app.success)
    assert not [w for w in app.text_input if w.key == "tensors_mm_a_shape"]
    _open(app, "3 · Broadcasting")
    assert "broadcast to (8, 64, 431)" in texts(app.success)
    assert not [w for w in app.text_input if w.key == "tensors_rank_shape"]
    assert not app.error


def test_a_closed_tab_keeps_its_settings(app):
    _open(app, "2 · Matrix multiplication")
    app.text_input(key="tensors_mm_a_shape").set_value("2, 4").run()
    _open(app, "3 · Broadcasting")
    app.slider(key="tensors_bc_gain_0").set_value(-3.0).run()
    _open(app, "2 · Matrix multiplication")
    assert app.text_input(key="tensors_mm_a_shape").value == "2, 4"
    _open(app, "3 · Broadcasting")
    assert app.slider(key="tensors_bc_gain_0").value == -3.0
    app.slider(key="tensors_bc_gain_0").set_value(6.0)
    _open(app, "2 · Matrix multiplication")
    app.text_input(key="tensors_mm_a_shape").set_value("2, 3").run()


def test_ranks_build_and_reject(app):
    _open(app, "1 · Ranks")
    app.radio(key="tensors_rank_rank").set_value(3).run()  # its callback fills the shape
    assert app.text_input(key="tensors_rank_shape").value == "2, 3, 4"
    assert "a stack of matrices" in texts(app.markdown)
    app.text_input(key="tensors_rank_shape").set_value("2, x").run()
    assert "'x' is not a size" in texts(app.error)
    app.text_input(key="tensors_rank_shape").set_value("2, 3")
    app.selectbox(key="tensors_rank_fill").set_value("random").run()
    assert not app.exception and not app.error


def test_matmul_steps_to_the_end(app):
    _open(app, "2 · Matrix multiplication")
    app.text_input(key="tensors_mm_a_shape").set_value("2, 3")
    app.text_input(key="tensors_mm_b_shape").set_value("3, 2")
    app.slider(key="tensors_mm_cell").set_value(2).run()
    assert "C[0, 1]" in texts(app.markdown)
    app.button(key="tensors_mm_next").click().run()
    app.button(key="tensors_mm_next").click().run()
    assert app.slider(key="tensors_mm_cell").value == 4
    assert "Equal to torch.matmul(A, B): **True**" in texts(app.success)
    assert "12 multiply-adds" in texts(app.success)
    app.text_input(key="tensors_mm_b_shape").set_value("4, 2").run()
    assert "inner sizes 3 and 4 differ" in texts(app.warning)
    app.text_input(key="tensors_mm_b_shape").set_value("3, 2").run()
    assert not app.exception


def test_broadcasting_explains_the_incompatible_dimension(app):
    _open(app, "3 · Broadcasting")
    app.selectbox(key="tensors_bc_example").set_value("mistake: gain per band without the 1").run()
    assert app.text_input(key="tensors_bc_b").value == "64"
    assert "dimension -1 has sizes 431 vs 64" in texts(app.error)
    app.slider(key="tensors_bc_gain_3").set_value(-30.0).run()
    assert not app.exception


def _table(app, column: str):
    """The table on the page that has this column (read-only tables carry no key in AppTest)."""
    return next(t.value for t in [*app.dataframe, *app.table] if column in t.value.columns)


def test_memory_experiment_assignment_is_a_second_name(app):
    _open(app, "4 · Memory")
    app.radio(key="tensors_mem_statement").set_value("Y = X")
    app.button(key="tensors_mem_run").click().run()
    summary = texts(app.success)
    assert "Y is another name for the tensor X names: nothing copied" in summary
    assert "Y names new memory" not in summary
    assert "X, X_old, Y changed with it; Y too, because Y shares X's memory" in summary
    table = _table(app, "its memory was written").set_index("name")
    assert not table["its memory was written"].any()  # a rebinding writes no data
    assert table.loc["Y", "after X.add_(100)"] == "[101, 102, 103]"
    assert table.loc["Y", "sees the change to X"] and not table.loc["Y_old", "sees the change to X"]
    app.radio(key="tensors_mem_statement").set_value("Y = X.clone()")
    app.button(key="tensors_mem_run").click().run()
    assert "Y did not, because Y has memory of its own" in texts(app.success)
    app.radio(key="tensors_mem_statement").set_value("X += 1")
    app.button(key="tensors_mem_run").click().run()
    table = _table(app, "its memory was written").set_index("name")
    assert table["its memory was written"].to_dict() == {
        "X": True,
        "X_old": True,
        "Y": False,
        "Y_old": False,
    }
    app.radio(key="tensors_mem_statement").set_value("Y = Y + X")
    app.button(key="tensors_mem_run").click().run()
    assert "Y is a new tensor in new memory" in texts(app.success)
    assert "leaf Variable" in texts(app.code)
    assert "accumulates gradients" in texts(app.markdown)
    fixes = _table(app, "w afterwards")
    assert fixes["w afterwards"].tolist() == ["[0.9, 0.9, 0.9]"] * 3


def test_ranks_show_empty_tensors_and_the_torch_code(app):
    _open(app, "1 · Ranks")
    for shape, numel_shape in (("0, 3", "(0, 3)"), ("3, 0", "(3, 0)"), ("0, 3, 4", "(0, 3, 4)")):
        app.text_input(key="tensors_rank_shape").set_value(shape).run()
        assert not app.exception
        assert f"A size 0 anywhere makes {numel_shape} hold no numbers" in texts(app.info)
        facts = _table(app, "torch says").set_index("code")["torch says"]
        assert facts["T.sum()"] == "tensor(0.)" and facts["T.float().mean()"] == "tensor(nan)"
        assert len(app.tabs) == 7
    app.text_input(key="tensors_rank_shape").set_value("2, 3")
    app.selectbox(key="tensors_rank_fill").set_value("ones").run()
    assert "T = torch.ones((2, 3), dtype=torch.float32)" in texts(app.code)
    app.button(key="tensors_rank_move").click().run()
    moved = texts(app.success)
    assert "`T.to('cpu') is T` → **True**" in moved and "24 bytes" in moved
    assert len(_table(app, "memory counter")) == 3


def test_products_side_by_side(app):
    _open(app, "2 · Matrix multiplication")
    app.selectbox(key="tensors_mm_ops_example").set_value("matrix and vector (2, 3) and (3,)").run()
    table = _table(app, "torch's error").set_index("code")
    assert table.loc["torch.mv(A, B)", "shape out"] == "(2,)"
    assert table.loc["torch.mv(A, B)", "cost"] == "6 multiply-adds"
    assert table.loc["torch.mm(A, B)", "torch's error"] == "mat2 must be a matrix"
    assert table.loc["A * B", "shape out"] == "(2, 3)"
    app.text_input(key="tensors_mm_ops_b").set_value("9, 9").run()
    assert "the playground draws at most 64" in texts(app.error)
    app.text_input(key="tensors_mm_ops_b").set_value("3").run()
    assert not app.exception


def test_broadcasting_shows_the_stretched_copies(app):
    _open(app, "3 · Broadcasting")
    app.selectbox(key="tensors_bc_example").set_value("tiny: column (3, 1) and row (4,)").run()
    table = _table(app, "expanded stride")
    assert table["expanded stride"].tolist() == ["(1, 0)", "(0, 1)"]
    assert table["same data_ptr"].all()
    assert table["bytes in memory"].tolist() == ["12", "16"]
    assert "[[10., 11., 12., 13.],\n [11., 12., 13., 14.],\n [12., 13., 14., 15.]]" in texts(
        app.code
    )


def test_conversions_numpy_bridge(app):
    _open(app, "5 · Conversions")
    bridge = _table(app, "torch.from_numpy(a)").set_index("code")
    assert bridge.loc["a[0] = 100", "torch.from_numpy(a)"] == "[100, 1, 2, 3]"
    assert bridge.loc["a[0] = 100", "torch.tensor(a)"] == "[0, 1, 2, 3]"
    attempts = _table(app, "result or torch's error").set_index("code")
    assert attempts.loc["w.numpy()", "result or torch's error"].startswith(
        "RuntimeError: Can't call numpy() on Tensor that requires grad"
    )
    assert attempts.loc["w.detach().cpu().numpy()", "works"] == "yes"
    assert attempts.loc["w.numpy()", "works"] == "no"
    assert "can't convert cuda:0 device type tensor to numpy" in texts(app.caption)


def test_conversions_table_and_audio(app):
    _open(app, "5 · Conversions")
    app.text_input(key="tensors_conv_values").set_value("0.1, 70000, abc").run()
    assert "'abc' is not a number" in texts(app.error)
    app.text_input(key="tensors_conv_values").set_value("0.1, 70000")
    app.multiselect(key="tensors_conv_dtypes").set_value(["float16"])
    app.selectbox(key="tensors_conv_audio_dtype").set_value("int8").run()
    assert "not a number" not in texts(app.error)
    table = next(d.value for d in app.dataframe if "note" in d.value.columns)
    notes = table["note"].tolist()
    assert notes == ["rounded", "overflow to inf"]
    snr = float(app.metric[0].value.split()[0])
    assert 20 < snr < 60  # 8 bits: about 6 dB per bit, minus the music's crest factor


def test_generator_steps_and_pauses_at_yield(app):
    _open(app, "6 · Generators")
    app.button(key="tensors_gen_next").click().run()
    app.button(key="tensors_gen_next").click()
    app.button(key="tensors_gen_next_batch").click().run()
    assert "paused here" in texts(app.code)
    assert "GEN_SUSPENDED" in texts(app.markdown)
    assert "2 calls to next()" in texts(app.caption)
    assert "Batch 1 of" in texts(app.success)
    app.button(key="tensors_gen_restart").click().run()
    assert "0 calls to next()" in texts(app.caption)


def test_console_evaluates_and_refuses(app):
    _open(app, "7 · Expression console")
    app.text_input(key="tensors_console_expr").set_value("A @ B").run()
    assert "shape (2, 2)" in texts(app.success)
    app.text_input(key="tensors_console_expr").set_value("torch.zeros(10**10)").run()
    assert "at most 1,000,000 per tensor" in texts(app.error)
    app.selectbox(key="tensors_console_example").set_value("torch.softmax(Z, dim=-1)").run()
    assert "shape (2, 5)" in texts(app.success)
    assert not app.exception
