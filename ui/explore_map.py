"""The map of the explorer page: embedding, 2-D projection, clusters, selection, members."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from core.devices import resolve_device
from core.inference.classifier import available_models, load_choice
from core.jobs import cluster
from core.jobs.manager import ClusterError, JobError, JobLimitReached, get_job_manager
from core.lessons import unsupervised as uns
from core.viz.paradigms import embedding_map

MEMO_KEY = "explore_memo"  # {"id": collection id, "values": {key: computed value}}
AE_KEY = "explore_ae"  # set by ui.explore_autoencoder: the trained autoencoder of a collection
MFCC = "MFCC statistics"
AUTOENCODER = "Autoencoder bottleneck"
PENULTIMATE = "Penultimate layer: "
MAX_PLAYERS = 12  # audio players per list: each one sends its clip to the browser
EMBED_JOB_KEY = "explore_embed_job"  # {"key": (collection id, memo key), "job": job id}
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
    "model_embeddings" task: 15 s for 200 clips on a busy CPU). None while it runs: its
    progress shows and the page stops here; the memo keeps the result for the session."""
    key = ("model", model_choice.store_root, model_choice.run_id)
    values = memo_values(collection_id)
    if key in values:
        return values[key]
    if ("error",) + key in values:
        st.error(values[("error",) + key])
        return None
    job = st.session_state.get(EMBED_JOB_KEY)
    if job is None or job["key"] != (collection_id, key):
        job = _submit_embeddings(collection_id, collection, model_choice, device, key)
        if job is None:
            return None
    st.fragment(_embedding_progress, run_every=POLL_SECONDS)(collection_id, key)
    return None


def _submit_embeddings(collection_id, collection, model_choice, device, key) -> dict | None:
    jobs, owner = get_job_manager(), st.session_state["session_id"]
    previous = st.session_state.get(EMBED_JOB_KEY)
    if previous is not None:  # another model or collection was chosen meanwhile
        jobs.cancel(previous["job"], owner)
        st.session_state[EMBED_JOB_KEY] = None
    waiting = "Starting the worker processes (Ray; the first time takes a few seconds)..."
    try:
        model = load_choice(model_choice, device="cpu")  # a worker may have no GPU
        with st.spinner(waiting if cluster.connected() is None else "Queueing the embeddings..."):
            job_id = jobs.submit_task(
                "model_embeddings",
                dict(model=model, collection=collection),
                owner=owner,
                device=device,
                name=f"embeddings of {len(collection)} clips",
            )
    except ValueError as error:  # RunError, InferenceError
        st.error(f"That model could not be used: {error}")
        return None
    except JobLimitReached:
        st.info("The previous embedding job is still stopping; choose the model again in a moment.")
        return None
    except ClusterError as error:
        st.error(str(error))
        return None
    job = st.session_state[EMBED_JOB_KEY] = {"key": (collection_id, key), "job": job_id}
    return job


def _embedding_progress(collection_id: str, key: tuple) -> None:
    job = st.session_state.get(EMBED_JOB_KEY)
    if job is None or job["key"] != (collection_id, key):
        return
    jobs, owner = get_job_manager(), st.session_state["session_id"]
    try:
        status = jobs.status(job["job"], owner)
    except JobError:
        st.session_state[EMBED_JOB_KEY] = None
        return
    if not status.done:
        where = (
            f"number {status.queue_position} in the queue"
            if status.queue_position
            else status.message
        )
        st.progress(
            min(1.0, status.progress),
            text=f"Embedding every clip with the model on a worker: {where or status.state}",
        )
        return
    result = jobs.task_result(job["job"], owner)
    values = memo_values(collection_id)
    if result is not None and status.state == "finished":
        values[key] = result.arrays["embeddings"]
    else:
        values[("error",) + key] = f"The embeddings could not be computed: {status.message}"
    st.session_state[EMBED_JOB_KEY] = None
    st.rerun(scope="app")


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
