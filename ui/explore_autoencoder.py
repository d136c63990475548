"""The autoencoder section of the explorer: train live, compare, listen, reuse the code."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from core.devices import resolve_device
from core.lessons import unsupervised as uns
from core.viz.paradigms import line_curves, spectrogram_pair
from ui.explore_map import AE_KEY, memo

CONFIG = uns.AutoencoderConfig()


def _fresh_state(collection_id: str) -> dict:
    torch.manual_seed(CONFIG.seed)
    return {"id": collection_id, "model": uns.ConvAutoencoder(CONFIG), "mel": None,
            "losses": [], "steps": 0, "codes": None, "recons": None}  # fmt: skip


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
        {"reconstruction loss (batch)": state["losses"]}, title="Reconstruction loss",
        x_title="step", y_title="mean squared error", smooth=max(1, len(state["losses"]) // 50),
        reference=baseline, reference_name="guessing the average spectrogram",
    )  # fmt: skip


def train_live(state: dict, collection: uns.Collection, steps: int) -> None:
    """Bounded training with a progress bar and a loss curve redrawn about ten times."""
    if state["mel"] is None:  # log-mel patches of every clip, made on the first click
        state["mel"] = memo(state["id"], ("patches",), lambda: uns.log_mel_patches(
            [c.samples for c in collection.clips], CONFIG))  # fmt: skip
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    progress = st.progress(0.0, text="training the autoencoder...")
    live = st.empty()
    redraw = max(1, steps // 10)
    events = uns.train_autoencoder(state["model"], state["mel"].patches, CONFIG, steps=steps,
                                   device=device)  # fmt: skip
    for event in events:
        state["losses"].append(event.loss)
        state["steps"] += 1
        if event.step % redraw == 0 or event.step == steps:
            progress.progress(
                event.step / steps, text=f"step {state['steps']}, loss {event.loss:.4f}"
            )
            live.plotly_chart(_loss_figure(state), key=f"explore_ae_live_{state['steps']}")
    state["codes"], state["recons"] = uns.autoencoder_outputs(state["model"], state["mel"].patches,
                                                              device=device)  # fmt: skip
    state["model"].cpu()  # keep the session's model off a shared GPU between clicks


def show_reconstruction(collection_id: str, collection: uns.Collection, state: dict) -> None:
    """Original against reconstruction for one clip, as pictures and as sound."""
    index = st.selectbox("Clip", range(len(collection)), key="explore_ae_clip",
                         format_func=lambda i: collection.clips[i].name)  # fmt: skip
    original, recon = state["mel"].patches[index, 0], state["recons"][index, 0]
    frames_per_second = collection.sample_rate / CONFIG.hop_length
    st.plotly_chart(spectrogram_pair(original, recon, frames_per_second=frames_per_second),
                    key="explore_ae_spectrograms")  # fmt: skip
    peak = float(state["mel"].peak_db[index])
    sounds = memo(collection_id, ("griffin-lim", index, state["steps"]), lambda: (
        uns.patch_to_audio(original, peak, CONFIG), uns.patch_to_audio(recon, peak, CONFIG)))  # fmt: skip
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
    if cols[1].button("Train the autoencoder", key="explore_ae_train", type="primary"):
        if len(collection) < 2:
            st.error("The autoencoder needs at least 2 clips to learn from.")
        else:
            train_live(state, collection, steps)
            st.rerun()  # the embedding menu above now offers the bottleneck
    if cols[2].button("Start over", key="explore_ae_reset"):
        state = st.session_state[AE_KEY] = _fresh_state(collection_id)
    if not state["steps"]:
        st.info("Press **Train the autoencoder**: it learns to squeeze each spectrogram through "
                f"{CONFIG.bottleneck} numbers and rebuild it.")  # fmt: skip
        return
    st.plotly_chart(_loss_figure(state), key="explore_ae_loss")
    error = uns.reconstruction_error(state["mel"].patches, state["recons"])
    st.caption(f"After {state['steps']} steps the reconstruction error over all clips is "
               f"{error:.4f}. Its {CONFIG.bottleneck}-number code is now an embedding choice "
               "in the map above.")  # fmt: skip
    show_reconstruction(collection_id, collection, state)
