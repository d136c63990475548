"""core.audio.features: FeatureConfig validation and agreement of the transforms with librosa."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from core.audio import features
from core.audio.features import (
    MFCC,
    FeatureConfig,
    LogMelSpectrogram,
    MelSpectrogram,
    StftMagnitude,
    dct_matrix,
    make_feature_transform,
    mel_filterbank,
    power_to_db,
)
from core.audio.io import load_audio
from tests.conftest import sine

CFG = FeatureConfig()


@pytest.fixture(scope="module")
def real_clips(digit_files, music_clips) -> dict[str, np.ndarray]:
    """A spoken digit and a music excerpt at the config's 16 kHz, float32 (n,)."""
    digit = load_audio(digit_files[123], sample_rate=16000).samples
    music = load_audio(music_clips[0], sample_rate=16000, max_seconds=3).samples
    return {"digit": digit, "music": music}


def librosa_kwargs(cfg: FeatureConfig) -> dict:
    """The same parameters, spelled the librosa way."""
    return {
        "n_fft": cfg.n_fft,
        "hop_length": cfg.hop_length,
        "win_length": cfg.win_length,
        "window": "boxcar" if cfg.window == "rectangular" else cfg.window,
        "center": cfg.center,
        "pad_mode": "constant",
    }


def librosa_mel(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    return librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max,
        power=cfg.power,
        htk=cfg.mel_scale == "htk",
        norm=cfg.mel_norm,
        **librosa_kwargs(cfg),
    )


def ours(transform: torch.nn.Module, y: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return transform(torch.from_numpy(y)).numpy()


# ------------------------------------------------------------------ FeatureConfig


def test_config_is_frozen_and_round_trips_through_a_dict():
    cfg = FeatureConfig(n_mels=40, f_max=7600.0, top_db=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_mels = 80  # type: ignore[misc]
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["n_mels"] == 40 and cfg.to_dict()["top_db"] is None


def test_numpy_numbers_from_widgets_become_plain_python_numbers():
    import json

    cfg = FeatureConfig(n_mels=np.int64(40), f_min=np.float32(20.0), top_db=60)
    assert type(cfg.n_mels) is int and type(cfg.f_min) is float and type(cfg.top_db) is float
    assert cfg == FeatureConfig(n_mels=40, f_min=20.0, top_db=60.0)
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_from_dict_rejects_unknown_settings():
    with pytest.raises(ValueError, match="Unknown feature settings: n_mel"):
        FeatureConfig.from_dict({"n_mel": 64})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hop_length": 1024, "n_fft": 512}, "hop_length (1024) is larger than n_fft (512)"),
        ({"win_length": 600}, "win_length must be between 1 and n_fft (512)"),
        ({"n_mfcc": 80}, "n_mfcc (80) cannot exceed n_mels (64)"),
        ({"f_max": 9000.0}, "cannot exceed half the sample rate (8000.0 Hz)"),
        ({"f_min": 5000.0, "f_max": 4000.0}, "f_min (5000.0 Hz) must be >= 0 and below f_max"),
        ({"window": "kaiser"}, "window must be one of hann, hamming"),
        ({"top_db": -10.0}, "top_db must be positive"),
        ({"sample_rate": 1}, "sample_rate must be a whole number of Hz"),
        ({"n_fft": 8}, "n_fft must be a whole number of samples of at least 16"),
        ({"power": 0.0}, "power must be positive"),
        ({"mel_scale": "bark"}, "mel_scale must be 'slaney' or 'htk'"),
    ],
)
def test_invalid_settings_get_a_specific_message(changes, message):
    with pytest.raises(ValueError) as caught:
        FeatureConfig(**changes)
    assert message in str(caught.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ValueError) as caught:
        FeatureConfig(hop_length=0, n_mels=0, power=-1.0)
    text = str(caught.value)
    assert "hop_length" in text and "n_mels" in text and "power" in text


