"""core.data.profile: measurements on synthetic clips with a known bandwidth, length and
silence, the recipe they lead to, and the digits keeping today's default recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.data.augment import AugmentConfig
from core.data.datasets import AudioDataset, AudioExample, builtin_digits
from core.data.profile import (
    apply_recipe,
    bandwidth_hz,
    choose_recipe,
    clip_power_spectrum,
    feature_config_for,
    measure_clip,
    measure_sound,
    profile_dataset,
    recipe_for_dataset,
    sample_examples,
)
from core.data.render_notes import SOUNDFONTS
from core.training.trainer import TrainConfig, default_feature_config


def _dataset(clips: list[tuple[int, np.ndarray, int]]) -> AudioDataset:
    """An in-memory data set of (label, samples, rate) clips (two classes: "a", "b")."""
    memory, examples = {}, []
    for n, (label, samples, rate) in enumerate(clips):
        key = f"memory:{n}"
        memory[key] = (samples.astype(np.float32), rate)
        examples.append(AudioExample(key, label, f"g{n}"))
    return AudioDataset("synthetic", ("a", "b"), tuple(examples), memory=memory)


def _harmonic_tone(f0: float, top_hz: float, seconds: float, rate: int) -> np.ndarray:
    """Equal-amplitude harmonics of f0 up to top_hz, with a 5 ms fade in and out."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * k * f0 * t) for k in range(1, int(top_hz // f0) + 1))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)
    return 0.1 * tone * fade


def _tones(seconds: float = 1.5, rate: int = 22050, top_hz: float = 7000.0) -> AudioDataset:
    """Sustained tones starting at 0 s, all the same length, energy up to top_hz."""
    rng = np.random.default_rng(0)
    return _dataset(
        [
            (n % 2, _harmonic_tone(rng.uniform(200, 400), top_hz, seconds, rate), rate)
            for n in range(12)
        ]
    )


def _words(rate: int = 8000) -> AudioDataset:
    """Word-like bursts: 0.2-0.7 s of harmonics below 3.4 kHz, placed inside 1 s of silence."""
    rng = np.random.default_rng(1)
    clips = []
    for n in range(16):
        length = rng.uniform(0.2, 0.7)
        burst = _harmonic_tone(rng.uniform(100, 200), 3400, length, rate)
        clip = np.zeros(rate)
        start = int(rng.uniform(0.15, 0.25) * rate)
        clip[start : start + len(burst)] = burst
        clips.append((n % 2, clip + 1e-5 * rng.standard_normal(rate), rate))
    return _dataset(clips)


def test_bandwidth_of_a_known_band_of_noise():
    # White noise low-passed to 5 kHz by zeroing its spectrum: 99.9 % of the energy below 5 kHz.
    rng = np.random.default_rng(0)
    rate = 22050
    spectrum = np.fft.rfft(rng.standard_normal(rate * 2))
    freqs = np.fft.rfftfreq(rate * 2, 1 / rate)
    spectrum[freqs > 5000] = 0
    noise = np.fft.irfft(spectrum)
    measured = bandwidth_hz([clip_power_spectrum(noise, rate)], 0.999)
    assert 4800 <= measured <= 5100
    # Half the energy of flat noise lies below a quarter of the rate.
    flat = bandwidth_hz([clip_power_spectrum(rng.standard_normal(rate), rate)], 0.5)
    assert abs(flat - rate / 4) < 300


def test_bandwidth_mixes_rates_on_one_grid():
    rng = np.random.default_rng(0)
    low = clip_power_spectrum(rng.standard_normal(8000), 8000)  # flat to 4 kHz
    high = clip_power_spectrum(rng.standard_normal(16000), 16000)  # flat to 8 kHz
    # Equal weight: a quarter of the energy in 4-8 kHz, so 99 % needs most of the high band.
    assert 7000 < bandwidth_hz([low, high], 0.99) <= 8000
    assert bandwidth_hz([], 0.99) == 0.0


