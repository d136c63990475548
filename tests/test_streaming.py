"""Live listening core (core/inference/streaming/): parity with the offline timeline, the tuner on
known pitches, odd frames (irregular, dropped, NaN, silence) and clean shutdown."""

from __future__ import annotations

import dataclasses
import math
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from core import paths
from core.audio.levels import resample
from core.audio.synth import SynthConfig, render_notes
from core.inference.classifier import (
    classify_windows,
    find_segments,
    model_from_loaded_run,
    shipped_store,
)
from core.inference.streaming import (
    LiveClassifier,
    LiveClassifierConfig,
    LiveStream,
    LiveTuner,
    RingBuffer,
    StreamError,
    StreamResampler,
    StreamSlots,
    TunerConfig,
    as_mono_float,
    max_streams,
    note_and_cents,
    rtc_configuration,
    stream_file,
)

# 6_jackson_7 is the loudest of the five: first, so the stream has heard its loudest sound as
# early as the file has (the one thing a stream cannot know in advance; see
# core.inference.streaming).
DIGITS = ("6_jackson_7", "1_lucas_3", "3_jackson_1", "7_george_2", "9_nicolas_4")


@pytest.fixture(scope="module")
def shipped():
    return model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")


def _spoken(names, lead_seconds: float = 0.8) -> tuple[np.ndarray, int]:
    files = {f.stem: f for f in paths.builtin_digit_files()}
    parts, rate = [], None
    for i, name in enumerate(names):
        y, rate = sf.read(files[name], dtype="float32")
        gap = lead_seconds if i == 0 else 0.8
        parts += [np.zeros(int(gap * rate), np.float32), y]
    parts.append(np.zeros(int(0.8 * rate), np.float32))
    return np.concatenate(parts), rate


@pytest.fixture(scope="module")
def spoken_digits() -> tuple[np.ndarray, int]:
    """Five shipped recordings (four speakers), 0.8 s of silence between them; the first
    starts after 0.2 s so the first window (1 s) has heard the loudest sound of the file."""
    return _spoken(DIGITS, lead_seconds=0.2)


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("hop", [0.1, 0.25])
def test_streamed_probabilities_equal_the_offline_timeline(shipped, spoken_digits, hop):
    y, rate = spoken_digits
    level = shipped.recipe.frame_levels_db(resample(y, rate, shipped.sample_rate))
    first_window = shipped.clip_frames
    assert int(np.argmax(level)) < first_window  # the first window hears the loudest sound
    offline = classify_windows(shipped, y, rate, hop_seconds=hop, trim_silence=True)
    live = LiveClassifier(shipped, LiveClassifierConfig(hop_seconds=hop))
    stream_file(live, y, rate, frame_sizes=[160, 37, 400, 1, 882])  # irregular frames
    live.finish()
    streamed = live.window_result()
    np.testing.assert_allclose(streamed.starts_seconds, offline.starts_seconds)
    assert np.abs(streamed.probabilities - offline.probabilities).max() <= 1e-4
    np.testing.assert_array_equal(streamed.silent, offline.silent)
    # The windows that cut a word at their edge are the same ones, so segments skip them alike.
    np.testing.assert_array_equal(streamed.cut, offline.cut)
    assert offline.cut.any()
    offline_segments = find_segments(offline, threshold=0.6, smooth_windows=3)
    assert [s.label for s in live.segments()] == [s.label for s in offline_segments]
    assert len(offline_segments) >= 3  # the comparison is about real detections


def test_before_its_loudest_sound_a_stream_measures_silence_against_the_loudest_so_far(shipped):
    """Louder words later: the offline timeline gates silence against them, the stream cannot
    yet. Every window that ends after the loudest sound is heard equals the offline one."""
    y, rate = _spoken(DIGITS[1:] + DIGITS[:1])  # the loudest recording last
    offline = classify_windows(shipped, y, rate, hop_seconds=0.1, trim_silence=True)
    live = LiveClassifier(shipped, LiveClassifierConfig(hop_seconds=0.1))
    stream_file(live, y, rate)
    live.finish()
    level = shipped.recipe.frame_levels_db(resample(y, rate, shipped.sample_rate))
    loudest_seconds = (
        int(np.argmax(level)) * shipped.feature_config.hop_length / shipped.sample_rate
    )
    heard = offline.starts_seconds + offline.window_seconds >= loudest_seconds
    diff = np.abs(live.window_result().probabilities - offline.probabilities).max(axis=1)
    assert heard.sum() >= 5 and (~heard).sum() >= 5
    assert diff[heard].max() <= 1e-4
    assert live.loudest_db == pytest.approx(float(level.max()), abs=1e-4)


