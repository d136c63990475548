"""Pitch trackers (pYIN, CREPE tiny/full, PESTO) on signals with a known pitch, against the
packages' own pipelines, on bad input, offline, and (marked `gpu`) on an accelerator."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from core.music import pitch_networks as pn
from core.music.pitch_networks import (
    CREPE_FULL,
    CREPE_TINY,
    PESTO,
    PYIN,
    SAMPLE_RATE,
    PitchTrackerConfig,
    PitchTrackingError,
    run_tracker,
    track_pitch,
)


def harmonic_tone(
    hz: float, seconds: float, sr: int = SAMPLE_RATE, lead_in: float = 0.0
) -> np.ndarray:
    """Four decaying partials at hz, after `lead_in` seconds of digital silence."""
    t = np.arange(int(seconds * sr)) / sr
    tone = sum(0.5**k * np.sin(2 * np.pi * (k + 1) * hz * t) for k in range(4))
    return np.concatenate([np.zeros(int(lead_in * sr)), 0.4 * tone]).astype(np.float32)


def cents_off(f0: np.ndarray, hz: float) -> float:
    return float(1200 * abs(np.log2(np.nanmedian(f0) / hz)))


@pytest.mark.parametrize("tracker", [PYIN, CREPE_TINY, PESTO])
@pytest.mark.parametrize("hz", [110.0, 261.63, 880.0])
def test_each_tracker_finds_a_known_pitch_and_silence(tracker, hz):
    y = harmonic_tone(hz, 1.0, lead_in=0.5)
    track = run_tracker(y, SAMPLE_RATE, tracker)
    assert track.times.size == 1 + y.size // PitchTrackerConfig().hop_length
    tone = track.times >= 0.6  # the 64 ms windows are past the onset
    assert track.voiced[tone].mean() > 0.95, track.voiced[tone].mean()
    assert cents_off(track.f0_hz[tone], hz) < 20
    silence = track.times < 0.4
    assert not track.voiced[silence].any()
    assert np.isnan(track.f0_hz[silence]).all()


def test_crepe_full_finds_a_known_pitch():
    # 22 M weights: about 9 s per second of audio on a shared CPU, so half a second here.
    track = run_tracker(harmonic_tone(330.0, 0.5), SAMPLE_RATE, CREPE_FULL)
    assert cents_off(track.f0_hz[5:-5], 330.0) < 10
    assert track.probabilities.shape == (track.times.size, 360)


def test_resampled_input_lands_on_the_same_grid():
    y = harmonic_tone(440.0, 1.0, sr=22050)
    track = run_tracker(y, 22050, CREPE_TINY)
    assert track.audio_seconds == pytest.approx(1.0, abs=1e-3)
    assert cents_off(track.f0_hz[10:-10], 440.0) < 10


def test_crepe_output_equals_torchcrepe_own_pipeline():
    import torchcrepe

    y = harmonic_tone(196.0, 0.6)
    ours = run_tracker(y, SAMPLE_RATE, CREPE_TINY)
    frames = next(torchcrepe.preprocess(torch.from_numpy(y)[None], SAMPLE_RATE, 160))
    with torch.inference_mode():
        theirs = torchcrepe.infer(frames, "tiny").numpy()
    # torchcrepe scales by torch's unbiased std (1023 in the denominator), the original CREPE
    # and this module by the population std: 0.05 % apart, so the outputs differ below 1e-3.
    np.testing.assert_allclose(ours.probabilities, theirs, atol=1e-3)
    assert np.array_equal(ours.probabilities.argmax(axis=1), theirs.argmax(axis=1))
    # Decoding: CREPE's weighted average around the peak, here without torchcrepe's dithering.
    bins = theirs.argmax(axis=1)
    np.testing.assert_allclose(ours.confidence, theirs[np.arange(bins.size), bins], atol=1e-3)


def test_pesto_equals_the_package_predict_while_loading_weights_only():
    import pesto

    y = harmonic_tone(523.25, 0.8, lead_in=0.2)
    loads = []
    original = torch.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    pn.load_pesto.cache_clear()
    torch.load, saved = recording_load, torch.load
    try:
        ours = run_tracker(y, SAMPLE_RATE, PESTO)
    finally:
        torch.load = saved
    assert loads == [True]
    _, f0, confidence, activations = pesto.predict(torch.from_numpy(y), SAMPLE_RATE)
    in_range = np.isfinite(ours.raw_f0_hz)  # outside fmin..fmax the track says NaN
    assert in_range.mean() > 0.7
    np.testing.assert_allclose(ours.raw_f0_hz[in_range], f0.numpy()[in_range], rtol=1e-4)
    np.testing.assert_allclose(ours.confidence, confidence.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.probabilities, activations.numpy(), atol=1e-5)


def test_weights_load_from_the_installed_packages_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pitch model tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    pn.load_crepe.cache_clear()
    pn.load_pesto.cache_clear()
    for tracker in (CREPE_TINY, PESTO):
        track = run_tracker(harmonic_tone(220.0, 0.5), SAMPLE_RATE, tracker)
        assert track.voiced.any()


def test_tracking_yields_progress_and_ends_with_the_track():
    config = PitchTrackerConfig(batch_frames=20)
    events = list(track_pitch(harmonic_tone(220.0, 1.0), SAMPLE_RATE, CREPE_TINY, config=config))
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(events) >= 1 + 101 // 20 + 1
    assert all(e.track is None for e in events[:-1]) and events[-1].track is not None
    assert "CREPE tiny" in events[0].message


@pytest.mark.parametrize(
    ("samples", "sentence"),
    [
        (np.zeros(0, np.float32), "the clip is empty"),
        (np.full(SAMPLE_RATE, np.nan, np.float32), "NaN or infinite"),
        (harmonic_tone(440.0, 0.2), "0.20 s long"),
    ],
)
def test_bad_input_raises_a_sentence(samples, sentence):
    with pytest.raises(PitchTrackingError, match=sentence):
        run_tracker(samples, SAMPLE_RATE, CREPE_TINY)


def test_unknown_tracker_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        run_tracker(harmonic_tone(220.0, 0.5), SAMPLE_RATE, "CREPE huge")


@pytest.mark.parametrize(("tracker", "most"), [(PYIN, 0.1), (CREPE_TINY, 0.1), (PESTO, 0.3)])
def test_white_noise_is_mostly_unvoiced(tracker, most):
    noise = (0.3 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE)).astype(np.float32)
    assert run_tracker(noise, SAMPLE_RATE, tracker).voiced_fraction < most


def test_a_digitally_silent_clip_is_unvoiced_everywhere():
    silence = np.zeros(SAMPLE_RATE, np.float32)
    for tracker in (PYIN, CREPE_TINY, PESTO):
        assert not run_tracker(silence, SAMPLE_RATE, tracker).voiced.any(), tracker


def test_long_clips_are_truncated_to_max_seconds():
    config = PitchTrackerConfig(max_seconds=1.0)
    track = run_tracker(harmonic_tone(220.0, 2.0), SAMPLE_RATE, PESTO, config=config)
    assert track.truncated and track.audio_seconds == pytest.approx(1.0)


def test_threshold_rechooses_voicing_without_a_new_run():
    y = np.concatenate([harmonic_tone(220.0, 0.5), 0.05 * harmonic_tone(220.0, 0.5)])
    track = run_tracker(y, SAMPLE_RATE, CREPE_TINY)
    loose, strict = track.with_threshold(0.05), track.with_threshold(0.95)
    assert loose.voiced.sum() >= track.voiced.sum() >= strict.voiced.sum()
    assert np.isnan(strict.f0_hz[~strict.voiced]).all()
    assert strict.voicing_threshold == 0.95


def test_agreement_of_a_track_with_itself_and_an_octave_away():
    track = run_tracker(harmonic_tone(220.0, 0.6), SAMPLE_RATE, CREPE_TINY)
    both, agree = pn.agreement(track, track)
    assert both == pytest.approx(track.voiced_fraction) and agree == 1.0
    from dataclasses import replace

    octave = replace(track, f0_hz=track.f0_hz * 2)
    assert pn.agreement(track, octave)[1] == 0.0


def test_crepe_bins_and_pesto_cqt_axes():
    midi = pn.crepe_bin_midi()
    assert midi.shape == (360,) and np.allclose(np.diff(midi), 0.2)  # 20 cents
    assert midi[0] == pytest.approx(23.46, abs=0.01)  # 31.7 Hz, between B0 and C1
    cqt = pn.pesto_cqt(harmonic_tone(440.0, 0.5), torch.device("cpu"))
    axis = pn.pesto_cqt_midi(cqt.shape[1])
    frame = cqt[cqt.shape[0] // 2]
    assert axis[np.argmax(frame)] == pytest.approx(69.0, abs=0.34)  # A4's bin is the loudest


@pytest.mark.gpu
@pytest.mark.parametrize("tracker", [CREPE_TINY, CREPE_FULL, PESTO])
def test_networks_on_the_accelerator_match_the_cpu(tracker):
    from core.devices import resolve_device

    device = resolve_device("auto")
    assert device.type != "cpu"
    y = harmonic_tone(247.0, 1.0, lead_in=0.3)
    on_device = run_tracker(y, SAMPLE_RATE, tracker, device=device)
    on_cpu = run_tracker(y, SAMPLE_RATE, tracker)
    assert on_device.device == str(device)
    np.testing.assert_array_equal(on_device.voiced, on_cpu.voiced)
    voiced = on_cpu.voiced
    cents = 1200 * np.abs(np.log2(on_device.f0_hz[voiced] / on_cpu.f0_hz[voiced]))
    assert cents.max() < 5