def test_measure_clip_finds_silence_around_a_burst():
    rate = 8000
    clip = np.zeros(rate * 2)
    clip[4000:8000] = np.sin(2 * np.pi * 440 * np.arange(4000) / rate)  # 0.5 s to 1.0 s
    measure = measure_clip(clip, rate)
    assert measure.duration_seconds == pytest.approx(2.0)
    assert measure.leading_silence_seconds == pytest.approx(0.5, abs=0.03)
    assert measure.trailing_silence_seconds == pytest.approx(1.0, abs=0.03)
    assert measure.sounding_seconds == pytest.approx(0.5, abs=0.05)
    assert measure.silent_fraction == pytest.approx(0.75, abs=0.03)


def test_sample_is_bounded_seeded_and_takes_every_class():
    dataset = _tones()
    picked = sample_examples(dataset, max_clips=4, seed=3)
    assert len(picked) == 4 and {e.label for e in picked} == {0, 1}
    assert picked == sample_examples(dataset, max_clips=4, seed=3)
    assert len(sample_examples(dataset, max_clips=100)) == len(dataset)


def test_wideband_sustained_tones_get_16_khz_64_bands_no_trim():
    recipe = recipe_for_dataset(_tones(top_hz=7000.0))
    profile = recipe.profile
    assert profile.sample_rates == (22050,)
    assert 6500 <= profile.bandwidth_hz <= 7100
    assert profile.median_duration_seconds == pytest.approx(1.5, abs=0.01)
    assert recipe.kind == "sustained sounds"
    assert recipe.sample_rate.value == 16000 and recipe.n_mels.value == 64
    assert recipe.trim_db.value is None
    assert recipe.clip_seconds.value == 1.5
    assert "16 kHz because your clips have energy up to 7.0 kHz" in recipe.sample_rate.reason
    config = apply_recipe(TrainConfig(), recipe)
    assert config.features == feature_config_for(16000, 64)
    assert config.features.f_max == 8000 and config.features.win_length == 400
    assert (config.trim_db, config.clip_seconds) == (None, 1.5)
    # Sustained sounds start without augmentation (measured across soundfonts), and say why.
    assert recipe.augment.value == AugmentConfig.off() and config.augment == AugmentConfig.off()
    assert "No augmentation" in recipe.augment.reason


def test_brighter_tones_get_22_khz_and_long_clips_a_capped_window():
    recipe = recipe_for_dataset(_tones(seconds=6.0, top_hz=10000.0))
    assert recipe.sample_rate.value == 22050
    assert recipe.clip_seconds.value == 4.0  # the slider's end
    assert "middle 4 s" in recipe.clip_seconds.reason


def test_short_window_rounds_up_to_a_quarter_second():
    assert recipe_for_dataset(_tones(seconds=1.1)).clip_seconds.value == 1.25


def test_no_rate_above_the_recordings_own():
    # Energy up to 7 kHz asks for 16 kHz, but recordings at 11.025 kHz hold nothing above 5.5.
    recipe = recipe_for_dataset(_tones(rate=11025, top_hz=5400.0))
    assert recipe.sample_rate.value == 8000
    assert "the rate your clips were recorded at" in recipe.sample_rate.reason


def test_word_like_bursts_get_the_speech_recipe():
    recipe = recipe_for_dataset(_words())
    assert recipe.profile.bandwidth_hz <= 4000
    assert recipe.profile.median_leading_silence_seconds > 0.1
    assert recipe.kind == "isolated events"
    assert (recipe.sample_rate.value, recipe.n_mels.value) == (8000, 32)
    assert recipe.trim_db.value == 20.0 and recipe.clip_seconds.value == 1.0
    assert apply_recipe(TrainConfig(), recipe) == TrainConfig()


def test_the_digits_keep_todays_default_recipe():
    recipe = recipe_for_dataset(builtin_digits())
    assert recipe.kind == "isolated events"
    assert recipe.feature_config() == default_feature_config()
    assert apply_recipe(TrainConfig(), recipe) == TrainConfig()
    assert recipe.augment.value == AugmentConfig()
    assert all(reason.endswith(".") for reason in recipe.reasons())


def test_profile_is_fast_and_bounded_on_the_digits():
    import time

    start = time.perf_counter()
    profile = profile_dataset(builtin_digits(), max_clips=24)
    assert profile.clips_measured == 24 and profile.clips_total == 1600
    assert time.perf_counter() - start < 20  # 24 short files, even on a busy machine


