"""The Music page's Pitch view: pYIN beside pretrained networks (CREPE, PESTO), what a network
sees and says, and the notes transcribed from the chosen tracker (piano roll, playback, MIDI).

Tracks are kept per session (key `music_pitch_tracks`), so moving a display control or the
transcription's settings never re-runs a network. Quick runs happen here; slow ones (CREPE
full, pYIN on long clips) on a Ray worker, with progress and Stop, while the rest of the view
stays usable. Widget keys carry the prefix `music_pitch_`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from core.devices import resolve_device
from core.jobs.manager import get_job_manager
from core.jobs.tasks import pitch_track_of
from core.music import MusicAnalysis, NotComputable
from core.music.pitch_networks import (
    CREPE_TINY,
    CREPE_WINDOW,
    NETWORK_TRACKERS,
    PESTO,
    PYIN,
    SAMPLE_RATE,
    TRACKER_NOTES,
    TRACKERS,
    PitchTrack,
    PitchTrackerConfig,
    PitchTrackingError,
    agreement,
    crepe_frames,
    estimated_cpu_seconds,
    frame_times,
    pesto_cqt,
    pesto_cqt_midi,
    prepare_pitch_input,
    track_pitch,
)
from core.music.transcription import (
    TranscriptionConfig,
    notes_to_midi,
    render_transcription,
    transcribe,
)
from core.viz import pitch as viz
from ui.fingerprint import fingerprint
from ui.music_sections import play
from ui.task_jobs import show_task_progress, submit_task

CONFIG = PitchTrackerConfig()
# A tracker expected to take longer than this runs on a Ray worker (core.jobs.tasks
# "pitch_track"), so the server stays free: pYIN beyond about 7 s of audio, CREPE tiny beyond
# 12 s, CREPE full always. Shorter runs stay here: a worker's start costs a few seconds too.
IN_PAGE_SECONDS = 5.0
# A tracker expected to take longer waits for a click: CREPE full on the CPU beyond about 3 s
# of audio; pYIN (about 21 s for the 30 s tracked) does not.
SLOW_SECONDS = 25.0
# track key -> {"tracker", "where", "job": id (None: waits for the session's other pitch job),
# "error": a sentence, "stopped": True}
JOBS_KEY = "music_pitch_jobs"
POLL_SECONDS = 1.0
INPUT_SECONDS = 2.0  # CREPE's input frames are drawn over this much of the zoom at most
KEPT_TRACKS = 12  # tracks remembered per session (about 2 MB each for 30 s of CREPE output)
Range = tuple[float, float]


def _digest(y: np.ndarray) -> str:
    return fingerprint(y)


def _chart(fig, key: str) -> None:
    st.plotly_chart(fig, key=key, config={"displaylogo": False})


def _tracks_store() -> dict:
    return st.session_state.setdefault("music_pitch_tracks", {})


def _run(analysis: MusicAnalysis, tracker: str, device, key: tuple) -> PitchTrack | None:
    """Track with a progress bar; the finished track is kept in the session."""
    bar = st.progress(0.0, text=f"{tracker}: starting...")
    track = None
    try:
        for event in track_pitch(analysis.y, analysis.sr, tracker, device=device, config=CONFIG):
            bar.progress(min(event.fraction, 1.0), text=event.message)
            track = event.track or track
    except PitchTrackingError as error:
        bar.empty()
        st.warning(str(error))
        return None
    bar.empty()
    _keep(key, track)
    return track


def _keep(key: tuple, track: PitchTrack) -> None:
    store = _tracks_store()
    store[key] = track
    while len(store) > KEPT_TRACKS:
        store.pop(next(iter(store)))


def _tracks(analysis: MusicAnalysis, chosen: list[str], device) -> dict[str, PitchTrack]:
    """The chosen trackers' tracks: kept ones at once, quick ones now in this process, slow
    ones on a Ray worker (CREPE full and long pYIN runs only after a click), shown when done."""
    digest, store, tracks = _digest(analysis.y), _tracks_store(), {}
    seconds = min(analysis.duration_seconds, CONFIG.max_seconds)
    jobs = st.session_state.setdefault(JOBS_KEY, {})
    wanted, clicked = set(), False
    for tracker in chosen:
        where = "cpu" if tracker == PYIN else str(device)
        key = (digest, tracker, where, CONFIG)
        if key in store:
            tracks[tracker] = store[key]
            continue
        # Measured CPU speeds; on a GPU the networks take well under a second.
        estimate = estimated_cpu_seconds(tracker, seconds) if where == "cpu" else 0.0
        if estimate <= IN_PAGE_SECONDS:
            track = _run(analysis, tracker, device, key)
            if track is None:
                return {}
            tracks[tracker] = track
            continue
        wanted.add(key)
        if key in jobs:
            entry = jobs[key]
            if entry.get("error"):
                st.warning(entry["error"])
            elif entry.get("stopped"):
                st.info(f"{tracker} was stopped before it was done.")
                if st.button(f"Run {tracker} again", key=f"music_pitch_again_{tracker}"):
                    jobs[key] = {"tracker": tracker, "where": where, "job": None}
                    clicked = True
            continue
        if estimate > SLOW_SECONDS:
            st.info(
                f"{tracker} on the CPU takes about {estimate:.0f} s for these {seconds:.0f} s "
                "of audio (a GPU, chosen in the sidebar, takes well under a second). It runs "
                "on a worker process: the page stays usable meanwhile."
            )
            if not st.button(
                f"Run {tracker} (about {estimate:.0f} s)", key=f"music_pitch_run_{tracker}"
            ):
                continue
            clicked = True
        jobs[key] = {"tracker": tracker, "where": where, "job": None}
    _start_next_job(analysis, jobs, wanted)
    if clicked and any(_active(entry) for entry in jobs.values()):
        st.rerun()  # redraw without the question just answered: the progress replaces it
    if any(_active(entry) for entry in jobs.values()):
        st.fragment(_jobs_progress, run_every=POLL_SECONDS)()
    return tracks


def _active(entry: dict) -> bool:
    """A submitted job that has not ended as far as the page knows."""
    return bool(entry["job"]) and not entry.get("error") and not entry.get("stopped")


def _start_next_job(analysis: MusicAnalysis, jobs: dict, wanted: set) -> None:
    """Cancel the jobs of trackers or clips no longer shown; start the next requested one
    when none of this session's pitch jobs is running (one at a time per session)."""
    for key in [k for k in jobs if k not in wanted]:
        if _active(jobs[key]):
            get_job_manager().cancel(jobs[key]["job"], st.session_state["session_id"])
        del jobs[key]
    if any(_active(e) for e in jobs.values()):
        return
    waiting = [k for k, e in jobs.items() if e["job"] is None]
    if not waiting:
        return
    entry = jobs[waiting[0]]
    job_id = submit_task(
        "pitch_track",
        dict(y=analysis.y, sample_rate=analysis.sr, tracker=entry["tracker"], config=CONFIG),
        device=torch.device(entry["where"]),
        name=f"{entry['tracker']} pitch track",
        busy="Your previous pitch job is still stopping; this one starts in a moment.",
        retry_seconds=POLL_SECONDS,
    )
    if job_id is not None:
        entry["job"] = job_id


