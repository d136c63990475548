"""The Classify page under AppTest: the ready model answers at once; uploads, bad uploads,
long clips, saliency, batches and run archives each end in a result or a sentence."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import soundfile as sf

from core.inference import shipped_store
from tests.apptest_helpers import open_page
from tests.conftest import sine

PAGE = "pages/classify.py"


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


@pytest.fixture(scope="module")
def app():
    at = open_page(PAGE)
    assert not at.exception, _texts(at.exception)
    return at


def test_the_ready_model_answers_a_built_in_digit_at_once(app):
    assert _texts(app.title) == ["Classify"]
    assert app.selectbox(key="classify_model").value == "shipped:digits-cnn"
    verdict = _texts(app.success) + _texts(app.warning)
    assert any("probability" in t or "Unsure" in t for t in verdict), verdict
    assert any("padded with silence" in t for t in _texts(app.info))  # digits < 1 s window
    assert app.get("plotly_chart"), "top-k, waveform, model view and saliency charts"


def test_upload_a_clip_and_a_bad_file(digit_files):
    at = open_page(PAGE)
    at.segmented_control(key="classify_audio_source").set_value("Upload a file").run()
    at.file_uploader(key="classify_audio_upload").set_value(
        (digit_files[5].name, digit_files[5].read_bytes(), "audio/wav")
    ).run()
    assert not at.exception, _texts(at.exception)
    assert any("probability" in t or "Unsure" in t for t in _texts(at.success) + _texts(at.warning))
    at.file_uploader(key="classify_audio_upload").set_value(
        ("notes.wav", b"these are my lecture notes, not audio", "audio/wav")
    ).run()
    assert not at.exception
    assert any("not an audio file" in t for t in _texts(at.error))


def test_a_long_clip_opens_the_timeline_with_segments(tmp_path):
    rate = 16000
    y = np.concatenate([sine(300, 2.0, rate), np.zeros(rate, np.float32), sine(900, 2.0, rate)])
    at = open_page(PAGE)
    at.segmented_control(key="classify_audio_source").set_value("Upload a file").run()
    at.file_uploader(key="classify_audio_upload").set_value(
        ("long.wav", _wav(y, rate), "audio/wav")
    )
    at.run()
    assert not at.exception, _texts(at.exception)
    assert at.toggle(key="classify_timeline").value is True
    at.slider(key="classify_hop").set_value(0.5).run()
    at.slider(key="classify_segment_threshold").set_value(0.0).run()
    assert not at.exception, _texts(at.exception)
    assert any("windows of" in t for t in _texts(at.caption))
    assert at.selectbox(key="classify_segment_play").options, "segments are listed to play"
    at.segmented_control(key="classify_saliency_method").set_value("occlusion").run()
    at.radio(key="classify_saliency_playback").set_value("time-frequency").run()
    assert not at.exception, _texts(at.exception)


def test_batch_of_built_in_clips_gives_a_table(app):
    app.toggle(key="classify_batch_builtin").set_value(True).run()
    assert not app.exception, _texts(app.exception)
    table = app.dataframe[-1].value
    assert len(table) == 20 and set(table.columns) >= {"file", "class", "confidence"}


def test_importing_a_pickle_says_why_and_a_real_archive_is_selected(app):
    app.file_uploader(key="classify_import").set_value(
        ("model.safetensors", pickle.dumps({"w": [1, 2, 3]}), "application/octet-stream")
    ).run()
    app.button(key="classify_import_button").click().run()
    assert not app.exception
    assert any("pickle" in t for t in _texts(app.error))
    archive = shipped_store().export_archive("digits-cnn")
    app.file_uploader(key="classify_import").set_value(
        ("digits.zip", archive, "application/zip")
    ).run()
    app.button(key="classify_import_button").click().run()
    assert not app.exception, _texts(app.exception)
    assert any("Imported" in t for t in _texts(app.success))
    assert app.selectbox(key="classify_model").value.startswith("run:")
