"""Sound explorer: unsupervised learning on a collection of clips, no labels used."""

import streamlit as st

from ui.explore_autoencoder import render_autoencoder
from ui.explore_collection import describe_collection, pick_collection
from ui.explore_map import choose_embedding, compute_embeddings, map_section

st.title("Sound explorer")
st.markdown(
    "**Unsupervised learning** finds structure in data without being told the answers. Each "
    "clip becomes an **embedding** (a vector of numbers), a projection draws the vectors on a "
    "2-D map, and a clustering algorithm groups clips that lie close together. Labels, when the "
    "clips have them, are only used afterwards, to see what the groups turned out to be."
)

st.header("1. The collection")
picked = pick_collection()
if picked is None:
    st.stop()
collection_id, collection = picked
describe_collection(collection)
if len(collection) < 3:
    st.error("The explorer needs at least 3 clips.")
    st.stop()

st.header("2. Embed, project, cluster")
embedding_name, model_choice = choose_embedding(collection_id)
embeddings = compute_embeddings(collection_id, collection, embedding_name, model_choice)
if embeddings is not None:  # None while a worker computes them: section 3 works meanwhile
    map_section(collection_id, collection, embedding_name, embeddings)

st.header("3. An autoencoder learns its own embedding")
st.markdown(
    "An **autoencoder** is a network trained to output its own input through a narrow "
    "**bottleneck**: an encoder squeezes each log-mel spectrogram into a few numbers, a decoder "
    "rebuilds the spectrogram from them. The loss is the reconstruction error, so no labels are "
    "needed; to rebuild well, the bottleneck must keep what matters most about each sound."
)
render_autoencoder(collection_id, collection)