def _jobs_progress() -> None:
    """Progress of the session's pitch jobs; a finished track is kept and the page redrawn."""
    jobs, owner = st.session_state.get(JOBS_KEY, {}), st.session_state["session_id"]
    for key, entry in list(jobs.items()):
        if entry["job"] is None:
            st.caption(f"{entry['tracker']}: waiting for your other pitch job to end.")
            continue
        if not _active(entry):
            continue
        tracker = entry["tracker"]
        status = show_task_progress(
            entry["job"], f"{tracker} on a worker", stop_key=f"music_pitch_stop_{tracker}"
        )
        if status is not None and not status.done:
            continue
        result = get_job_manager().task_result(entry["job"], owner) if status else None
        if status is not None and status.state == "finished" and result is not None:
            _keep(key, pitch_track_of(result))
            del jobs[key]
        elif status is not None and status.state == "stopped":
            entry["stopped"] = True  # started again only by a click
        else:
            why = status.message if status is not None else "the job was lost"
            entry["error"] = f"{tracker} could not track this clip: {why}"
        st.rerun(scope="app")


def _summary(tracks: dict[str, PitchTrack]) -> None:
    cols = st.columns(len(tracks))
    for col, track in zip(cols, tracks.values(), strict=True):
        col.metric(
            track.tracker,
            f"{track.voiced_fraction:.0%} voiced",
            f"{track.speed:.1f}x real time on {track.device}",
            delta_color="off",
            delta_arrow="off",
            help=TRACKER_NOTES[track.tracker],
        )
    names = list(tracks)
    if len(names) >= 2:
        a, b = tracks[names[0]], tracks[names[1]]
        both, agree = agreement(a, b)
        if both > 0:
            st.caption(
                f"{a.tracker} and {b.tracker} both hear a pitch in {both:.0%} of the frames; "
                f"there they agree within a quarter tone {agree:.0%} of the time."
            )


