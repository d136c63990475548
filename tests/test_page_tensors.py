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


def test_opens_with_every_section(app):
    assert "Tensor playground" in [t.value for t in app.title]
    assert len(app.tabs) == 7
    assert "broadcast to (8, 64, 431)" in texts(app.success)
    assert not app.error


def test_ranks_build_and_reject(app):
    app.radio(key="tensors_rank_rank").set_value(3).run()  # its callback fills the shape
    assert app.text_input(key="tensors_rank_shape").value == "2, 3, 4"
    assert "a stack of matrices" in texts(app.markdown)
    app.text_input(key="tensors_rank_shape").set_value("2, x").run()
    assert "'x' is not a size" in texts(app.error)
    app.text_input(key="tensors_rank_shape").set_value("2, 3")
    app.selectbox(key="tensors_rank_fill").set_value("random").run()
    assert not app.exception and not app.error


def test_matmul_steps_to_the_end(app):
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
    app.selectbox(key="tensors_bc_example").set_value("mistake: gain per band without the 1").run()
    assert app.text_input(key="tensors_bc_b").value == "64"
    assert "dimension -1 has sizes 431 vs 64" in texts(app.error)
    app.slider(key="tensors_bc_gain_3").set_value(-30.0).run()
    assert not app.exception


def test_memory_experiment(app):
    app.radio(key="tensors_mem_statement").set_value("Y += X")
    app.button(key="tensors_mem_run").click().run()
    assert "Y names the same memory; in place: True" in texts(app.success)
    app.radio(key="tensors_mem_statement").set_value("Y = Y + X")
    app.button(key="tensors_mem_run").click().run()
    assert "Y names new memory; in place: False" in texts(app.success)
    assert "leaf Variable" in texts(app.code)


def test_conversions_table_and_audio(app):
    app.text_input(key="tensors_conv_values").set_value("0.1, 70000, abc").run()
    assert "'abc' is not a number" in texts(app.error)
    app.text_input(key="tensors_conv_values").set_value("0.1, 70000")
    app.multiselect(key="tensors_conv_dtypes").set_value(["float16"])
    app.selectbox(key="tensors_conv_audio_dtype").set_value("int8").run()
    assert "not a number" not in texts(app.error)  # (the broadcasting test left its own error)
    table = next(d.value for d in app.dataframe if "note" in d.value.columns)
    notes = table["note"].tolist()
    assert notes == ["rounded", "overflow to inf"]
    snr = float(app.metric[0].value.split()[0])
    assert 20 < snr < 60  # 8 bits: about 6 dB per bit, minus the music's crest factor


def test_generator_steps_and_pauses_at_yield(app):
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
    app.text_input(key="tensors_console_expr").set_value("A @ B").run()
    assert "shape (2, 2)" in texts(app.success)
    app.text_input(key="tensors_console_expr").set_value("torch.zeros(10**10)").run()
    assert "at most 1,000,000 per tensor" in texts(app.error)
    app.selectbox(key="tensors_console_example").set_value("torch.softmax(Z, dim=-1)").run()
    assert "shape (2, 5)" in texts(app.success)
    assert not app.exception
