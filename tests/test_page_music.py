"""The Music analysis page under AppTest: every built-in clip, every view, display controls."""

from __future__ import annotations

import json
import re
import time

import pytest

from core.paths import MUSIC_DIR, builtin_music_clips
from tests.apptest_helpers import open_page
from ui.audio_input import builtin_clips
from ui.music_sections import VIEWS

PAGE = "pages/music.py"


@pytest.fixture(scope="module")
def app():
    app = open_page(PAGE)
    assert not app.exception, app.exception
    return app


def _metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _highlighted_keys(app) -> list[str]:
    """The key drawn in red on each row of the 24-key correlation chart."""
    for chart in app.get("plotly_chart"):
        figure = json.loads(chart.proto.spec)
        title = figure["layout"].get("title", {}).get("text", "")
        if title.startswith("Correlation with the 24"):
            return [
                name
                for bar in figure["data"]
                for name, colour in zip(bar["x"], bar["marker"]["color"], strict=True)
                if colour == "#e45756"
            ]
    raise AssertionError("the 24-key correlation chart is missing")


def test_opens_on_a_musical_clip_with_a_summary(app):
    assert "Music analysis" in [t.value for t in app.title]
    assert "trumpet" in app.selectbox(key="music_audio_builtin").value.lower()
    metrics = _metrics(app)
    assert metrics["Duration"] == "5.3 s"
    assert metrics["Tempo"].endswith("BPM")
    assert metrics["Key"].endswith(("major", "minor"))


def test_every_builtin_clip_gets_a_summary_without_error(app):
    music = [label for label, path in builtin_clips().items() if path.parent == MUSIC_DIR]
    assert len(music) == len(builtin_music_clips())
    for label in music:
        app.selectbox(key="music_audio_builtin").set_value(label).run()
        assert not app.exception, (label, app.exception)
        assert not app.error, (label, [e.value for e in app.error])
        assert _metrics(app)["Duration"].endswith(" s"), label


def test_every_view_renders_and_display_controls_recompute_nothing(app):
    trumpet = next(label for label in builtin_clips() if "trumpet" in label.lower())
    app.selectbox(key="music_audio_builtin").set_value(trumpet).run()
    for view in VIEWS:
        app.segmented_control(key="music_view").set_value(view).run()
        assert not app.exception, (view, app.exception)
        assert not app.error, (view, [e.value for e in app.error])
    app.segmented_control(key="music_view").set_value("Spectrogram").run()
    for scale in ("log", "mel", "cqt", "linear"):
        app.radio(key="music_scale").set_value(scale).run()
        assert not app.exception
    labels = {m.label: m.value for m in app.metric}
    assert labels["Δf between bins"] == "10.8 Hz"  # 22050 / 2048
    app.select_slider(key="music_n_fft").set_value(4096).run()
    assert _metrics(app)["Δf between bins"] == "5.4 Hz"
    # Display-only changes reuse the cached analysis: each rerun is quick.
    started = time.perf_counter()
    app.selectbox(key="music_colors").set_value("Viridis").run()
    app.slider(key="music_zoom").set_value((1.0, 3.0)).run()
    per_rerun = (time.perf_counter() - started) / 2
    assert not app.exception
    assert per_rerun < 1.0, f"a display change took {per_rerun:.2f} s"


def test_key_view_explains_the_key_and_rhythm_plays_the_click_mix(app):
    app.segmented_control(key="music_view").set_value("Key").run()
    assert any("Why this key" in e.label for e in app.expander)
    # the chart marks the key the page names, on every row of correlations
    alerts = [s.value for s in app.success] + [w.value for w in app.warning]
    named = next(m.group(1) for a in alerts if (m := re.match(r"\*\*(.+?)\*\* \(confidence", a)))
    highlighted = _highlighted_keys(app)
    assert highlighted and set(highlighted) == {named}, (highlighted, named)
    app.segmented_control(key="music_view").set_value("Rhythm").run()
    assert any("click" in c.value for c in app.caption)
    assert len(app.get("audio")) >= 2  # the clip and the clip with clicks


