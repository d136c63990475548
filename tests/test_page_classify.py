"""The Classify page under AppTest: the ready model names the right digit at once and states
both of its accuracies (unseen speaker, known speakers); uploads, bad uploads, long clips,
saliency, batches and run archives each end in a right answer or a sentence."""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core import paths
from core.data.render_notes import SOUNDFONTS, NoteSet, render_notes
from core.data.sources import load_dataset
from core.data.splits import split_dataset
from core.inference.classifier import shipped_store
from core.models.card import read_model_card
from tests.apptest_helpers import open_page
from tests.conftest import sine

PAGE = "pages/classify.py"


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def _top_k_bars(at) -> list[tuple[str, float]]:
    """(label, probability) of the top-k chart's bars, most probable first."""
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    bars = [
        trace
        for figure in figures
        for trace in figure["data"]
        if trace.get("type") == "bar" and trace.get("orientation") == "h"
    ]
    assert len(bars) == 1, "the top-k chart is missing"
    values = bars[0]["x"]
    if isinstance(values, dict):  # plotly writes numpy arrays as base64 of the raw values
        values = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    pairs = list(zip(bars[0]["y"], (float(v) for v in values), strict=True))
    return pairs[::-1]  # the chart draws the most probable bar on top, i.e. last


def _digit(path: Path) -> str:
    """The digit a shipped recording says: `{digit}_{speaker}_{take}.wav`."""
    return path.stem.split("_")[0]


def _held_out_takes() -> list[Path]:
    """The takes the shipped model never trained on (its split, re-derived from config.json)."""
    config = shipped_store().get("digits-cnn").train_config
    dataset = load_dataset(config["data"])
    split = split_dataset(
        dataset, method=config["split"], val_fraction=config["val_fraction"], seed=config["seed"]
    )
    return [Path(dataset.examples[i].source) for i in split.val]


@pytest.fixture(scope="module")
def app():
    at = open_page(PAGE)
    assert not at.exception, _texts(at.exception)
    return at


def test_the_ready_model_names_the_built_in_digit_at_once(app):
    assert _texts(app.title) == ["Classify"]
    assert app.selectbox(key="classify_model").value == "shipped:digits-cnn"
    assert app.selectbox(key="classify_audio_builtin").value == "Spoken digit 0 (george)"
    assert _texts(app.success)[0].startswith("**0** with"), _texts(app.success)
    assert any("cut at both ends" in t for t in _texts(app.info))  # trimmed as in training
    # the top-k chart: five bars, the named digit on top with the probability the sentence gives
    bars = _top_k_bars(app)
    assert len(bars) == 5 and len({label for label, _ in bars}) == 5
    assert bars[0][0] == "0"
    assert _texts(app.success)[0] == f"**0** with {bars[0][1]:.0%} probability."
    probabilities = [p for _, p in bars]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6


def test_the_page_states_both_accuracies_from_the_model_card(app):
    card = read_model_card(paths.MODELS_DIR / "digits-cnn")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {
        "A speaker it never heard": f"{card.unseen.accuracy:.1%}",
        "New takes of speakers it knows": f"{card.known.accuracy:.1%}",
    }
    captions = _texts(app.caption)
    assert "mean of 4 of 4 folds, 1600 clips" in captions
    assert any(f"expect about {card.unseen.accuracy:.1%}" in t for t in captions), captions
    per_speaker = next(t for t in captions if t.startswith("per held-out speaker"))
    for speaker, accuracy in card.unseen.per_group.items():
        assert f"{speaker} {accuracy:.1%}" in per_speaker


def test_upload_held_out_takes_of_each_speaker_and_a_bad_file():
    at = open_page(PAGE)
    at.segmented_control(key="classify_audio_source").set_value("Upload a file").run()
    held_out = _held_out_takes()
    for speaker, digit in (("george", "5"), ("jackson", "8"), ("lucas", "2"), ("nicolas", "6")):
        take = next(p for p in held_out if p.stem.startswith(f"{digit}_{speaker}_"))
        at.file_uploader(key="classify_audio_upload").set_value(
            (take.name, take.read_bytes(), "audio/wav")
        ).run()
        assert not at.exception, _texts(at.exception)
        assert _texts(at.success)[0].startswith(f"**{_digit(take)}** with"), (
            take.name,
            _texts(at.success),
            _texts(at.warning),
        )
    at.file_uploader(key="classify_audio_upload").set_value(
        ("notes.wav", b"these are my lecture notes, not audio", "audio/wav")
    ).run()
    assert not at.exception
    assert any("not an audio file" in t for t in _texts(at.error))


def test_a_long_clip_opens_the_timeline_with_segments(tmp_path):
    rate = 16000
    y = np.concatenate([sine(300, 2.0, rate), np.zeros(rate, np.float32), sine(900, 2.0, rate)])
    at = open_page(PAGE)
    at.segmented_control(key="classify_audio_source").set_value("Upload a file").run()
    at.file_uploader(key="classify_audio_upload").set_value(
        ("long.wav", _wav(y, rate), "audio/wav")
    )
    at.run()
    assert not at.exception, _texts(at.exception)
    assert at.toggle(key="classify_timeline").value is True
    at.slider(key="classify_hop").set_value(0.5).run()
    at.slider(key="classify_segment_threshold").set_value(0.0).run()
    assert not at.exception, _texts(at.exception)
    assert any("windows of" in t for t in _texts(at.caption))
    assert at.selectbox(key="classify_segment_play").options, "segments are listed to play"
    at.segmented_control(key="classify_saliency_method").set_value("occlusion").run()
    at.radio(key="classify_saliency_playback").set_value("time-frequency").run()
    assert not at.exception, _texts(at.exception)


