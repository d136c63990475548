"""The sound explorer page through the real entry script (AppTest)."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.audio.levels import encode_wav
from core.jobs.manager import get_job_manager
from tests.apptest_helpers import open_page
from tests.conftest import sine

PAGE = "pages/explore.py"


@pytest.fixture
def app() -> AppTest:
    at = open_page(PAGE, timeout=240)
    assert not at.exception, at.exception
    return at


def _ari(at: AppTest) -> dict[str, float]:
    return {m.label.removeprefix("Adjusted Rand index vs "): float(m.value) for m in at.metric}


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def _map_groups(at: AppTest) -> dict[str, list[int]]:
    """The map's traces: {group name: clip indices drawn in that colour}."""
    maps = [c for c in at.get("plotly_chart") if '"map x"' in c.proto.spec]
    assert len(maps) == 1, "the map is missing"
    traces = json.loads(maps[0].proto.spec)["data"]
    return {trace["name"]: _indices(trace["customdata"]) for trace in traces}


def _indices(customdata) -> list[int]:
    # plotly writes numpy arrays as {"dtype": ..., "bdata": base64 of the raw values}
    if isinstance(customdata, dict):
        raw = base64.b64decode(customdata["bdata"])
        return np.frombuffer(raw, dtype=customdata["dtype"]).astype(int).tolist()
    return [int(i) for i in customdata]


