"""The input recipe: one object from waveform to model input, the same numbers as before.

The known answers are stored: tests/data/recipe_before/before.npz was written by the code
before InputRecipe existed (make_before.py there) for the shipped digits model and five runs
saved by that code (one in the oldest model.json format). Every path that turns a waveform
into a model input (a clip, training, the timeline with and without trimming, the live
stream, evaluation, layer values, saliency) must give the same inputs, bit for bit, and the
same probabilities to float32 rounding. Elsewhere: the recipe against plain torch /
librosa-equivalent pieces.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from core.audio.features import FeatureConfig, make_feature_transform
from core.audio.input_recipe import (
    InputRecipe,
    InputRecipeConfig,
    Normalization,
    clip_frames_for,
    fit_frames,
    window_starts,
)
from core.audio.levels import resample
from core.data.feature_cache import FeatureCache
from core.inference.classifier import (
    InferenceError,
    classify_clip,
    classify_windows,
    model_from_loaded_run,
)
from core.inference.saliency import explain
from core.inference.streaming import LiveClassifier, LiveClassifierConfig, stream_file
from core.lessons.layer_values import trace_clip
from core.training.evaluate import predict_proba
from core.training.runs import RunStore
from tests.conftest import sine
from tests.data.recipe_before.make_before import HERE, digest, run_sources, signals

BEFORE = np.load(HERE / "before.npz")
RUNS = list(run_sources())
SMALL = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32, f_max=4000.0)


def _same(key: str, value) -> None:
    expected = BEFORE[key]
    got = np.asarray(value)
    assert got.shape == expected.shape, key
    if expected.dtype.kind == "f":
        # The network's outputs agree to float32 rounding, not bit for bit, across CPUs: another
        # machine's vector instructions sum a convolution in another order (seen: 1.8e-7 at
        # most on an AMD EPYC against the machine that wrote before.npz). The inputs stay
        # exact: their digests are compared as strings.
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=key)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=key)


@pytest.fixture(scope="module", params=RUNS)
def loaded(request):
    root, run_id = run_sources()[request.param]
    run = RunStore(root).load(run_id)
    return request.param, run, model_from_loaded_run(run)


# --------------------------------------------------------------------------- old runs


def test_every_run_format_loads_its_recipe(loaded):
    name, run, model = loaded
    folder = InputRecipe.from_run(run.info.path)  # model.json alone, no weights
    assert folder.config == run.recipe.config == model.recipe.config
    assert model.recipe.config.input_shape == tuple(run.spec.input_shape)
    if name == "logmel-oldformat":  # no feature_kind, clip_frames or trim_db in model.json
        assert model.recipe.kind == "logmel" and model.recipe.config.trim_db is None
        assert model.recipe.clip_frames == run.spec.input_shape[-1] == 61
    round_trip = InputRecipe.from_json(model.recipe.to_json())
    assert round_trip.config == model.recipe.config


def test_clips_give_the_inputs_and_probabilities_of_before(loaded):
    name, run, model = loaded
    for sig, (y, rate) in signals().items():
        key = f"{name}/{sig}"
        result = classify_clip(model, y, rate)
        _same(f"{key}/input", result.prepared.model_input.numpy())
        assert digest(result.prepared.features) == str(BEFORE[f"{key}/features_sha1"]), key
        _same(f"{key}/offset", result.prepared.frame_offset)
        assert list(result.prepared.notices) == list(BEFORE[f"{key}/notices"])
        _same(f"{key}/probabilities", result.prediction.probabilities)
        mono = y if y.ndim == 1 else y.mean(axis=0)
        # Training: cached whole-clip features, then the recipe's fit (core.training.trainer).
        raw = FeatureCache(run.feature_config, run.feature_kind, disk=False).compute(
            resample(mono, rate, run.feature_config.sample_rate)
        )
        _same(f"{key}/training_input", run.recipe.fit(raw)[None, None].numpy())
        _same(f"{key}/predict_proba", predict_proba(run, mono, rate))
        _same(f"{key}/trace", trace_clip(run, mono, rate).probabilities)


def test_timelines_give_the_windows_of_before(loaded):
    name, _, model = loaded
    for sig, (y, rate) in signals().items():
        for trim in (False, True):
            tag = f"{name}/{sig}/windows_trim{int(trim)}"
            w = classify_windows(model, y, rate, hop_seconds=0.1, trim_silence=trim)
            _same(f"{tag}/starts", w.starts_seconds)
            _same(f"{tag}/probabilities", w.probabilities)
            _same(f"{tag}/silent", w.silent)
            if trim:
                _same(f"{tag}/cut", w.cut)


def test_saliency_and_the_live_stream_give_the_numbers_of_before(loaded):
    name, _, model = loaded
    y, rate = signals()["sentence"]
    result = classify_clip(model, y, rate)
    target = result.prediction.best_index
    _same(f"{name}/occlusion", explain(model, result.prepared, target=target))
    _same(f"{name}/grad_cam", explain(model, result.prepared, target=target, method="grad-cam"))
    live = LiveClassifier(model, LiveClassifierConfig(hop_seconds=0.1))
    stream_file(live, y, rate, frame_sizes=[160, 97, 333])
    live.finish()
    windows = live.window_result()
    _same(f"{name}/live/probabilities", windows.probabilities)
    _same(f"{name}/live/silent", windows.silent)
    _same(f"{name}/live/cut", windows.cut)


# --------------------------------------------------------------------------- the module


def test_forward_is_features_then_each_clip_fitted_on_its_own():
    recipe = InputRecipe.make(SMALL, "logmel", 51, Normalization("utterance"))
    rng = np.random.default_rng(3)
    quiet = 0.01 * rng.standard_normal(2400).astype(np.float32)  # 0.3 s: padded
    loud = sine(500, 0.3, 8000)
    x = recipe(torch.from_numpy(np.stack([quiet, loud])))
    assert x.shape == (2, 1, 32, 51)
    transform = make_feature_transform(SMALL, "logmel")  # plain pieces, one clip at a time
    for i, y in enumerate((quiet, loud)):
        features = transform(torch.from_numpy(y))
        z = (features - features.mean(-1, keepdim=True)) / (
            features.std(-1, keepdim=True, unbiased=False) + 1e-5
        )
        expected = fit_frames(z, 51)  # centred, padded with this clip's own floor
        torch.testing.assert_close(x[i, 0], expected, atol=1e-5, rtol=0)
        pad = (51 - features.shape[-1]) // 2
        assert torch.all(x[i, 0, :, :pad] == z.amin())


def test_windows_of_a_spectrum_are_clips_with_their_own_db_floor():
    """MFCC: each window's dB floor and DCT are its own, as a training clip's would be."""
    recipe = InputRecipe.make(SMALL, "mfcc", 21, Normalization("none"))
    y = sine(300, 1.0, 8000) * np.linspace(0.01, 1.0, 8000, dtype=np.float32)
    spectrum = recipe.spectrum(y)  # mel power of the whole recording
    assert spectrum.shape == (32, 101)
    window = spectrum[:, 10:31]
    log_mel = 10 * torch.log10(window.clamp_min(1e-10))
    log_mel = torch.maximum(log_mel, log_mel.max() - SMALL.top_db)
    from scipy.fft import dct

    expected = dct(log_mel.double().numpy(), type=2, norm="ortho", axis=0)[: SMALL.n_mfcc]
    got = recipe.window_inputs(spectrum, [(10, 31)])
    assert got.shape == (1, 1, 20, 21)
    np.testing.assert_allclose(got[0, 0].numpy(), expected, atol=2e-4)


def test_buffers_are_built_once_and_travel_with_to():
    recipe = InputRecipe.make(SMALL, "mfcc", 21)
    buffers = dict(recipe.named_buffers())
    assert {"transform.dct", "transform.log_mel.mel.window", "transform.log_mel.mel.mel_fb"} <= set(
        buffers
    )
    assert recipe.spectrum_transform.mel_fb is buffers["transform.log_mel.mel.mel_fb"]
    moved = recipe.to(torch.float64)  # what .to(device) does to every buffer
    assert moved.transform.dct.dtype == torch.float64
    assert recipe.state_dict() == {}  # rebuilt from the config, never read from a file


def test_one_formula_from_seconds_to_frames():
    # 2.01 s at 16 kHz is 32159.99... samples: int() made 201 frames (the Train page's shape)
    # where training's round() made 202; every place now uses clip_frames_for.
    config = FeatureConfig()
    assert clip_frames_for(config, 2.01) == 202
    assert clip_frames_for(SMALL, 1.0) == 101
    recipe = InputRecipe.make(SMALL, "logmel", clip_frames_for(SMALL, 0.5))
    assert recipe.window_seconds == pytest.approx(0.5)
    assert recipe.window_frames(recipe.window_seconds) == recipe.clip_frames
    assert recipe.window_frames(0.001) == 3 and recipe.window_frames(None) == 51
    with pytest.raises(ValueError, match="longer than 0 s"):
        recipe.window_frames(float("nan"))
    assert window_starts(10, 4, 3) == [0, 3, 6] and window_starts(3, 4, 1) == [0]


def test_the_config_refuses_what_cannot_work():
    with pytest.raises(ValueError, match="feature kind"):
        InputRecipeConfig(SMALL, "cqt", 51)
    with pytest.raises(ValueError, match="at least 1"):
        InputRecipeConfig(SMALL, "logmel", 0)
    with pytest.raises(ValueError, match="3 band statistics"):
        InputRecipeConfig(SMALL, "logmel", 51, Normalization("global", (0.0,) * 3, (1.0,) * 3))


def test_a_run_whose_statistics_do_not_fit_its_bands_is_refused():
    root, run_id = run_sources()["logmel-global-trim"]
    run = RunStore(root).load(run_id)
    broken = dataclasses.replace(run, normalization={"mode": "global", "mean": [0.0], "std": [1]})
    with pytest.raises(InferenceError, match="band statistics"):
        model_from_loaded_run(broken)


def test_saved_model_json_holds_the_recipe_with_its_old_keys(tmp_path):
    root, run_id = run_sources()["mfcc-utterance"]
    run = RunStore(root).load(run_id)
    store = RunStore(tmp_path)
    new_id = store.create_run({}, owner="me")
    store.save_model(new_id, run.model, spec=run.spec, labels=run.labels, recipe=run.recipe)
    meta = json.loads((store.run_path(new_id) / "model.json").read_text())
    assert meta["feature_kind"] == "mfcc" and meta["clip_frames"] == 41
    assert InputRecipe.from_run(store.run_path(new_id)).config == run.recipe.config


def test_a_recipe_moved_to_the_cpu_computes_there():
    """`.to(device)`: inputs follow the buffers (the CPU here; the gpu test below on CUDA)."""
    recipe = InputRecipe.make(SMALL, "logmel", 51, Normalization("instance", trim_db=20.0))
    assert recipe.to("cpu").device == torch.device("cpu")
    clip = recipe.clip(sine(440, 0.4, 16000), 16000)
    assert clip.model_input.device.type == "cpu" and clip.model_input.shape == (1, 1, 32, 51)


@pytest.mark.gpu
def test_the_recipe_on_a_gpu_matches_the_cpu():
    device = torch.device("cuda" if torch.cuda.is_available() else "mps")
    y, rate = signals()["sentence"]
    for normalization in (Normalization("utterance"), Normalization("instance", trim_db=20.0)):
        recipe = InputRecipe.make(SMALL, "mfcc", 51, normalization)
        cpu = recipe.clip(y, rate).model_input
        on_device = InputRecipe.make(SMALL, "mfcc", 51, normalization).to(device)
        gpu = on_device.clip(y, rate).model_input
        assert gpu.device.type == device.type
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)
        batch = torch.from_numpy(np.stack([y[:4000], y[4000:8000]])).to(device)
        assert on_device(batch).shape == (2, 1, 20, 51)
