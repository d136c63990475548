"""Saliency: does the map point at the region where the class signal lives?

A tiny CNN is trained in the test to tell "a 1.5 kHz tone burst in noise" from "noise only".
The burst sits between 0.4 and 0.6 s, so the only evidence for the tone class is in that
band and that time: both Grad-CAM and occlusion must put their weight there, and the
"salient regions only" audio must keep the tone and drop most of the noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audio.features import FeatureConfig
from core.audio.input_recipe import InputRecipe, Normalization
from core.inference.classifier import InferenceModel, prepare_clip
from core.inference.saliency import (
    explain,
    grad_cam,
    last_conv_index,
    occlusion_saliency,
    salient_audio,
    salient_frames,
)
from core.models.build import build_model
from core.models.spec import LayerSpec, ModelSpec
from core.viz.classify import saliency_figure

RATE = 8000
TONE_HZ = 1500.0
TONE_START, TONE_END = 0.4, 0.6  # seconds
CONFIG = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=80, n_mels=24, f_max=4000.0)
FRAMES = 101  # 1 s


def _clip(rng: np.random.Generator, tone: bool) -> np.ndarray:
    y = 0.05 * rng.standard_normal(RATE).astype(np.float32)
    if tone:
        t = np.arange(int(TONE_START * RATE), int(TONE_END * RATE))
        y[t] += 0.3 * np.sin(2 * np.pi * TONE_HZ * t / RATE).astype(np.float32)
    return y


def _untrained_model() -> InferenceModel:
    L = LayerSpec.make
    spec = ModelSpec(
        "tone",
        (1, CONFIG.n_mels, FRAMES),
        (
            L("Conv2d", out_channels=8, kernel_size=3, padding=1),
            L("ReLU"),
            L("Conv2d", out_channels=8, kernel_size=3, padding=1),
            L("ReLU"),
            # Max pooling: the tone class is "a burst anywhere", so its evidence stays local.
            L("AdaptiveMaxPool2d", output_size=1),
            L("Flatten"),
            L("Linear", out_features=2),
        ),
    )
    return InferenceModel(
        network=build_model(spec).eval(),
        labels=("noise", "tone"),
        recipe=InputRecipe.make(CONFIG, "logmel", FRAMES, Normalization("utterance")),
        spec=spec,
        name="tone",
    )


@pytest.fixture(scope="module")
def tone_model() -> InferenceModel:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = _untrained_model()
    clips = [(_clip(rng, tone=i % 2 == 1), i % 2) for i in range(32)]
    x = torch.cat([prepare_clip(y, RATE, model).model_input for y, _ in clips])
    labels = torch.tensor([label for _, label in clips])
    net = model.network.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    optimiser.zero_grad(set_to_none=True)
    net.eval()
    assert (net(x).argmax(1) == labels).float().mean() == 1.0, "the tiny model did not learn"
    return model


def _region_share(saliency: np.ndarray) -> tuple[float, float]:
    """Share of the positive saliency mass inside the burst's time span and its mel bands."""
    s = np.clip(saliency, 0, None)
    times = np.arange(s.shape[1]) * CONFIG.hop_length / RATE
    in_time = (times >= TONE_START - 0.02) & (times <= TONE_END + 0.02)
    low, high = _tone_band_rows()
    return float(s[:, in_time].sum() / s.sum()), float(s[low - 1 : high + 2].sum() / s.sum())


def _tone_band_rows() -> tuple[int, int]:
    from core.audio.features import mel_filterbank

    fb = mel_filterbank(CONFIG).numpy()
    tone_bin = int(round(TONE_HZ / (RATE / CONFIG.n_fft)))
    rows = np.nonzero(fb[:, tone_bin] > 0)[0]
    return int(rows.min()), int(rows.max())


@pytest.mark.parametrize("method", ["grad-cam", "occlusion"])
def test_saliency_points_at_the_tone(tone_model, method):
    y = _clip(np.random.default_rng(123), tone=True)
    prepared = prepare_clip(y, RATE, tone_model)
    saliency = explain(tone_model, prepared, target=1, method=method, patch=(3, 5))
    assert saliency.shape == (CONFIG.n_mels, FRAMES)
    in_time, in_band = _region_share(saliency)
    # The burst covers 24 % of the frames and 4 of the 24 bands (17 %).
    if method == "occlusion":
        assert in_time >= 0.7, f"only {in_time:.0%} of the saliency lies in the burst"
        assert in_band >= 0.4, f"only {in_band:.0%} of the saliency lies in the tone's bands"
    else:  # Grad-CAM's map comes from a coarse feature map: sharp in time, looser in band
        assert in_time >= 0.45, f"only {in_time:.0%} of the saliency lies in the burst"
        row, frame = np.unravel_index(saliency.argmax(), saliency.shape)
        assert TONE_START <= frame * CONFIG.hop_length / RATE <= TONE_END
        low, high = _tone_band_rows()
        assert low - 2 <= row <= high + 2