def test_rhythm_offers_two_metrical_levels_each_with_its_click_track(app):
    trumpet = next(label for label in builtin_clips() if "trumpet" in label.lower())
    app.selectbox(key="music_audio_builtin").set_value(trumpet).run()
    app.segmented_control(key="music_view").set_value("Rhythm").run()
    assert not app.exception, app.exception
    metrics = _metrics(app)
    picked, other = metrics["Beat (picked)"], metrics["Other metrical level"]
    assert picked.endswith(" BPM") and other.endswith(" BPM") and picked != other
    assert any("is taken as the beat" in c.value for c in app.caption)
    first_audio = app.get("audio")[-1].proto.url
    level = app.radio(key="music_metrical_level")
    assert level.value == 0
    level.set_value(1).run()
    assert not app.exception, app.exception
    assert any(f"at {other}: do they line up?" in c.value for c in app.caption)
    assert app.get("audio")[-1].proto.url != first_audio  # a different click track


def test_key_view_offers_every_profile_family_and_a_keygram(app):
    from core.music import PROFILE_CHOICES

    tchaikovsky = next(label for label in builtin_clips() if "tchaikovsky" in label.lower())
    app.selectbox(key="music_audio_builtin").set_value(tchaikovsky).run()
    app.segmented_control(key="music_view").set_value("Key").run()
    for profiles in PROFILE_CHOICES:
        app.selectbox(key="music_key_profiles").set_value(profiles).run()
        assert not app.exception, (profiles, app.exception)
        alerts = [s.value for s in app.success] + [w.value for w in app.warning]
        assert any(f"{profiles} profiles" in a for a in alerts), (profiles, alerts)
        assert len(app.get("plotly_chart")) >= 3  # profile, 24-key correlations, key-gram
        assert any("Key over time" in m.value for m in app.markdown)
    app.slider(key="music_keygram_window").set_value(20).run()
    assert not app.exception


def _every_view_of_a_generated_clip():
    """AppTest script: a generated clip (kind in session_state) through every section."""
    import numpy as np
    import streamlit as st

    from core.audio.clip import AudioClip, AudioInfo
    from ui import music_sections as sections

    sr = 22050
    kind = st.session_state["kind"]
    rng = np.random.default_rng(0)
    samples = {
        "short": (0.5 * np.sin(2 * np.pi * 440 * np.arange(int(0.2 * sr)) / sr)).astype(np.float32),
        "quiet": np.full(3 * sr, 1e-4, dtype=np.float32)
        * rng.standard_normal(3 * sr).astype(np.float32),
        "noise": (0.3 * rng.standard_normal(3 * sr)).astype(np.float32),
    }[kind]
    info = AudioInfo(sr, 1, samples.size, samples.size / sr, "WAV")
    analysis = sections.analysis_for(AudioClip(samples, sr, kind, info))
    sections.summary_card(analysis)
    for view in sections.VIEWS:
        sections.RENDERERS[view](analysis, (0.0, analysis.duration_seconds), "Magma")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("short", "No tempo: it needs at least 2 s of audio and this clip is 0.2 s."),
        ("quiet", "No tempo: the clip is silent."),
        ("noise", "low confidence"),
    ],
)
def test_bad_input_is_explained_in_the_page(kind, expected):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_every_view_of_a_generated_clip, default_timeout=120)
    app.session_state["kind"] = kind
    app.run()
    assert not app.exception, app.exception
    sentences = [c.value for c in app.caption] + [w.value for w in app.warning]
    assert any(expected in s for s in sentences), sentences


def test_summary_card_shows_the_key_of_the_chosen_profiles_in_every_view(app):
    from core.music import DEFAULT_PROFILES, PROFILE_CHOICES, MusicAnalysis, prepare_signal
    from ui.audio_input import load_builtin
    from ui.music_sections import CONFIG

    label, path = next((la, p) for la, p in builtin_clips().items() if "robin" in la.lower())
    clip = load_builtin(str(path), CONFIG.sample_rate, CONFIG.max_seconds)
    analysis = MusicAnalysis(prepare_signal(clip.samples, clip.sample_rate, CONFIG)[0], CONFIG)
    keys = {profiles: analysis.key_for(profiles).name for profiles in PROFILE_CHOICES}
    # A family whose key differs from the default's, so the card must follow the choice.
    chosen = next(p for p in PROFILE_CHOICES if keys[p] != keys[DEFAULT_PROFILES])

    app.selectbox(key="music_audio_builtin").set_value(label).run()
    app.segmented_control(key="music_view").set_value("Key").run()
    app.selectbox(key="music_key_profiles").set_value(DEFAULT_PROFILES).run()
    assert _metrics(app)["Key"] == keys[DEFAULT_PROFILES]
    app.selectbox(key="music_key_profiles").set_value(chosen).run()
    assert not app.exception, app.exception
    assert _metrics(app)["Key"] == keys[chosen]
    assert chosen in next(m for m in app.metric if m.label == "Key").help
    # Another view does not draw the selectbox: the choice and the card's key stay.
    app.segmented_control(key="music_view").set_value("Rhythm").run()
    assert _metrics(app)["Key"] == keys[chosen]
    app.segmented_control(key="music_view").set_value("Key").run()
    assert app.selectbox(key="music_key_profiles").value == chosen