def test_silent_or_undecodable_data_is_a_sentence():
    rate = 8000
    silent = _dataset([(0, np.zeros(rate), rate), (1, np.zeros(rate), rate)])
    with pytest.raises(ValueError, match="could be decoded or had any sound"):
        profile_dataset(silent)
    broken = AudioDataset("broken", ("a", "b"), (AudioExample("/nonexistent.wav", 0, "g"),))
    with pytest.raises(ValueError):
        profile_dataset(broken)


def test_choose_recipe_is_pure_on_a_given_profile():
    profile = profile_dataset(_tones())
    assert choose_recipe(profile) == choose_recipe(profile)


def _tone_folder(root) -> str:
    """Two classes of 1.5 s tones at 22.05 kHz with partials up to 7 kHz, as wav files."""
    from tests.audio_fixtures import wav_bytes

    rate = 22050
    for name, f0s in (("low", (220, 247, 262)), ("high", (440, 494, 523))):
        (root / name).mkdir(parents=True)
        for f0 in f0s:
            tone = _harmonic_tone(f0, 7000.0, 1.5, rate)
            tone = (0.5 * tone / np.abs(tone).max()).astype(np.float32)  # no clipping
            (root / name / f"{f0}.wav").write_bytes(wav_bytes(tone, rate))
    return str(root)


def test_cli_trains_with_the_recipe_by_default_and_explicit_flags_win(tmp_path, capsys):
    import json

    from core.data.sources import load_dataset
    from core.train import _parse_args, config_from_args, main, recipe_from_data
    from core.training.runs import RunStore

    folder = _tone_folder(tmp_path / "notes")
    args = _parse_args(["--data", folder, "--auto-recipe", "--clip-seconds", "0.5"])
    config = recipe_from_data(config_from_args(args), args, load_dataset(folder))
    assert config.features.sample_rate == 16000 and config.trim_db is None
    assert config.clip_seconds == 0.5  # given on the command line: it wins
    assert "16 kHz because your clips have energy up to" in capsys.readouterr().err

    code = main(  # no flag: the recipe is the command line's default
        [
            "--data",
            folder,
            "--start-from",
            "none",
            "--epochs",
            "1",
            "--members",
            "1",
            "--no-tsne",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--val-fraction",
            "0.34",
        ]
    )
    assert code == 0
    [info] = RunStore(tmp_path / "runs").list_runs()
    saved = json.loads((info.path / "config.json").read_text())["train_config"]
    assert saved["features"]["sample_rate"] == 16000 and saved["features"]["n_mels"] == 64
    assert saved["trim_db"] is None and saved["clip_seconds"] == 1.5
    # --no-auto-recipe keeps the fixed defaults (the digits' recipe).
    args = _parse_args(["--data", folder, "--no-auto-recipe"])
    assert not args.auto_recipe and config_from_args(args) == TrainConfig(data=folder)
    assert _parse_args(["--data", folder]).auto_recipe


def test_notes_midi_is_a_valid_type_0_file():
    from core.data.render_notes import TICKS_PER_BEAT, notes_midi

    data = notes_midi(73, [(69, 100)], note_seconds=1.0, gap_seconds=2.0)
    assert data[:4] == b"MThd" and int.from_bytes(data[12:14], "big") == TICKS_PER_BEAT
    assert data[14:18] == b"MTrk" and int.from_bytes(data[18:22], "big") == len(data) - 22
    assert bytes([0xC0, 73]) in data and bytes([0x90, 69, 100]) in data
    assert data.endswith(b"\xff\x2f\x00")
    # 1 s at 120 bpm is 960 ticks: a two-byte variable-length delta, 0x87 0x40.
    assert bytes([0x87, 0x40, 0x80, 69, 0]) in data


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(SOUNDFONTS["fluid"]).is_file(),
    reason="needs fluidsynth and fluid-soundfont-gm (installed by .ci/run)",
)
def test_a_rendered_flute_a4_sounds_at_440_hz(tmp_path):
    import soundfile as sf

    from core.data.render_notes import NoteSet, render_notes
    from core.data.sources import load_dataset

    notes = NoteSet(families={"flute": (73,), "piano": (0,)}, pitches=(69,), velocities=(100,))
    lines = list(render_notes(tmp_path, {"fluid": SOUNDFONTS["fluid"]}, notes))
    assert lines == ["fluid: flute program 73, 1 notes", "fluid: piano program 0, 1 notes"]
    [path] = (tmp_path / "flute").glob("*.wav")
    assert path.name == "073_fluid_069100.wav"
    samples, rate = sf.read(path)
    assert rate == 22050 and len(samples) == int(1.5 * rate)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    assert abs(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()] - 440) < 3
    dataset = load_dataset(str(tmp_path))
    assert dataset.labels == ("flute", "piano")
    # the soundfont is the group a holdout split keeps apart
    assert {example.group for example in dataset.examples} == {"fluid"}


