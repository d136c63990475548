"""Home: the course mapped onto the app, each idea linked to the page that shows it."""

import streamlit as st

from ui.course_map import COURSE_TOPICS, FIELDS, PARADIGMS
from ui.registry import page_by_url

st.title("Home")
st.markdown(
    "**Audio DL Studio** is where you learn deep learning for music and audio by doing: explore "
    "tensors, build networks as compositions of functions, train audio classifiers with sliders, "
    "classify your own recordings and take music apart. Everything runs on this machine, on the "
    "device chosen in the sidebar."
)
st.info(
    "A neural network is a **function** that maps inputs to outputs based on **parameters**. "
    "Beyond one layer it is a **composition of functions**; deep learning studies compositions "
    "deep enough.",
    icon=":material/functions:",
)

st.subheader("Where deep learning sits")
# each field drawn inside the one it belongs to: AI > machine learning > deep learning
box = st.container()
for field in FIELDS:
    box = box.container(border=True)
    box.markdown(f"**{field.name}**: {field.explanation}")
rows = []
for paradigm in PARADIGMS:
    pages = [page_by_url(url) for url in paradigm.page_urls]
    titles = ", ".join(page.title for page in pages if page is not None)
    rows.append(f"| {paradigm.name} | {paradigm.learns_from} | {paradigm.goal} | {titles} |")
st.markdown(
    "The three paradigms of machine learning, and where this app teaches each:\n\n"
    "| Paradigm | Learns from | Goal | Pages |\n| --- | --- | --- | --- |\n" + "\n".join(rows)
)
st.caption(
    "The networks on the Train, Classify and Sound explorer pages are deep; the "
    "Reinforcement learning page keeps its values in tables small enough to read (deep "
    "reinforcement learning replaces the table with a network)."
)

groups: dict[str, list] = {}
for topic in COURSE_TOPICS:
    groups.setdefault(topic.group, []).append(topic)

for group, topics in groups.items():
    st.subheader(group)
    columns = st.columns(len(topics))
    for column, topic in zip(columns, topics, strict=True):
        with column.container(border=True):
            st.markdown(f"**{topic.title}**")
            st.caption(topic.explanation)
            page = page_by_url(topic.page_url)
            if page is not None:
                st.page_link(page.script, label=f"Open {page.title}", icon=page.icon)
            else:
                st.caption(":material/schedule: This page is being built.")
