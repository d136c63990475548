"""The map of the explorer page: embedding, 2-D projection, clusters, selection, members.

The slow steps run on Ray workers (core.jobs.tasks): a trained model's embeddings and the
t-SNE map; the page shows their progress and stays usable (section 3 works meanwhile).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.devices import resolve_device
from core.inference.classifier import available_models, load_choice
from core.jobs.manager import get_job_manager
from core.lessons import unsupervised as uns
from core.viz.paradigms import embedding_map
from ui.task_jobs import show_task_progress, submit_task

MEMO_KEY = "explore_memo"  # {"id": collection id, "values": {key: computed value}}
AE_KEY = "explore_ae"  # set by ui.explore_autoencoder: the trained autoencoder of a collection
MFCC = "MFCC statistics"
AUTOENCODER = "Autoencoder bottleneck"
PENULTIMATE = "Penultimate layer: "
MAX_PLAYERS = 12  # audio players per list: each one sends its clip to the browser
EMBED_JOB_KEY = "explore_embed_job"  # {"key": (collection id, memo key), "job": job id}
MAP_JOB_KEY = "explore_map_job"  # the same for the t-SNE map
POLL_SECONDS = 1.0


def memo_values(collection_id: str) -> dict:
    """The session's computed values for this collection ({} when the collection changed)."""
    store = st.session_state.get(MEMO_KEY)
    if store is None or store["id"] != collection_id:
        store = st.session_state[MEMO_KEY] = {"id": collection_id, "values": {}}
    return store["values"]


def memo(collection_id: str, key: tuple, compute: Callable[[], object]):
    """Compute once per collection and key; everything is dropped when the collection changes."""
    values = memo_values(collection_id)
    if key not in values:
        values[key] = compute()
    return values[key]


def trained_autoencoder(collection_id: str) -> dict | None:
    state = st.session_state.get(AE_KEY)
    return state if state and state["id"] == collection_id and state["steps"] > 0 else None


def _model_choices() -> dict:
    try:
        choices = available_models(st.session_state.get("session_id"))
    except (OSError, ValueError):
        return {}  # no run store yet: the menu simply lists no trained models
    return {PENULTIMATE + choice.label: choice for choice in choices}


def choose_embedding(collection_id: str) -> tuple[str, object]:
    """The embedding menu: MFCC statistics, the autoencoder's code once trained, and the
    penultimate layer of each trained classifier in the run store."""
    models = _model_choices()
    options = [MFCC] + ([AUTOENCODER] if trained_autoencoder(collection_id) else []) + list(models)
    name = st.selectbox(
        "Embedding",
        options,
        key="explore_embedding",
        help="How each clip becomes a vector of numbers.",
    )
    return name, models.get(name)


def compute_embeddings(collection_id: str, collection: uns.Collection, name: str, model_choice):
    """(n_clips, dims) embeddings for the chosen method; None with a message on failure."""
    device = resolve_device(st.session_state.get("device_choice", "auto"))
    if name == AUTOENCODER:
        state = trained_autoencoder(collection_id)
        return state["codes"] if state else None
    if name == MFCC:
        return memo(
            collection_id,
            ("mfcc",),
            lambda: uns.mfcc_statistics([c.samples for c in collection.clips], device=device),
        )
    return _model_embeddings(collection_id, collection, model_choice, device)


def _model_embeddings(collection_id: str, collection: uns.Collection, model_choice, device):
    """A trained classifier's penultimate layer, computed by a Ray worker (the
    "model_embeddings" task: 15 s for 200 clips on a busy CPU). None while it runs."""

    def arguments() -> dict:
        # On the CPU: a worker may have no GPU (the task moves it to the job's device).
        return dict(model=load_choice(model_choice, device="cpu"), collection=collection)

    return worker_value(
        collection_id,
        ("model", model_choice.store_root, model_choice.run_id),
        EMBED_JOB_KEY,
        "model_embeddings",
        arguments,
        device=device,
        name=f"embeddings of {len(collection)} clips",
        doing="Embedding every clip with the model on a worker",
        pick=lambda result: result.arrays["embeddings"],
    )


