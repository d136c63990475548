"""core.training.transfer: starting a training from a ready model's weights (transfer learning)
with the shipped models/instruments-cnn, its checks on names and inputs, the recipe's choice
and the command line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.data.augment import AugmentConfig
from core.data.profile import apply_recipe, recipe_for_dataset
from core.data.sources import load_dataset
from core.data.starting_weights import FROM_SCRATCH_LEARNING_RATE, ready_model_input
from core.models.build import build_model
from core.train import _parse_args, config_from_args, main, recipe_from_data, start_from_flag
from core.training.runs import RunStore
from core.training.trainer import TrainConfig, train
from core.training.transfer import (
    StartError,
    check_input,
    head_first_epochs,
    load_ready_start,
    load_start_weights,
    network_spec,
    ready_names,
    start_settings,
)
from tests.test_recipe_choice import _tone_folder, _tones

READY = "instruments-cnn"


@pytest.fixture(scope="module")
def ready():
    return load_ready_start(READY)


def test_the_ready_instrument_model_is_a_starting_point(ready):
    assert READY in ready_names()
    assert ready.labels == ("brass", "flute", "guitar", "piano", "reed", "strings")
    assert (ready.features.sample_rate, ready.features.n_mels) == (16000, 64)
    assert (ready.feature_kind, ready.normalization, ready.trim_db) == ("logmel", "instance", None)
    assert "6 classes" in ready.describe() and "16 kHz" in ready.describe()


@pytest.mark.parametrize("name", ["../models/digits-cnn", "nope", "models/instruments-cnn", ""])
def test_a_name_that_is_not_a_ready_model_is_a_sentence(name):
    with pytest.raises(StartError, match="There is no ready model called"):
        load_ready_start(name)


def test_every_member_starts_from_the_ready_weights_and_a_new_head_from_random(ready):
    model = build_model(network_spec(ready, (1, 64, 151), 4).with_members(3))
    copied = load_start_weights(model, ready, ("a", "b", "c", "d"))
    state = model.state_dict()
    head = [k for k in ready.state if k.startswith("layers.14.")]
    assert head and not set(head) & set(copied)
    assert len(copied) == len(ready.state) - len(head)
    for member in range(3):
        for name in copied:
            assert torch.equal(state[f"members.{member}.{name}"], ready.state[name]), name
    assert state["members.0.layers.14.weight"].shape == (4, 128)
    # The very same classes keep the head: the start is the ready model itself.
    same = build_model(network_spec(ready, (1, 64, 151), 6))
    assert len(load_start_weights(same, ready, ready.labels)) == len(ready.state)
    assert torch.equal(same.state_dict()["layers.14.weight"], ready.state["layers.14.weight"])


def test_another_network_does_not_fit_the_weights(ready):
    other = ready.spec.with_layers(ready.spec.layers[3:])  # the first conv stage left out
    with pytest.raises(StartError, match="does not fit"):
        load_start_weights(build_model(other.with_num_outputs(2)), ready, ("a", "b"))


def test_another_input_is_a_sentence(ready):
    check_input(ready, ready.features, "logmel", "instance")  # its own: fine
    other = dataclasses.replace(ready.features, n_mels=32)
    with pytest.raises(StartError, match="needs the input it learnt on: 16000 Hz logmel with 64"):
        check_input(ready, other, "logmel", "instance")
    with pytest.raises(StartError):
        check_input(ready, ready.features, "mfcc", "instance")


def _started_config(ready, **fields) -> TrainConfig:
    base = TrainConfig(
        data="(tones)", epochs=1, members=1, batch_size=4, augment=AugmentConfig.off(), tsne=False
    )
    return dataclasses.replace(base, **{**start_settings(ready), **fields})


def test_a_training_started_from_the_ready_model_begins_at_its_weights(ready, tmp_path):
    """With a learning rate of 1e-9 the weights barely move: the run's saved first convolution
    is the ready model's (random weights from any seed are far from it)."""
    config = _started_config(ready, learning_rate=1e-9, schedule="constant", weight_decay=0.0)
    store = RunStore(tmp_path)
    events = list(train(config, dataset=_tones(), store=store, device=torch.device("cpu")))
    assert events[-1].kind == "finished", events[-1].message
    started = events[0].info
    assert started["start_from"] == READY and started["tensors_started_from"] == 26
    saved = store.load(events[-1].run_id).model.state_dict()
    first = ready.state["layers.0.weight"]
    assert torch.allclose(saved["layers.0.weight"], first, atol=1e-5)
    random_start = build_model(network_spec(ready, (1, 64, 151), 2)).state_dict()
    assert not torch.allclose(random_start["layers.0.weight"], first, atol=1e-2)


def test_a_training_whose_input_does_not_fit_fails_with_the_sentence(ready):
    config = _started_config(ready, normalization="global")
    final = list(train(config, dataset=_tones(), device=torch.device("cpu")))[-1]
    assert final.kind == "failed" and "needs the input it learnt on" in final.message
    final = list(
        train(
            dataclasses.replace(config, start_from="../../etc/passwd"),
            dataset=_tones(),
            device=torch.device("cpu"),
        )
    )[-1]
    assert final.kind == "failed" and "There is no ready model called" in final.message


