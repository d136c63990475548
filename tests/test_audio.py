"""core.audio (io, decoding, levels): decoding, the bad-input cases each with its own
message, levels, resampling."""

from __future__ import annotations

import io
import subprocess
import time
import tracemalloc

import librosa
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.proto.Common_pb2 import FileURLs
from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

from core.audio import clip as audio_limits
from core.audio import levels
from core.audio.clip import AudioError
from core.audio.io import load_audio, probe_audio
from tests.audio_fixtures import (
    FFMPEG,
    dominant_frequency,
    ffmpeg_encode,
    wav_bytes,
    with_wav_sample_rate,
    write_silent_wav,
)
from tests.conftest import sine

needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


def uploaded(name: str, data: bytes) -> UploadedFile:
    """What st.file_uploader hands a page: Streamlit's own UploadedFile."""
    return UploadedFile(UploadedFileRec("test-id", name, "audio/wav", data), FileURLs())


def assert_student_message(error: AudioError, *fragments: str) -> None:
    """A message a student can act on: full sentences, names the file, says what to do."""
    text = str(error)
    assert text.endswith("."), text
    starts_with_a_name = any(text.startswith(fragment) for fragment in fragments)
    assert text[0].isupper() or text[0].isdigit() or starts_with_a_name, text
    assert "Traceback" not in text and "LibsndfileError" not in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} missing from: {text}"


# ------------------------------------------------------------------ the shipped recordings


def test_shipped_digits_decode_as_short_mono_8khz(digit_files):
    for path in digit_files[::50]:
        clip = load_audio(path)
        assert clip.sample_rate == 8000 and clip.samples.ndim == 1
        assert clip.samples.dtype == np.float32
        assert 0.1 < clip.duration_seconds < 2.5
        assert clip.info.format == "WAV" and clip.notices == ()
        reference, rate = sf.read(path, dtype="float32")  # libsndfile's own reading
        assert rate == 8000
        np.testing.assert_array_equal(clip.samples, reference)


def test_shipped_music_clips_decode_and_resample(music_clips):
    for path in music_clips:
        info = probe_audio(path)
        clip = load_audio(path, sample_rate=16000, max_seconds=5)
        assert clip.sample_rate == 16000
        expected = min(info.duration_seconds, 5.0)
        assert abs(clip.duration_seconds - expected) < 0.01
        assert 0.01 < levels.peak(clip.samples) <= 1.01


# ------------------------------------------------------------------ bad input, one message each


def test_text_file_named_wav_is_not_audio(tmp_path):
    path = tmp_path / "homework.wav"
    path.write_text("These are my notes, not a recording.\n" * 20)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert caught.value.code == "not_audio"
    assert_student_message(caught.value, "homework.wav", "text file", "WAV")


def test_random_bytes_are_not_audio():
    noise = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(AudioError) as caught:
        load_audio(noise, name="mystery.wav")
    assert caught.value.code == "not_audio"
    assert "text file" not in str(caught.value)


@pytest.mark.parametrize("as_upload", [False, True])
def test_zero_byte_file_is_empty(tmp_path, as_upload):
    path = tmp_path / "nothing.wav"
    path.write_bytes(b"")
    source = uploaded("nothing.wav", b"") if as_upload else path
    with pytest.raises(AudioError) as caught:
        load_audio(source)
    assert caught.value.code == "empty"
    assert_student_message(caught.value, "nothing.wav", "0 bytes", "again")


