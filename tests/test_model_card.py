"""Model cards: the shipped card states both accuracies and matches its runs; a student's run
gets a card derived from its split; a missing or hostile card is a sentence, never a crash."""

from __future__ import annotations

import io
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import paths
from core.data.datasets import builtin_digits, folder_per_class, load_example_audio
from core.data.render_notes import SOUNDFONTS, NoteSet, render_notes
from core.models.card import (
    CARD_FILE,
    CARD_FORMAT,
    ModelCardError,
    card_from_run,
    leave_one_group_out,
    measure_training_sound,
    parse_model_card,
    read_model_card,
    unlike_training,
    write_model_card,
)
from core.training.runs import RunError, RunStore

SHIPPED = paths.MODELS_DIR / "digits-cnn"


@pytest.fixture()
def run_copy(tmp_path) -> Path:
    """A copy of the shipped run folder, free to be edited."""
    target = tmp_path / "run"
    shutil.copytree(SHIPPED, target)
    return target


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_shipped_card_states_both_accuracies_of_this_model():
    card = read_model_card(SHIPPED)
    meta, summary = _json(SHIPPED / "model.json"), _json(SHIPPED / "summary.json")
    assert card.source == "card"
    assert card.labels == tuple(str(d) for d in range(10)) == tuple(meta["labels"])
    assert card.sample_rate == meta["feature_config"]["sample_rate"] == 8000
    assert card.clip_seconds == 1.0 and card.data == "builtin:digits"
    # New takes of known speakers: the shipped run's own held-out takes.
    assert card.known.accuracy == pytest.approx(summary["metrics"]["val_accuracy"])
    assert card.known.clips == len(summary["evaluation"]["true"]) == 320
    # A speaker it never heard: every fold measured, the mean of their accuracies.
    unseen = card.unseen
    assert unseen.folds_measured == unseen.folds_total == 4
    assert set(unseen.per_group) == {"george", "jackson", "lucas", "nicolas"}
    assert unseen.accuracy == pytest.approx(sum(unseen.per_group.values()) / 4)
    assert unseen.clips == 1600
    assert unseen.accuracy < card.known.accuracy, "a new voice is harder than a known one"
    assert "--split holdout" in card.command and "python -m core.train" in card.command


def test_a_card_round_trips_through_its_file(run_copy):
    card = read_model_card(SHIPPED)
    (run_copy / CARD_FILE).unlink()
    write_model_card(card, run_copy)
    assert read_model_card(run_copy) == card
    assert _json(run_copy / CARD_FILE)["format"] == CARD_FORMAT


def test_without_a_card_a_stratified_run_reports_known_speakers_only(run_copy):
    (run_copy / CARD_FILE).unlink()
    card = read_model_card(run_copy)
    summary = _json(run_copy / "summary.json")
    assert card.source == "summary"
    assert card.known.accuracy == pytest.approx(summary["metrics"]["val_accuracy"])
    assert card.known.clips == 320 and card.known.title == "New takes of speakers it knows"
    assert card.unseen is None
    assert "holdout" in card.unseen_missing and "Not measured" in card.unseen_missing


def test_a_holdout_run_reports_its_unseen_speaker():
    config = {
        "data": "builtin:digits",
        "split": "holdout",
        "val_groups": ["lucas"],
        "clip_seconds": 1.0,
    }
    summary = {
        "status": "finished",
        "metrics": {"val_accuracy": 0.765},
        "evaluation": {"true": [0] * 400},
    }
    meta = {"labels": list("0123456789"), "feature_config": {"sample_rate": 8000}}
    card = card_from_run(config, summary, meta, name="mine")
    assert card.unseen.accuracy == 0.765 and card.unseen.clips == 400
    assert card.unseen.per_group == {"lucas": 0.765} and "lucas" in card.unseen.how
    assert card.known is None and "stratified" in card.known_missing
    # Another kind of data: the group is a recording, not a speaker.
    other = card_from_run({**config, "data": "folder:/x", "split": "group"}, summary, meta)
    assert other.group_noun == "recording" and other.unseen.title == "A recording it never heard"


def test_leave_one_group_out_is_the_mean_of_the_folds_and_counts_them():
    m = leave_one_group_out("", {"a": (0.9, 400), "b": (0.7, 100)}, groups_total=4)
    assert m.accuracy == pytest.approx(0.8)  # each speaker once, not weighted by clips
    assert (m.clips, m.folds_measured, m.folds_total) == (500, 2, 4)
    assert "2 folds (4 possible)" in m.how
    with pytest.raises(ModelCardError, match="No leave-one-out fold"):
        leave_one_group_out("", {}, groups_total=4)
    with pytest.raises(ModelCardError, match="between 0 and 1"):
        leave_one_group_out("", {"a": (1.5, 10)}, groups_total=4)