def _cluster_table(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


def test_builtin_digits_give_a_map_clusters_and_their_agreement(app):
    assert app.title[0].value == "Sound explorer"
    assert "200 clips" in _captions(app)
    assert set(_ari(app)) == {"digit", "speaker"}
    # four clusters of MFCC statistics follow the four voices more than the ten words
    app.slider(key="explore_k").set_value(4).run()
    ari = _ari(app)
    assert ari["speaker"] > 0.4 > ari["digit"]
    # the map draws every clip once, one colour per cluster, sized as the table says
    groups = _map_groups(app)
    assert sorted(i for indices in groups.values() for i in indices) == list(range(200))
    table = _cluster_table(app)
    assert {row["cluster"]: row["clips"] for row in table} == {
        name: len(indices) for name, indices in groups.items()
    }
    assert set(groups) == {"cluster 0", "cluster 1", "cluster 2", "cluster 3"}
    # every cluster is listed and can be listened to
    app.selectbox(key="explore_cluster_pick").set_value("cluster 2").run()
    assert not app.exception, app.exception
    assert len(app.get("audio")) >= 1


def test_density_clustering_and_colouring_by_label(app):
    app.radio(key="explore_clustering").set_value("HDBSCAN").run()
    app.slider(key="explore_min_cluster").set_value(8).run()
    assert not app.exception, app.exception
    assert set(_ari(app)) == {"digit", "speaker"}
    # HDBSCAN chooses the number of clusters; noise, if any, is listed last
    names = [row["cluster"] for row in _cluster_table(app)]
    assert set(_map_groups(app)) == set(names)
    assert "noise" not in names[:-1]
    app.radio(key="explore_color").set_value("speaker").run()
    assert not app.exception, app.exception
    groups = _map_groups(app)
    assert set(groups) == {"george", "jackson", "lucas", "nicolas"}
    assert sorted(i for indices in groups.values() for i in indices) == list(range(200))


def test_density_clustering_finds_two_kinds_of_sound_without_being_told_how_many(app):
    # Eight low hums (150 Hz, each detuned a little) and eight bursts of white noise: far
    # apart in MFCC statistics, close within each kind. k-means would need k = 2; HDBSCAN must
    # find the two groups itself, with no clip left as noise.
    rng = np.random.default_rng(0)
    entries = {}
    for i in range(8):
        entries[f"hum/{i}.wav"] = encode_wav(sine(150 * (1 + i / 100), 0.5, 16000), 16000)
        hiss = (0.3 * rng.standard_normal(8000)).astype(np.float32)
        entries[f"hiss/{i}.wav"] = encode_wav(hiss, 16000)
    app.radio(key="explore_source").set_value("zip").run()
    app.file_uploader(key="explore_zip").upload("two.zip", _zip(entries), "application/zip").run()
    app.radio(key="explore_clustering").set_value("HDBSCAN").run()
    app.slider(key="explore_min_cluster").set_value(4).run()
    assert not app.exception, app.exception
    table = _cluster_table(app)
    assert [row["cluster"] for row in table] == ["cluster 0", "cluster 1"]  # no noise row
    assert sorted(row["most common folder"] for row in table) == ["hiss (100%)", "hum (100%)"]
    assert [row["clips"] for row in table] == [8, 8]
    assert _ari(app)["folder"] == pytest.approx(1.0)
    sizes = {name: len(indices) for name, indices in _map_groups(app).items()}
    assert sizes == {"cluster 0": 8, "cluster 1": 8}


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_uploaded_zip_is_explored_with_folder_labels(app):
    entries = {
        f"{folder}/{i}.wav": encode_wav(sine(base * (1 + i / 50), 0.5, 16000), 16000)
        for folder, base in (("low", 150), ("high", 3000))
        for i in range(4)
    }
    entries["notes.txt"] = b"not audio"
    app.radio(key="explore_source").set_value("zip").run()
    app.file_uploader(key="explore_zip").upload("mine.zip", _zip(entries), "application/zip").run()
    assert not app.exception, app.exception
    assert "8 clips" in _captions(app)
    assert any("left out" in w.value for w in app.warning)
    app.slider(key="explore_k").set_value(2).run()
    assert _ari(app)["folder"] == pytest.approx(1.0)


def test_garbage_zip_is_a_sentence(app):
    app.radio(key="explore_source").set_value("zip").run()
    app.file_uploader(key="explore_zip").upload(
        "fake.zip", b"PK not really", "application/zip"
    ).run()
    assert not app.exception, app.exception
    assert any("not a readable zip" in e.value for e in app.error)


def test_autoencoder_trains_on_a_worker_and_becomes_an_embedding(app, ray_cluster):
    app.radio(key="explore_source").set_value("music").run()
    app.selectbox(key="explore_projection").set_value("t-SNE").run()
    assert not app.exception, app.exception
    # The t-SNE map is drawn by a Ray worker: its progress shows, the autoencoder meanwhile.
    job = app.session_state["explore_map_job"]["job"]
    assert app.get("progress") and not _ari(app)
    assert app.button(key="explore_map_job_stop") and app.button(key="explore_ae_train")
    status = get_job_manager().wait(job, app.session_state["session_id"], timeout=240)
    assert status.state == "finished", status.message
    app.run()
    assert not app.exception, app.exception
    assert set(_ari(app)) == {"recording"}
    assert app.session_state["explore_map_job"] is None
    app.slider(key="explore_ae_steps").set_value(20)
    app.button(key="explore_ae_train").click().run()
    assert not app.exception, app.exception
    # The training runs in a Ray worker: the page shows its progress and stays usable.
    job = app.session_state["explore_ae"]["job"]
    assert job and app.button(key="explore_ae_train").disabled
    assert app.get("progress") and "After 20 steps" not in _captions(app)
    status = get_job_manager().wait(job, app.session_state["session_id"], timeout=240)
    assert status.state == "finished", status.message
    app.run()
    assert not app.exception, app.exception
    assert "After 20 steps" in _captions(app)
    assert len(app.get("audio")) >= 3  # the clip, its inverted spectrogram, the reconstruction
    app.selectbox(key="explore_embedding").set_value("Autoencoder bottleneck").run()
    assert not app.exception, app.exception
    job = app.session_state["explore_map_job"]["job"]  # a new embedding: a new t-SNE map
    assert get_job_manager().wait(job, app.session_state["session_id"], timeout=240).done
    app.run()
    assert "Autoencoder bottleneck: 16 numbers per clip" in _captions(app)


def test_penultimate_layer_of_a_shipped_model_is_an_embedding(app, ray_cluster):
    options = app.selectbox(key="explore_embedding").options
    models = [o for o in options if o.startswith("Penultimate layer: ")]
    if not models:
        pytest.skip("no ready-made model is shipped in models/")
    app.selectbox(key="explore_embedding").set_value(models[0]).run()
    assert not app.exception, app.exception
    # Computed by a Ray worker: the page shows its progress meanwhile, then the map.
    job = app.session_state["explore_embed_job"]["job"]
    assert app.get("progress")
    status = get_job_manager().wait(job, app.session_state["session_id"], timeout=240)
    assert status.state == "finished", status.message
    app.run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert f"{models[0]}:" in _captions(app)
    assert set(_ari(app)) == {"digit", "speaker"}


def test_a_tsne_map_can_be_stopped_and_started_again(app, ray_cluster):
    app.selectbox(key="explore_projection").set_value("t-SNE").run()
    assert not app.exception, app.exception
    job, owner = app.session_state["explore_map_job"]["job"], app.session_state["session_id"]
    app.button(key="explore_map_job_stop").click().run()
    assert get_job_manager().wait(job, owner, timeout=60).state == "stopped"
    app.run()
    assert not app.exception, app.exception
    assert any("Stopped before it was done" in i.value for i in app.info)
    assert not _ari(app)  # no map, no clusters: nothing half-drawn
    app.button(key="explore_map_job_again").click().run()
    again = app.session_state["explore_map_job"]["job"]
    assert again != job
    assert get_job_manager().wait(again, owner, timeout=240).state == "finished"
    app.run()
    assert set(_ari(app)) == {"digit", "speaker"}
