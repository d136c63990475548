"""The pages of the dashboard: one entry each, in navigation order.

`dashboard.py` builds `st.navigation` from this list, the Home page links to it and the
tests open every entry, so a page exists for the app exactly when it is listed here.
Register only pages that work.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageEntry:
    script: str  # page script, relative to the repository root
    title: str  # shown in the navigation and as the page's st.title
    icon: str  # Material icon name, e.g. ":material/home:"
    section: str  # navigation group
    url_path: str  # the page's address: http://host:port/<url_path>
    summary: str  # one line for the Home page's course map


PAGES: tuple[PageEntry, ...] = (
    PageEntry(
        "pages/home.py",
        "Home",
        ":material/home:",
        "Start",
        "home",
        "What the course covers and where each idea lives in this app.",
    ),
    PageEntry(
        "pages/tensors.py",
        "Tensor playground",
        ":material/data_array:",
        "Foundations",
        "tensors",
        "Tensors by hand: ranks, matmul step by step, broadcasting, "
        "shared memory, dtypes, generators, a safe console.",
    ),
    PageEntry(
        "pages/network.py",
        "Network builder",
        ":material/account_tree:",
        "Foundations",
        "network",
        "A network as a composition of functions: layers, shapes, parameters, "
        "code, and a playground that shows the function it learns.",
    ),
    PageEntry(
        "pages/music.py",
        "Music analysis",
        ":material/music_note:",
        "Audio",
        "music",
        "See and hear what a piece is made of: spectra, "
        "chroma, tempo and beats, key, pitch, parts, structure.",
    ),
    PageEntry(
        "pages/train.py",
        "Train",
        ":material/model_training:",
        "Audio",
        "train",
        "Train a classifier on digits, a zip or your own recordings: "
        "tune with sliders, watch it learn, listen to its errors, compare runs.",
    ),
    PageEntry(
        "pages/classify.py",
        "Classify",
        ":material/hearing:",
        "Audio",
        "classify",
        "Give a trained model your clips: its answer, a "
        "timeline for long recordings, and what it listened to.",
    ),
    PageEntry(
        "pages/explore.py",
        "Sound explorer",
        ":material/scatter_plot:",
        "Learning paradigms",
        "explore",
        "Unsupervised learning: embed a collection, "
        "map it in 2-D, find clusters, train an autoencoder.",
    ),
    PageEntry(
        "pages/reinforce.py",
        "Reinforcement learning",
        ":material/sports_esports:",
        "Learning paradigms",
        "reinforce",
        "An agent learns by reward: bandits (explore or exploit?) "
        "and a melody writer you can hear.",
    ),
)


def page_by_url(url_path: str) -> PageEntry | None:
    """The registered page with this url_path, or None when it is not (yet) registered."""
    return next((page for page in PAGES if page.url_path == url_path), None)


def sections() -> dict[str, list[PageEntry]]:
    """Registered pages grouped by section, sections in first-appearance order."""
    grouped: dict[str, list[PageEntry]] = {}
    for page in PAGES:
        grouped.setdefault(page.section, []).append(page)
    return grouped