def _card_text(**changes) -> str:
    record = read_model_card(SHIPPED).to_dict()
    for key, value in changes.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return json.dumps(record)


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (_card_text(format="something/else"), "not a model card"),
        (_card_text(labels="0123456789"), "no readable list of classes"),
        (_card_text(sample_rate=-8000), "no valid sample_rate"),
        (_card_text(sample_rate=True), "no valid sample_rate"),
        (_card_text(unseen={"accuracy": 1.5}), "not a share between 0 and 1"),
        (_card_text(known={"accuracy": "97%"}), "not a share between 0 and 1"),
        (_card_text(unseen={"accuracy": 0.8, "per_group": {"x": 7}}), "outside 0..1"),
        (
            _card_text(unseen={"accuracy": 0.8, "folds_measured": 5, "folds_total": 4}),
            "5 of 4 folds",
        ),
        (_card_text(command=["rm", "-rf"]), "not text"),
        ('{"format": "' + CARD_FORMAT + '", "pad": "' + "x" * 70_000 + '"}', "not one"),
    ],
)
def test_hostile_cards_are_refused_with_a_sentence(text, sentence):
    with pytest.raises(ModelCardError, match=sentence):
        parse_model_card(text)


def test_nan_accuracy_is_refused():
    text = _card_text(unseen={"accuracy": math.nan})  # json.loads accepts NaN: we must not
    assert "NaN" in text
    with pytest.raises(ModelCardError, match="between 0 and 1"):
        parse_model_card(text)


def test_overlong_text_is_cut_not_trusted():
    card = parse_model_card(_card_text(data_description="y" * 5000, name="n" * 5000))
    assert len(card.data_description) <= 600 and len(card.name) <= 600


def test_a_card_of_another_model_is_refused(run_copy):
    record = _json(run_copy / CARD_FILE)
    (run_copy / CARD_FILE).write_text(json.dumps({**record, "labels": list("abcdefghij")}))
    with pytest.raises(ModelCardError, match="other classes"):
        read_model_card(run_copy)
    (run_copy / CARD_FILE).write_text(json.dumps({**record, "sample_rate": 16000}))
    with pytest.raises(ModelCardError, match="16000 Hz"):
        read_model_card(run_copy)


def test_missing_or_broken_run_files_are_sentences(run_copy):
    (run_copy / CARD_FILE).unlink()
    (run_copy / "summary.json").unlink()
    with pytest.raises(ModelCardError, match="no summary yet"):
        read_model_card(run_copy)
    (run_copy / "summary.json").write_text('{"status": "failed", "metrics": {}}')
    with pytest.raises(ModelCardError, match="without a measured validation accuracy"):
        read_model_card(run_copy)
    (run_copy / "model.json").write_bytes(b"\xff\xfe binary")
    with pytest.raises(ModelCardError, match="model.json"):
        read_model_card(run_copy)
    with pytest.raises(ModelCardError, match="missing"):
        read_model_card(run_copy.parent / "no-such-run")


def test_a_card_travels_with_an_exported_run(tmp_path):
    """Export the shipped run, import it elsewhere: the card (not a derived one) comes along."""
    archive = RunStore(paths.MODELS_DIR).export_archive("digits-cnn")
    target = RunStore(tmp_path / "runs")
    new_id = target.import_archive(archive, owner="dana")
    imported = read_model_card(target.run_path(new_id))
    assert imported == read_model_card(SHIPPED)
    assert imported.source == "card"


def test_an_archive_with_a_broken_card_is_refused(tmp_path):
    archive = RunStore(paths.MODELS_DIR).export_archive("digits-cnn")
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(buffer, "w") as out:
        for name in source.namelist():
            data = b"{not json" if name == CARD_FILE else source.read(name)
            out.writestr(name, data)
    with pytest.raises(RunError, match="card.json in the archive is not valid JSON"):
        RunStore(tmp_path / "runs").import_archive(buffer.getvalue())


# --------------------------------------------------------------------------- "sounds unlike"

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not all(Path(p).is_file() for p in SOUNDFONTS.values()),
    reason="needs fluidsynth and the four soundfonts (installed by .ci/run)",
)


@pytest.fixture(scope="module")
def few_notes(tmp_path_factory) -> Path:
    """One program per family, three pitches, through the four soundfonts (72 notes)."""
    folder = tmp_path_factory.mktemp("notes")
    families = {
        "piano": (0,),
        "guitar": (24,),
        "strings": (48,),
        "brass": (56,),
        "reed": (71,),
        "flute": (73,),
    }
    note_set = NoteSet(families=families, pitches=(48, 60, 72), velocities=(100,))
    for _line in render_notes(folder, SOUNDFONTS, note_set):
        pass
    return folder


def _clips(dataset, rate: int, group: str | None = None, limit: int = 1000):
    chosen = [e for e in dataset.examples if group is None or e.group == group][:limit]
    return [load_example_audio(dataset, e, rate) for e in chosen]


def _flagged(sound, clips, rate: int, window: float) -> float:
    """Share of clips that unlike_training finds unlike the training sound."""
    return sum(bool(unlike_training(sound, c, rate, window_seconds=window)) for c in clips) / len(
        clips
    )