def test_why_this_key_shows_the_bass_cues_beside_the_profiles(app):
    tchaikovsky = next(label for label in builtin_clips() if "tchaikovsky" in label.lower())
    app.selectbox(key="music_audio_builtin").set_value(tchaikovsky).run()
    app.segmented_control(key="music_view").set_value("Key").run()
    assert not app.exception, app.exception
    assert any("the bass here opens on" in m.value for m in app.markdown)
    table = next(d.value for d in app.dataframe if "profile r" in d.value.columns)
    assert list(table.columns) == ["key", "profile r", "opening bass", "final bass", "score"]
    assert table["key"].iloc[0] == _metrics(app)["Key"]


def test_pitch_view_compares_pyin_with_a_network_and_transcribes(app):
    trumpet = next(label for label in builtin_clips() if "trumpet" in label.lower())
    app.selectbox(key="music_audio_builtin").set_value(trumpet).run()
    app.segmented_control(key="music_view").set_value("Pitch").run()
    assert not app.exception, app.exception
    assert app.multiselect(key="music_pitch_trackers").value == ["pYIN", "CREPE tiny"]
    metrics = _metrics(app)
    assert metrics["pYIN"].endswith("voiced") and metrics["CREPE tiny"].endswith("voiced")
    assert any("agree within a quarter tone" in c.value for c in app.caption)
    titles = [chart.proto.spec for chart in app.get("plotly_chart")]
    for title in (
        "Pitch: pYIN, CREPE tiny",
        "What CREPE tiny sees",
        "One input frame",
        "What CREPE tiny says",
        "Piano roll",
    ):
        assert any(title in spec for spec in titles), title
    assert app.selectbox(key="music_pitch_notes_tracker").value == "CREPE tiny"
    notes = next(m.value for m in app.markdown if "notes** from" in m.value)
    assert int(notes.split("**")[1].split()[0]) >= 5  # the trumpet line has many notes
    assert any("transcription played by the app's synth" in c.value for c in app.caption)
    assert "Download the notes (MIDI)" in [b.label for b in app.get("download_button")]

    # Another network, a stricter voicing, longer notes: no exception, fewer or equal notes.
    app.multiselect(key="music_pitch_trackers").set_value(["pYIN", "CREPE tiny", "PESTO"]).run()
    app.selectbox(key="music_pitch_network").set_value("PESTO").run()
    assert any("What PESTO sees" in c.proto.spec for c in app.get("plotly_chart"))
    app.slider(key="music_pitch_threshold").set_value(0.8).run()
    app.slider(key="music_pitch_min_note").set_value(200).run()
    assert not app.exception, app.exception
    fewer = next(m.value for m in app.markdown if "notes** from" in m.value)
    assert int(fewer.split("**")[1].split()[0]) <= int(notes.split("**")[1].split()[0])


def test_crepe_full_on_the_cpu_waits_for_a_click_and_says_how_long(app):
    app.segmented_control(key="music_view").set_value("Pitch").run()
    app.multiselect(key="music_pitch_trackers").set_value(["CREPE full"]).run()
    assert not app.exception, app.exception
    assert any("CREPE full on the CPU takes about" in i.value for i in app.info)
    assert any(b.label.startswith("Run CREPE full (about") for b in app.button)
    app.multiselect(key="music_pitch_trackers").set_value([]).run()
    assert any("Choose at least one pitch tracker" in i.value for i in app.info)


def _wait_for_pitch_job(app, tracker: str) -> str:
    """Wait until the session's worker job for `tracker` ends; return its final state."""
    from core.jobs.manager import get_job_manager

    jobs = app.session_state["music_pitch_jobs"].values()
    entry = next(e for e in jobs if e["tracker"] == tracker)
    status = get_job_manager().wait(entry["job"], app.session_state["session_id"], timeout=300)
    return status.state