def test_a_48k_stereo_int16_stream_matches_the_offline_timeline_of_the_same_audio(shipped):
    files = {f.stem: f for f in paths.builtin_digit_files()}
    y, rate = sf.read(files["7_george_2"], dtype="float32")
    y = np.concatenate([np.zeros(rate // 2, np.float32), y, np.zeros(rate // 2, np.float32)])
    from core.audio.levels import resample

    mic = np.round(resample(y, rate, 48000) * 20000).astype(np.int16)  # what WebRTC sends
    stereo = np.stack([mic, mic], axis=1).reshape(1, -1)  # packed s16: L R L R ...
    live = LiveClassifier(shipped)
    frame = 960  # 20 ms at 48 kHz
    for i in range(0, mic.size, frame):
        chunk = stereo[:, 2 * i : 2 * (i + frame)]
        live.feed(as_mono_float(chunk, channels=2, interleaved=True), 48000)
    live.finish()
    offline = classify_windows(
        shipped, mic.astype(np.float32) / 32768, 48000, hop_seconds=0.25, trim_silence=True
    )
    assert np.abs(live.window_result().probabilities - offline.probabilities).max() <= 1e-4


def test_the_stream_resampler_equals_resampling_the_whole_recording():
    from core.audio.levels import resample

    y = np.random.default_rng(0).normal(0, 0.1, 44100).astype(np.float32)
    r = StreamResampler(16000)
    out = [r(y[i : i + n], 44100) for i, n in zip(range(0, 44100, 441), [441] * 100, strict=True)]
    out.append(r.flush())
    np.testing.assert_allclose(np.concatenate(out), resample(y, 44100, 16000), atol=1e-6)


def test_the_current_answer_is_the_smoothed_last_windows_with_unsure(shipped, spoken_digits):
    y, rate = spoken_digits
    live = LiveClassifier(shipped, LiveClassifierConfig(smooth_windows=2))
    assert live.current() is None
    stream_file(live, y[: int(rate * 2.2)], rate)  # silence, the first digit, silence after
    answer = live.current()
    p = np.asarray(list(live.probabilities)[-2:]).mean(axis=0)
    np.testing.assert_allclose(answer.probabilities, p)
    assert answer.silent == bool(live.silent[-1])
    if not answer.silent:
        assert answer.label == shipped.labels[int(np.argmax(p))]
        assert answer.unsure == bool(answer.reason)


def test_the_stream_stamps_each_answer_with_when_its_sound_came_and_its_label_began(
    shipped, spoken_digits
):
    y, rate = spoken_digits
    stream = LiveStream(LiveClassifier(shipped))
    try:
        assert stream.latest() == (None, None)
        clocks = []
        before = time.time()
        for i in range(0, int(rate * 4), rate // 4):  # a quarter second at a time
            stream_file(stream, y[i : i + rate // 4], rate)
            assert stream.wait_idle(30)
            answer, clock = stream.latest()
            if clock is not None:
                clocks.append((answer.headline, clock))
        after = time.time()
    finally:
        stream.stop()
    assert len(clocks) >= 10
    headlines = [h for h, _ in clocks]
    assert "silence" in headlines and any(h != "silence" for h in headlines)  # it changed
    for (headline, clock), (_, previous) in zip(clocks[1:], clocks, strict=False):
        assert clock.headline == headline  # the clock speaks of the answer it comes with
        assert before <= clock.heard_at <= clock.ready_at <= after
        assert clock.answers >= previous.answers
        if clock.headline == previous.headline:  # the same label: it began when it began
            assert clock.headline_heard_at == previous.headline_heard_at
        else:  # a new label began with the newest answer
            assert clock.headline_heard_at == clock.heard_at


@pytest.mark.parametrize(
    ("silent", "unsure", "label", "headline"),
    [(True, False, "", "silence"), (False, True, "7", "7?"), (False, False, "7", "7")],
)
def test_an_answer_s_headline_is_what_the_live_tab_shows(silent, unsure, label, headline):
    from core.inference.streaming import LiveAnswer

    answer = LiveAnswer(label, 0.5, unsure, "", silent, np.zeros(10, np.float32), 1.0)
    assert answer.headline == headline


def test_the_worker_runs_torch_on_one_thread_without_changing_the_callers(shipped):
    import torch

    threads_here = torch.get_num_threads()
    seen = []

    class Probe(LiveTuner):  # a real tuner that also notes the torch threads it runs with
        def feed(self, samples, sample_rate):
            seen.append(torch.get_num_threads())
            return super().feed(samples, sample_rate)

    stream = LiveStream(Probe())
    try:
        stream.push(np.zeros(1600, np.float32), 16000)
        assert stream.wait_idle(10)
    finally:
        stream.stop()
    assert seen == [1]
    assert torch.get_num_threads() == threads_here


# --------------------------------------------------------------------------- odd input


def test_silence_gives_silent_windows_and_no_segments(shipped):
    live = LiveClassifier(shipped)
    stream_file(live, np.zeros(16000 * 3, np.float32), 16000)
    assert live.windows_done >= 8
    assert all(live.silent)
    assert live.current().silent and live.current().label == ""
    assert live.segments() == []


def test_nan_frames_are_zeroed_counted_and_do_not_break_the_stream(shipped, spoken_digits):
    y, rate = spoken_digits
    stream = LiveStream(LiveClassifier(shipped))
    try:
        bad = np.full(160, np.nan, np.float32)
        bad[::3] = np.inf
        stream.push(bad, rate)
        stream_file(stream, y[: rate * 3], rate)
        assert stream.wait_idle(30)
        with stream.lock:
            probabilities = np.asarray(stream.analyser.probabilities)
        assert stream.stats.bad_samples == 160
        assert probabilities.size and np.isfinite(probabilities).all()
        assert stream.error == ""
    finally:
        stream.stop()


def test_dropped_frames_are_filled_with_silence_so_the_clock_stays_right(shipped):
    stream = LiveStream(LiveClassifier(shipped))
    rate = shipped.sample_rate  # no resampling: its filter would hold back a few ms of audio
    try:
        frame = np.full(rate // 50, 0.01, np.float32)  # 20 ms
        t = 0.0
        for i in range(100):
            if i % 10 == 3:  # every tenth frame lost in the network
                t += 0.02
                continue
            stream.push(frame, rate, time_seconds=t)
            t += 0.02
        assert stream.wait_idle(30)
        assert stream.stats.gap_seconds == pytest.approx(0.2, abs=1e-6)
        assert stream.analyser.stream_seconds == pytest.approx(2.0, abs=1e-3)
    finally:
        stream.stop()


@pytest.mark.parametrize(
    "samples, kwargs, expected",
    [
        (np.array([16384, -32768], np.int16), {}, [0.5, -1.0]),
        (np.array([[16384, 0, -16384, -16384]], np.int16), {"channels": 2}, [0.25, -0.5]),
        (
            np.array([[0.5, 1.0], [-0.5, 0.0]], np.float32),
            {"channels": 2, "interleaved": False},
            [0.0, 0.5],
        ),
        (np.array([np.nan, 2.0, -np.inf], np.float32), {}, [0.0, 1.0, 0.0]),
    ],
)
def test_frames_of_any_layout_become_mono_float(samples, kwargs, expected):
    np.testing.assert_allclose(as_mono_float(samples, **kwargs), expected)


def test_ring_buffer_keeps_the_newest_samples_by_absolute_index():
    ring = RingBuffer(10)
    ring.append(np.arange(7, dtype=np.float32))
    ring.append(np.arange(7, 15, dtype=np.float32))  # wraps
    assert ring.written == 15 and ring.oldest == 5
    np.testing.assert_array_equal(ring.read(0, 15), np.arange(5, 15))
    np.testing.assert_array_equal(ring.latest(3), [12, 13, 14])
    ring.append(np.arange(100, 125, dtype=np.float32))  # more than it holds
    assert ring.written == 40
    np.testing.assert_array_equal(ring.read(30, 40), np.arange(115, 125))


@pytest.mark.parametrize("hop", [0.05, 0.3, float("nan")])
def test_a_hop_outside_100_to_250_ms_is_refused_with_a_sentence(hop):
    with pytest.raises(StreamError, match="hop must be between"):
        LiveClassifierConfig(hop_seconds=hop)


# --------------------------------------------------------------------------- tuner


@pytest.mark.parametrize(
    "hz, note, cents",
    [
        (440.0, "A4", 0.0),
        (446.0, "A4", 23.4),
        (261.63, "C4", 0.0),
        (432.0, "A4", -31.8),
        (1046.5, "C6", 0.0),
    ],
)
def test_note_and_cents_known_answers(hz, note, cents):
    name, off = note_and_cents(hz)
    assert name == note and off == pytest.approx(cents, abs=0.1)


@pytest.mark.parametrize("hz, note, cents", [(440.0, "A4", 0), (446.0, "A4", 23), (196.0, "G3", 0)])
def test_the_tuner_names_a_sine_and_its_cents(hz, note, cents):
    rate = 48000
    t = np.arange(rate) / rate
    tuner = LiveTuner()
    stream_file(tuner, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    reading = tuner.current()
    assert reading.note == note
    assert reading.cents == pytest.approx(cents, abs=2)
    assert reading.periodicity > 0.9
    assert reading.rms_dbfs == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)), abs=0.5)
    pitch_class = round(69 + 12 * math.log2(hz / 440)) % 12
    assert int(np.argmax(reading.chroma)) == pitch_class


def test_the_tuner_shows_no_pitch_for_noise():
    noise = np.random.default_rng(0).normal(0, 0.2, 16000).astype(np.float32)
    tuner = LiveTuner()
    stream_file(tuner, noise, 16000)
    assert all(r.note == "" for r in tuner.readings)
    assert max(r.periodicity for r in tuner.readings) < 0.6


def test_the_tuner_is_quiet_on_silence():
    tuner = LiveTuner()
    stream_file(tuner, np.zeros(16000, np.float32), 16000)
    reading = tuner.current()
    assert reading.note == "" and math.isnan(reading.frequency_hz)
    assert not reading.chroma.any()


def test_the_tuner_follows_a_synthesized_melody():
    melody = [(60, 0, 2), (64, 2, 2), (67, 4, 2), (72, 6, 2), (69, 8, 2)]  # C4 E4 G4 C5 A4
    y = render_notes(melody, SynthConfig(sample_rate=22050, step_seconds=0.25))
    tuner = LiveTuner(TunerConfig(hop_seconds=0.05))
    stream_file(tuner, y, 22050)
    assert tuner.notes(min_readings=3) == ["C4", "E4", "G4", "C5", "A4"]


# --------------------------------------------------------------------------- shutdown and limits


def test_stop_joins_the_worker_and_releases_buffers(shipped, spoken_digits):
    y, rate = spoken_digits
    before = threading.active_count()
    slots = StreamSlots(2)
    stream = slots.open("session-a", LiveClassifier(shipped))
    stream_file(stream, y[: rate * 2], rate)
    assert stream.wait_idle(30)
    assert slots.active == 1
    slots.close("session-a")
    assert not stream.thread.is_alive()
    assert stream.analyser.buffer.written == 0 and stream.analyser.buffer._data.size == 0
    assert len(stream.analyser.probabilities) == 0
    assert slots.active == 0 and slots.get("session-a") is None
    assert threading.active_count() == before


def test_while_streams_run_the_gil_changes_hands_every_millisecond_then_as_before(
    shipped, monkeypatch
):
    """A window's analysis takes the GIL back after each torch / numpy call: at Python's 5 ms
    switch interval each take-back beside a busy page waits up to 5 ms (core.inference.
    streaming.stream). The interval is lowered while any stream runs and put back when the
    last one ends, also when streams end by themselves."""
    import sys

    from core.inference.streaming import GIL_SWITCH

    monkeypatch.delenv("AUDIO_DL_LIVE_GIL_SWITCH_MS", raising=False)
    before, others = sys.getswitchinterval(), GIL_SWITCH.streams  # others: a test's leftovers
    assert others > 0 or before == pytest.approx(0.005)
    slots = StreamSlots(2)
    first = slots.open("a", LiveClassifier(shipped))
    second = slots.open("b", LiveTuner(), idle_timeout_seconds=0.2)
    assert sys.getswitchinterval() == pytest.approx(0.001) and GIL_SWITCH.streams == others + 2
    second.thread.join(5)  # no audio: it stops by itself
    assert second.ended and sys.getswitchinterval() == pytest.approx(0.001)
    slots.close("a")
    assert not first.thread.is_alive()
    assert GIL_SWITCH.streams == others and sys.getswitchinterval() == before
    # The shortest interval any running stream asked for, the others' once it ends.
    one_ms = LiveStream(LiveTuner())
    monkeypatch.setenv("AUDIO_DL_LIVE_GIL_SWITCH_MS", "0.5")
    half_ms = LiveStream(LiveTuner())
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    half_ms.stop()
    assert sys.getswitchinterval() == pytest.approx(0.001)
    one_ms.stop()
    assert sys.getswitchinterval() == before
    for bad, sentence in (("fast", "number of milliseconds"), ("0", "between 0.1 and 100")):
        monkeypatch.setenv("AUDIO_DL_LIVE_GIL_SWITCH_MS", bad)
        with pytest.raises(StreamError, match=sentence):
            LiveStream(LiveTuner())
    assert GIL_SWITCH.streams == others and sys.getswitchinterval() == before


def test_a_long_stream_keeps_bounded_memory(shipped):
    live = LiveClassifier(shipped, LiveClassifierConfig(history_seconds=2.0))
    noise = np.random.default_rng(0).normal(0, 0.05, 16000 * 20).astype(np.float32)
    stream_file(live, noise, 16000, frame_seconds=0.5)
    assert live.windows_done >= 70
    two_seconds = 2 * shipped.sample_rate  # the history is kept at the model's rate
    assert live.buffer.capacity == two_seconds and live.buffer._data.size == two_seconds
    assert len(live.probabilities) == live.probabilities.maxlen <= 10
    assert live.window_result().starts_seconds[0] >= 17.0  # only the newest windows remain


@pytest.mark.slow
def test_ten_minutes_of_streaming_keep_memory_buffers_threads_and_cpu_bounded(
    shipped, spoken_digits
):
    """A stream left open for 10 minutes (fed faster than real time, two seconds at a time
    so nothing is dropped): memory, buffers, queues and threads stop growing once the
    history is full, and a minute costs as much CPU at the end as at the start."""
    import tracemalloc

    y, rate = spoken_digits
    minute = np.resize(y, 60 * rate)  # the five digits over and over
    threads_before = threading.active_count()
    stream = LiveStream(LiveClassifier(shipped, LiveClassifierConfig(hop_seconds=0.25)))
    live = stream.analyser
    traced, cpu, sizes = [], [], []
    tracemalloc.start()
    try:
        for _ in range(10):
            cpu_before = stream.stats.cpu_seconds
            for i in range(0, minute.size, 2 * rate):
                stream_file(stream, minute[i : i + 2 * rate], rate)
                assert stream.wait_idle(60)
            assert threading.active_count() == threads_before + 1  # the one worker
            with stream.lock:
                sizes.append((live.buffer._data.size, len(live.probabilities), len(live.starts)))
                latencies = stream.stats.latencies_seconds
                assert len(latencies) <= latencies.maxlen == 2000
                cpu.append(stream.stats.cpu_seconds - cpu_before)
            stream.snapshot()  # what the page does: segments found and their audio kept
            traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        stream.stop()
    assert stream.stats.received_seconds == pytest.approx(600, abs=0.1)
    assert stream.stats.dropped_seconds == 0 and stream.stats.backlog_seconds < 1e-6
    assert live.windows_done >= 2390  # every hop of ten minutes was classified
    assert len(set(sizes[1:])) == 1  # the history was full after a minute and stayed so
    assert sizes[-1][0] == 30 * shipped.sample_rate  # HISTORY_SECONDS of audio, no more
    assert len(live._detected) <= 50
    assert max(traced[2:]) - traced[1] < 2_000_000  # bytes: no growth after the first minutes
    assert max(cpu[1:]) < 2.5 * min(cpu[1:])  # no minute costs more as the stream ages
    assert threading.active_count() == threads_before and not stream.thread.is_alive()


def test_a_dropped_connection_stops_the_stream_by_itself(shipped):
    slots = StreamSlots(1)
    stream = slots.open("gone", LiveClassifier(shipped), idle_timeout_seconds=0.3)
    stream.push(np.zeros(320, np.float32), 16000)
    deadline = time.monotonic() + 10
    while stream.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not stream.thread.is_alive()
    assert slots.active == 0  # the slot came back without anyone calling close
    assert stream.analyser.buffer._data.size == 0
    cpu_before = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - cpu_before < 0.1  # nothing keeps running


def test_a_stream_stops_as_soon_as_the_page_listening_to_it_is_gone(shipped):
    page_open = threading.Event()
    page_open.set()
    slots = StreamSlots(1)
    stream = slots.open("tab", LiveClassifier(shipped), alive=page_open.is_set)
    stream.push(np.zeros(320, np.float32), 16000)
    time.sleep(0.7)
    assert stream.running and slots.active == 1  # frames stopped, but the page is there
    page_open.clear()  # the tab closed: its websocket is gone
    closed = time.monotonic()
    stream.thread.join(5)
    assert not stream.thread.is_alive() and time.monotonic() - closed < 2
    assert slots.active == 0 and stream.analyser.buffer._data.size == 0
    assert "closed" in stream.ended


def test_the_server_cap_refuses_a_stream_when_full_and_one_per_session(shipped):
    slots = StreamSlots(1)
    first = slots.open("a", LiveTuner())
    try:
        assert slots.open("b", LiveTuner()) is None
        again = slots.open("a", LiveTuner())  # the same session replaces its stream
        assert again is not None and not first.thread.is_alive()
    finally:
        slots.close("a")


def test_network_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv("AUDIO_DL_ICE_SERVERS", raising=False)
    monkeypatch.delenv("AUDIO_DL_MAX_STREAMS", raising=False)
    assert rtc_configuration() == {"iceServers": []}
    assert max_streams() == 8
    monkeypatch.setenv("AUDIO_DL_ICE_SERVERS", '[{"urls": ["stun:stun.example.org:3478"]}]')
    assert rtc_configuration()["iceServers"][0]["urls"] == ["stun:stun.example.org:3478"]
    monkeypatch.setenv("AUDIO_DL_ICE_SERVERS", "stun:oops")
    with pytest.raises(StreamError, match="not valid JSON"):
        rtc_configuration()
    monkeypatch.setenv("AUDIO_DL_MAX_STREAMS", "three")
    with pytest.raises(StreamError, match="whole number"):
        max_streams()
    monkeypatch.setenv("AUDIO_DL_MAX_STREAMS", "2")
    assert max_streams() == 2


# --------------------------------------------------------------------------- plot builders


def test_live_plot_builders_carry_the_readings():
    from core.viz.live import chroma_meter_figure, pitch_line_figure, tuner_dial, tuner_figure

    tuner = LiveTuner()
    rate = 16000
    t = np.arange(rate) / rate
    stream_file(tuner, (0.3 * np.sin(2 * np.pi * 446.0 * t)).astype(np.float32), rate)
    reading = tuner.current()
    gauge = tuner_figure(reading).data[0]
    assert gauge.value == pytest.approx(reading.cents) and "A4" in gauge.title.text
    assert tuner_figure(None).data[0].mode == "gauge"  # an empty dial, no number
    # The gauge and the pushed needle (ui/music_live.py) read the same dial.
    dial = tuner_dial(reading)
    assert (dial.note, dial.in_tune) == ("A4", False)  # 446 Hz: 23 cents sharp
    assert dial.cents == pytest.approx(23.4, abs=2.0) and dial.frequency_hz == pytest.approx(
        446, abs=1
    )
    assert dial.title == gauge.title.text
    unpitched = dataclasses.replace(reading, note="", cents=np.nan, frequency_hz=np.nan)
    assert not tuner_dial(None).pitched and not tuner_dial(unpitched).pitched
    assert tuner_dial(unpitched).title == tuner_figure(unpitched).data[0].title.text
    line = pitch_line_figure(list(tuner.readings)).data[0]
    voiced = np.asarray(line.y, dtype=float)
    assert np.nanmedian(voiced) == pytest.approx(69.23, abs=0.03)  # MIDI of 446 Hz
    bars = chroma_meter_figure(reading.chroma, reading.rms_dbfs).data
    assert list(bars[0].x)[int(np.argmax(bars[0].y))] == "A"
    assert bars[1].base[0] + bars[1].y[0] == pytest.approx(reading.rms_dbfs)


def test_the_spectrogram_picture_puts_low_bands_at_the_bottom_and_loud_bright():
    from core.viz.audio import spectrogram_image

    mel = np.full((64, 300), -100.0, np.float32)
    mel[0, :] = 0.0  # the lowest band at full scale
    mel[10, 150] = np.nan  # a hole reads as the floor, not as an error
    image = spectrogram_image(mel, row_pixels=3)
    assert image.shape == (192, 300, 3) and image.dtype == np.uint8
    assert (image[-3:] == image[-1, 0]).all() and image[-1, 0].sum() > 600  # bright yellow
    assert (image[:-3] == 0).all()  # black (not the near-black Streamlit repaints)


def test_the_timeline_outlines_each_segment_on_its_class_row():
    from core.viz.classify import timeline_figure

    labels = ["0", "1", "2"]
    spans = [(0.0, 1.0, "2"), (1.5, 2.0, "0"), (2.0, 2.2, "unknown")]
    fig = timeline_figure(np.arange(10) * 0.25, np.full((10, 3), 1 / 3), labels, segments=spans)
    outlines = [(s.x0, s.x1, s.y0, s.y1) for s in fig.layout.shapes]
    assert outlines == [(0.0, 1.0, 1.5, 2.5), (1.5, 2.0, -0.5, 0.5)]


def test_the_timeline_picture_puts_each_probability_on_its_class_row_and_window():
    """The Live tab's probability timeline (a picture since the answer is pushed): rows are
    classes with the first at the bottom, columns windows right-aligned in the strip, the
    colour the probability on Viridis, silence dark, segments outlined in red."""
    from core.viz.colors import colour_table
    from core.viz.live import (
        SEGMENT_OUTLINE,
        TIMELINE_BACKGROUND,
        TIMELINE_TEXT,
        timeline_image,
    )

    labels = ["zero", "one", "two"]
    p = np.zeros((4, 3), np.float32)
    p[:, 1] = 0.5
    p[3, 0] = 1.0  # the newest window says "zero" for sure
    silent = np.array([True, False, False, False])
    rows, step = 10, 5
    image = timeline_image(
        p,
        labels,
        silent=silent,
        segments=[(1, 2, "two"), (0, 0, "not a class")],
        columns=6,
        window_pixels=step,
        row_pixels=rows,
    )
    assert image.shape[0] == 3 * rows and image.dtype == np.uint8
    margin = image.shape[1] - 6 * step
    assert margin >= 56

    def cell(label: str, window: int) -> np.ndarray:  # the centre pixel of a window's cell
        row = 2 - labels.index(label)
        return image[row * rows + rows // 2, margin + (2 + window) * step + step // 2]

    viridis = colour_table("Viridis")
    np.testing.assert_array_equal(cell("zero", 3), viridis[255])  # bottom row, newest
    np.testing.assert_array_equal(cell("one", 3), viridis[128])
    np.testing.assert_array_equal(cell("zero", 2), viridis[0])
    np.testing.assert_array_equal(cell("one", 0), TIMELINE_BACKGROUND)  # silent window
    np.testing.assert_array_equal(image[rows // 2, margin + step // 2], TIMELINE_BACKGROUND)
    # "two" (top row) outlined over windows 1-2: red on its top edge there, not beyond.
    left = margin + 3 * step
    assert (image[0, left : left + 2 * step] == SEGMENT_OUTLINE).all()
    assert not (image[0, left + 2 * step + 1 :] == SEGMENT_OUTLINE).all(axis=-1).any()
    assert not (image[rows:] == SEGMENT_OUTLINE).all(axis=-1).any()  # nothing for the others
    # Each class name is written in its row of the margin (light text on the dark margin).
    for row in range(3):
        band = image[row * rows : (row + 1) * rows, :margin].astype(int).sum(axis=-1)
        assert (band > sum(TIMELINE_TEXT) / 2).sum() >= 5
    # Before the first window: an empty strip of the same size.
    empty = timeline_image(np.zeros((0, 3)), labels, columns=6, window_pixels=step, row_pixels=rows)
    assert empty.shape == image.shape


def test_a_snapshot_two_windows_into_the_stream_with_smoothing_over_three(shipped):
    """Regression (the Live tab crashed right after START): with fewer windows than the
    smoothing, the moving average kept numpy's 'same' length (the kernel's), not the windows'."""
    from core.inference.classifier import smooth_probabilities

    p = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    np.testing.assert_allclose(smooth_probabilities(p, 3), [[0.5, 0.5], [0.5, 0.5]])
    live = LiveClassifier(shipped, LiveClassifierConfig(smooth_windows=3, hop_seconds=0.25))
    rate = shipped.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(2 * rate) / rate)).astype(np.float32)
    while live.windows_done < 2:
        live.feed(tone[: rate // 10], rate)
        tone = tone[rate // 10 :]
    assert live.windows_done == 2
    snapshot = live.snapshot()
    assert snapshot.result.probabilities.shape == (2, shipped.num_classes)


def test_the_pitch_line_picture_puts_each_note_on_its_row_newest_at_the_right():
    from core.viz.live import PITCH_LINE_COLOUR, pitch_line_figure, pitch_line_image

    rate = 16000
    tune = render_notes([(60, 0, 6), (67, 8, 6)], SynthConfig(sample_rate=rate))  # C4, rest, G4
    tuner = LiveTuner()
    stream_file(tuner, np.concatenate([tune, np.zeros(rate // 2, np.float32)]), rate)
    readings = list(tuner.readings)
    image = pitch_line_image(readings, seconds=10.0, width=400, height=200, label_pixels=40)
    assert image.shape == (200, 440, 3) and image.dtype == np.uint8
    line = np.all(image == PITCH_LINE_COLOUR, axis=2)
    assert not line[:, :40].any()  # the margin holds the note names only
    # The axis is the plotly line's: the rows of C4 and G4 from its range.
    low, high = pitch_line_figure(readings).layout.yaxis.range
    rows = {m: round((high - m) / (high - low) * 199) for m in (60, 67)}
    columns = np.flatnonzero(line.any(axis=0))
    heard = {m: int(line[rows[m] - 2 : rows[m] + 3].any(axis=0).sum()) for m in rows}
    assert heard[60] > 10 and heard[67] > 10, heard
    # G4 came later: further right; the newest readings (silence) leave the right edge empty.
    g_columns = np.flatnonzero(line[rows[67] - 2 : rows[67] + 3].any(axis=0))
    c_columns = np.flatnonzero(line[rows[60] - 2 : rows[60] + 3].any(axis=0))
    assert g_columns.mean() > c_columns.mean()
    assert columns.max() < 440 - 0.3 / 10.0 * 400  # 0.5 s of silence at the end
    empty = pitch_line_image([], seconds=10.0, width=400, height=200)
    assert empty.shape == (200, 440, 3) and not np.all(empty == PITCH_LINE_COLOUR, axis=2).any()
