"""The Train page under AppTest: a short real training on a few built-in digits, by widget key."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
from streamlit.testing.v1 import AppTest

from core.jobs.manager import get_job_manager
from core.training.trainer import TrainConfig
from tests.apptest_helpers import DASHBOARD, open_page
from tests.audio_fixtures import wav_bytes
from tests.conftest import REPO_ROOT, sine

PAGE = "pages/train.py"


def _texts(at, kind: str) -> list[str]:
    return [element.value for element in getattr(at, kind)]


def _chart_keys(at) -> set[str]:
    """Keys of the plotly charts on the page (AppTest lists them as unknown elements)."""
    keys = set()
    for element in at.main.get("plotly_chart"):
        proto = getattr(element, "proto", None)
        keys.add(getattr(proto, "id", ""))
    return keys


def _runs_table(at):
    """The run comparison table (the dataframe with a status column)."""
    tables = [d.value for d in at.dataframe if "status" in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


def _wait_for_job(at) -> str:
    owner = at.session_state["session_id"]
    job_id = at.session_state["train_job"]
    status = get_job_manager().wait(job_id, owner, timeout=120)
    assert status.done, "the training did not end within 120 s"
    return status


def _wait_until_training(at) -> None:
    owner, job_id = at.session_state["session_id"], at.session_state["train_job"]
    deadline = time.monotonic() + 120
    while (status := get_job_manager().status(job_id, owner)).run_id is None:
        assert not status.done and time.monotonic() < deadline, status
        time.sleep(0.1)


def _quick_settings(at) -> None:
    at.number_input(key="train_limit").set_value(8).run()
    at.slider(key="train_epochs").set_value(1)
    at.select_slider(key="train_batch").set_value(32)
    at.toggle(key="train_tsne").set_value(False)  # t-SNE costs seconds on a loaded CPU
    at.run()


def test_short_training_then_a_stopped_run_both_kept_and_compared(ray_cluster):
    # Another student's run on the same server must never show up in this session.
    get_job_manager().store.create_run(TrainConfig(), owner="0123456789ab", name="not yours")
    at = open_page(PAGE)
    assert not at.exception
    assert at.title[0].value == "Train"
    _quick_settings(at)
    assert not at.exception
    assert not at.error, _texts(at, "error")
    assert at.slider(key="train_members").value == 3
    assert any("(3 members of" in text for text in _texts(at, "caption"))
    at.button(key="train_start").click().run()
    assert not at.exception
    status = _wait_for_job(at)
    assert status.state == "finished", status.message
    # Untouched settings train the engine's default recipe (normalisation, equaliser, ensemble).
    saved = get_job_manager().store.get(status.run_id, owner=at.session_state["session_id"])
    assert saved.train_config["normalization"] == TrainConfig().normalization
    assert saved.train_config["augment"]["eq_db"] == TrainConfig().augment.eq_db
    assert saved.train_config["members"] == TrainConfig().members == 3
    assert get_job_manager().store.load(status.run_id).spec.members == 3
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, _texts(at, "error")
    assert any("Finished 1 epochs" in text for text in _texts(at, "success"))
    # The results' tabs: only the open one is drawn (the confusion matrix first).
    keys = _chart_keys(at)
    assert any("train_live_curves" in k for k in keys) and any("train_confusion" in k for k in keys)
    assert not any("train_lr_loss" in k or "train_embedding" in k for k in keys), keys
    for tab, key in (
        ("Per class", "train_per_class_chart"),
        ("Learning rate and loss", "train_lr_loss"),
        ("Embedding map", "train_embedding"),
    ):
        at.session_state["train_result_tab"] = tab
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        keys = _chart_keys(at)
        assert any(key in k for k in keys) and not any("train_confusion" in k for k in keys)
    at.session_state["train_result_tab"] = "Confusion matrix"
    at.run()
    # The results show the new run; the confusion cells name true and predicted classes.
    assert at.selectbox(key="train_result_run").value == status.run_id
    cells = at.selectbox(key="train_cell").options
    assert cells and all("true" in c and "predicted" in c for c in cells)
    table = _runs_table(at)
    assert list(table["status"]) == ["finished"]
    assert 0.0 <= table.iloc[0]["val accuracy"] <= 1.0
    # One run: its curves are section 4's; the comparison waits for a second run.
    assert not any("train_compare_chart" in k for k in _chart_keys(at))
    assert not [m for m in at.multiselect if m.key == "train_compare_runs"]
    assert any("Train a second run" in text for text in _texts(at, "caption"))
    assert at.selectbox(key="train_manage_run").value == status.run_id

    # A second, longer run stopped once its worker trains (Stop pressed twice): kept as a
    # stopped run. (Stopped while still queued, it would leave no run.)
    at.slider(key="train_epochs").set_value(5).run()
    at.button(key="train_start").click().run()
    _wait_until_training(at)
    at.button(key="train_stop").click().run()
    at.button(key="train_stop").click().run()
    assert not at.exception
    assert any("Already stopping" in i or "already ended" in i for i in _texts(at, "info")), (
        _texts(at, "info"),
        _texts(at, "error"),
        _texts(at, "success"),
    )
    second = _wait_for_job(at)
    assert second.state == "stopped", second.message
    at.run()
    assert not at.exception
    table = _runs_table(at)
    assert sorted(table["status"]) == ["finished", "stopped"]
    assert at.multiselect(key="train_compare_runs").value == list(table["run"])
    assert any("train_compare_chart" in k for k in _chart_keys(at))
    assert "not yours" not in set(table["name"])
    # The script of the finished run, the archive of the stopped one, then delete it.
    scripts = [b for b in at.get("download_button") if "script" in str(b.proto.label)]
    assert scripts
    stopped = table.loc[table["status"] == "stopped", "run"].iloc[0]
    at.selectbox(key="train_manage_run").set_value(stopped).run()
    at.button(key="train_delete").click().run()
    assert any("for good" in w for w in _texts(at, "warning"))
    at.button(key="train_delete_yes").click().run()
    assert not at.exception
    assert list(_runs_table(at)["status"]) == ["finished"]


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_bad_zips_recordings_and_server_paths_each_get_a_sentence(monkeypatch, tmp_path):
    monkeypatch.delenv("AUDIO_DL_DATA_ROOTS", raising=False)
    at = open_page(PAGE)
    tone = {f: wav_bytes(sine(f, 0.5, 16000), 16000) for f in (300, 500, 700, 900)}

    at.segmented_control(key="train_data_source").set_value("Zip of class folders").run()
    assert at.button(key="train_start").disabled
    at.file_uploader(key="train_zip").upload(
        "notes.zip", _zip({"a/readme.txt": b"hi"}), "application/zip"
    ).run()
    assert any("at least two class folders" in e for e in _texts(at, "error"))
    one_clip = _zip({"low/1.wav": tone[300], "low/2.wav": tone[500], "high/1.wav": tone[900]})
    at.file_uploader(key="train_zip").upload("two.zip", one_clip, "application/zip").run()
    assert not at.exception
    assert any("high (1)" in e for e in _texts(at, "error"))  # a class with one clip
    assert at.button(key="train_start").disabled

    at.segmented_control(key="train_data_source").set_value("Record per class").run()
    assert any("Record or upload a few clips" in i for i in _texts(at, "info"))
    silence = wav_bytes(np.zeros(8000, dtype=np.float32), 16000)
    at.audio_input(key="train_rec_0").upload("recording.wav", silence).run()
    assert any("silent" in e for e in _texts(at, "error"))
    for key, freqs in (("train_rec_0", (300, 500)), ("train_rec_1", (700, 900))):
        for f in freqs:
            at.audio_input(key=key).upload("recording.wav", tone[f]).run()
    assert not at.exception
    clips = at.session_state["train_clips"]
    assert len(clips["yes"]) == len(clips["no"]) == 2
    # two classes, two clips each: the stratified split keeps one of each for validation
    assert not any("validation share" in e for e in _texts(at, "error"))
    assert not at.button(key="train_start").disabled
    remove = [b for b in at.button if str(b.key).startswith("train_rec_rm_1_")]
    remove[0].click().run()
    assert len(at.session_state["train_clips"]["no"]) == 1
    assert any("no (1)" in e for e in _texts(at, "error"))
    assert at.button(key="train_start").disabled

    at.segmented_control(key="train_data_source").set_value("Server folder").run()
    assert any("switched off" in e for e in _texts(at, "error"))
    monkeypatch.setenv("AUDIO_DL_DATA_ROOTS", str(tmp_path))
    at.text_input(key="train_server_path").input("/etc").run()
    assert not at.exception
    assert any("outside the folders" in e for e in _texts(at, "error"))
    assert at.button(key="train_start").disabled


def _open_augmentation(at) -> None:
    at.session_state["train_augment_open"] = True
    at.run()


def test_the_equaliser_is_offered_for_log_mel_only():
    at = open_page(PAGE)
    # Drawn only while its expander is open; closed, a caption says what is on.
    assert not [c for c in at.checkbox if (c.key or "").startswith("train_aug_")]
    on = "equaliser, frequency warp, time stretch, time shift, time masks, frequency masks"
    assert f"Augmentation on: {on}." in _texts(at, "caption")
    _open_augmentation(at)
    assert at.checkbox(key="train_aug_eq").value and not at.checkbox(key="train_aug_eq").disabled
    at.radio(key="train_feature_kind").set_value("mfcc").run()
    assert not at.exception
    assert at.checkbox(key="train_aug_eq").disabled  # MFCCs are not decibels
    assert at.slider(key="train_aug_eq_strength").disabled
    # Closed again, the switches keep their values and MFCCs still leave the equaliser out.
    at.checkbox(key="train_aug_mixup").check().run()
    at.session_state["train_augment_open"] = False
    at.run()
    assert not [c for c in at.checkbox if (c.key or "").startswith("train_aug_")]
    on = "frequency warp, time stretch, time shift, time masks, frequency masks, mixup"
    assert f"Augmentation on: {on}." in _texts(at, "caption")
    _open_augmentation(at)
    assert at.checkbox(key="train_aug_mixup").value and at.checkbox(key="train_aug_eq").value


RAY_FAILS = """
from tests.apptest_helpers import open_page
at = open_page("pages/train.py")
at.number_input(key="train_limit").set_value(4).run()
at.button(key="train_start").click().run()
print("EXCEPTIONS:", [e.value for e in at.exception])
print("ERRORS:", [e.value for e in at.error])
at.run()  # the rest of the page keeps working
print("TITLE:", at.title[0].value, "EXCEPTIONS:", len(at.exception))
"""


def test_ray_failing_to_start_gives_a_sentence_in_the_page(tmp_path):
    # A fresh process (this one's Ray may be up); Ray's temp folder under a file cannot be made.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**os.environ, "RAY_TMPDIR": str(blocker / "ray"), "PYTHONPATH": str(REPO_ROOT)}
    for name in ("RAY_ADDRESS", "AUDIO_DL_RAY_ADDRESS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", RAY_FAILS],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert "EXCEPTIONS: []" in out, (out, result.stderr[-3000:])
    assert 'ERRORS: ["The local worker cluster (Ray) could not start' in out, out
    assert "TITLE: Train EXCEPTIONS: 0" in out, out


def test_a_queued_training_shows_its_place_and_a_second_tab_attaches_to_it(
    ray_cluster, monkeypatch
):
    from core.data.datasets import builtin_digits
    from core.training.support import limit_per_class

    monkeypatch.setenv("AUDIO_DL_JOB_CPUS", "2")  # one training fills this 2-CPU cluster
    jobs = get_job_manager()
    other = "fedcba987654"
    busy = jobs.submit(
        TrainConfig(epochs=200, members=1, tsne=False),
        owner=other,
        dataset=limit_per_class(builtin_digits(), 4),
        device="cpu",
    )
    try:
        deadline = time.monotonic() + 120
        while jobs.status(busy, other).state == "queued":  # its worker is starting
            assert time.monotonic() < deadline
            time.sleep(0.2)
        at = open_page(PAGE)
        _quick_settings(at)
        owner = at.session_state["session_id"]
        # A second tab of the same session (its id rides in the URL), open before the first
        # starts a training: its Start button is still enabled.
        tab = AppTest.from_file(DASHBOARD, default_timeout=120)
        tab.query_params["sid"] = owner
        tab.run()
        tab.switch_page(PAGE).run()
        _quick_settings(tab)
        assert tab.session_state["session_id"] == owner

        at.button(key="train_start").click().run()
        assert not at.exception
        job_id = at.session_state["train_job"]
        assert jobs.status(job_id, owner).state == "queued"
        info = _texts(at, "info")
        assert any("you are number 1 in the queue" in i for i in info), info
        assert jobs.overview(owner).own_queue_positions == (1,)  # what the sidebar shows
        assert at.button(key="train_start").disabled and not at.button(key="train_stop").disabled

        # Its click finds the session's job (no second one: JobLimitReached guards a race).
        tab.button(key="train_start").click().run()
        assert not tab.exception
        assert tab.session_state["train_job"] == job_id
        assert tab.button(key="train_start").disabled
        assert len(jobs.jobs(owner)) == 1
        jobs.cancel(job_id, owner)
        assert jobs.status(job_id, owner).state == "stopped"
    finally:
        jobs.cancel(busy, other)
        jobs.wait(busy, other, timeout=60)


def _long_tones(folder) -> None:
    """Two classes of 1.5 s harmonic tones at 22.05 kHz with partials up to 7 kHz, like
    sustained instrument notes (they start at once and do not vary in length)."""
    rate = 22050
    t = np.arange(int(1.5 * rate)) / rate
    for name, f0s in (("low", (220, 247, 262, 294)), ("high", (440, 494, 523, 587))):
        (folder / name).mkdir(parents=True)
        for f0 in f0s:
            tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(7000 // f0) + 1))
            tone *= np.exp(-t) * np.minimum(1.0, t / 0.005)
            (folder / name / f"{f0}.wav").write_bytes(
                wav_bytes(0.2 * tone.astype(np.float32), rate)
            )


def test_a_folder_of_notes_changes_the_shown_defaults_and_reasons(monkeypatch, tmp_path):
    _long_tones(tmp_path / "notes")
    monkeypatch.setenv("AUDIO_DL_DATA_ROOTS", str(tmp_path))
    at = open_page(PAGE)
    # The digits: today's recipe, and the reasons say why.
    assert at.select_slider(key="train_sample_rate").value == 8000
    assert at.select_slider(key="train_n_mels").value == 32
    assert at.toggle(key="train_trim").value and at.slider(key="train_clip_seconds").value == 1.0
    text = " ".join(_texts(at, "markdown"))
    assert "8 kHz because" in text and "Trim and stretch" in text
    # ... and the augmentation switches show the recipe's augmentation (the digits' own).
    _open_augmentation(at)
    on = ("eq", "freq_warp", "time_stretch", "time_shift", "time_masks", "freq_masks")
    assert all(at.checkbox(key=f"train_aug_{name}").value for name in on)
    assert at.slider(key="train_aug_eq_strength").value == TrainConfig().augment.eq_db

    at.segmented_control(key="train_data_source").set_value("Server folder").run()
    at.text_input(key="train_server_path").input(str(tmp_path / "notes")).run()
    assert not at.exception
    assert at.select_slider(key="train_sample_rate").value == 16000
    assert at.select_slider(key="train_n_mels").value == 64
    assert not at.toggle(key="train_trim").value
    assert at.slider(key="train_clip_seconds").value == 1.5
    text = " ".join(_texts(at, "markdown"))
    assert "16 kHz because your clips have energy up to" in text
    assert "No trimming" in text and "Trim and stretch" not in text
    assert any("sustained sounds" in e.label for e in at.expander)
    # The recipe's augmentation (none for sustained sounds) is what the switches show.
    assert "Augmentation on: none." in _texts(at, "caption")
    _open_augmentation(at)  # closed while no data was loaded
    assert not any(at.checkbox(key=f"train_aug_{name}").value for name in on)
    assert "No augmentation" in text

    # Sustained sounds start from the ready instrument model (transfer learning), and say why.
    assert at.selectbox(key="train_start_from").value == "instruments-cnn"
    assert at.select_slider(key="train_lr").value == 1e-3  # fine-tuning's gentler rate
    assert "Start from the ready model instruments-cnn" in text
    assert at.selectbox(key="train_model").disabled and not at.button(key="train_start").disabled

    # Every choice stays adjustable: a moved slider is kept on the next rerun.
    at.select_slider(key="train_sample_rate").set_value(22050).run()
    at.toggle(key="train_trim").set_value(True).run()
    at.checkbox(key="train_aug_mixup").check().run()
    assert at.select_slider(key="train_sample_rate").value == 22050
    assert at.toggle(key="train_trim").value and at.checkbox(key="train_aug_mixup").value
    # ... but the ready model reads 16 kHz only: the page says so and Start waits,
    assert any("needs the input it learnt on" in w.value for w in at.warning)
    assert not at.exception and at.button(key="train_start").disabled
    # ... until its input (trimming and clip length too) is set back with one click,
    at.button(key="train_start_use_input").click().run()
    assert at.select_slider(key="train_sample_rate").value == 16000
    assert not at.toggle(key="train_trim").value, [w.value for w in at.warning]
    assert not any("needs the input" in w.value for w in at.warning)
    assert not at.button(key="train_start").disabled
    # ... or the weights start at random and any input trains.
    at.select_slider(key="train_sample_rate").set_value(22050).run()
    at.selectbox(key="train_start_from").set_value("").run()
    assert at.select_slider(key="train_lr").value == 3e-3  # from scratch: the usual rate
    assert not any("needs the input" in w.value for w in at.warning)
    assert not at.button(key="train_start").disabled
    assert not at.selectbox(key="train_model").disabled

    # Back to the digits: their own defaults return.
    at.segmented_control(key="train_data_source").set_value("Built-in spoken digits").run()
    _open_augmentation(at)
    assert at.select_slider(key="train_sample_rate").value == 8000
    assert at.toggle(key="train_trim").value
    assert at.checkbox(key="train_aug_eq").value and not at.checkbox(key="train_aug_mixup").value


def test_a_sweep_queues_its_trials_past_the_session_limit_and_ranks_them(ray_cluster):
    at = open_page(PAGE)
    _quick_settings(at)
    # Long enough to watch a trial's live curves: a warm worker starts a trial at once, and 3
    # epochs could end between the check below and the page's run.
    at.slider(key="train_epochs").set_value(8)
    owner = at.session_state["session_id"]
    at.multiselect(key="train_sweep_lrs").set_value([1e-3, 1e-2])
    at.multiselect(key="train_sweep_members").set_value([1]).run()
    assert not at.exception
    plan = [d.value for d in at.dataframe if "learning rate" in d.value.columns][0]
    assert list(plan["learning rate"]) == [1e-3, 1e-2] and "members" not in plan.columns
    assert any(
        "2 trainings of 8 epochs each" in c and "run 1 at a time" in c
        for c in _texts(at, "caption")
    )
    at.button(key="train_sweep_start").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert not [w for w in _texts(at, "warning") if "sweep" in w.lower()]
    sweep_id = at.session_state["train_sweep"]
    jobs = get_job_manager()
    assert len(jobs.sweep_jobs(sweep_id, owner)) == 2  # both queued: the limit of 1 let them
    assert any("Sweep: 0 of 2" in h for h in _texts(at, "subheader"))
    # Start refuses with a sentence while the sweep has the session's share.
    at.button(key="train_start").click().run()
    assert any("sweep is still queued or running" in w for w in _texts(at, "warning"))
    deadline, watched = time.monotonic() + 300, set()
    while not all(s.done for s in jobs.sweep_jobs(sweep_id, owner)):
        assert time.monotonic() < deadline, "the sweep did not end within 300 s"
        running = [s for s in jobs.sweep_jobs(sweep_id, owner) if s.state == "running"]
        logged = [s for s in running if len(jobs.events(s.job_id, owner)) >= 2]
        if logged and not watched:
            # A running trial draws its live curves like an ordinary run.
            trial = int(logged[0].sweep["trial"]) + 1
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            if jobs.status(logged[0].job_id, owner).done:
                continue  # it ended while the page ran: its curves moved to the results
            ids = [chart.proto.id for chart in at.get("plotly_chart")]
            assert any(f"train_sweep_curves_{trial}" in i for i in ids), ids
            captions = _texts(at, "caption")
            assert any(c.startswith(f"Trial {trial} (learning rate ") for c in captions)
            watched.add(trial)
        time.sleep(0.5)
    assert watched, "no trial was seen running with its curves"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Sweep: 2 of 2" in h for h in _texts(at, "subheader"))
    ranking = [d.value for d in at.dataframe if "rank" in d.value.columns]
    assert len(ranking) == 1, [list(d.value.columns) for d in at.dataframe]
    table = ranking[0]
    assert list(table["rank"]) == [1, 2] and set(table["learning rate"]) == {1e-3, 1e-2}
    assert list(table["val accuracy"]) == sorted(table["val accuracy"], reverse=True)
    assert any("Best so far: trial" in c for c in _texts(at, "caption"))
    at.button(key="train_sweep_overlay").click().run()
    assert sorted(at.multiselect(key="train_compare_runs").value) == sorted(table["run"])


def test_a_class_cluster_offers_workers_and_two_workers_train_one_run(ray_cluster, monkeypatch):
    at = open_page(PAGE)
    # One machine with no GPU (the embedded Ray here): more processes would not be faster.
    assert "train_workers" not in [n.key for n in at.number_input]
    # A class cluster is configured: the option appears (this process's Ray is already up, so
    # the jobs still run on it).
    monkeypatch.setenv("AUDIO_DL_RAY_ADDRESS", "ray-head.example:6379")
    at = open_page(PAGE)
    _quick_settings(at)
    at.number_input(key="train_workers").set_value(2).run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    owner, job_id = at.session_state["session_id"], at.session_state["train_job"]
    status = get_job_manager().wait(job_id, owner, timeout=600)
    assert status.state == "finished", status.message
    assert status.resources == "2 workers × 1 CPU"
    run = get_job_manager().store.get(status.run_id, owner=owner)
    assert run.train_config["workers"] == 2
    assert get_job_manager().store.read_summary(status.run_id)["world_size"] == 2
    at.run()
    assert not at.exception
    assert any("Finished 1 epochs" in text for text in _texts(at, "success"))


def _confusion_cell_app(clips: int) -> None:
    """The confusion section alone, on a known evaluation: `clips` clips of the first class
    heard as the second."""
    from core.data.datasets import builtin_digits
    from ui.train_results import _confusion

    dataset = builtin_digits()
    first = [e for e in dataset.examples if e.label == 0][:clips]
    labels = dataset.labels[:2]
    evaluation = {
        "labels": labels,
        "confusion": [[0, clips], [0, 0]],
        "true": [0] * clips,
        "predicted": [1] * clips,
    }
    _confusion(evaluation, first, dataset)


def test_a_confusion_cell_draws_two_clips_then_the_rest_on_demand():
    for clips, first, later in ((9, 2, 4), (2, 2, 0)):
        at = AppTest.from_function(_confusion_cell_app, kwargs={"clips": clips}, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.get("audio")) == len(at.get("image")) == first
        assert len(at.expander) == (1 if later else 0)
        if later:
            assert at.expander[0].label == "More clips of this cell"
            at.session_state["train_cell_more"] = True
            at.run()
            assert len(at.get("audio")) == first + later  # six at most; the rest counted
            assert any("... and 3 more." in c.value for c in at.caption)