def test_slow_trackers_run_on_a_worker_one_after_the_other_while_the_view_stays_usable(
    app, ray_cluster
):
    # 13.9 s of speech: pYIN (about 10 s) and CREPE tiny (about 6 s) both go to a worker.
    app.selectbox(key="music_audio_builtin").set_value("198-209-0000").run()
    app.segmented_control(key="music_view").set_value("Pitch").run()
    app.multiselect(key="music_pitch_trackers").set_value(["pYIN", "CREPE tiny"]).run()
    assert not app.exception, app.exception
    assert app.get("progress") and app.button(key="music_pitch_stop_pYIN")
    assert any("CREPE tiny: waiting for your other pitch job" in c.value for c in app.caption)
    assert "pYIN" not in _metrics(app)
    assert _wait_for_pitch_job(app, "pYIN") == "finished"
    app.run()  # the poll keeps the track and starts CREPE tiny's job
    assert not app.exception, app.exception
    assert _metrics(app)["pYIN"].endswith("voiced") and "CREPE tiny" not in _metrics(app)
    assert app.button(key="music_pitch_stop_CREPE tiny")
    assert _wait_for_pitch_job(app, "CREPE tiny") == "finished"
    app.run()
    assert not app.exception, app.exception
    metrics = _metrics(app)
    assert metrics["pYIN"].endswith("voiced") and metrics["CREPE tiny"].endswith("voiced")
    crepe = next(m for m in app.metric if m.label == "CREPE tiny")
    assert crepe.proto.delta.endswith("x real time on cpu")
    assert any("agree within a quarter tone" in c.value for c in app.caption)
    assert not app.session_state["music_pitch_jobs"]  # both kept as tracks, nothing pending


def test_crepe_full_runs_on_a_worker_after_the_click_and_stops(app, ray_cluster):
    trumpet = next(label for label in builtin_clips() if "trumpet" in label.lower())
    app.selectbox(key="music_audio_builtin").set_value(trumpet).run()
    app.segmented_control(key="music_view").set_value("Pitch").run()
    app.multiselect(key="music_pitch_trackers").set_value(["pYIN", "CREPE full"]).run()
    app.button(key="music_pitch_run_CREPE full").click().run()
    assert not app.exception, app.exception
    # pYIN (quick) is drawn at once beside CREPE full's progress, which replaced the question.
    assert _metrics(app)["pYIN"].endswith("voiced") and app.get("progress")
    assert not any(b.label.startswith("Run CREPE full") for b in app.button)
    assert not any("CREPE full on the CPU takes about" in i.value for i in app.info)
    app.button(key="music_pitch_stop_CREPE full").click().run()
    assert _wait_for_pitch_job(app, "CREPE full") == "stopped"
    app.run()
    assert not app.exception, app.exception
    assert any("CREPE full was stopped" in i.value for i in app.info)
    assert app.button(key="music_pitch_again_CREPE full")
    assert "CREPE full" not in _metrics(app)


def _pitch_view_of_a_generated_clip():
    """AppTest script: a generated clip (kind in session_state) in the Pitch view."""
    import numpy as np
    import streamlit as st

    from core.audio.clip import AudioClip, AudioInfo
    from ui import music_pitch
    from ui import music_sections as sections

    sr = 22050
    rng = np.random.default_rng(0)
    samples = {
        "short": 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(0.2 * sr)) / sr),
        "silent": np.zeros(3 * sr),
        "noise": 0.3 * rng.standard_normal(3 * sr),
        "nan": np.full(3 * sr, np.nan),
    }[st.session_state["kind"]].astype(np.float32)
    info = AudioInfo(sr, 1, samples.size, samples.size / sr, "WAV")
    analysis = sections.analysis_for(AudioClip(samples, sr, "generated", info))
    if analysis is None:
        st.stop()
    music_pitch.show(analysis, (0.0, analysis.duration_seconds), "Magma")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("short", "No pitch: the clip is 0.20 s long"),
        ("silent", "No pitch: the clip is silent."),
        ("noise", "No notes: CREPE tiny found no pitch held for 80 ms"),
        ("nan", "NaN or infinite samples"),
    ],
)
def test_pitch_view_explains_bad_input(kind, expected):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_pitch_view_of_a_generated_clip, default_timeout=120)
    app.session_state["kind"] = kind
    app.run()
    assert not app.exception, app.exception
    sentences = [w.value for w in app.warning] + [e.value for e in app.error]
    assert any(expected in s for s in sentences), sentences