def test_too_many_mel_bands_for_the_fft_size_is_explained():
    with pytest.raises(ValueError, match="mel bands contain no FFT bin"):
        LogMelSpectrogram(FeatureConfig(n_fft=64, hop_length=32, n_mels=64))


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large:UserWarning")  # librosa, on 400
@pytest.mark.parametrize(
    "center, n_samples", [(True, 400), (True, 16000), (True, 16161), (False, 512), (False, 16161)]
)
def test_num_frames_matches_the_transform_and_librosa(center, n_samples):
    cfg = FeatureConfig(center=center)
    y = sine(440, n_samples / 16000, 16000)
    frames = ours(StftMagnitude(cfg), y).shape[-1]
    reference = librosa.stft(y, **librosa_kwargs(cfg)).shape[-1]
    assert frames == reference == cfg.num_frames(n_samples)


def test_clip_shorter_than_one_window_without_centring_is_explained():
    cfg = FeatureConfig(center=False)
    assert cfg.num_frames(400) == 0
    with pytest.raises(ValueError, match="400 samples is shorter than one analysis window"):
        LogMelSpectrogram(cfg)(torch.zeros(2, 400))


def test_derived_values():
    assert CFG.n_freqs == 257 and CFG.window_length == 512 and CFG.f_max_hz == 8000
    assert CFG.frames_per_second == 100
    assert [CFG.num_bins(k) for k in ("stft", "mel", "logmel", "mfcc")] == [257, 64, 64, 20]


# ------------------------------------------------------------------ agreement with librosa


@pytest.mark.parametrize("clip", ["digit", "music"])
def test_stft_magnitude_matches_librosa(real_clips, clip):
    y = real_clips[clip]
    reference = np.abs(librosa.stft(y, **librosa_kwargs(CFG)))
    result = ours(StftMagnitude(CFG), y)
    assert result.shape == reference.shape == (257, CFG.num_frames(y.size))
    np.testing.assert_allclose(result, reference, rtol=1e-3, atol=1e-4 * reference.max())


def test_mel_filterbank_matches_librosa():
    for cfg in (CFG, FeatureConfig(mel_scale="htk", mel_norm=None, f_min=50.0, f_max=7000.0)):
        reference = librosa.filters.mel(
            sr=cfg.sample_rate,
            n_fft=cfg.n_fft,
            n_mels=cfg.n_mels,
            fmin=cfg.f_min,
            fmax=cfg.f_max,
            htk=cfg.mel_scale == "htk",
            norm=cfg.mel_norm,
        )
        np.testing.assert_allclose(mel_filterbank(cfg).numpy(), reference, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("clip", ["digit", "music"])
def test_mel_spectrogram_matches_librosa(real_clips, clip):
    y = real_clips[clip]
    reference = librosa_mel(y, CFG)
    result = ours(MelSpectrogram(CFG), y)
    np.testing.assert_allclose(result, reference, rtol=1e-3, atol=1e-5 * reference.max())


@pytest.mark.parametrize("clip", ["digit", "music"])
def test_log_mel_matches_librosa_power_to_db_ref_one(real_clips, clip):
    y = real_clips[clip]
    reference = librosa.power_to_db(librosa_mel(y, CFG), ref=1.0, amin=1e-10, top_db=CFG.top_db)
    result = ours(LogMelSpectrogram(CFG), y)
    assert result.shape == (64, CFG.num_frames(y.size))
    assert np.abs(result - reference).max() < 0.01  # dB
    assert result.max() - result.min() <= CFG.top_db + 1e-4


@pytest.mark.parametrize("clip", ["digit", "music"])
def test_mfcc_matches_librosa(real_clips, clip):
    y = real_clips[clip]
    reference = librosa.feature.mfcc(
        y=y,
        sr=16000,
        n_mfcc=CFG.n_mfcc,
        dct_type=2,
        norm="ortho",
        n_mels=CFG.n_mels,
        **librosa_kwargs(CFG),
    )
    result = ours(MFCC(CFG), y)
    assert result.shape == (20, CFG.num_frames(y.size))
    assert np.abs(result - reference).max() < 1e-4 * np.abs(reference).max()


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(n_fft=1024, hop_length=256, win_length=800, window="hamming", n_mels=40),
        FeatureConfig(center=False, f_min=60.0, f_max=7600.0, mel_scale="htk", mel_norm=None),
        FeatureConfig(power=1.0, window="blackman", top_db=None),
        FeatureConfig(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128),
    ],
    ids=["hamming-win800", "no-centre-htk", "magnitude-blackman", "22k-128mels"],
)
def test_other_settings_match_librosa(real_clips, cfg):
    y = real_clips["music"]
    if cfg.sample_rate != 16000:
        y = librosa.resample(y, orig_sr=16000, target_sr=cfg.sample_rate)
    reference = librosa.power_to_db(librosa_mel(y, cfg), ref=1.0, top_db=cfg.top_db)
    # 0.02 dB: without a top_db floor the comparison reaches bins 100 dB down, where float32
    # rounding (ours) and float32 (librosa's stft) differ by ~0.01 dB.
    assert np.abs(ours(LogMelSpectrogram(cfg), y) - reference).max() < 0.02