def test_the_shipped_card_round_trips_its_sound_and_hostile_ranges_are_sentences():
    card = read_model_card(SHIPPED)
    assert card.sound.startswith("spoken digits") and card.training_sound.clips >= 200
    assert 0.15 < card.training_sound.sounding_seconds.median < 0.6
    assert parse_model_card(json.dumps(card.to_dict())) == card
    ranges = card.to_dict()["training_sound"]
    hostile = [
        "loud",
        {**ranges, "clips": True},
        {**ranges, "change_db": {"low": 3.0, "median": 2.0, "high": 4.0}},  # not ordered
        {**ranges, "bandwidth_hz": {"low": -1.0, "median": 2.0, "high": 4.0}},
        {**ranges, "sounding_seconds": {"low": float("nan"), "median": 1.0, "high": 2.0}},
        {k: v for k, v in ranges.items() if k != "change_db"},
    ]
    for bad in hostile:
        record = {**card.to_dict(), "training_sound": bad}
        with pytest.raises(ModelCardError, match="training_sound"):
            parse_model_card(json.dumps(record))
    # A card written before the field existed has no check, and still reads.
    old = {k: v for k, v in card.to_dict().items() if k not in ("training_sound", "sound")}
    assert parse_model_card(json.dumps(old)).training_sound is None


@needs_fluidsynth
def test_words_from_an_unheard_speaker_pass_and_notes_do_not(few_notes):
    digits = builtin_digits()
    heard = [e for e in digits.examples if e.group != "nicolas"][::12]
    sound = measure_training_sound([load_example_audio(digits, e, 8000) for e in heard], 8000)
    assert _flagged(sound, _clips(digits, 8000, "nicolas", limit=60), 8000, 1.0) <= 0.1
    notes = folder_per_class(few_notes)
    assert _flagged(sound, _clips(notes, 8000), 8000, 1.0) >= 0.9
    reasons = unlike_training(sound, _clips(notes, 8000, limit=1)[0], 8000, window_seconds=1.0)
    assert any("sounds for" in r and "training sounds lasted" in r for r in reasons)


@needs_fluidsynth
def test_notes_from_an_unheard_soundfont_pass_and_words_do_not(few_notes):
    notes = folder_per_class(few_notes)
    sound = measure_training_sound(_clips(notes, 16000, "fluid"), 16000)
    assert _flagged(sound, _clips(notes, 16000, "timgm"), 16000, 1.5) <= 0.1
    digits = builtin_digits()
    assert _flagged(sound, _clips(digits, 16000)[::20], 16000, 1.5) >= 0.9
    # A long recording is classified window by window: its length alone is no reason.
    long_note = np.tile(_clips(notes, 16000, "timgm", limit=1)[0], 4)
    assert not any(
        "sounds for" in r for r in unlike_training(sound, long_note, 16000, window_seconds=1.5)
    )


INSTRUMENTS = paths.MODELS_DIR / "instruments-cnn"


def test_the_instrument_model_was_trained_with_the_recipe_its_notes_chose():
    card = read_model_card(INSTRUMENTS)
    run = _json(INSTRUMENTS / "config.json")["train_config"]
    assert card.labels == ("brass", "flute", "guitar", "piano", "reed", "strings")
    assert (card.sample_rate, card.clip_seconds, card.group_noun) == (16000, 1.5, "soundfont")
    # the recipe core.data.profile chooses for sustained sounds: 16 kHz, 64 bands, the
    # whole note (no trimming), no augmentation
    assert run["features"]["sample_rate"] == 16000 and run["features"]["n_mels"] == 64
    assert run["trim_db"] is None and run["normalization"] == "instance"
    assert all(not v for k, v in run["augment"].items() if k != "noise_snr_db")
    assert "--auto-recipe" in card.command
    # one leave-one-soundfont-out fold per soundfont, each trained on the other three
    folds = card.unseen.per_group
    assert set(folds) == {"FluidR3", "TimGM6mb", "Csound GMbank", "MuseScore General Lite"}
    assert card.unseen.folds_measured == card.unseen.folds_total == 4
    assert card.unseen.accuracy == pytest.approx(sum(folds.values()) / 4)
    assert run["data"] == "folder:.cache/rendered_notes"
    summary = _json(INSTRUMENTS / "summary.json")
    assert card.known.accuracy == pytest.approx(summary["metrics"]["val_accuracy"])


@needs_fluidsynth
def test_each_ready_model_finds_the_other_models_sound_unlike_its_own(few_notes):
    words = read_model_card(SHIPPED).training_sound
    notes_sound = read_model_card(INSTRUMENTS).training_sound
    notes = folder_per_class(few_notes)
    assert _flagged(words, _clips(notes, 8000), 8000, 1.0) >= 0.9
    assert _flagged(notes_sound, _clips(builtin_digits(), 16000)[::40], 16000, 1.5) >= 0.9
    assert _flagged(notes_sound, _clips(notes, 16000), 16000, 1.5) <= 0.1


@pytest.mark.parametrize("name", ["digits-cnn", "instruments-cnn"])
def test_a_shipped_run_names_no_folder_of_the_machine_that_built_it(name):
    data = _json(paths.MODELS_DIR / name / "config.json")["train_config"]["data"]
    source = data.split(":", 1)[1] if ":" in data else data
    assert not Path(source).is_absolute(), data
