"""ui.audio_input: the built-in / upload / record picker driven through AppTest by key."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.audio.clip import AudioError
from tests.audio_fixtures import wav_bytes
from tests.conftest import sine
from ui.audio_input import BUILTIN, RECORD, UPLOAD, builtin_clips, decode_upload


def picker_app(sample_rate=16000, max_seconds=None, allow_builtin=True, allow_record=True):
    """A page that only holds the picker and reports what it returned."""
    import streamlit as st

    from ui.audio_input import audio_source_picker

    clip = audio_source_picker(
        "t",
        sample_rate=sample_rate,
        max_seconds=max_seconds,
        allow_builtin=allow_builtin,
        allow_record=allow_record,
    )
    st.write(
        "no clip" if clip is None else f"clip {clip.name} {clip.sample_rate} {clip.num_samples}"
    )


def run_picker(**kwargs) -> AppTest:
    return AppTest.from_function(picker_app, kwargs=kwargs, default_timeout=60).run()


def result(at: AppTest) -> str:
    return at.markdown[-1].value


def test_builtin_clip_is_the_default_and_shows_player_and_facts():
    at = run_picker(max_seconds=5)
    assert not at.exception
    first_label = next(iter(builtin_clips()))
    assert at.selectbox(key="t_audio_builtin").value == first_label
    assert result(at).startswith("clip ") and result(at).endswith(" 16000 80000")
    assert len(at.get("audio")) == 1
    assert any("16000 Hz" in caption.value for caption in at.caption)


def test_choosing_a_spoken_digit():
    at = run_picker()
    at.selectbox(key="t_audio_builtin").set_value("Spoken digit 3 (jackson)").run()
    assert not at.exception
    assert result(at).startswith("clip 3_jackson_0.wav 16000")
    assert not at.info  # a short clip has nothing to report


def test_long_builtin_clip_is_trimmed_with_a_notice():
    at = run_picker(max_seconds=2)
    assert result(at).endswith(" 32000")
    assert any("only the first 2.0 s are used" in info.value for info in at.info)


def test_text_upload_shows_its_error_and_the_app_keeps_running():
    at = run_picker()
    at.segmented_control(key="t_audio_source").set_value(UPLOAD).run()
    assert result(at) == "no clip"
    at.file_uploader(key="t_audio_upload").upload("notes.wav", b"my notes\n" * 50, "audio/wav")
    at.run()
    assert not at.exception
    assert result(at) == "no clip"
    assert "notes.wav is not an audio file" in at.error[0].value
    at.segmented_control(key="t_audio_source").set_value(BUILTIN).run()
    assert not at.exception and result(at).startswith("clip ")


def test_good_upload_is_resampled_and_played():
    at = run_picker()
    at.segmented_control(key="t_audio_source").set_value(UPLOAD).run()
    stereo = np.stack([sine(440, 1.5, 44100), sine(660, 1.5, 44100)], axis=1)
    at.file_uploader(key="t_audio_upload").upload("duet.wav", wav_bytes(stereo, 44100), "audio/wav")
    at.run()
    assert not at.exception and not at.error
    assert result(at) == "clip duet.wav 16000 24000"
    assert len(at.get("audio")) == 1


def test_silent_recording_is_explained():
    at = run_picker()
    at.segmented_control(key="t_audio_source").set_value(RECORD).run()
    assert result(at) == "no clip"
    silence = wav_bytes(np.zeros(16000, dtype=np.float32), 16000)
    at.audio_input(key="t_audio_record").upload("recording.wav", silence).run()
    assert not at.exception
    assert at.error[0].value.startswith("Your recording is silent")
    assert "microphone" in at.error[0].value


def test_recording_asks_the_browser_for_the_wanted_rate():
    at = run_picker(sample_rate=16000)
    at.segmented_control(key="t_audio_source").set_value(RECORD).run()
    assert at.audio_input(key="t_audio_record").sample_rate == 16000
    at = run_picker(sample_rate=12345)  # not a rate browsers record at: let them choose
    at.segmented_control(key="t_audio_source").set_value(RECORD).run()
    assert at.audio_input(key="t_audio_record").sample_rate is None


def test_upload_only_picker_has_no_source_switch():
    at = run_picker(allow_builtin=False, allow_record=False)
    assert not at.exception
    assert len(at.segmented_control) == 0 and len(at.file_uploader) == 1
    assert result(at) == "no clip"


def test_builtin_choices_cover_music_and_digits():
    labels = list(builtin_clips())
    assert sum(label.startswith("Spoken digit") for label in labels) == 4
    assert len(labels) >= 8 and all(path.exists() for path in builtin_clips().values())


def test_decode_upload_raises_the_audio_error():
    with pytest.raises(AudioError) as caught:
        decode_upload(b"", "empty.wav")
    assert caught.value.code == "empty"
    clip = decode_upload(wav_bytes(sine(440, 0.5, 8000), 8000), "tone.wav", sample_rate=16000)
    assert clip.sample_rate == 16000 and clip.num_samples == 8000