# ------------------------------------------------------------------ known answers


def test_440_hz_sine_peaks_at_440_hz():
    y = sine(440, 1.0, 16000)
    spectrum = ours(StftMagnitude(CFG), y).mean(axis=-1)
    bin_hz = 16000 / CFG.n_fft  # 31.25 Hz
    assert abs(np.argmax(spectrum) * bin_hz - 440) <= bin_hz / 2
    log_mel = ours(LogMelSpectrogram(CFG), y).mean(axis=-1)
    centres = librosa.mel_frequencies(CFG.n_mels + 2, fmin=0, fmax=8000)[1:-1]
    assert np.argmax(log_mel) == np.argmin(np.abs(centres - 440))
    # A full-scale-ish sine has its energy in one band, far above the rest.
    assert log_mel.max() - np.median(log_mel) > 40


def test_silence_sits_at_the_floor():
    log_mel = ours(LogMelSpectrogram(CFG), np.zeros(16000, dtype=np.float32))
    np.testing.assert_allclose(log_mel, -100.0)  # 10 * log10(1e-10)


# ------------------------------------------------------------------ batching and devices


def test_batches_of_any_shape_equal_one_at_a_time(real_clips):
    y = real_clips["music"][:16000]
    batch = np.stack([y, 0.5 * y, np.roll(y, 4000)]).reshape(3, 1, 16000)
    for kind in ("stft", "mel", "logmel", "mfcc"):
        transform = make_feature_transform(CFG, kind)
        together = ours(transform, batch)
        assert together.shape == (3, 1, CFG.num_bins(kind), 101)
        for i in range(3):
            alone = ours(transform, batch[i, 0])
            np.testing.assert_allclose(together[i, 0], alone, rtol=1e-4, atol=1e-3)


def test_top_db_floor_is_per_example_like_librosa_on_each_clip(real_clips):
    loud = real_clips["music"][:16000]
    quiet = 1e-3 * loud  # 60 dB quieter
    together = ours(LogMelSpectrogram(CFG), np.stack([loud, quiet]))
    for row, y in zip(together, (loud, quiet), strict=True):
        reference = librosa.power_to_db(librosa_mel(y, CFG), ref=1.0, top_db=CFG.top_db)
        assert np.abs(row - reference).max() < 0.01
    # ref=1.0: the quiet clip is 60 dB lower, not renormalised to the same picture.
    assert together[0].max() - together[1].max() == pytest.approx(60.0, abs=0.1)


def test_cache_sized_passes_give_the_numbers_of_one_pass(real_clips, monkeypatch):
    # 10 clips, loud and 60 dB quieter in turn, so a pass boundary falling between a loud and
    # a quiet clip would show if the top_db floor leaked from one clip to another.
    music = real_clips["music"]
    rows = [music[i * 3000 : i * 3000 + 16000] * (1.0 if i % 2 else 1e-3) for i in range(10)]
    batch = np.stack(rows).reshape(2, 5, 16000)
    for kind in ("stft", "mel", "logmel", "mfcc"):
        transform = make_feature_transform(CFG, kind)
        monkeypatch.setattr(features, "CPU_PASS_BYTES", 1 << 40)  # everything in one pass
        whole = ours(transform, batch)
        # 3 clips of 101 frames per pass: passes of 3, 3, 3 and 1 clip.
        monkeypatch.setattr(features, "CPU_PASS_BYTES", 4 * CFG.n_fft * 303)
        in_passes = ours(transform, batch)
        assert in_passes.shape == whole.shape == (2, 5, CFG.num_bins(kind), 101)
        np.testing.assert_allclose(in_passes, whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())
    # And the pass-by-pass log-mel is librosa's, clip by clip.
    log_mel = ours(LogMelSpectrogram(CFG), batch).reshape(10, CFG.n_mels, 101)
    for row, y in zip(log_mel, rows, strict=True):
        reference = librosa.power_to_db(librosa_mel(y, CFG), ref=1.0, top_db=CFG.top_db)
        assert np.abs(row - reference).max() < 0.01


