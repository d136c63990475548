"""The autoencoder section of the explorer: train live, compare, listen, reuse the code.

The training runs in a Ray worker (core.jobs.tasks "autoencoder" through the job manager), never
in the web server: the page sends the session's weights and the patches, polls the job's
progress from a fragment (the loss curve grows meanwhile, the rest of the page stays usable)
and loads the trained weights, codes and reconstructions when it ends.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from core.devices import resolve_device
from core.jobs.manager import ClusterError, JobError, JobLimitReached, get_job_manager
from core.lessons import unsupervised as uns
from core.viz.paradigms import line_curves, spectrogram_pair
from ui.explore_map import AE_KEY, memo
from ui.task_jobs import queueing_spinner

CONFIG = uns.AutoencoderConfig()
POLL_SECONDS = 1.0


def _fresh_state(collection_id: str) -> dict:
    torch.manual_seed(CONFIG.seed)
    return {
        "id": collection_id,
        "model": uns.ConvAutoencoder(CONFIG),
        "mel": None,
        "losses": [],
        "steps": 0,
        "codes": None,
        "recons": None,
        "job": None,
        "job_seen": 0,
        "job_losses": [],
        "error": "",
    }


def autoencoder_state(collection_id: str) -> dict:
    """This collection's autoencoder (untrained until the first click)."""
    state = st.session_state.get(AE_KEY)
    if state is None or state["id"] != collection_id:
        state = st.session_state[AE_KEY] = _fresh_state(collection_id)
    return state