def test_measure_sound_on_a_steady_tone_a_changing_tone_and_silence():
    rate = 16000
    steady = np.zeros(2 * rate)
    steady[rate // 2 : rate // 2 + rate] = _harmonic_tone(220, 4000, 1.0, rate)
    measured = measure_sound(steady, rate)
    assert measured.sounding_seconds == pytest.approx(1.0, abs=0.04)
    assert measured.change_db < 0.3  # a held tone barely changes from frame to frame
    assert 3800 <= measured.bandwidth_hz <= 4100
    # The same length of sound whose pitch jumps every 50 ms (a melody of short notes, or
    # syllables): its bands change by several dB between frames.
    rng = np.random.default_rng(0)
    hopping = np.concatenate(
        [_harmonic_tone(rng.uniform(150, 600), 4000, 0.05, rate) for _ in range(20)]
    )
    assert measure_sound(hopping, rate).change_db > 1.5
    assert measure_sound(np.zeros(rate), rate).sounding_seconds == 0.0
    # Background noise 35 dB under a word is not sound: the word's length is measured.
    word = np.zeros(2 * rate)
    word[rate // 2 : rate // 2 + rate // 2] = _harmonic_tone(150, 3000, 0.5, rate)
    noisy = word + 10 ** (-35 / 20) * np.sqrt(np.mean(word[word != 0] ** 2)) * rng.standard_normal(
        len(word)
    )
    assert measure_sound(noisy, rate).sounding_seconds == pytest.approx(0.5, abs=0.05)


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs fluidsynth")
def test_rendered_drum_hits_kick_low_hihat_high_cymbal_rings(tmp_path):
    import soundfile as sf

    from core.data.render_drums import DrumSet, render_drums
    from core.data.sources import load_dataset

    drums = DrumSet(
        kinds={"kick": (36,), "hihat": (42,), "cymbal": (49,)}, kits=(0,), velocities=(110,)
    )
    lines = list(render_drums(tmp_path, {"fluid": SOUNDFONTS["fluid"]}, drums))
    assert lines == ["fluid: kit 0, 3 hits"]
    [kick] = (tmp_path / "kick").glob("*.wav")
    assert kick.name == "036_fluid_000110.wav"

    def centroid_and_ring(path):
        samples, rate = sf.read(path)
        spectrum = np.abs(np.fft.rfft(samples)) ** 2
        centroid = (np.fft.rfftfreq(len(samples), 1 / rate) * spectrum).sum() / spectrum.sum()
        envelope = np.abs(samples)
        loud = np.flatnonzero(envelope > envelope.max() / 100)  # within 40 dB of the peak
        return centroid, (loud[-1] - loud[0]) / rate

    kick_hz, kick_s = centroid_and_ring(kick)
    hihat_hz, hihat_s = centroid_and_ring(next((tmp_path / "hihat").glob("*.wav")))
    _, crash_s = centroid_and_ring(next((tmp_path / "cymbal").glob("*.wav")))
    assert kick_hz < 500 < 3000 < hihat_hz  # a bass drum thumps, a closed hi-hat hisses
    assert crash_s > 1.0 and hihat_s < 0.5 < crash_s  # a crash rings, a closed hi-hat does not
    dataset = load_dataset(str(tmp_path))
    assert dataset.labels == ("cymbal", "hihat", "kick")
    assert {example.group for example in dataset.examples} == {"fluid"}