def test_grad_cam_does_not_touch_parameters(tone_model):
    prepared = prepare_clip(_clip(np.random.default_rng(5), tone=True), RATE, tone_model)
    before = {k: v.clone() for k, v in tone_model.network.state_dict().items()}
    grad_cam(tone_model.network, prepared.model_input, 1)
    assert all(p.grad is None for p in tone_model.network.parameters())
    after = tone_model.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_grad_cam_of_an_ensemble_is_the_mean_of_its_members_maps(tone_model):
    import copy

    from core.models.build import EnsembleNetwork

    prepared = prepare_clip(_clip(np.random.default_rng(6), tone=True), RATE, tone_model)
    torch.manual_seed(1)
    untrained = _untrained_model().network
    ensemble = EnsembleNetwork([copy.deepcopy(tone_model.network), untrained]).eval()
    maps = [grad_cam(m, prepared.model_input, 1) for m in (tone_model.network, untrained)]
    expected = (maps[0] + maps[1]) / (maps[0] + maps[1]).max()
    np.testing.assert_allclose(grad_cam(ensemble, prepared.model_input, 1), expected, atol=1e-6)


def test_grad_cam_needs_a_convolution():
    L = LayerSpec.make
    spec = ModelSpec("mlp", (1, 4, 5), (L("Flatten"), L("Linear", out_features=2)))
    network = build_model(spec)
    assert last_conv_index(network.layers) is None
    with pytest.raises(ValueError, match="convolutional"):
        grad_cam(network, torch.zeros(1, 1, 4, 5), 0)


def test_occlusion_of_a_hand_built_linear_model_is_exact():
    """prob = sigmoid-like of the sum over one known region: only that region matters."""
    x = torch.zeros(1, 1, 8, 12)
    x[..., 2:4, 6:9] = 1.0

    def probability_of(batch):
        return torch.sigmoid(batch[..., 2:4, 6:9].sum(dim=(1, 2, 3)) - 3.0)

    saliency = occlusion_saliency(probability_of, x, patch=(2, 3), fill=0.0)
    inside = saliency[2:4, 6:9]
    assert inside.min() > 0.1
    outside = saliency.copy()
    outside[2:4, 6:9] = 0
    assert np.abs(outside).max() == 0.0


def test_salient_audio_keeps_the_marked_region_only():
    """A map marking the tone's bands during the burst: the audio keeps the tone, not the noise."""
    y = _clip(np.random.default_rng(7), tone=True)
    saliency = np.zeros((CONFIG.n_mels, FRAMES), dtype=np.float32)
    low, high = _tone_band_rows()
    first, last = (
        int(TONE_START * RATE / CONFIG.hop_length),
        int(TONE_END * RATE / CONFIG.hop_length),
    )
    saliency[low : high + 1, first : last + 1] = 1.0
    burst = slice(int((TONE_START + 0.02) * RATE), int((TONE_END - 0.02) * RATE))
    quiet = np.r_[0 : int((TONE_START - 0.03) * RATE), int((TONE_END + 0.03) * RATE) : RATE]
    energy = {}
    for mode in ("time", "time-frequency"):
        out = salient_audio(y, CONFIG, saliency, keep_fraction=0.2, mode=mode)
        assert out.shape == y.shape
        assert np.sum(out[quiet] ** 2) < 0.01 * np.sum(y[quiet] ** 2), mode
        spectrum = np.abs(np.fft.rfft(out[burst]))
        freqs = np.fft.rfftfreq(len(out[burst]), 1 / RATE)
        assert abs(freqs[spectrum.argmax()] - TONE_HZ) < 20, mode
        tone = np.sin(2 * np.pi * TONE_HZ * np.arange(len(y))[burst] / RATE)
        amplitude = 2 * np.dot(out[burst], tone) / np.dot(tone, tone)
        assert amplitude > 0.8 * 0.3, f"{mode}: the tone lost too much ({amplitude:.2f} of 0.3)"
        energy[mode] = float(np.sum(out[burst] ** 2))
    # Masking the spectrogram also removes the noise of the other bands during the burst.
    assert energy["time-frequency"] < 0.9 * energy["time"]


def test_salient_frames_ignore_stray_cells():
    saliency = np.zeros((10, 20))
    saliency[:, 5:8] = 1.0  # a whole moment
    saliency[3, 15] = 2.0  # one stray cell, larger but alone
    keep = salient_frames(saliency, 0.15)
    assert keep.nonzero()[0].tolist() == [5, 6, 7]


def test_saliency_figure_draws_the_input_and_the_positive_saliency_scaled_to_one():
    model_input = np.arange(6, dtype=np.float32).reshape(2, 3) - 50.0  # (bins, frames) dB
    saliency = np.array([[-1.0, 0.0, 2.0], [1.0, 4.0, -3.0]])
    fig = saliency_figure(model_input, saliency, RATE, CONFIG.hop_length, frame_offset=10)
    spectrogram, overlay = fig.data
    np.testing.assert_array_equal(np.asarray(spectrogram.z), model_input)
    # Negative evidence is not drawn; the strongest cell is 1.
    np.testing.assert_allclose(np.asarray(overlay.z), [[0.0, 0.0, 0.5], [0.25, 1.0, 0.0]])
    assert (overlay.zmin, overlay.zmax) == (0, 1)
    # Frames 10, 11, 12 at 80 samples per hop and 8 kHz: 0.10, 0.11, 0.12 s.
    for trace in (spectrogram, overlay):
        np.testing.assert_allclose(trace.x, [0.10, 0.11, 0.12])
        assert list(trace.y) == [0, 1]
    # Nothing positive to show: an empty overlay, not a division by zero.
    nothing = saliency_figure(model_input, -np.ones((2, 3)), RATE, CONFIG.hop_length)
    np.testing.assert_array_equal(np.asarray(nothing.data[1].z), np.zeros((2, 3)))