def _loss_figure(state: dict):
    mel = state["mel"].patches
    baseline = uns.reconstruction_error(mel, np.broadcast_to(mel.mean(axis=0), mel.shape))
    return line_curves(
        {"reconstruction loss (batch)": state["losses"]},
        title="Reconstruction loss",
        x_title="step",
        y_title="mean squared error",
        smooth=max(1, len(state["losses"]) // 50),
        reference=baseline,
        reference_name="guessing the average spectrogram",
    )


def start_training(state: dict, collection: uns.Collection, steps: int) -> None:
    """Queue `steps` more training steps on a worker (the model continues where it is)."""
    if state["mel"] is None:  # log-mel patches of every clip, made on the first click
        state["mel"] = memo(
            state["id"],
            ("patches",),
            lambda: uns.log_mel_patches([c.samples for c in collection.clips], CONFIG),
        )
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    weights = {k: v.detach().cpu() for k, v in state["model"].state_dict().items()}
    try:
        with queueing_spinner("the training"):
            state["job"] = get_job_manager().submit_task(
                "autoencoder",
                dict(state=weights, config=CONFIG, patches=state["mel"].patches, steps=steps),
                owner=st.session_state["session_id"],
                device=device,
                name=f"autoencoder, {steps} steps",
            )
        state["job_losses"] = []
    except JobLimitReached as error:
        st.warning(str(error))
    except ClusterError as error:
        st.error(str(error))


def _watch(state: dict) -> None:
    """Progress and the growing loss curve of the running job; its result once it ends."""
    jobs, owner = get_job_manager(), st.session_state["session_id"]
    try:
        status = jobs.status(state["job"], owner)
        for record in jobs.task_events(state["job"], owner, since=state.get("job_seen", 0)):
            state["job_losses"] += record["values"].get("losses", [])
            state["job_seen"] = state.get("job_seen", 0) + 1
    except JobError as error:
        st.warning(str(error))
        state["job"] = None
        return
    where = (
        f"number {status.queue_position} in the queue" if status.queue_position else status.message
    )
    st.progress(min(1.0, status.progress), text=f"{status.state}: {where}")
    if state["job_losses"]:
        st.plotly_chart(
            _loss_figure({**state, "losses": state["losses"] + state["job_losses"]}),
            key="explore_ae_live",
        )
    if status.done:
        _finish(state, jobs.task_result(state["job"], owner), status)
        st.rerun(scope="app")  # the embedding menu above now offers the bottleneck


def _finish(state: dict, result, status) -> None:
    state["job"], state["job_seen"], state["job_losses"] = None, 0, []
    if result is None:  # failed, stopped before a step, or the worker was lost
        state["error"] = status.message or "The autoencoder's training did not finish."
        return
    state["model"].load_state_dict(result.tensors)
    state["losses"] = state["losses"] + [float(v) for v in result.arrays["losses"]]
    state["steps"] += int(result.values["steps"])
    state["codes"], state["recons"] = result.arrays["codes"], result.arrays["recons"]
    state["error"] = ""


def show_reconstruction(collection_id: str, collection: uns.Collection, state: dict) -> None:
    """Original against reconstruction for one clip, as pictures and as sound."""
    index = st.selectbox(
        "Clip",
        range(len(collection)),
        key="explore_ae_clip",
        format_func=lambda i: collection.clips[i].name,
    )
    original, recon = state["mel"].patches[index, 0], state["recons"][index, 0]
    frames_per_second = collection.sample_rate / CONFIG.hop_length
    st.plotly_chart(
        spectrogram_pair(original, recon, frames_per_second=frames_per_second),
        key="explore_ae_spectrograms",
    )
    peak = float(state["mel"].peak_db[index])
    sounds = memo(
        collection_id,
        ("griffin-lim", index, state["steps"]),
        lambda: (
            uns.patch_to_audio(original, peak, CONFIG),
            uns.patch_to_audio(recon, peak, CONFIG),
        ),
    )
    cols = st.columns(3)
    cols[0].caption("The clip itself")
    cols[0].audio(collection.clips[index].samples, sample_rate=collection.sample_rate)
    cols[1].caption("Its log-mel spectrogram, inverted")
    cols[1].audio(sounds[0], sample_rate=collection.sample_rate)
    cols[2].caption("The autoencoder's reconstruction, inverted")
    cols[2].audio(sounds[1], sample_rate=collection.sample_rate)
    st.caption(
        "A log-mel spectrogram keeps how much energy each band has, but throws away the phase "
        "and the fine frequency detail. To listen, the mel bands are spread back over linear "
        "frequencies and **Griffin-Lim** guesses phases that agree with those magnitudes "
        "(librosa.feature.inverse.mel_to_audio), so even the original sounds a little metallic: "
        "compare the reconstruction with the middle player, not with the clip."
    )


def render_autoencoder(collection_id: str, collection: uns.Collection) -> None:
    state = autoencoder_state(collection_id)
    cols = st.columns([2, 1, 1])
    steps = cols[0].slider("Training steps", 20, 600, 200, 10, key="explore_ae_steps")
    running = bool(state.get("job"))
    if cols[1].button(
        "Train the autoencoder", key="explore_ae_train", type="primary", disabled=running
    ):
        if len(collection) < 2:
            st.error("The autoencoder needs at least 2 clips to learn from.")
        else:
            start_training(state, collection, steps)
            if state.get("job"):
                st.rerun()  # draw Train disabled and Stop for the queued job
    if running and cols[2].button("Stop", key="explore_ae_stop"):
        get_job_manager().cancel(state["job"], st.session_state["session_id"])
    elif not running and cols[2].button("Start over", key="explore_ae_reset"):
        state = st.session_state[AE_KEY] = _fresh_state(collection_id)
    if running:
        st.fragment(_watch, run_every=POLL_SECONDS)(state)
    if state.get("error"):
        st.warning(state["error"])
    if not state["steps"]:
        if not state.get("job"):
            st.info(
                "Press **Train the autoencoder**: it learns to squeeze each spectrogram "
                f"through {CONFIG.bottleneck} numbers and rebuild it."
            )
        return
    st.plotly_chart(_loss_figure(state), key="explore_ae_loss")
    error = uns.reconstruction_error(state["mel"].patches, state["recons"])
    st.caption(
        f"After {state['steps']} steps the reconstruction error over all clips is "
        f"{error:.4f}. Its {CONFIG.bottleneck}-number code is now an embedding choice "
        "in the map above."
    )
    show_reconstruction(collection_id, collection, state)