def project_map(collection_id: str, embedding_name: str, method: str, embeddings: np.ndarray):
    """The (n, 2) map of the embeddings: PCA here (milliseconds), t-SNE on a Ray worker (the
    "embedding_map" task: 5 s for 200 clips on an idle 2-core machine, 33 s on a loaded one).
    None while the worker draws it; kept for the session like every value of the page."""
    key = ("map", embedding_name, method)
    if method != "t-SNE":
        return memo(collection_id, key, lambda: uns.project_2d(embeddings, method))
    return worker_value(
        collection_id,
        key,
        MAP_JOB_KEY,
        "embedding_map",
        lambda: dict(embeddings=np.asarray(embeddings, dtype=np.float32), method=method),
        device=torch.device("cpu"),  # scikit-learn: a GPU would sit idle
        name=f"a t-SNE map of {len(embeddings)} clips",
        doing="Drawing the t-SNE map on a worker",
        pick=lambda result: result.arrays["xy"],
    )


def worker_value(
    collection_id: str,
    key: tuple,
    slot: str,
    task: str,
    arguments: Callable[[], dict],
    *,
    device,
    name: str,
    doing: str,
    pick: Callable,
):
    """A value of the page that a Ray worker computes (core.jobs.tasks `task`), or None while
    it is queued or running: its progress and a Stop button show meanwhile, polled by a
    fragment that redraws the page once the value is in the memo. `slot`: the session key
    holding {"key": (collection id, key), "job": job id}; choosing something else cancels
    the job in the slot. arguments() builds the task's arguments (ValueError: a sentence)."""
    values = memo_values(collection_id)
    if key in values:
        return values[key]
    if ("error",) + key in values:
        st.error(values[("error",) + key])
        return None
    if values.get(("stopped",) + key):
        st.info("Stopped before it was done.")
        if not st.button("Start it again", key=f"{slot}_again"):
            return None
        del values[("stopped",) + key]
    job = st.session_state.get(slot)
    if job is None or job["key"] != (collection_id, key):
        if job is not None:  # another choice was made meanwhile
            get_job_manager().cancel(job["job"], st.session_state["session_id"])
            st.session_state[slot] = None
        try:
            kwargs = arguments()
        except ValueError as error:  # RunError, InferenceError
            st.error(f"That could not be started: {error}")
            return None
        job_id = submit_task(
            task,
            kwargs,
            device=device,
            name=name,
            busy="The previous job is still stopping; it starts again in a moment.",
            retry_seconds=POLL_SECONDS,
        )
        if job_id is None:
            return None
        st.session_state[slot] = {"key": (collection_id, key), "job": job_id}
    st.fragment(_poll_worker_value, run_every=POLL_SECONDS)(collection_id, key, slot, doing, pick)
    return None


def _poll_worker_value(collection_id: str, key: tuple, slot: str, doing: str, pick) -> None:
    job = st.session_state.get(slot)
    if job is None or job["key"] != (collection_id, key):
        return
    status = show_task_progress(job["job"], doing, stop_key=f"{slot}_stop")
    if status is not None and not status.done:
        return
    values = memo_values(collection_id)
    result = None
    if status is not None and status.state == "finished":
        result = get_job_manager().task_result(job["job"], st.session_state["session_id"])
    if result is not None:
        values[key] = pick(result)
    elif status is not None and status.state == "stopped":
        values[("stopped",) + key] = True
    else:
        message = status.message if status is not None else "the job was lost"
        values[("error",) + key] = f"It could not be computed: {message}"
    st.session_state[slot] = None
    st.rerun(scope="app")


def map_section(
    collection_id: str, collection: uns.Collection, embedding_name: str, embeddings: np.ndarray
) -> None:
    """Map settings, the 2-D map (t-SNE drawn by a worker), the clusters and their members."""
    projection, cluster_config = map_settings(len(collection))
    try:
        clusters = memo(
            collection_id,
            ("clusters", embedding_name, cluster_config),
            lambda: uns.cluster(embeddings, cluster_config),
        )
        with st.spinner(f"Drawing the {projection} map..."):
            xy = project_map(collection_id, embedding_name, projection, embeddings)
    except ValueError as error:
        st.error(str(error))
        return
    if xy is None:
        return
    st.caption(
        f"{embedding_name}: {embeddings.shape[1]} numbers per clip, standardised. Clusters are "
        "found in that full space; the map is only a picture of it, so a cluster can look split."
    )
    selected = show_map(collection, xy, clusters)
    if selected:
        st.subheader(f"Selected: {len(selected)} clip(s)")
        play_clips(collection, selected)
    else:
        st.caption(
            "Click a point to listen (the box and lasso tools in the chart's toolbar select "
            "several)."
        )
    show_agreement(collection, clusters)
    st.subheader("What is in each cluster")
    show_cluster_members(collection, clusters)


