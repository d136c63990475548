"""Training: events, learning a known-answer task, reproducibility, NaN, cancel, cache, CLI."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import torch

from core.audio.features import FeatureConfig, make_feature_transform
from core.audio.input_recipe import Normalization, fit_frames, fit_normalization, trim_and_stretch
from core.data.augment import AugmentConfig
from core.data.datasets import folder_per_class
from core.data.feature_cache import FeatureCache, clear_memory_cache
from core.models.spec import LayerSpec, ModelSpec
from core.train import main
from core.training.runs import RunStore
from core.training.trainer import TrainConfig, train
from tests.test_datasets import make_tone_folder

L = LayerSpec.make
TINY_SPEC = ModelSpec(
    "tiny",
    (1, 16, 31),
    # No global pooling: the classes differ only in *where* the energy sits on the mel axis.
    (
        L("Conv2d", out_channels=4),
        L("ReLU"),
        L("MaxPool2d", kernel_size=4),
        L("Flatten"),
        L("Linear", out_features=2),
    ),
)
FEATURES = FeatureConfig(
    sample_rate=8000, n_fft=256, hop_length=80, n_mels=16, n_mfcc=16, f_max=4000.0
)
TONE_CONFIG = TrainConfig(
    data="(tones)",
    features=FEATURES,
    clip_seconds=0.3,
    normalization="global",
    epochs=4,
    batch_size=4,
    learning_rate=0.05,
    schedule="constant",
    augment=AugmentConfig.off(),
    tsne=False,
    log_every_steps=2,
)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return folder_per_class(make_tone_folder(tmp_path_factory.mktemp("tones"), per_class=6))


def _run(config, tones, **kwargs):
    return list(train(config, dataset=tones, spec=TINY_SPEC, device=torch.device("cpu"), **kwargs))


def test_one_cycle_schedule_survives_a_four_step_run(tones):
    # 8 training clips in batches of 4 for 2 epochs: torch's OneCycleLR divided by zero here.
    config = dataclasses.replace(TONE_CONFIG, schedule="one_cycle", epochs=2, val_fraction=0.3)
    events = _run(config, tones)
    started = events[0]
    steps_per_epoch = -(-started.info["train_examples"] // config.batch_size)
    assert steps_per_epoch * config.epochs == 4
    assert events[-1].kind == "finished", events[-1]


def test_learns_two_tones_and_writes_a_run(tones, tmp_path):
    store = RunStore(tmp_path)
    events = _run(TONE_CONFIG, tones, store=store, owner="alice")
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch_end") == 4 and kinds.count("evaluation") == 4
    started, final = events[0], events[-1]
    assert started.info["train_examples"] + started.info["val_examples"] == 12
    assert final.val_accuracy == 1.0 and final.evaluation.confusion == ((1, 0), (0, 1))
    assert final.progress == 1.0 and final.run_id
    steps = [e for e in events if e.kind == "step"]
    assert all(e.lr == 0.05 and e.samples_per_second > 0 for e in steps)
    assert steps[-1].eta_seconds is not None
    info = store.get(final.run_id, owner="alice")
    assert info.status == "finished" and info.metrics["val_accuracy"] == 1.0
    records = store.read_metrics(final.run_id)
    assert {r["kind"] for r in records} == {"step", "epoch_end", "evaluation"}
    loaded = store.load(final.run_id)
    assert loaded.labels == ("high", "low") and loaded.clip_frames == 31
    assert Normalization.from_dict(loaded.normalization).mode == "global"
    recipe = loaded.recipe.config  # the trainer's InputRecipe, saved whole
    assert recipe.features == TONE_CONFIG.features and recipe.kind == TONE_CONFIG.feature_kind
    assert recipe.input_shape == tuple(loaded.spec.input_shape)
    assert len(recipe.normalization.mean) == recipe.bins
    summary = store.read_summary(final.run_id)
    # Two validation clips: centred, they sit at +v and -v, so their PCA map is two points
    # mirrored on the first axis with nothing left for the second.
    projection = np.asarray(summary["evaluation"]["projection_pca"])
    assert projection.shape == (started.info["val_examples"], 2) == (2, 2)
    assert projection[0, 0] == pytest.approx(-projection[1, 0], abs=2e-4)
    assert abs(projection[0, 0]) > 0.01
    assert np.abs(projection[:, 1]).max() < 2e-4


def test_same_seed_same_run(tones):
    config = dataclasses.replace(TONE_CONFIG, epochs=2, augment=AugmentConfig(mixup_alpha=0.4))
    first = [e.loss for e in _run(config, tones) if e.kind == "step"]
    second = [e.loss for e in _run(config, tones) if e.kind == "step"]
    assert first == second
    other = [e.loss for e in _run(dataclasses.replace(config, seed=1), tones) if e.kind == "step"]
    assert other != first


def test_equaliser_colours_training_clips_only(tones):
    plain = dataclasses.replace(TONE_CONFIG, epochs=2)
    coloured = dataclasses.replace(
        plain, augment=AugmentConfig(**{**AugmentConfig.off().__dict__, "eq_db": 12.0})
    )
    plain_events, coloured_events = _run(plain, tones), _run(coloured, tones)
    first_loss = [
        next(e.loss for e in events if e.kind == "step")
        for events in (plain_events, coloured_events)
    ]
    assert first_loss[0] != first_loss[1]  # the very first batch already differs
    # Validation clips are never equalised: the same untrained start evaluates them alike.
    one_step = dataclasses.replace(coloured, learning_rate=1e-12)
    base_step = dataclasses.replace(plain, learning_rate=1e-12)
    val = [
        next(e.val_loss for e in _run(c, tones) if e.kind == "evaluation")
        for c in (base_step, one_step)
    ]
    assert val[0] == pytest.approx(val[1], rel=1e-4)
    # Runs saved before the equaliser existed trained without it.
    saved = TONE_CONFIG.to_dict()
    del saved["augment"]["eq_db"]
    assert TrainConfig.from_dict(saved).augment.eq_db == 0.0
    assert TrainConfig().augment.eq_db > 0  # the default recipe uses it


def test_absurd_learning_rate_stops_with_advice(tones, tmp_path):
    config = dataclasses.replace(
        TONE_CONFIG, learning_rate=1e12, optimizer="sgd", grad_clip_norm=None, normalization="none"
    )
    store = RunStore(tmp_path)
    events = _run(config, tones, store=store)
    final = events[-1]
    assert final.kind == "failed"
    assert "learning rate" in final.message and "too high" in final.message
    assert store.get(final.run_id).status == "failed"


def test_cancel_takes_effect_before_the_next_step(tones, tmp_path):
    cancel = threading.Event()
    store = RunStore(tmp_path)
    events = []
    for event in train(
        TONE_CONFIG,
        dataset=tones,
        spec=TINY_SPEC,
        device=torch.device("cpu"),
        cancel=cancel,
        store=store,
    ):
        events.append(event)
        if event.kind == "step" and event.step == 2:
            cancel.set()
    assert events[-1].kind == "stopped" and events[-1].step == 2
    assert [e.kind for e in events].count("step") == 2
    assert store.load(events[-1].run_id).labels == ("high", "low")  # what it learned is kept


def test_early_stopping_keeps_the_best_weights(tones):
    config = dataclasses.replace(TONE_CONFIG, epochs=30, early_stopping_patience=2)
    events = _run(config, tones)
    assert events[-1].kind == "finished" and "Stopped early" in events[-1].message
    assert [e.kind for e in events].count("epoch_end") < 30
    assert events[-1].val_accuracy == 1.0


def test_settings_and_data_problems_are_sentences(tones, tmp_path):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lbfgs")
    events = list(
        train(dataclasses.replace(TONE_CONFIG, data=str(tmp_path / "nothing")), spec=TINY_SPEC)
    )
    assert events[-1].kind == "failed" and "neither a folder" in events[-1].message
    events = _run(dataclasses.replace(TONE_CONFIG, split="holdout", val_groups=("nobody",)), tones)
    assert events[-1].kind == "failed" and "nobody" in events[-1].message


def test_trains_a_builder_spec_with_another_input_shape(tones):
    spec = ModelSpec("mine", (1, 64, 101), (L("Flatten"), L("Linear", out_features=7)))
    events = list(
        train(dataclasses.replace(TONE_CONFIG, epochs=1), dataset=tones, spec=spec, device="cpu")
    )
    assert events[-1].kind == "finished"
    assert events[0].info["spec"]["input_shape"] == [1, 16, 31]
    assert events[0].info["spec"]["layers"][-1]["params"]["out_features"] == 2


def test_feature_cache_memory_then_disk_then_recompute(tones, tmp_path):
    clear_memory_cache()
    cache = FeatureCache(FEATURES, "logmel", root=tmp_path)
    example = tones.examples[0]
    first = cache.features(tones, example)
    assert first.shape == (16, 31) and cache.stats.computed == 1
    assert torch.equal(cache.features(tones, example), first) and cache.stats.memory_hits == 1
    clear_memory_cache()
    assert torch.equal(cache.features(tones, example), first) and cache.stats.disk_hits == 1
    other = FeatureCache(dataclasses.replace(FEATURES, n_mels=8, n_mfcc=8), "logmel", root=tmp_path)
    assert other.features(tones, example).shape == (8, 31) and other.stats.computed == 1


def test_fixed_length_and_training_split_statistics():
    x = torch.arange(12.0).reshape(2, 6)
    assert torch.equal(fit_frames(x, 4), x[:, 1:5])
    padded = fit_frames(x, 8)
    assert padded.shape == (2, 8) and torch.equal(padded[:, 1:7], x) and padded[0, 0] == 0.0
    norm = fit_normalization("global", [torch.ones(2, 3), 3 * torch.ones(2, 3)])
    assert norm.mean == (2.0, 2.0) and norm.std == (1.0, 1.0)
    cmvn = Normalization("utterance").apply(torch.randn(4, 50) * 5 + 3)
    assert torch.allclose(cmvn.mean(-1), torch.zeros(4), atol=1e-5)


def _word(seconds: float, lead: float, total: float = 1.0, rate: int = 8000) -> torch.Tensor:
    """A rising chirp 500 -> 2500 Hz lasting `seconds`, `lead` s into `total` s of silence."""
    t = torch.arange(int(seconds * rate)) / rate
    chirp = torch.sin(2 * torch.pi * (500 * t + 1000 * t**2 / seconds))
    out = torch.zeros(int(total * rate))
    out[int(lead * rate) : int(lead * rate) + len(chirp)] = chirp
    return out


def test_trim_and_stretch_removes_position_and_pace():
    logmel = make_feature_transform(FEATURES, "logmel")
    norm = Normalization("instance", trim_db=30.0)
    fast, slow = logmel(_word(0.3, 0.1)), logmel(_word(0.5, 0.4))
    a, b = norm.fit(fast, 40), norm.fit(slow, 40)
    assert a.shape == b.shape == (FEATURES.n_mels, 40)
    # The same chirp at another pace and place fills the window the same way...
    assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] > 0.9
    # ...while plain crop/pad leaves it where it was said (this check can fail).
    plain = Normalization("instance")
    c, d = plain.fit(fast, 40), plain.fit(slow, 40)
    assert torch.corrcoef(torch.stack([c.flatten(), d.flatten()]))[0, 1] < 0.5
    silent_edges = torch.full((4, 30), -100.0)
    silent_edges[:, 10:20] = 0.0
    assert torch.equal(trim_and_stretch(silent_edges, 14, 30.0), silent_edges[:, 8:22])
    # Runs saved before trimming existed load without it; new ones keep it.
    assert Normalization.from_dict({"mode": "instance"}).trim_db is None
    assert Normalization.from_dict(norm.to_dict()) == norm
    old = TrainConfig().to_dict()
    del old["trim_db"]
    assert TrainConfig.from_dict(old).trim_db is None


def test_command_line_writes_a_run(tones, tmp_path, capsys):
    folder = tones.examples[0].source.rsplit("/", 2)[0]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(TINY_SPEC.to_json())
    code = main(
        [
            "--data",
            folder,
            "--epochs",
            "2",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--spec",
            str(spec_path),
            "--batch-size",
            "4",
            "--no-tsne",
            "--no-augment",
            "--members",
            "2",
            "--normalization",
            "global",
            "--clip-seconds",
            "0.3",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and "finished" in err
    [info] = RunStore(tmp_path / "runs").list_runs()
    steps = RunStore(tmp_path / "runs").read_summary(info.run_id)["metrics"]["steps"]
    assert f"{steps}/{steps} [" in err  # the progress bar (tqdm) reached the last step
    assert info.run_id in out and info.has_model and info.owner == "cli"
    saved = json.loads((info.path / "config.json").read_text())["train_config"]
    assert saved["epochs"] == 2 and saved["members"] == 2
    assert saved["normalization"] == "global" and saved["clip_seconds"] == 0.3
    assert main(["--data", folder, "--epochs", "0"]) == 2


def test_each_ensemble_member_learns_as_if_trained_alone(tones, tmp_path):
    # Without dropout or augmentation nothing random happens inside a step, so the first
    # member (built first from the same seed) must end exactly where one network trained
    # alone ends: its gradient is its own loss's, not a share of the ensemble's, and the
    # gradient clipping sees its gradient alone.
    store = RunStore(tmp_path)
    config = dataclasses.replace(TONE_CONFIG, epochs=2, grad_clip_norm=0.5)
    alone, together = (
        store.load(_run(dataclasses.replace(config, members=n), tones, store=store)[-1].run_id)
        for n in (1, 2)
    )
    first = together.model.members[0].state_dict()
    for key, tensor in alone.model.state_dict().items():
        torch.testing.assert_close(first[key], tensor, msg=key)
    second = together.model.members[1].state_dict()
    assert not torch.equal(second["layers.0.weight"], first["layers.0.weight"])
    assert together.spec.members == 2 and alone.spec.members == 1


def test_ensemble_run_saves_and_reloads_its_members(tones, tmp_path):
    store = RunStore(tmp_path)
    final = _run(dataclasses.replace(TONE_CONFIG, members=3), tones, store=store)[-1]
    assert final.kind == "finished" and final.val_accuracy == 1.0
    assert final.evaluation.embeddings.shape[1] == 3 * 4 * 4 * 7  # three members side by side
    loaded = store.load(final.run_id)
    assert len(loaded.model.members) == 3 and not loaded.model.training
    losses = [e.loss for e in _run(dataclasses.replace(TONE_CONFIG, members=3), tones)]
    assert all(loss is None or loss < 2.0 for loss in losses)  # a mean, not a sum of 3


def test_old_configs_train_one_network():
    saved = TrainConfig().to_dict()
    del saved["members"]
    assert TrainConfig.from_dict(saved).members == 1
    assert TrainConfig().members == 3
    with pytest.raises(ValueError, match="members must be a whole number from 1 to 8"):
        TrainConfig(members=0)
