"""Inference: preprocessing parity with training, sliding windows, segments, the shipped model.

Known answers: the shipped digits model scores its recorded held-out accuracy on the clips
its run held out; a sequence of digits separated by silence comes back as segments in order.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from core import paths
from core.audio.features import FeatureConfig
from core.audio.input_recipe import InputRecipe, Normalization
from core.audio.io import load_audio
from core.audio.levels import resample
from core.data.feature_cache import FeatureCache
from core.data.sources import load_dataset
from core.data.splits import split_dataset
from core.inference.classifier import (
    InferenceError,
    InferenceModel,
    WindowResult,
    available_models,
    batch_csv,
    classify_clip,
    classify_files,
    classify_windows,
    find_segments,
    import_run_archive,
    load_choice,
    model_from_loaded_run,
    optimise_for_inference,
    prepare_clip,
    shipped_store,
    smooth_probabilities,
    top_k,
    unsure_reason,
    weights_problem,
)
from core.models.build import build_model
from core.models.presets import preset_spec
from core.training.runs import RunError, RunStore
from tests.conftest import sine

SHIPPED_RUN = "digits-cnn"
SMALL = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32, f_max=4000.0)


def _random_model(
    config: FeatureConfig = SMALL, *, frames: int = 51, normalization: str = "utterance"
) -> InferenceModel:
    torch.manual_seed(0)
    spec = preset_spec("cnn_logmel", input_shape=(1, config.n_mels, frames), num_outputs=3)
    return InferenceModel(
        network=build_model(spec).eval(),
        labels=("a", "b", "c"),
        recipe=InputRecipe.make(config, "logmel", frames, Normalization(normalization)),
        spec=spec,
        name="random",
    )


def training_prepare_clip(y: np.ndarray, rate: int, recipe: InputRecipe) -> torch.Tensor:
    """What core.training.trainer does with a clip: cached whole-clip features, then the fit."""
    cache = FeatureCache(recipe.config.features, recipe.kind, disk=False)
    raw = cache.compute(resample(y, rate, recipe.sample_rate))
    return recipe.fit(raw).reshape(1, 1, *raw.shape[:-1], recipe.clip_frames)


@pytest.fixture(scope="module")
def shipped() -> InferenceModel:
    run = shipped_store().load(SHIPPED_RUN)
    return model_from_loaded_run(run, origin="shipped")


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("seconds", [0.3, 0.64, 2.0])
def test_prepare_clip_equals_the_training_path(seconds):
    model = _random_model()
    y = sine(440, seconds, 22050) + 0.01 * np.random.default_rng(0).standard_normal(
        int(round(seconds * 22050))
    ).astype(np.float32)
    ours = prepare_clip(y, 22050, model)
    theirs = training_prepare_clip(y, 22050, model.recipe)
    assert torch.equal(ours.model_input, theirs)
    assert ours.samples.shape == (int(round(seconds * 8000)),)
    # frame_offset says which clip frame sits in column 0 of the model's input.
    full = model.normalization.apply(ours.features)
    j = max(0, -ours.frame_offset)
    torch.testing.assert_close(ours.model_input[0, 0, :, j], full[:, j + ours.frame_offset])
    assert len(ours.notices) == (0 if ours.features.shape[-1] == 51 else 1)


def test_trimming_models_prepare_clips_as_training_did():
    model = _random_model()
    model = dataclasses.replace(
        model, recipe=model.recipe.with_normalization(Normalization("instance", trim_db=30.0))
    )
    y = np.zeros(22050, dtype=np.float32)
    y[6000:12000] = sine(700, 6000 / 22050, 22050)[:6000]  # a tone inside silence
    ours = prepare_clip(y, 22050, model)
    theirs = training_prepare_clip(y, 22050, model.recipe)
    assert torch.equal(ours.model_input, theirs)

    # The tone fills the window, where plain crop/pad leaves silent frames (can fail).
    def loud_share(x: torch.Tensor) -> float:
        frame_peak = x[0, 0].amax(dim=0)
        return float((frame_peak > x.amin() + 1.0).float().mean())

    assert loud_share(ours.model_input) > 0.8 and "cut" in ours.notices[0]
    assert (
        loud_share(prepare_clip(y, 22050, _random_model(normalization="instance")).model_input)
        < 0.7
    )


def test_windows_are_slices_of_the_whole_clip_spectrogram():
    """Each window's input equals the window computed alone, except the STFT frames at its
    edges (which see the neighbouring audio instead of zero padding)."""
    model = _random_model(normalization="none")
    rng = np.random.default_rng(1)
    y = (sine(300, 3.0, 8000) * rng.uniform(0.2, 1.0, 24000)).astype(np.float32)
    result = classify_windows(model, y, 8000, hop_seconds=0.25)
    window = model.window_samples
    edge = SMALL.n_fft // SMALL.hop_length // 2 + 1  # frames touched by the zero padding
    for i in (0, 3, len(result.starts_seconds) - 1):
        start = int(round(result.starts_seconds[i] * 8000))
        alone = training_prepare_clip(y[start : start + window], 8000, model.recipe)
        sliced = _window_input(model, y, start)
        torch.testing.assert_close(
            sliced[..., edge:-edge], alone[..., edge:-edge], atol=1e-3, rtol=0
        )


def _window_input(model, y, start):
    spectrum = model.recipe.spectrum(y)
    first = start // SMALL.hop_length
    return model.recipe.window_inputs(spectrum, [(first, first + model.clip_frames)])


def test_window_grid_covers_the_clip_and_short_clips_get_one_padded_window():
    model = _random_model()
    y = sine(500, 2.03, 8000)
    result = classify_windows(model, y, 8000, hop_seconds=0.3)
    assert result.hop_seconds == pytest.approx(0.3)
    assert result.starts_seconds[0] == 0.0
    assert result.starts_seconds[-1] + result.window_seconds == pytest.approx(2.03, abs=0.011)
    assert np.all(np.diff(result.starts_seconds) <= 0.3 + 1e-9)
    assert result.probabilities.shape == (len(result.starts_seconds), 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    short = classify_windows(model, sine(500, 0.2, 8000), 8000)
    assert short.probabilities.shape == (1, 3)
    assert "shorter than one window" in short.notices[0]
    single = classify_clip(model, sine(500, 0.2, 8000), 8000)
    np.testing.assert_allclose(short.probabilities[0], single.prediction.probabilities, atol=1e-5)


def test_silent_windows_are_flagged():
    model = _random_model()
    y = np.concatenate([sine(500, 1.0, 8000), np.zeros(16000, np.float32), sine(700, 1.0, 8000)])
    result = classify_windows(model, y, 8000, hop_seconds=0.1)
    centres = result.centres_seconds
    in_gap = (centres > 1.0 + 0.4) & (centres < 3.0 - 0.4)
    assert result.silent[in_gap].all()
    assert not result.silent[(centres < 0.7) | (centres > 3.3)].any()


def test_trimmed_windows_that_cut_a_sound_at_their_edge_are_flagged_and_skipped():
    """Trimmed and stretched, the tail of a word fills the model's input like a whole word:
    windows holding only part of a sound are flagged `cut`, and segments skip them."""
    model = _random_model()  # a 0.5 s window
    model = dataclasses.replace(
        model, recipe=model.recipe.with_normalization(Normalization("instance", trim_db=20.0))
    )
    silence = np.zeros(8000, np.float32)
    y = np.concatenate([silence, sine(600, 0.2, 8000), silence])  # a tone at 1.0-1.2 s
    result = classify_windows(model, y, 8000, hop_seconds=0.05, trim_silence=True)
    t = result.starts_seconds
    partly = ((t > 0.53) & (t < 0.67)) | ((t > 1.03) & (t < 1.17))  # [t, t + 0.5] cuts it
    wholly = (t > 0.73) & (t < 0.97)  # [t, t + 0.5] holds all of it
    far = (t < 0.45) | (t > 1.25)
    assert partly.sum() >= 4 and wholly.sum() >= 4 and far.sum() >= 4
    assert result.cut[partly].all()
    assert not result.cut[wholly | far].any()
    # Segments never start on a cut window: every confident window left holds the whole tone.
    everything = WindowResult(**{**result.__dict__, "silent": np.zeros_like(result.silent)})
    for segment in find_segments(everything, threshold=0.0):
        inside = (result.centres_seconds >= segment.start_seconds) & (
            result.centres_seconds <= segment.end_seconds
        )
        assert not result.cut[inside].any()
    # A sound longer than the window is not "cut" (no window could hold it whole); without
    # trimming nothing is flagged.
    long = classify_windows(model, sine(600, 2.0, 8000), 8000, hop_seconds=0.1, trim_silence=True)
    assert not long.cut.any()
    assert classify_windows(model, y, 8000, hop_seconds=0.05).cut is None


def test_window_length_is_capped_by_the_model_and_shorter_windows_are_padded():
    model = _random_model()
    result = classify_windows(model, sine(500, 2.0, 8000), 8000, window_seconds=0.25)
    assert result.window_seconds == pytest.approx(0.25)
    capped = classify_windows(model, sine(500, 2.0, 8000), 8000, window_seconds=10.0)
    assert capped.window_seconds == pytest.approx(model.window_seconds)
    with pytest.raises(InferenceError):
        classify_windows(model, sine(500, 2.0, 8000), 8000, window_seconds=float("nan"))
    with pytest.raises(InferenceError):
        classify_windows(model, sine(500, 2.0, 8000), 8000, hop_seconds=0.0)


# --------------------------------------------------------------------------- segments


def _result(labels_per_window: list[int | None], *, hop: float = 0.1) -> WindowResult:
    n = len(labels_per_window)
    p = np.full((n, 3), 0.1, dtype=np.float32)
    silent = np.zeros(n, dtype=bool)
    for i, label in enumerate(labels_per_window):
        if label is None:
            silent[i] = True
            p[i] = [0.8, 0.1, 0.1]  # a confident answer on silence must not count
        else:
            p[i, label] = 0.8
    return WindowResult(
        np.arange(n) * hop, p, silent, 0.5, hop, (n - 1) * hop + 0.5, ("a", "b", "c")
    )


def test_find_segments_merges_runs_and_skips_silence():
    result = _result([None, 1, 1, 1, None, None, 2, 2, 0, 0, 0, None])
    segments = find_segments(result, threshold=0.5)
    assert [s.label for s in segments] == ["b", "c", "a"]
    first = segments[0]
    assert first.start_seconds == pytest.approx(0.25 + 0.1 - 0.05)
    assert first.end_seconds == pytest.approx(0.25 + 0.3 + 0.05)
    assert first.confidence == pytest.approx(0.8)
    assert [s.label for s in find_segments(result, threshold=0.5, min_windows=3)] == ["b", "a"]
    assert find_segments(result, threshold=0.9) == []


def test_smoothing_keeps_rows_summing_to_one():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=30)
    smooth = smooth_probabilities(p, 5)
    np.testing.assert_allclose(smooth.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(smooth[10], p[8:13].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(smooth[0], p[0:3].mean(axis=0), atol=1e-6)


def test_top_k_and_unsure():
    p = np.array([0.1, 0.6, 0.3])
    assert top_k(p, ["x", "y", "z"], 2) == [("y", 0.6), ("z", 0.3)]
    assert unsure_reason(p) == ""
    assert "only 40%" in unsure_reason(np.array([0.4, 0.35, 0.25]))
    assert "within" in unsure_reason(np.array([0.52, 0.48, 0.0]))


# --------------------------------------------------------------------------- warnings


def test_warnings_for_clips_far_from_the_training_data():
    model = _random_model()
    assert classify_clip(model, sine(440, 0.6, 8000, 0.3), 8000).warnings == ()
    clipped = np.clip(sine(440, 0.6, 8000, 3.0), -1, 1)
    assert any("Clipped" in w for w in classify_clip(model, clipped, 8000).warnings)
    quiet = sine(440, 0.6, 8000, 0.002)
    assert any("quieter" in w for w in classify_clip(model, quiet, 8000).warnings)
    nearly_silent = sine(440, 0.6, 8000, 0.00005)
    assert any("silent" in w for w in classify_clip(model, nearly_silent, 8000).warnings)
    long_clip = sine(440, 5.0, 8000, 0.3)
    assert any("longer" in w for w in classify_clip(model, long_clip, 8000).warnings)


def test_an_hour_long_upload_is_decoded_up_to_the_cap_with_a_notice():
    rate = 8000
    one_hour = np.zeros(3600 * rate, dtype=np.int16)
    one_hour[: 5 * rate] = (8000 * np.sin(np.arange(5 * rate) * 0.3)).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, one_hour, rate, format="WAV", subtype="PCM_16")
    del one_hour
    clip = load_audio(buffer.getvalue(), name="lecture.wav", sample_rate=SMALL.sample_rate)
    assert clip.duration_seconds == pytest.approx(600, abs=0.01)
    assert any("only the first 10 min" in n for n in clip.notices)
    result = classify_clip(_random_model(), clip.samples, clip.sample_rate)
    assert any("longer" in w for w in result.warnings)


# --------------------------------------------------------------------------- archives


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shipped_archive() -> bytes:
    return shipped_store().export_archive(SHIPPED_RUN)


def test_a_shipped_archive_imports_and_loads_for_its_owner_only(shipped_archive, tmp_path):
    store = RunStore(tmp_path)
    run_id = import_run_archive(shipped_archive, owner="me", store=store)
    assert store.get(run_id, "me").has_model
    assert store.list_runs("someone else") == []


def test_a_pickle_renamed_safetensors_is_refused_without_unpickling(shipped_archive, tmp_path):
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (Path.touch, (marker,))

    pickled = pickle.dumps({"weights": Boom()})
    with pytest.raises(InferenceError, match="pickle"):
        import_run_archive(pickled, owner="me", store=RunStore(tmp_path / "runs"))
    with zipfile.ZipFile(io.BytesIO(shipped_archive)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["model.safetensors"] = pickled
    with pytest.raises(InferenceError, match="pickle"):
        import_run_archive(_archive(members), owner="me", store=RunStore(tmp_path / "runs"))
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)  # torch.save's zip format
    assert "torch.save" in weights_problem(buffer.getvalue())
    assert not marker.exists()
    assert not (tmp_path / "runs").exists() or RunStore(tmp_path / "runs").list_runs() == []


def test_archives_with_missing_files_or_wrong_shapes_are_refused(shipped_archive, tmp_path):
    with zipfile.ZipFile(io.BytesIO(shipped_archive)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    store = RunStore(tmp_path)
    missing = {k: v for k, v in members.items() if k != "model.json"}
    with pytest.raises(RunError, match="lacks model.json"):
        import_run_archive(_archive(missing), owner="me", store=store)
    meta = json.loads(members["model.json"])
    meta["spec"]["layers"][0]["params"]["out_channels"] = 8  # the weights have 16 filters
    wrong = dict(members, **{"model.json": json.dumps(meta).encode()})
    with pytest.raises(RunError, match="shape"):
        import_run_archive(_archive(wrong), owner="me", store=store)
    with pytest.raises(InferenceError, match="on its own"):
        import_run_archive(members["model.safetensors"], owner="me", store=store)
    with pytest.raises(InferenceError):
        import_run_archive(b"PK\x03\x04 not really a zip", owner="me", store=store)
    assert store.list_runs() == []


def test_models_that_do_not_take_spectrograms_are_refused(tmp_path):
    store = RunStore(tmp_path)
    spec = preset_spec("mlp_mfcc", num_outputs=2)
    run_id = store.create_run({}, owner="me")
    store.save_model(
        run_id,
        build_model(spec),
        spec=spec,
        labels=("a", "b"),
        feature_config=SMALL,
        feature_kind="mfcc",
        clip_frames=51,
        normalization={"mode": "none"},
    )
    store.finish(run_id, "finished")
    with pytest.raises(InferenceError, match="spectrogram"):
        model_from_loaded_run(store.load(run_id))


# --------------------------------------------------------------------------- the shipped model


def test_the_shipped_model_is_listed_first_and_small():
    choices = available_models("nobody")
    assert choices and choices[0].run_id == SHIPPED_RUN and choices[0].origin == "shipped"
    assert (paths.MODELS_DIR / SHIPPED_RUN / "model.safetensors").stat().st_size < 2 * 1024**2
    assert load_choice(choices[0]).labels == tuple(str(d) for d in range(10))


def _held_out(model: InferenceModel):
    """The examples the shipped run held out, re-derived from its saved training config."""
    config = model_info_config(SHIPPED_RUN)
    dataset = load_dataset(config["data"])
    split = split_dataset(
        dataset,
        method=config["split"],
        val_fraction=config["val_fraction"],
        seed=config["seed"],
        val_groups=tuple(config.get("val_groups") or ()),
    )
    return dataset, split.val


def model_info_config(run_id: str) -> dict:
    return dict(shipped_store().get(run_id).train_config)


def test_the_shipped_model_scores_its_recorded_held_out_accuracy(shipped):
    dataset, held_out = _held_out(shipped)
    inputs, targets = [], []
    for index in held_out:
        example = dataset.examples[index]
        clip = load_audio(example.source, sample_rate=shipped.sample_rate, allow_silent=True)
        inputs.append(prepare_clip(clip.samples, clip.sample_rate, shipped).model_input)
        targets.append(example.label)
    predicted = shipped.probabilities(torch.cat(inputs)).argmax(dim=1).numpy()
    accuracy = float(np.mean(predicted == np.array(targets)))
    recorded = shipped.metrics["val_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=0.01)
    assert accuracy >= 0.8, "the shipped model should be worth showing"


def test_sliding_windows_find_spoken_digits_in_order(shipped):
    dataset, held_out = _held_out(shipped)
    rate = shipped.sample_rate
    wanted, pieces = [3, 8, 1, 6], [np.zeros(rate, np.float32)]
    for digit in wanted:
        for index in held_out:  # a held-out take of this digit the model gets right alone
            example = dataset.examples[index]
            if example.label != digit:
                continue
            y = load_audio(example.source, sample_rate=rate).samples
            if classify_clip(shipped, y, rate).prediction.label == str(digit):
                break
        pieces += [y, np.zeros(rate, np.float32)]
    recording = np.concatenate(pieces)
    result = classify_windows(shipped, recording, rate, hop_seconds=0.1, trim_silence=True)
    segments = find_segments(result, threshold=0.5, smooth_windows=3, min_windows=2)
    assert [s.label for s in segments] == [str(d) for d in wanted]
    assert all(
        a.end_seconds <= b.start_seconds for a, b in zip(segments, segments[1:], strict=False)
    )


def test_batch_rows_and_csv(shipped, digit_files, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    sources = [(p.name, p) for p in digit_files[:2]] + [("notes.wav", text)]
    rows = classify_files(shipped, sources)
    assert [r.file for r in rows] == [digit_files[0].name, digit_files[1].name, "notes.wav"]
    assert rows[0].label in shipped.labels and 0 < rows[0].confidence <= 1
    assert rows[2].label == "" and "not an audio file" in rows[2].note
    csv_text = batch_csv(rows).decode()
    assert csv_text.splitlines()[0] == "file,class,confidence,unsure,duration_seconds,note"
    assert len(csv_text.strip().splitlines()) == 4


def test_the_optimised_ensemble_folds_every_member():
    torch.manual_seed(0)
    ensemble = build_model(preset_spec("cnn_logmel", input_shape=(1, 32, 41)).with_members(2))
    for module in ensemble.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
    ensemble.eval()
    fast = optimise_for_inference(ensemble)
    x = torch.randn(3, 1, 32, 41)
    with torch.inference_mode():
        torch.testing.assert_close(
            fast(x.contiguous(memory_format=torch.channels_last)), ensemble(x), atol=1e-4, rtol=1e-4
        )
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()) == 0


def test_the_optimised_network_computes_the_same_function():
    run = shipped_store().load(SHIPPED_RUN)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    fast = optimise_for_inference(run.model)
    x = torch.randn(6, *run.spec.input_shape)  # (1, bins, frames) of the shipped recipe
    with torch.inference_mode():
        torch.testing.assert_close(
            fast(x.contiguous(memory_format=torch.channels_last)),
            run.model(x),
            atol=1e-4,
            rtol=1e-4,
        )
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()) == 0
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())