def map_settings(n_clips: int) -> tuple[str, uns.ClusterConfig]:
    cols = st.columns(3)
    projection = cols[0].selectbox(
        "2-D map",
        uns.PROJECTIONS,
        key="explore_projection",
        help="PCA: linear, keeps global spread. t-SNE: keeps "
        "neighbourhoods, distances between groups mean little.",
    )
    method = cols[1].radio("Clustering", uns.CLUSTERINGS, key="explore_clustering", horizontal=True)
    if method == "k-means":
        k = cols[2].slider(
            "k (clusters)",
            2,
            max(3, min(20, n_clips - 1)),
            min(10, max(2, n_clips - 1)),
            key="explore_k",
        )
        return projection, uns.ClusterConfig("k-means", k=k)
    size = cols[2].slider(
        "Smallest cluster",
        2,
        max(3, min(40, n_clips // 2)),
        max(2, min(5, n_clips // 2)),
        key="explore_min_cluster",
    )
    return projection, uns.ClusterConfig("HDBSCAN", min_cluster_size=size)


def cluster_names(clusters: np.ndarray) -> list[str]:
    return ["noise" if c == -1 else f"cluster {c}" for c in clusters]


def show_map(collection: uns.Collection, xy: np.ndarray, clusters: np.ndarray) -> list[int]:
    """The scatter (coloured by cluster or by a label); returns the selected clip indices."""
    color = st.radio(
        "Colour points by",
        ["clusters", *collection.label_names],
        horizontal=True,
        key="explore_color",
    )
    groups = cluster_names(clusters) if color == "clusters" else collection.labels(color)
    hover = [", ".join(f"{k}: {v}" for k, v in c.labels.items()) for c in collection.clips]
    figure = embedding_map(
        xy, groups, [c.name for c in collection.clips], hover_labels=hover, legend_title=color
    )
    event = st.plotly_chart(
        figure, on_select="rerun", selection_mode=("points", "box", "lasso"), key="explore_map"
    )
    points = event.selection.points if event and event.selection else []
    selected = []
    for point in points:
        data = point.get("customdata")
        index = data[0] if isinstance(data, list) else data
        if isinstance(index, int | float) and 0 <= int(index) < len(collection):
            selected.append(int(index))
    return list(dict.fromkeys(selected))


def play_clips(collection: uns.Collection, indices: list[int]) -> None:
    """Players for up to MAX_PLAYERS clips, three per row."""
    shown = indices[:MAX_PLAYERS]
    for row in range(0, len(shown), 3):
        for col, index in zip(st.columns(3), shown[row : row + 3], strict=False):
            clip = collection.clips[index]
            col.caption(clip.name)
            col.audio(clip.samples, sample_rate=collection.sample_rate)
    if len(indices) > len(shown):
        st.caption(f"... and {len(indices) - len(shown)} more (first {MAX_PLAYERS} shown).")


def show_agreement(collection: uns.Collection, clusters: np.ndarray) -> None:
    scores = uns.label_agreement(clusters, collection)
    if not scores:
        st.caption("These clips carry no labels, so there is nothing to compare the clusters with.")
        return
    for col, (kind, ari) in zip(st.columns(len(scores)), scores.items(), strict=True):
        col.metric(f"Adjusted Rand index vs {kind}", f"{ari:.2f}")
    st.caption(
        "The labels were never used to find the clusters. 1 = the clusters are exactly the "
        "label's groups; about 0 = no better than chance. Which label do the clusters follow?"
    )


def cluster_table(collection: uns.Collection, clusters: np.ndarray) -> pd.DataFrame:
    """Size of each cluster and its most common value of each label."""
    rows = []
    for name in sorted(set(cluster_names(clusters)), key=lambda n: (n == "noise", len(n), n)):
        members = [i for i, n in enumerate(cluster_names(clusters)) if n == name]
        row = {"cluster": name, "clips": len(members)}
        for kind in collection.label_names:
            value, count = Counter(collection.labels(kind)[i] for i in members).most_common(1)[0]
            row[f"most common {kind}"] = f"{value} ({count / len(members):.0%})"
        rows.append(row)
    return pd.DataFrame(rows)


def show_cluster_members(collection: uns.Collection, clusters: np.ndarray) -> None:
    table = cluster_table(collection, clusters)
    st.dataframe(table, hide_index=True, key="explore_cluster_table")
    pick = st.selectbox(
        "Listen to a cluster", table["cluster"].tolist(), key="explore_cluster_pick"
    )
    names = cluster_names(clusters)
    play_clips(collection, [i for i, n in enumerate(names) if n == pick])
