"""Augmentation: each kind does what it says, measured on known signals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.audio.features import FeatureConfig
from core.data.augment import (
    AugmentConfig,
    augment_batch,
    augment_waveform,
    equalize_waveform,
    equalizer_curve,
    mixup,
    preview_augmentation,
    random_equalizer,
)
from tests.conftest import sine

RATE = 8000
OFF = AugmentConfig.off()


def test_noise_lands_at_the_requested_snr():
    clean = sine(440, 1.0, RATE)
    for snr in (0.0, 10.0, 30.0):
        noisy = augment_waveform(
            clean,
            RATE,
            AugmentConfig(**{**OFF.__dict__, "noise_snr_db": snr}),
            np.random.default_rng(0),
        )
        measured = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
        assert measured == pytest.approx(snr, abs=0.3)


def test_gain_and_speed():
    clean = sine(440, 1.0, RATE)
    louder = augment_waveform(
        clean, RATE, AugmentConfig(**{**OFF.__dict__, "gain_db": 6.0}), np.random.default_rng(1)
    )
    # Gain alone draws one number, uniform in [-6, +6] dB: the clip scaled by exactly that.
    drawn_db = np.random.default_rng(1).uniform(-6.0, 6.0)
    np.testing.assert_allclose(louder, clean * 10 ** (drawn_db / 20), rtol=1e-6, atol=1e-7)
    rng = np.random.default_rng(2)
    faster = augment_waveform(clean, RATE, AugmentConfig(**{**OFF.__dict__, "speed": 0.2}), rng)
    factor = len(clean) / len(faster)
    assert 0.8 <= factor <= 1.2
    # Reading faster raises the pitch by the same factor: the peak frequency moves with it.
    spectrum = np.abs(np.fft.rfft(faster * np.hanning(len(faster))))
    peak_hz = np.argmax(spectrum) * RATE / len(faster)
    assert peak_hz == pytest.approx(440 * factor, rel=0.02)


def test_everything_off_leaves_a_batch_unchanged():
    x = torch.randn(3, 1, 16, 40)
    assert torch.equal(augment_batch(x, OFF), x)
    assert not OFF.needs_waveform and AugmentConfig(noise_snr_db=20.0).needs_waveform


def test_spec_augment_masks_fill_with_zero_within_their_limits():
    x = torch.ones(64, 1, 20, 50)
    config = AugmentConfig(**{**OFF.__dict__, "time_masks": 1, "time_mask_fraction": 0.2})
    out = augment_batch(x, config, torch.Generator().manual_seed(0))
    masked = (out[:, 0] == 0).all(dim=1)  # (64, 50): whole frames zeroed, per example
    masked_frames = masked.sum(dim=1)
    assert masked_frames.max() <= 10 and ((out == 0) | (out == 1)).all()
    for row in masked:  # one mask: one unbroken run of frames
        where = row.nonzero().flatten()
        assert len(where) == 0 or where[-1] - where[0] + 1 == len(where)
    # Widths uniform in 0..10 frames: about 5 on average over 64 examples.
    assert 3.5 < masked_frames.float().mean() < 6.5
    # And the masks fall anywhere in the clip, not always at its start.
    starts = masked[masked_frames > 0].float().argmax(dim=1)
    assert starts.min() < 10 and starts.max() > 30
    config = AugmentConfig(**{**OFF.__dict__, "freq_masks": 2, "freq_mask_fraction": 0.1})
    out = augment_batch(x, config, torch.Generator().manual_seed(0))
    masked_bins = (out[:, 0] == 0).all(dim=2).sum(dim=1)
    assert masked_bins.max() <= 4 and masked_bins.sum() > 0


def test_frequency_warp_moves_a_band_up_or_down_but_keeps_the_bottom():
    x = torch.zeros(32, 1, 40, 10)
    x[:, :, 20] = 1.0  # one bright band in the middle
    config = AugmentConfig(**{**OFF.__dict__, "freq_warp": 0.2})
    out = augment_batch(x, config, torch.Generator().manual_seed(0))
    centres = (out[:, 0, :, 5] * torch.arange(40)).sum(1) / out[:, 0, :, 5].sum(1)
    assert centres.min() < 19.5 and centres.max() > 20.5  # moved both ways across the batch
    assert ((centres > 20 * 0.78) & (centres < 20 * 1.22 + 1)).all()  # within the ±20 % warp


def test_mixup_blends_inputs_with_one_weight():
    x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    y = torch.tensor([0, 1])
    mixed, ya, yb, lam = mixup(x, y, 0.4, torch.Generator().manual_seed(3))
    assert 0.0 <= lam <= 1.0
    for i in range(2):
        expected = lam * x[i] + (1 - lam) * x[(yb[i]).item()]
        assert torch.allclose(mixed[i], expected)
    assert torch.equal(ya, y)


def test_preview_gives_audible_waveform_changes_and_the_full_spectrogram():
    # eq_db=0: the audio then differs from the clip by the noise alone (the EQ has its own test).
    config = AugmentConfig(noise_snr_db=10.0, time_masks=2, freq_masks=2, eq_db=0.0)
    features = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=80, n_mels=32, f_max=4000.0)
    clean = sine(440, 0.5, 16000)
    preview = preview_augmentation(
        clean, 16000, augment=config, feature_config=features, clip_frames=60
    )
    assert preview.sample_rate == RATE and len(preview.original_audio) == RATE // 2
    noise = preview.augmented_audio - preview.original_audio  # what the student hears added
    snr_db = 10 * np.log10(np.mean(preview.original_audio**2) / np.mean(noise**2))
    assert snr_db == pytest.approx(10.0, abs=0.5)
    assert preview.augmented_features.shape == preview.original_features.shape == (32, 60)
    assert "noise" in preview.applied and "time masks" in preview.applied
    assert "spectrogram" in preview.note
    silent = preview_augmentation(clean, 16000, augment=OFF, feature_config=features)
    np.testing.assert_allclose(silent.augmented_features, silent.original_features)


def test_out_of_range_settings_are_explained():
    with pytest.raises(ValueError, match="noise_snr_db"):
        AugmentConfig(noise_snr_db=500.0)


EQ_FEATURES = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=80, n_mels=32, f_max=4000.0)


def test_equaliser_curve_is_smooth_bounded_and_adds_no_overall_gain():
    curves = torch.stack(
        [equalizer_curve(32, 6.0, torch.Generator().manual_seed(s)) for s in range(50)]
    )
    assert curves.shape == (50, 32)
    assert curves.abs().max() <= 3 * 6.0  # three components of at most ±6 dB each
    assert curves.abs().max() > 3.0  # and it does colour the sound
    # Half-cosines k = 1..3 sum to zero over the bands: no constant gain (normalisation's job).
    torch.testing.assert_close(curves.mean(dim=1), torch.zeros(50), atol=1e-4, rtol=0)
    # Smooth: neighbouring bands differ by far less than the curve's range.
    assert (
        curves.diff(dim=1).abs().max(dim=1).values < 0.35 * curves.abs().max(dim=1).values
    ).all()


def test_random_equaliser_adds_one_gain_per_band_at_every_frame():
    from core.audio.features import make_feature_transform

    logmel = make_feature_transform(EQ_FEATURES, "logmel")(torch.as_tensor(sine(440, 0.5, RATE)))
    out = random_equalizer(logmel, 6.0, torch.Generator().manual_seed(0))
    change = out - logmel
    torch.testing.assert_close(change, change[:, :1].expand_as(change))  # constant over time
    torch.testing.assert_close(
        change[:, 0], equalizer_curve(32, 6.0, torch.Generator().manual_seed(0))
    )
    assert torch.equal(random_equalizer(logmel, 0.0), logmel)


def test_equalised_audio_has_the_curve_in_its_log_mel():
    """Known answer: white noise filtered by the curve shows that curve in its log-mel."""
    from core.audio.features import make_feature_transform

    noise = np.random.default_rng(0).standard_normal(4 * RATE).astype(np.float32) * 0.1
    curve = equalizer_curve(32, 6.0, torch.Generator().manual_seed(4))
    filtered = equalize_waveform(noise, curve, EQ_FEATURES)
    assert filtered.shape == noise.shape
    transform = make_feature_transform(dataclasses.replace(EQ_FEATURES, top_db=None), "logmel")
    measured = (transform(torch.as_tensor(filtered)) - transform(torch.as_tensor(noise))).mean(1)
    inner = slice(2, 30)  # the outermost bands straddle the flat extrapolation
    assert (measured[inner] - curve[inner]).abs().max() < 1.0  # dB


def test_preview_lets_you_hear_the_equaliser():
    config = AugmentConfig(**{**OFF.__dict__, "eq_db": 8.0})
    preview = preview_augmentation(
        sine(440, 0.5, RATE) + sine(2000, 0.5, RATE),
        RATE,
        augment=config,
        feature_config=EQ_FEATURES,
        kind="logmel",
        normalization="instance",
        seed=1,
    )
    assert "equaliser" in preview.applied and config.needs_decibels
    # The audio is the clip filtered by the curve that seed 1 draws, the one added to the log-mel.
    curve = equalizer_curve(EQ_FEATURES.n_mels, 8.0, torch.Generator().manual_seed(1))
    expected = equalize_waveform(preview.original_audio, curve, EQ_FEATURES)
    np.testing.assert_allclose(preview.augmented_audio, expected, atol=1e-6)
    assert not np.allclose(preview.augmented_audio, preview.original_audio, atol=1e-3)
    assert not np.allclose(preview.augmented_features, preview.original_features, atol=1e-3)
    with pytest.raises(ValueError, match="eq_db"):
        AugmentConfig(eq_db=30.0)
