"""Record what the input recipe gave BEFORE it became one object (issue 14, item 1).

Run once at the commit before `core/audio/input_recipe.py` existed (f7e546d):

    .venv/bin/python -m tests.data.recipe_before.make_before

It writes, next to this file, small run folders saved by that commit's `RunStore.save_model`
(random seeded weights, one per recipe variant, one in the oldest model.json format) and
`before.npz`: for every run (these and the shipped models/digits-cnn) and every test signal,
the model input, whole-clip features and probabilities of each path that turned a waveform
into a model input then (`core.inference.classifier.prepare_clip` / `classify_clip` /
`classify_windows`, `core.data.feature_cache.prepare_clip` (training),
`core.training.evaluate.predict_proba`,
`core.lessons.layer_values.trace_clip`, `core.inference.saliency.explain`,
`core.inference.streaming.LiveClassifier`).
tests/test_input_recipe.py loads the same runs with today's code and requires the same numbers,
bit for bit. This script uses APIs that no longer exist: it documents how the arrays were made.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def signals() -> dict[str, tuple[np.ndarray, int]]:
    """The test signals: (samples, sample_rate), deterministic. Shared with the test."""
    import soundfile as sf

    from core import paths

    rng = np.random.default_rng(14)
    digits = sorted(paths.builtin_digit_files())
    word, rate = sf.read(str(digits[37]), dtype="float32")
    t22 = np.arange(int(0.3 * 22050)) / 22050
    short = (0.4 * np.sin(2 * np.pi * 440 * t22) + 0.02 * rng.standard_normal(t22.size)).astype(
        np.float32
    )
    t16 = np.arange(int(2.5 * 16000)) / 16000
    bursts = np.sin(2 * np.pi * 700 * t16) * ((t16 % 0.8) < 0.3) * 0.5
    bursts = (bursts + 0.003 * rng.standard_normal(t16.size)).astype(np.float32)
    t44 = np.arange(int(1.2 * 44100)) / 44100
    stereo = np.stack(
        [0.3 * np.sin(2 * np.pi * 300 * t44), 0.2 * np.sin(2 * np.pi * 1200 * t44)]
    ).astype(np.float32)
    words = []
    for path in digits[::61][:4]:
        y, r = sf.read(str(path), dtype="float32")
        words += [np.zeros(int(0.4 * r), np.float32), y]
    sentence = np.concatenate([*words, np.zeros(int(0.4 * 8000), np.float32)])
    return {
        "word": (word, int(rate)),
        "short22k": (short, 22050),
        "bursts16k": (bursts, 16000),
        "stereo44k": (stereo, 44100),
        "sentence": (sentence, 8000),
    }


def _small_spec(bins: int, frames: int):
    from core.models.spec import LayerSpec, ModelSpec

    L = LayerSpec.make
    layers = (
        L("Conv2d", out_channels=4, kernel_size=3, padding=1, bias=False),
        L("BatchNorm2d"),
        L("ReLU"),
        L("MaxPool2d", kernel_size=4),
        L("Flatten"),
        L("Linear", out_features=3),
    )
    return ModelSpec("tiny_conv", (1, bins, frames), layers)


# name: (feature settings, kind, clip_frames, normalisation mode, trim_db)
VARIANTS = {
    "logmel-global-trim": (
        dict(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32, f_max=4000.0),
        "logmel",
        51,
        "global",
        20.0,
    ),
    "mfcc-utterance": (dict(n_mels=40, n_mfcc=13), "mfcc", 41, "utterance", None),
    "stft-none": (dict(sample_rate=8000, n_fft=128, hop_length=64), "stft", 32, "none", None),
    "mel-instance": (
        dict(sample_rate=11025, n_fft=256, hop_length=110, n_mels=24),
        "mel",
        40,
        "instance",
        None,
    ),
    "logmel-oldformat": (
        dict(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32),
        "logmel",
        61,
        "utterance",
        None,
    ),
}


def make_runs() -> Path:
    """The run folders (saved by this commit's code) under HERE/runs."""
    from core.audio.features import FeatureConfig
    from core.audio.input_recipe import fit_normalization
    from core.data.feature_cache import FeatureCache
    from core.models.build import build_model
    from core.training.runs import MODEL_FILE, RunStore

    root = HERE / "runs"
    shutil.rmtree(root, ignore_errors=True)
    store = RunStore(root)
    sigs = signals()
    for i, (name, (settings, kind, frames, mode, trim_db)) in enumerate(VARIANTS.items()):
        config = FeatureConfig(**settings)
        bins = config.num_bins(kind)
        spec = _small_spec(bins, frames)
        network = build_model(spec, seed=100 + i).eval()
        with torch.no_grad():  # non-trivial batch-norm statistics
            bn = network.layers[1]
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        if mode == "global":
            from core.audio.levels import resample

            cache = FeatureCache(config, kind, disk=False)
            feats = [
                cache.compute(resample(y if y.ndim == 1 else y.mean(0), r, config.sample_rate))
                for y, r in sigs.values()
            ]
            normalization = fit_normalization("global", feats, trim_db=trim_db)
        else:
            from core.audio.input_recipe import Normalization

            normalization = Normalization(mode, trim_db=trim_db)
        run_id = store.create_run({"note": "recipe parity fixture"}, owner="fixture", name=name)
        store.save_model(
            run_id,
            network,
            spec=spec,
            labels=("a", "b", "c"),
            feature_config=config,
            feature_kind=kind,
            clip_frames=frames,
            normalization=normalization.to_dict(),
        )
        store.finish(run_id, "finished", message="fixture")
        if name == "logmel-oldformat":  # model.json as written before these keys existed
            meta = json.loads((root / run_id / MODEL_FILE).read_text())
            del meta["feature_kind"], meta["clip_frames"], meta["normalization"]["trim_db"]
            (root / run_id / MODEL_FILE).write_text(json.dumps(meta, indent=2))
        (root / run_id).rename(root / name)
    for path in root.iterdir():  # config.json's run_id is informational; folder names rule
        config_path = path / "config.json"
        data = json.loads(config_path.read_text())
        data["run_id"] = path.name
        config_path.write_text(json.dumps(data, indent=2))
    return root


def run_sources() -> dict[str, tuple[Path, str]]:
    """Every run to compare: name -> (store root, run id). Shared with the test."""
    from core import paths

    runs = {"digits-cnn": (paths.MODELS_DIR, "digits-cnn")}
    for name in VARIANTS:
        runs[name] = (HERE / "runs", name)
    return runs


def digest(x: torch.Tensor) -> str:
    """sha1 of a tensor's float32 bytes and shape: whole-clip features are too large to store."""
    import hashlib

    array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    return hashlib.sha1(repr(array.shape).encode() + array.tobytes()).hexdigest()


def capture() -> dict[str, np.ndarray]:
    from core.audio.input_recipe import Normalization
    from core.data.feature_cache import prepare_clip as training_prepare_clip
    from core.inference.classifier import classify_clip, classify_windows, model_from_loaded_run
    from core.inference.saliency import explain
    from core.inference.streaming import LiveClassifier, LiveClassifierConfig, stream_file
    from core.lessons.layer_values import trace_clip
    from core.training.evaluate import predict_proba
    from core.training.runs import RunStore

    out: dict[str, np.ndarray] = {}
    for run_name, (root, run_id) in run_sources().items():
        run = RunStore(root).load(run_id)
        model = model_from_loaded_run(run)
        for sig_name, (y, rate) in signals().items():
            key = f"{run_name}/{sig_name}"
            result = classify_clip(model, y, rate)
            prepared = result.prepared
            out[f"{key}/input"] = prepared.model_input.numpy()
            out[f"{key}/features_sha1"] = np.array(digest(prepared.features))
            out[f"{key}/offset"] = np.array(prepared.frame_offset)
            out[f"{key}/notices"] = np.array(list(prepared.notices))
            out[f"{key}/probabilities"] = result.prediction.probabilities
            mono = y if y.ndim == 1 else y.mean(axis=0)
            out[f"{key}/training_input"] = training_prepare_clip(
                mono,
                rate,
                feature_config=run.feature_config,
                kind=run.feature_kind,
                clip_frames=run.clip_frames,
                normalization=Normalization.from_dict(run.normalization),
            ).numpy()
            out[f"{key}/predict_proba"] = predict_proba(run, mono, rate)
            out[f"{key}/trace"] = trace_clip(run, mono, rate).probabilities
            for trim in (False, True):
                w = classify_windows(model, y, rate, hop_seconds=0.1, trim_silence=trim)
                tag = f"{key}/windows_trim{int(trim)}"
                out[f"{tag}/starts"] = w.starts_seconds
                out[f"{tag}/probabilities"] = w.probabilities
                out[f"{tag}/silent"] = w.silent
                if w.cut is not None:
                    out[f"{tag}/cut"] = w.cut
        y, rate = signals()["sentence"]
        prepared = classify_clip(model, y, rate).prepared
        target = int(classify_clip(model, y, rate).prediction.best_index)
        out[f"{run_name}/occlusion"] = explain(model, prepared, target=target)
        out[f"{run_name}/grad_cam"] = explain(model, prepared, target=target, method="grad-cam")
        live = LiveClassifier(model, LiveClassifierConfig(hop_seconds=0.1))
        stream_file(live, y, rate, frame_sizes=[160, 97, 333])
        live.finish()
        result = live.window_result()
        out[f"{run_name}/live/probabilities"] = result.probabilities
        out[f"{run_name}/live/silent"] = result.silent
        out[f"{run_name}/live/cut"] = result.cut
    return out


def main() -> None:
    make_runs()
    arrays = capture()
    np.savez_compressed(HERE / "before.npz", **arrays)
    print(f"{len(arrays)} arrays written to {HERE / 'before.npz'}")


if __name__ == "__main__":
    main()