def test_the_recipe_starts_sustained_sounds_from_the_instrument_model(ready):
    assert TrainConfig.learning_rate == FROM_SCRATCH_LEARNING_RATE  # the two stay one number
    assert ready_model_input(READY) == (ready.features, "logmel", "instance")
    assert ready_model_input("nope") is None
    recipe = recipe_for_dataset(_tones(top_hz=7000.0))
    assert recipe.start_from.value == READY
    assert "fine-tune" in recipe.start_from.reason
    assert recipe.learning_rate.value == 1e-3 and "fine-tuning" in recipe.learning_rate.reason
    config = apply_recipe(TrainConfig(), recipe)
    assert config.start_from == READY and config.learning_rate == 1e-3
    check_input(ready, config.features, config.feature_kind, config.normalization)
    # Brighter tones get 22.05 kHz: another input than the ready model's, so random weights.
    bright = recipe_for_dataset(_tones(top_hz=10_000.0))
    assert bright.start_from.value == "" and "another input" in bright.start_from.reason
    assert bright.learning_rate.value == TrainConfig.learning_rate


def test_command_line_start_from(tmp_path, capsys, ready):
    folder = _tone_folder(tmp_path / "notes")
    args = _parse_args(["--data", folder, "--start-from", READY])
    config = start_from_flag(config_from_args(args), args)
    assert config.start_from == READY and config.features == ready.features
    assert (config.clip_seconds, config.trim_db, config.learning_rate) == (1.5, None, 1e-3)
    args = _parse_args(["--data", folder, "--start-from", READY, "--lr", "0.01"])
    assert start_from_flag(config_from_args(args), args).learning_rate == 0.01  # given: wins
    args = _parse_args(["--data", folder, "--start-from", "none"])
    assert start_from_flag(config_from_args(args), args).start_from == ""
    # The recipe (the default) starts notes from the ready model; --start-from none goes back
    # to random weights, and so does a network the student named (the ready start would
    # replace it with its own), unless --start-from names the ready model again.
    args = _parse_args(["--data", folder, "--start-from", "none"])
    chosen = recipe_from_data(config_from_args(args), args, load_dataset(folder))
    assert chosen.start_from == READY
    config = start_from_flag(chosen, args)
    assert (config.start_from, config.learning_rate) == ("", TrainConfig.learning_rate)
    for own in (["--model", "crnn_logmel"], ["--spec", "net.json"]):
        args = _parse_args(["--data", folder, *own])
        chosen = recipe_from_data(config_from_args(args), args, load_dataset(folder))
        assert (chosen.start_from, chosen.learning_rate) == ("", TrainConfig.learning_rate)
        assert chosen.features == ready.features  # the rest of the recipe stays
    assert "random weights, for the network you named" in capsys.readouterr().err
    args = _parse_args(["--data", folder, "--model", "crnn_logmel", "--start-from", READY])
    chosen = recipe_from_data(config_from_args(args), args, load_dataset(folder))
    assert start_from_flag(chosen, args).start_from == READY
    code = main(["--data", folder, "--start-from", "../x", "--runs-dir", str(tmp_path / "r")])
    assert code == 2 and "There is no ready model called '../x'" in capsys.readouterr().err


def test_a_new_head_learns_alone_first_then_every_layer(ready, tmp_path):
    """Two classes: a new head. In the first of 3 epochs only the head moves (the copied
    layers are exactly the ready model's); a run that goes on moves them too."""
    import threading

    assert [head_first_epochs(n) for n in (1, 2, 3, 9, 30)] == [0, 0, 1, 3, 3]
    config = _started_config(ready, epochs=3, learning_rate=3e-3, schedule="constant")
    first = ready.state["layers.0.weight"]
    store, cancel = RunStore(tmp_path), threading.Event()
    events = []
    for event in train(
        config, dataset=_tones(), store=store, cancel=cancel, device=torch.device("cpu")
    ):
        events.append(event)
        if event.kind == "epoch_end":
            cancel.set()  # stop after the first epoch: the head-only one
    assert events[0].info["head_first_epochs"] == 1 and events[-1].kind == "stopped"
    saved = store.load(events[-1].run_id).model.state_dict()
    assert torch.equal(saved["layers.0.weight"], first)
    torch.manual_seed(config.seed)  # the trainer's own start: the same seed, the same head
    initial_head = build_model(network_spec(ready, (1, 64, 151), 2)).state_dict()[
        "layers.14.weight"
    ]
    assert not torch.allclose(saved["layers.14.weight"], initial_head)  # the head learnt
    whole = list(train(config, dataset=_tones(), store=store, device=torch.device("cpu")))
    assert whole[-1].kind == "finished"
    trained = store.load(whole[-1].run_id).model.state_dict()
    assert not torch.allclose(trained["layers.0.weight"], first, atol=1e-6)