def test_the_log_mel_passes_gradients_back_to_the_waveform():
    # Autograd needs the values the in-place steps would overwrite: with a waveform that
    # requires grad, the result and its gradient must equal the plain out-of-place formula.
    y = torch.from_numpy(sine(440, 0.25, 16000) + sine(3000, 0.25, 16000, amplitude=0.1))
    y = y.reshape(2, 2000).double().requires_grad_(True)
    ours_db = LogMelSpectrogram(CFG)(y)
    ours_db.sum().backward()
    ours_grad = y.grad.clone()
    y.grad = None
    spec = torch.stft(
        y.float(),
        CFG.n_fft,
        CFG.hop_length,
        window=torch.hann_window(CFG.n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    mel = mel_filterbank(CFG) @ spec.abs().square()
    plain_db = 10 * torch.log10(mel.clamp(min=1e-10))
    plain_db = torch.maximum(plain_db, plain_db.amax(dim=(-2, -1), keepdim=True) - CFG.top_db)
    plain_db.sum().backward()
    torch.testing.assert_close(ours_db, plain_db, rtol=1e-4, atol=1e-3)
    assert ours_grad.abs().max() > 0
    torch.testing.assert_close(ours_grad, y.grad, rtol=1e-3, atol=1e-3 * y.grad.abs().max())


def test_power_to_db_leaves_the_callers_spectrogram_unchanged():
    # core.inference.classifier passes views of a whole recording's mel power, one window at a time.
    mel = torch.tensor([[[1.0, 1e-3], [1e-12, 0.5]]])
    before = mel.clone()
    db = power_to_db(mel, top_db=80.0)
    torch.testing.assert_close(mel, before, rtol=0, atol=0)
    torch.testing.assert_close(db, torch.tensor([[[0.0, -30.0], [-80.0, -3.0103]]]))


def test_transforms_are_buffers_only_and_accept_float64():
    transform = make_feature_transform(CFG, "mfcc")
    assert list(transform.parameters()) == []
    assert transform.state_dict() == {}  # rebuilt from the config, nothing to save
    assert {name for name, _ in transform.named_buffers()} == {
        "dct",
        "log_mel.mel.window",
        "log_mel.mel.mel_fb",
    }
    y64 = torch.from_numpy(sine(440, 0.5, 16000).astype(np.float64))
    assert transform(y64).dtype == torch.float32


def test_dct_matrix_is_scipy_orthonormal_dct_ii():
    from scipy.fft import dct

    x = np.random.default_rng(0).normal(size=(64, 5))
    expected = dct(x, type=2, norm="ortho", axis=0)[:20]
    np.testing.assert_allclose(dct_matrix(20, 64).double().numpy() @ x, expected, atol=1e-5)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="choose one of stft, mel, logmel, mfcc"):
        make_feature_transform(CFG, "cqt")


@pytest.mark.gpu
def test_gpu_matches_cpu(real_clips):
    device = torch.device("cuda" if torch.cuda.is_available() else "mps")
    y = torch.from_numpy(np.stack([real_clips["music"][:32000]] * 4))
    for kind in ("stft", "logmel", "mfcc"):
        transform = make_feature_transform(CFG, kind)
        cpu = transform(y)
        gpu = transform.to(device)(y.to(device)).cpu()
        scale = cpu.abs().max()
        assert (gpu - cpu).abs().max() < 1e-3 * scale, kind