def test_batch_of_built_in_clips_runs_on_a_worker_and_gives_a_table(app, ray_cluster):
    from core.jobs.manager import get_job_manager

    app.toggle(key="classify_batch_builtin").set_value(True).run()
    assert not app.exception, _texts(app.exception)
    app.button(key="classify_batch_run").click().run()
    assert not app.exception, _texts(app.exception)
    job = app.session_state["classify_batch_job"]["job"]
    assert app.button(key="classify_batch_run").disabled  # one batch at a time
    status = get_job_manager().wait(job, app.session_state["session_id"], timeout=240)
    assert status.state == "finished", status.message
    app.run()
    assert not app.exception, _texts(app.exception)
    assert not app.button(key="classify_batch_run").disabled
    table = app.dataframe[-1].value
    assert len(table) == 20 and set(table.columns) >= {"file", "class", "confidence"}
    named = dict(zip(table["file"], table["class"], strict=True))
    assert named == {name: _digit(Path(name)) for name in named}, named


def test_importing_a_pickle_says_why_and_a_real_archive_is_selected(app):
    app.file_uploader(key="classify_import").set_value(
        ("model.safetensors", pickle.dumps({"w": [1, 2, 3]}), "application/octet-stream")
    ).run()
    app.button(key="classify_import_button").click().run()
    assert not app.exception
    assert any("pickle" in t for t in _texts(app.error))
    archive = shipped_store().export_archive("digits-cnn")
    app.file_uploader(key="classify_import").set_value(
        ("digits.zip", archive, "application/zip")
    ).run()
    app.button(key="classify_import_button").click().run()
    assert not app.exception, _texts(app.exception)
    assert any("Imported" in t for t in _texts(app.success))
    assert app.selectbox(key="classify_model").value.startswith("run:")
    # The archive carries the shipped card.json, so the imported run states the same measured
    # figures as the shipped model, not a card derived from its own split.
    metrics = {m.label: m.value for m in app.metric}
    card = read_model_card(paths.MODELS_DIR / "digits-cnn")
    assert metrics["A speaker it never heard"] == f"{card.unseen.accuracy:.1%}"
    recorded = shipped_store().read_summary("digits-cnn")["metrics"]["val_accuracy"]
    assert metrics["New takes of speakers it knows"] == f"{recorded:.1%}"


def test_a_hostile_card_in_a_run_is_a_sentence(app):
    # Each test has its own runs folder: import into this one, then spoil the run's card.
    app.file_uploader(key="classify_import").set_value(
        ("digits.zip", shipped_store().export_archive("digits-cnn"), "application/zip")
    ).run()
    app.button(key="classify_import_button").click().run()
    run_id = app.selectbox(key="classify_model").value.removeprefix("run:")
    card = paths.runs_dir() / run_id / "card.json"
    card.write_text(json.dumps({"format": "audio-dl-studio/model-card", "labels": ["x"]}))
    app.run()
    assert not app.exception, _texts(app.exception)
    assert any("No accuracy can be shown for this model" in t for t in _texts(app.warning))
    assert _texts(app.success)[0].startswith("**0** with"), "the model itself still answers"


def test_the_page_lists_what_each_ready_model_knows(app):
    [table] = [d.value for d in app.dataframe if "kind of sound" in d.value.columns]
    rows = {row["model"]: row for row in table.to_dict("records")}
    digits = rows["digits-cnn (ready-made)"]
    assert digits["kind of sound"].startswith("spoken digits")
    assert digits["classes"] == ", ".join(str(d) for d in range(10))
    assert digits["rate"] == "8 kHz" and digits["window"] == "1 s"
    for name in (p.name for p in paths.MODELS_DIR.iterdir() if (p / "card.json").is_file()):
        card = read_model_card(paths.MODELS_DIR / name)
        row = rows[f"{name} (ready-made)"]
        assert row["kind of sound"] == card.sound and row["classes"] == ", ".join(card.labels)


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(SOUNDFONTS["timgm"]).is_file(),
    reason="needs fluidsynth and timgm6mb-soundfont (installed by .ci/run)",
)
def test_a_note_given_to_the_digits_model_is_called_unlike_its_training_and_a_word_is_not(
    tmp_path,
):
    notes = NoteSet(families={"flute": (73,)}, pitches=(67,), velocities=(100,))
    list(render_notes(tmp_path, {"timgm": SOUNDFONTS["timgm"]}, notes))
    [note] = (tmp_path / "flute").glob("*.wav")
    at = open_page(PAGE)
    assert not any("does not sound like" in t for t in _texts(at.warning))  # a built-in digit
    at.segmented_control(key="classify_audio_source").set_value("Upload a file").run()
    at.file_uploader(key="classify_audio_upload").set_value(
        (note.name, note.read_bytes(), "audio/wav")
    ).run()
    assert not at.exception, _texts(at.exception)
    [warning] = [t for t in _texts(at.warning) if "does not sound like" in t]
    assert "spoken digits" in warning and "training sounds lasted" in warning
    take = _held_out_takes()[0]
    at.file_uploader(key="classify_audio_upload").set_value(
        (take.name, take.read_bytes(), "audio/wav")
    ).run()
    assert not any("does not sound like" in t for t in _texts(at.warning))
