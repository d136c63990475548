"""The Live tabs under AppTest (Classify and Music analysis): AppTest has no browser, so the
microphone never starts; the tabs' settings, their network messages and the drawing of a
stream's results (a snapshot made by core.inference.streaming from shipped recordings) are tested
here, the real microphone in tests/e2e/test_live_journey.py."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import core.inference.streaming as streaming
from core import paths
from core.audio.synth import SynthConfig, render_notes
from core.inference.classifier import model_from_loaded_run, shipped_store
from core.inference.streaming import LiveClassifier, LiveTuner, TunerConfig, stream_file
from tests.apptest_helpers import open_page
from ui.live_stream import LiveHandle

DIGITS = ("6_jackson_7", "3_jackson_1", "9_nicolas_4")


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def _markdown(at) -> str:
    return "\n".join(_texts(at.markdown))


@pytest.fixture(scope="module")
def digits_snapshot():
    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    files = {f.stem: f for f in paths.builtin_digit_files()}
    live = LiveClassifier(model)
    for name in DIGITS:
        y, rate = sf.read(files[name], dtype="float32")
        stream_file(live, np.concatenate([np.zeros(int(0.8 * rate), np.float32), y]), rate)
    stream_file(live, np.zeros(8000, np.float32), 8000)
    live.finish()
    return live.snapshot()


@pytest.fixture(autouse=True)
def _fresh_slots(monkeypatch):
    monkeypatch.delenv("AUDIO_DL_ICE_SERVERS", raising=False)
    monkeypatch.delenv("AUDIO_DL_MAX_STREAMS", raising=False)
    monkeypatch.delenv("AUDIO_DL_LIVE_GIL_SWITCH_MS", raising=False)
    monkeypatch.setattr(streaming.slots, "_SLOTS", None)


def _classify_live_tab():
    """The Classify page with its Live tab open, as a click on the tab would (the tab runs
    only while it is open)."""
    at = open_page("pages/classify.py")
    at.session_state["classify_tab"] = "Live"
    at.run()
    return at


def test_the_classify_live_tab_runs_only_while_it_is_open():
    # Its microphone component reports to the server as soon as it is drawn; drawn on every
    # Classify run it reran the page and could swallow a click on another page.
    at = open_page("pages/classify.py")
    assert not at.exception, _texts(at.exception)
    assert "classify_live_hop" not in [slider.key for slider in at.slider]
    assert not any("Press START" in t for t in _texts(at.info))
    at.session_state["classify_tab"] = "Live"
    at.run()
    assert at.slider(key="classify_live_hop").value == 0.25


def test_the_classify_live_tab_waits_for_the_microphone():
    at = _classify_live_tab()
    assert not at.exception, _texts(at.exception)
    assert at.slider(key="classify_live_hop").value == 0.25
    assert any("Press START" in t for t in _texts(at.info))
    assert any("network settings" in e.label for e in at.expander)


def test_a_stream_s_results_are_drawn_and_a_segment_is_saved_for_training(digits_snapshot):
    at = _classify_live_tab()
    at.session_state["classify_live_handle"] = LiveHandle(snapshot=digits_snapshot)
    at.run()
    assert not at.exception, _texts(at.exception)
    heard = [s.label for s, _ in digits_snapshot.segments]
    assert heard, "the shipped model detects digits in the snapshot"
    assert f"**Heard so far:** {' · '.join(heard)}" in _markdown(at)
    assert any(m.label == "Hearing" for m in at.metric)
    newest, audio = digits_snapshot.segments[-1]
    at.text_input(key=f"classify_live_class_{newest.start_seconds:.3f}").set_value("seven")
    at.button(key="classify_live_save").click().run()
    assert not at.exception, _texts(at.exception)
    clips = at.session_state["train_clips"]["seven"]
    assert len(clips) == 1
    clip = next(iter(clips.values()))
    assert clip.sample_rate == 16000
    assert clip.duration_seconds == pytest.approx(
        audio.size / digits_snapshot.sample_rate, abs=0.01
    )
    assert "seven" in at.session_state["train_rec_names"]
    assert any("Saved" in t for t in _texts(at.success))
    # Another segment offers its own label, not the one typed for the first.
    oldest = digits_snapshot.segments[0][0]
    assert len(heard) >= 2 and oldest.label != "seven"
    at.selectbox(key="classify_live_segment").set_value(round(oldest.start_seconds, 3)).run()
    assert at.text_input(key=f"classify_live_class_{oldest.start_seconds:.3f}").value == (
        oldest.label
    )


@pytest.mark.parametrize(
    "variable, value, kind, sentence",
    [
        ("AUDIO_DL_ICE_SERVERS", "stun:forgot-the-json", "error", "not valid JSON"),
        ("AUDIO_DL_MAX_STREAMS", "0", "info", "switched off"),
        ("AUDIO_DL_LIVE_GIL_SWITCH_MS", "fast", "error", "must be a number of milliseconds"),
    ],
)
def test_the_teacher_s_live_settings_are_explained_not_raised(
    monkeypatch, variable, value, kind, sentence
):
    """Broken network or GIL settings, and live listening switched off: a sentence each."""
    monkeypatch.setenv(variable, value)
    at = _classify_live_tab()
    assert not at.exception, _texts(at.exception)
    assert any(sentence in t for t in _texts(getattr(at, kind))), _texts(getattr(at, kind))


def test_the_music_live_tab_draws_the_tuner_and_the_notes():
    y = render_notes([(60, 0, 2), (64, 2, 2), (67, 4, 2)], SynthConfig(sample_rate=16000))
    tuner = LiveTuner(TunerConfig())
    stream_file(tuner, y, 16000)
    at = open_page("pages/music.py")
    at.segmented_control(key="music_source").set_value("Live").run()
    assert not at.exception, _texts(at.exception)
    assert any("Press START" in t for t in _texts(at.info))
    at.session_state["music_live_handle"] = LiveHandle(snapshot=tuner.snapshot())
    at.run()
    assert not at.exception, _texts(at.exception)
    assert "**Notes held:** C4 · E4 · G4" in _markdown(at)
    assert len(at.get("plotly_chart")) == 3  # tuner, chroma / loudness, pitch line


def test_when_the_microphone_track_ends_the_stream_goes_and_its_last_picture_stays(
    digits_snapshot,
):
    """STOP, a closed tab or a dropped connection end the WebRTC track: the callback (a WebRTC
    thread, no st.*) keeps the last snapshot and frees the stream without waiting for it."""
    import time

    from core.inference.streaming import StreamSlots
    from ui.live_stream import _track_ender

    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    files = {f.stem: f for f in paths.builtin_digit_files()}
    y, rate = sf.read(files[DIGITS[0]], dtype="float32")
    slots = StreamSlots(1)
    handle = LiveHandle(stream=slots.open("tab", LiveClassifier(model)))
    silence = np.zeros(rate, np.float32)
    stream_file(handle.stream, np.concatenate([silence, y, silence]), rate)
    assert handle.stream.wait_idle(30)
    started = time.monotonic()
    _track_ender(handle)()
    assert time.monotonic() - started < 0.5  # the callback does not wait for the worker
    handle.stream.thread.join(5)
    assert not handle.stream.thread.is_alive() and slots.active == 0
    assert handle.snapshot is not None and handle.snapshot.result.probabilities.shape[0] >= 3


def test_without_a_push_route_a_running_stream_s_answer_is_redrawn_by_the_page():
    """AppTest's runtime has no server to add the answer route to (ui/live_push.py): the page
    falls back to redrawing the answer itself, the same words the pushed answer shows."""
    from core.inference.streaming import LiveStream
    from ui.classify_live import answer_lines

    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    y, rate = sf.read(paths.DIGITS_DIR / f"{DIGITS[0]}.wav", dtype="float32")
    at = _classify_live_tab()
    # No audio after the word: the stream must not stop itself while the page runs.
    stream = LiveStream(LiveClassifier(model), idle_timeout_seconds=600)
    try:
        stream_file(stream, np.concatenate([np.zeros(rate // 2, np.float32), y]), rate)
        assert stream.wait_idle(30)
        at.session_state["classify_live_handle"] = LiveHandle(stream=stream)
        at.run()
        assert not at.exception, _texts(at.exception)
        headline, detail = answer_lines(stream.latest()[0])
        assert headline not in ("…", "silence")  # the word was heard
        assert [m.value for m in at.metric if m.label == "Hearing"] == [headline]
        assert detail in _texts(at.caption)
        assert at.session_state["classify_live_handle"].push_token == ""  # nothing opened
    finally:
        stream.stop()


def test_without_a_push_route_a_running_tuner_s_needle_is_redrawn_by_the_page():
    """The Music tab's needle is pushed in a browser (look "needle"); AppTest has no server
    for the route, so the page redraws the plotly gauge instead, reading what the pushed
    needle would show."""
    from core.inference.streaming import LiveStream
    from ui.music_live import tuner_shown

    y = render_notes([(69, 0, 4)], SynthConfig(sample_rate=16000))  # A4 for 0.4 s
    at = open_page("pages/music.py")
    at.segmented_control(key="music_source").set_value("Live").run()
    stream = LiveStream(LiveTuner(TunerConfig()), idle_timeout_seconds=600)
    try:
        stream_file(stream, y[: int(0.3 * 16000)], 16000)  # stop within the note
        assert stream.wait_idle(30)
        at.session_state["music_live_handle"] = LiveHandle(stream=stream)
        at.run()
        assert not at.exception, _texts(at.exception)
        shown = tuner_shown(stream.latest()[0])
        assert shown.headline == "A4" and shown.in_tune
        gauges = [c for c in at.get("plotly_chart") if '"indicator"' in c.proto.spec]
        assert len(gauges) == 1 and '"A4' in gauges[0].proto.spec
        assert at.session_state["music_live_handle"].push_token == ""  # nothing opened
    finally:
        stream.stop()


def test_while_streaming_the_segment_picker_is_a_fragment_of_its_own_that_still_saves():
    """While the microphone streams, the history (redrawn every second) lists what was heard
    and the picker (play, save) is drawn once, outside it, rerun only when used."""
    from core.inference.streaming import LiveStream

    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    files = {f.stem: f for f in paths.builtin_digit_files()}
    # Fed faster than real time: no backlog limit, or a busy machine drops the first words.
    stream = LiveStream(LiveClassifier(model), idle_timeout_seconds=600, max_backlog_seconds=600)
    try:
        for name in DIGITS:
            y, rate = sf.read(files[name], dtype="float32")
            stream_file(stream, np.concatenate([np.zeros(int(0.8 * rate), np.float32), y]), rate)
        stream_file(stream, np.zeros(8000, np.float32), 8000)
        assert stream.wait_idle(60)
        at = _classify_live_tab()
        at.session_state["classify_live_handle"] = LiveHandle(stream=stream)
        at.run()
        assert not at.exception, _texts(at.exception)
        heard = [s.label for s, _ in stream.snapshot().segments]
        assert len(heard) >= 2
        assert f"**Heard so far:** {' · '.join(heard)}" in _markdown(at)
        pickers = [s for s in at.selectbox if s.key == "classify_live_segment"]
        assert len(pickers) == 1  # drawn once: by the picker, not by the history too
        at.button(key="classify_live_segments_refresh").click().run()
        assert not at.exception, _texts(at.exception)
        newest = stream.snapshot().segments[-1][0]
        at.text_input(key=f"classify_live_class_{newest.start_seconds:.3f}").set_value("live")
        at.button(key="classify_live_save").click().run()
        assert not at.exception, _texts(at.exception)
        assert len(at.session_state["train_clips"]["live"]) == 1
    finally:
        stream.stop()