def test_wav_cut_in_half_is_used_with_a_notice(tmp_path):
    whole = wav_bytes(sine(440, 2.0, 16000), 16000)
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[: len(whole) // 2])
    clip = load_audio(path)
    assert clip.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert len(clip.notices) == 1
    notice = clip.notices[0]
    assert "cut short" in notice and "2.0 s" in notice and "1.0 s" in notice
    assert dominant_frequency(clip.samples, clip.sample_rate) == pytest.approx(440, abs=2)


def test_wav_with_only_its_header_is_corrupt():
    whole = wav_bytes(sine(440, 1.0, 16000), 16000)
    with pytest.raises(AudioError) as caught:
        load_audio(whole[:44], name="header_only.wav")
    assert caught.value.code == "corrupt"
    assert_student_message(caught.value, "header_only.wav", "cut off")


def test_damaged_wav_header_is_corrupt_not_unknown():
    data = bytearray(wav_bytes(sine(440, 0.5, 16000), 16000))
    data[12:36] = b"\xff" * 24  # the fmt chunk is garbage, RIFF/WAVE magic is intact
    with pytest.raises(AudioError) as caught:
        load_audio(bytes(data), name="broken.wav")
    assert caught.value.code == "corrupt"
    assert_student_message(caught.value, "broken.wav", "WAV", "damaged")


def test_header_claiming_1_hz_is_refused():
    data = with_wav_sample_rate(wav_bytes(sine(440, 0.5, 16000), 16000), 1)
    assert sf.info(io.BytesIO(data)).samplerate == 1  # the patch worked: libsndfile believes it
    with pytest.raises(AudioError) as caught:
        load_audio(data, name="one_hertz.wav")
    assert caught.value.code == "bad_sample_rate"
    assert_student_message(caught.value, "one_hertz.wav", "1 Hz", "16")
    with pytest.raises(AudioError, match="1 Hz"):
        probe_audio(data)  # a rate this wrong is refused before anything is decoded


def test_sample_rate_above_384_khz_is_refused():
    data = with_wav_sample_rate(wav_bytes(sine(440, 0.1, 16000), 16000), 768_000)
    with pytest.raises(AudioError) as caught:
        load_audio(data)
    assert caught.value.code == "bad_sample_rate"


def test_two_hour_silent_wav_is_never_decoded_whole(tmp_path):
    path = write_silent_wav(tmp_path / "two_hours.wav", seconds=2 * 3600, sample_rate=16000)
    info = probe_audio(path)
    assert info.duration_seconds == pytest.approx(7200) and info.frames == 7200 * 16000

    tracemalloc.start()
    start = time.perf_counter()
    clip = load_audio(path, allow_silent=True)
    elapsed = time.perf_counter() - start
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    cap = audio_limits.DEFAULT_MAX_SECONDS
    assert clip.duration_seconds == pytest.approx(cap)
    assert elapsed < 1.0, f"decoding the capped part took {elapsed:.2f} s"
    whole_file_bytes = 7200 * 16000 * 4  # 460 MB as float32
    capped_bytes = cap * 16000 * 4
    assert peak_bytes < 2.5 * capped_bytes < whole_file_bytes / 4
    assert len(clip.notices) == 1 and "2 h 00 min" in clip.notices[0]
    assert "only the first" in clip.notices[0]


def test_two_hour_silent_wav_is_silent_or_too_long(tmp_path):
    path = write_silent_wav(tmp_path / "two_hours.wav", seconds=2 * 3600, sample_rate=8000)
    with pytest.raises(AudioError) as caught:
        load_audio(path, max_seconds=30)
    assert caught.value.code == "silent"
    assert_student_message(caught.value, "two_hours.wav", "silent", "microphone")
    with pytest.raises(AudioError) as caught:
        load_audio(path, max_seconds=30, on_too_long="error")
    assert caught.value.code == "too_long"
    assert_student_message(caught.value, "two_hours.wav", "2 h 00 min", "30.0 s", "shorter")


def test_stereo_96khz_24bit_loads_as_mono_and_resampled():
    t = np.arange(96000) / 96000
    left, right = 0.4 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 1000 * t)
    data = wav_bytes(np.stack([left, right], axis=1), 96000, subtype="PCM_24")
    clip = load_audio(data, sample_rate=16000, name="studio.wav")
    assert clip.info.sample_rate == 96000 and clip.info.channels == 2
    assert clip.info.subtype == "PCM_24"
    assert clip.sample_rate == 16000 and clip.samples.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(clip.samples * np.hanning(16000)))
    top_two = sorted(np.argsort(spectrum)[-2:])  # 1 Hz per bin for one second
    assert abs(top_two[0] - 440) <= 1 and abs(top_two[1] - 1000) <= 1
    assert levels.peak(clip.samples) == pytest.approx(0.4, abs=0.05)  # (L+R)/2 beats to 0.4

    both = load_audio(data, sample_rate=16000, mono=False)
    assert both.samples.shape == (2, 16000) and both.channels == 2
    assert dominant_frequency(both.samples[1], 16000) == pytest.approx(1000, abs=1)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_float_wav_with_nan_or_inf_is_refused(bad_value):
    y = sine(440, 0.5, 16000)
    y[[100, 2000, 7000]] = bad_value
    data = wav_bytes(y, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as caught:
        load_audio(data, name="float.wav")
    assert caught.value.code == "non_finite"
    assert_student_message(caught.value, "float.wav", "3 invalid samples", "NaN")


def test_more_channels_than_expected_is_refused():
    data = wav_bytes(np.tile(sine(440, 0.2, 16000)[:, None], (1, 3)), 16000)
    with pytest.raises(AudioError) as caught:
        load_audio(data, max_channels=2, name="three.wav")
    assert caught.value.code == "too_many_channels"
    assert_student_message(caught.value, "three.wav", "3 channels", "at most 2")
    assert load_audio(data).samples.shape == (3200,)  # within the default cap: mixed down


def test_all_zero_clip_is_silent_unless_allowed():
    data = wav_bytes(np.zeros(8000, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as caught:
        load_audio(data, name="quiet.wav")
    assert caught.value.code == "silent"
    clip = load_audio(data, allow_silent=True)
    assert levels.peak(clip.samples) == 0.0


def test_bytes_over_the_size_cap_are_refused_before_decoding():
    data = wav_bytes(sine(440, 1.0, 16000), 16000)
    with pytest.raises(AudioError) as caught:
        load_audio(data, max_bytes=1000, name="big.wav")
    assert caught.value.code == "too_large"
    assert_student_message(caught.value, "big.wav", "MB")


def test_streamlit_upload_is_decoded_by_its_name():
    data = wav_bytes(sine(440, 1.0, 22050), 22050)
    clip = load_audio(uploaded("tone.wav", data), sample_rate=16000)
    assert clip.name == "tone.wav" and clip.sample_rate == 16000
    assert dominant_frequency(clip.samples, 16000) == pytest.approx(440, abs=1)


def test_missing_path_says_not_found(tmp_path):
    with pytest.raises(AudioError) as caught:
        load_audio(tmp_path / "nope.wav")
    assert caught.value.code == "not_found"


# ------------------------------------------------------------------ ffmpeg formats


@needs_ffmpeg
def test_m4a_decodes_through_ffmpeg(tmp_path):
    path = ffmpeg_encode(tmp_path / "phone.m4a", 2.0, codec="aac")
    info = probe_audio(path)
    assert info.format.startswith("M4A") and info.sample_rate == 44100 and info.channels == 1
    assert info.duration_seconds == pytest.approx(2.0, abs=0.05)
    clip = load_audio(uploaded("phone.m4a", path.read_bytes()), sample_rate=16000)
    assert clip.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert dominant_frequency(clip.samples, 16000) == pytest.approx(440, abs=1)


@needs_ffmpeg
def test_webm_opus_from_a_browser_decodes_and_is_capped(tmp_path):
    path = ffmpeg_encode(tmp_path / "rec.webm", 8.0, codec="libopus", rate=48000)
    clip = load_audio(path, max_seconds=3)
    assert clip.duration_seconds == pytest.approx(3.0, abs=0.03)  # `-t` stopped ffmpeg early
    assert "only the first 3.0 s" in clip.notices[0]
    assert dominant_frequency(clip.samples, clip.sample_rate) == pytest.approx(440, abs=1)


@needs_ffmpeg
def test_streamed_webm_without_a_duration_is_still_capped():
    # MediaRecorder in a browser streams WebM without a duration; ffmpeg writing to a pipe
    # produces the same kind of file.
    cmd = [FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=6"]
    cmd += ["-c:a", "libopus", "-f", "webm", "pipe:1"]
    data = subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout
    assert probe_audio(data, name="rec.webm").duration_seconds == 0.0  # unknown length
    clip = load_audio(data, name="rec.webm", max_seconds=2)
    assert clip.duration_seconds == pytest.approx(2.0, abs=1e-3)
    assert clip.notices == ("rec.webm is longer than 2.0 s: only the first 2.0 s are used.",)
    with pytest.raises(AudioError) as caught:
        load_audio(data, name="rec.webm", max_seconds=2, on_too_long="error")
    assert caught.value.code == "too_long"
    whole = load_audio(data, name="rec.webm", max_seconds=30)
    assert whole.duration_seconds == pytest.approx(6.0, abs=0.05) and whole.notices == ()


@needs_ffmpeg
def test_m4a_without_ffmpeg_asks_for_it(tmp_path, monkeypatch):
    path = ffmpeg_encode(tmp_path / "phone.m4a", 0.5)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a machine without ffmpeg
    monkeypatch.delenv("AUDIO_DL_FFMPEG", raising=False)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert caught.value.code == "needs_ffmpeg"
    assert_student_message(caught.value, "phone.m4a", "ffmpeg", "WAV")


@needs_ffmpeg
def test_truncated_m4a_is_reported_not_crashing(tmp_path):
    path = ffmpeg_encode(tmp_path / "cut.m4a", 2.0)
    data = path.read_bytes()
    with pytest.raises(AudioError) as caught:
        load_audio(data[: len(data) // 3], name="cut.m4a")
    assert caught.value.code == "corrupt"
    assert_student_message(caught.value, "cut.m4a", "M4A", "incomplete")


@needs_ffmpeg
def test_video_without_sound_says_so(tmp_path):
    path = tmp_path / "screen.mp4"
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=32x32:d=0.5"]
    subprocess.run([*cmd, "-c:v", "mpeg4", str(path)], check=True, capture_output=True, timeout=60)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert caught.value.code == "not_audio"
    assert_student_message(caught.value, "screen.mp4", "no sound track")


# ------------------------------------------------------------------ levels and helpers


def test_levels_of_a_known_sine():
    y = sine(1000, 1.0, 16000, amplitude=0.5)
    assert levels.peak(y) == pytest.approx(0.5, abs=1e-3)
    assert levels.rms(y) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert levels.dbfs(1.0) == 0.0
    assert levels.dbfs(0.5) == pytest.approx(-6.02, abs=0.01)
    assert levels.dbfs(0.0) == -120.0
    assert levels.peak(np.array([], dtype=np.float32)) == 0.0


def test_resample_matches_librosa_soxr_hq():
    y = sine(440, 1.0, 44100)
    ours = levels.resample(y, 44100, 16000)
    theirs = librosa.resample(y, orig_sr=44100, target_sr=16000, res_type="soxr_hq")
    assert ours.shape == (16000,) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    stereo = levels.resample(np.stack([y, -y]), 44100, 16000)
    assert stereo.shape == (2, 16000)
    np.testing.assert_allclose(stereo[1], -ours, atol=1e-6)


def test_resample_removes_content_above_the_new_nyquist():
    y = sine(440, 1.0, 48000) + sine(12000, 1.0, 48000)  # 12 kHz cannot exist at 16 kHz
    out = levels.resample(y, 48000, 16000)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    alias_bin = 4000  # 12 kHz would fold to 16000 - 12000 = 4 kHz
    assert spectrum[alias_bin - 5 : alias_bin + 5].max() < 1e-3 * spectrum[440]


@pytest.mark.parametrize("subtype, tolerance", [("PCM_16", 1 / 32768), ("FLOAT", 0.0)])
def test_encode_wav_round_trips(subtype, tolerance):
    y = sine(440, 0.25, 16000, amplitude=0.9)
    decoded, rate = sf.read(
        io.BytesIO(levels.encode_wav(y, 16000, subtype=subtype)), dtype="float32"
    )
    assert rate == 16000
    np.testing.assert_allclose(decoded, y, atol=tolerance + 1e-9)


def test_encode_wav_clips_out_of_range_pcm_and_keeps_channels():
    y = np.stack([np.full(100, 2.0), np.full(100, -2.0)]).astype(np.float32)
    decoded, _ = sf.read(io.BytesIO(levels.encode_wav(y, 8000)), dtype="float32")
    assert decoded.shape == (100, 2)
    assert decoded[:, 0].min() > 0.999 and decoded[:, 1].max() <= -1.0


def test_error_codes_are_checked():
    with pytest.raises(ValueError):
        AudioError("made_up", "x")
    with pytest.raises(ValueError):
        load_audio(b"RIFF", on_too_long="explode")


def test_ffmpeg_is_really_there_when_the_tests_say_so():
    # Guards the skip markers above: if ffmpeg is on PATH it must actually run.
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run([FFMPEG, "-version"], check=True, capture_output=True, timeout=30)


# ------------------------------------------------------------------ plots (core.viz.audio)


def test_waveform_of_a_long_clip_is_decimated_but_keeps_every_peak():
    from core.viz.audio import waveform_envelope, waveform_figure

    y = np.zeros(600 * 16000, dtype=np.float32)  # ten minutes
    y[1_234_567], y[7_654_321] = 0.9, -0.7  # one-sample clicks must survive decimation
    x, values = waveform_envelope(y, max_points=2000)
    assert values.size <= 2 * 2001
    assert values.max() == pytest.approx(0.9) and values.min() == pytest.approx(-0.7)
    fig = waveform_figure(y, 16000)
    trace = fig.data[0]
    assert len(trace.x) <= 4002
    assert trace.x[-1] == pytest.approx(600, abs=0.5)  # seconds, not samples
    np.testing.assert_array_equal(trace.y, values)  # the figure draws that envelope
    np.testing.assert_allclose(trace.x, x / 16000)
    # Each click is drawn at its own time, to within one bucket (0.3 s at 4800 samples).
    assert trace.x[np.argmax(trace.y)] == pytest.approx(1_234_567 / 16000, abs=0.3)
    assert trace.x[np.argmin(trace.y)] == pytest.approx(7_654_321 / 16000, abs=0.3)
    assert fig.layout.xaxis.title.text == "time (s)"


def test_waveform_of_a_short_clip_is_drawn_sample_by_sample():
    from core.viz.audio import waveform_figure

    y = sine(440, 0.1, 16000)
    trace = waveform_figure(y, 16000).data[0]
    np.testing.assert_allclose(trace.y, y)
    assert trace.x[1] == pytest.approx(1 / 16000)


def test_spectrogram_axes_are_seconds_and_hz():
    import librosa

    from core.viz.audio import mel_band_centres, spectrogram_figure

    S = np.random.default_rng(0).normal(size=(64, 101)).astype(np.float32)
    mel = spectrogram_figure(S, 16000, 160, y_axis="mel")
    np.testing.assert_array_equal(np.asarray(mel.data[0].z), S)  # every cell as given
    np.testing.assert_allclose(mel.data[0].x, np.arange(101) * 0.01)
    assert mel.data[0].x[-1] == pytest.approx(1.0)  # frame 100 at 100 * 160 / 16000 s
    expected = librosa.mel_frequencies(66, fmin=0.0, fmax=8000.0)[1:-1]
    ticks = mel.layout.yaxis
    assert ticks.tickvals[0] == 0 and ticks.ticktext[0] == f"{expected[0]:.0f}"  # 46 Hz
    assert ticks.tickvals[-1] == 63 and ticks.ticktext[-1] == f"{expected[-1] / 1000:.1f} k"
    np.testing.assert_allclose(mel_band_centres(64, 0.0, 8000.0), expected, rtol=1e-9)

    linear = spectrogram_figure(np.zeros((257, 50)), 16000, 160, y_axis="linear")
    assert linear.data[0].y[-1] == pytest.approx(8000) and linear.data[0].y[1] == 31.25
    log = spectrogram_figure(np.zeros((257, 50)), 16000, 160, y_axis="log")
    assert log.data[0].y[0] > 0 and log.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="y_axis must be one of"):
        spectrogram_figure(S, 16000, 160, y_axis="bark")


def test_a_spectrogram_thumbnail_shows_a_tone_at_its_mel_band_and_silence_dark():
    """The Train page's class thumbnails: a 1 kHz tone's log-mel, as a picture, is brightest
    on the row of the 1 kHz band (low bands at the bottom), dark where it is silent."""
    import librosa

    from core.viz.audio import mel_band_centres, spectrogram_thumbnail
    from core.viz.colors import colour_table

    y = np.concatenate([sine(1000.0, 0.5, 16000), np.zeros(8000, np.float32)])
    mel = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=160, n_mels=64),
        ref=1.0,
        amin=1e-10,
    )
    picture = spectrogram_thumbnail(mel, width=200, height=128)  # 2 rows per band
    assert picture.shape == (128, 200, 3) and picture.dtype == np.uint8
    tone_band = int(np.argmin(np.abs(mel_band_centres(64, 0.0, 8000.0) - 1000.0)))
    brightness = picture[:, :90].astype(int).sum(axis=(1, 2))  # the tone's first 0.45 s
    brightest_row = int(np.argmax(brightness))
    assert abs((127 - brightest_row) // 2 - tone_band) <= 1, (brightest_row, tone_band)
    np.testing.assert_array_equal(picture[5, 150], colour_table("Magma")[0])  # silence: black
    flat = spectrogram_thumbnail(np.full((64, 10), -30.0))  # no range: drawn, not divided by 0
    assert flat.shape == (128, 320, 3)
    with pytest.raises(ValueError, match="non-empty"):
        spectrogram_thumbnail(np.zeros((64, 0)))


def test_long_spectrogram_is_max_pooled_in_time():
    from core.viz.audio import spectrogram_figure

    S = np.full((64, 60_000), -80.0, dtype=np.float32)  # ten minutes of 10 ms frames
    S[10, 33_333] = 0.0  # a single loud frame must stay visible
    fig = spectrogram_figure(S, 16000, 160, max_frames=1500)
    z = np.asarray(fig.data[0].z)
    assert z.shape[1] <= 1500 and z.max() == 0.0
    assert fig.data[0].x[-1] == pytest.approx(600, abs=1)
    # The loud frame stays in its band and at its time (to within one pooled column, 0.4 s).
    band, column = np.unravel_index(np.argmax(z), z.shape)
    assert band == 10 and (z == 0.0).sum() == 1
    assert fig.data[0].x[column] == pytest.approx(333.33, abs=0.4)


# ------------------------------------------------------------------ more damage and sources


def test_flac_cut_in_half_keeps_the_sound_before_the_cut():
    rng = np.random.default_rng(0)
    y = (sine(440, 10.0, 16000) + 0.05 * rng.normal(size=160_000)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, y, 16000, format="FLAC")
    data = buffer.getvalue()
    clip = load_audio(data[: len(data) // 2], name="cut.flac")
    assert 3.0 < clip.duration_seconds < 5.5  # what precedes the cut, not nothing
    np.testing.assert_allclose(clip.samples[:16000], y[:16000], atol=1e-4)
    assert "cut short or damaged" in clip.notices[0] and "10.0 s" in clip.notices[0]


@needs_ffmpeg
def test_raw_aac_stream_without_a_name_goes_to_ffmpeg(tmp_path):
    data = ffmpeg_encode(tmp_path / "stream.aac", 1.0, codec="aac").read_bytes()
    assert data[0] == 0xFF  # ADTS: the same sync byte as MP3, which libsndfile would try
    clip = load_audio(data)  # bytes only: no file name to help
    assert clip.info.format.endswith("(ffmpeg)") and "damaged" not in clip.info.format
    assert clip.notices == ()
    assert dominant_frequency(clip.samples, clip.sample_rate) == pytest.approx(440, abs=2)


def test_plain_file_object_with_a_name_is_read():
    handle = io.BytesIO(wav_bytes(sine(440, 0.5, 16000), 16000))
    handle.name = "folder/tone.wav"
    handle.read(10)  # a file object someone already started reading
    clip = load_audio(handle)
    assert clip.name == "tone.wav" and clip.num_samples == 8000
    # Read from the start, not from where the caller left the file: the whole tone.
    np.testing.assert_allclose(clip.samples, sine(440, 0.5, 16000), atol=1 / 32768 + 1e-9)


def test_upload_over_the_cap_is_refused_by_its_declared_size():
    upload = uploaded("huge.wav", wav_bytes(sine(440, 1.0, 16000), 16000))
    with pytest.raises(AudioError) as caught:
        load_audio(upload, max_bytes=1024)
    assert caught.value.code == "too_large"
    assert_student_message(caught.value, "huge.wav", "MB", "shorter")


# ----------------------------------------------------------------- fuzzing: only AudioError escapes

_VALID = {
    "wav": wav_bytes(sine(440, 0.3, 16000), 16000),
    "float.wav": wav_bytes(sine(440, 0.3, 16000), 16000, subtype="FLOAT"),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(_VALID)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
)
def test_mangled_files_give_a_clip_or_an_audio_error(kind, cut, flips):
    data = bytearray(_VALID[kind])
    for position, value in flips:  # damage the header region, where parsers are fragile
        if position < len(data):
            data[position] = value
    data = bytes(data[: int(len(data) * cut)])
    try:
        clip = load_audio(data, name=f"fuzz.{kind}", allow_silent=True)
    except AudioError as error:
        assert error.code in audio_limits.ERROR_CODES and str(error).endswith(".")
    else:
        assert clip.samples.ndim == 1 and np.isfinite(clip.samples).all()
        assert audio_limits.MIN_SAMPLE_RATE <= clip.sample_rate <= audio_limits.MAX_SAMPLE_RATE