def _network_view(
    analysis: MusicAnalysis, track: PitchTrack, x_range: Range, colors: str, device
) -> None:
    """What the network sees (its input) and says (its output), on the zoom range."""
    x16, _ = prepare_pitch_input(analysis.y, analysis.sr, CONFIG)
    lo = max(0.0, x_range[0])
    hi = min(x_range[1], x16.size / SAMPLE_RATE)
    if hi <= lo:
        st.info(
            f"The zoom lies past the first {CONFIG.max_seconds:g} s, the part that was tracked."
        )
        return
    if track.tracker == PESTO:
        cqt = pesto_cqt(x16, device, CONFIG)
        times = frame_times(cqt.shape[0], CONFIG)
        st.caption(
            "PESTO sees one column of a constant-Q transform at a time: 3 bins per semitone from "
            "A0 up, in dB. A note is a stack of bright lines (its partials) at fixed musical "
            "distances, which a pitch shift moves up or down together."
        )
        fig = viz.network_input_figure(
            cqt,
            times,
            pesto_cqt_midi(cqt.shape[1]),
            title="What PESTO sees: its CQT (dB)",
            axis_title="pitch",
            x_range=(lo, hi),
            colors=colors,
            note_axis=True,
        )
    else:
        # At most INPUT_SECONDS from the zoom's start, every sample drawn: 1024 numbers per
        # 10 ms frame, and a thinned waveform would alias into stripes that are not there.
        hi = min(hi, lo + INPUT_SECONDS)
        first = int(lo * SAMPLE_RATE) // CONFIG.hop_length
        segment = x16[first * CONFIG.hop_length : int(hi * SAMPLE_RATE) + 1]
        frames = crepe_frames(segment, CONFIG.hop_length)
        times = frame_times(frames.shape[0], CONFIG) + first * CONFIG.hop_length / SAMPLE_RATE
        offsets_ms = (np.arange(CREPE_WINDOW) - CREPE_WINDOW // 2) * 1000.0 / SAMPLE_RATE
        st.caption(
            "CREPE sees 1024 raw samples (64 ms) at a time, one frame every 10 ms, each shifted "
            "to mean 0 and scaled to standard deviation 1, so a quiet note looks as loud as a "
            "loud one. Each column below is one frame (up to 2 s from the zoom's start; zoom to "
            "move): a steady pitch draws evenly spaced stripes one period apart, slanted because "
            "each frame starts at another point of the cycle."
        )
        fig = viz.network_input_figure(
            frames,
            times,
            offsets_ms,
            title=f"What {track.tracker} sees: its input frames",
            axis_title="sample time in the frame (ms)",
            x_range=(lo, hi),
        )
        first_s, last_s = round(float(times[0]), 2), round(float(times[-1]), 2)
        kept = st.session_state.get("music_pitch_frame_time")
        if kept is None or not first_s <= kept <= last_s:
            # The middle frame at first; after a new zoom, the nearest frame inside it.
            middle = round(float(times[len(times) // 2]), 2)
            st.session_state["music_pitch_frame_time"] = (
                middle if kept is None else min(max(kept, first_s), last_s)
            )
        at = first_s
        if last_s > first_s:
            at = st.slider(
                "Frame to look at (s)",
                first_s,
                last_s,
                step=CONFIG.hop_seconds,
                key="music_pitch_frame_time",
            )
        index = int(np.clip(np.searchsorted(times, at), 0, frames.shape[0] - 1))
        _chart(
            viz.input_frame_figure(
                frames[index],
                offsets_ms,
                time_seconds=float(times[index]),
                axis_title="ms from the frame's centre",
                value_title="normalised sample",
                title=f"One input frame at {times[index]:.2f} s",
            ),
            "music_pitch_fig_frame",
        )
    _chart(fig, "music_pitch_fig_input")
    st.caption(
        "Its answer: one probability per pitch bin for every frame. The bright ridge is the note "
        "it hears; a ghost an octave away is the usual doubt. The line is the pitch it reports."
    )
    _chart(viz.pitch_probability_figure(track, x_range, colors), "music_pitch_fig_probabilities")


def _transcription(analysis: MusicAnalysis, tracks: dict[str, PitchTrack], x_range: Range) -> None:
    st.subheader("Notes")
    left, middle, right = st.columns(3)
    names = list(tracks)
    # Default to a network when one is on the plot: the point of the view.
    networks = [i for i, name in enumerate(names) if name in NETWORK_TRACKERS]
    tracker = left.selectbox(
        "Transcribe from",
        names,
        index=networks[0] if networks else 0,
        key="music_pitch_notes_tracker",
    )
    min_ms = middle.slider("Shortest note (ms)", 40, 400, 80, step=10, key="music_pitch_min_note")
    split = right.checkbox(
        "Cut repeated notes at onsets",
        value=True,
        key="music_pitch_split_onsets",
        help="A repeated note has no pitch change to cut at; the onset detector hears its attack.",
    )
    config = TranscriptionConfig(min_note_seconds=min_ms / 1000.0)
    onsets = analysis.onset_times if split and not analysis.is_silent else None
    track = tracks[tracker]
    notes = transcribe(track, config, onset_seconds=onsets)
    st.caption(
        "Three rules turn the line into notes: only voiced frames count; the line is smoothed "
        "(50 ms running median) and rounded to the nearest semitone, and a note is a run on one "
        f"semitone (vibrato stays one note, a glide is dropped); runs shorter than {min_ms} ms "
        "are not notes."
    )
    if not notes:
        st.warning(
            f"No notes: {tracker} found no pitch held for {min_ms} ms. Transcription needs one "
            "melodic voice (a sung or played line); noise, drums and dense chords give none."
        )
        return
    _chart(viz.piano_roll_figure(notes, track, x_range), "music_pitch_fig_roll")
    audio = render_transcription(notes, analysis.sr, total_seconds=track.audio_seconds)
    st.markdown(
        f"**{len(notes)} notes** from {tracker}: "
        + " ".join(n.name for n in notes[:24])
        + (" ..." if len(notes) > 24 else "")
    )
    left, right = st.columns(2)
    with left:
        play(
            audio,
            analysis.sr,
            f"notes{tracker}{min_ms}{split}{track.voicing_threshold}",
            x_range,
            "The transcription played by the app's synth:",
        )
    with right:
        n = min(audio.size, analysis.y.size)
        mix = (
            0.5 * analysis.y[:n] / max(float(np.abs(analysis.y[:n]).max()), 1e-9) + 0.5 * audio[:n]
        )
        play(
            mix.astype(np.float32),
            analysis.sr,
            f"notesmix{tracker}{min_ms}{split}{track.voicing_threshold}",
            x_range,
            "The clip and the transcription together: do they match?",
        )
    st.download_button(
        "Download the notes (MIDI)",
        notes_to_midi(notes),
        "transcription.mid",
        mime="audio/midi",
        key="music_pitch_download_midi",
    )


def show(analysis: MusicAnalysis, x_range: Range, colors: str) -> None:
    """The Pitch view (called by ui.music_sections.RENDERERS["Pitch"])."""
    if analysis.is_silent:
        st.warning("No pitch: the clip is silent.")
        return
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    chosen = st.multiselect(
        "Pitch trackers to compare",
        TRACKERS,
        default=[PYIN, CREPE_TINY],
        key="music_pitch_trackers",
        help="pYIN is signal processing; CREPE and PESTO are pretrained networks.",
    )
    if not chosen:
        st.info("Choose at least one pitch tracker.")
        return
    threshold = st.slider(
        "Network confidence needed to call a frame voiced",
        0.05,
        0.95,
        CONFIG.voicing_threshold,
        step=0.05,
        key="music_pitch_threshold",
    )
    tracks = {
        name: t.with_threshold(threshold) for name, t in _tracks(analysis, chosen, device).items()
    }
    if not tracks:
        return
    if any(t.truncated for t in tracks.values()):
        st.info(f"Pitch is tracked over the first {CONFIG.max_seconds:g} s of the clip.")
    _summary(tracks)
    if not any(t.voiced.any() for t in tracks.values()):
        st.warning(
            "No pitch: no tracker found a voiced frame. Pitch tracking needs a single melodic "
            "voice (noise, drums and speech-free silence have none)."
        )
        return
    _chart(viz.pitch_comparison_figure(list(tracks.values()), x_range), "music_pitch_fig_compare")
    networks = [name for name in tracks if name in NETWORK_TRACKERS]
    if networks:
        with st.expander(
            "What the network sees and says", expanded=True, key="music_pitch_network_view"
        ):
            name = st.selectbox("Network", networks, key="music_pitch_network")
            try:
                _network_view(analysis, tracks[name], x_range, colors, device)
            except (PitchTrackingError, NotComputable) as error:
                st.warning(str(error))
    _transcription(analysis, tracks, x_range)
