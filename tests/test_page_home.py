"""Home: where deep learning sits inside machine learning, and the three paradigms (AppTest).

Also the Train page's one-line naming of its paradigm, the other end of the same lesson.
"""

from __future__ import annotations

from tests.apptest_helpers import open_page
from ui.course_map import FIELDS, PARADIGMS
from ui.registry import page_by_url


def _texts(app) -> str:
    return "\n".join([m.value for m in app.markdown] + [c.value for c in app.caption])


def _markdown_depths(block, depth=0):
    """(markdown text, nesting depth of its container) for every markdown under `block`."""
    for child in getattr(block, "children", {}).values():
        if getattr(child, "type", None) == "markdown":
            yield child.value, depth
        yield from _markdown_depths(child, depth + 1)


def test_home_nests_deep_learning_inside_machine_learning_inside_ai():
    app = open_page("pages/home.py")
    assert not app.exception, app.exception
    text = _texts(app)
    assert "Where deep learning sits" in [s.value for s in app.subheader]
    assert [f.name for f in FIELDS] == [
        "Artificial intelligence",
        "Machine learning",
        "Deep learning",
    ]
    # each field is drawn inside the box of the one before it: one level deeper each
    depths = dict(_markdown_depths(app.main))
    field_depths = [depths[f"**{f.name}**: {f.explanation}"] for f in FIELDS]
    assert field_depths[1] == field_depths[0] + 1 and field_depths[2] == field_depths[1] + 1
    assert "three paradigms" in text and "not a paradigm" in text


def test_home_names_the_three_paradigms_with_their_pages():
    app = open_page("pages/home.py")
    text = _texts(app)
    table = next(m.value for m in app.markdown if "| Paradigm |" in m.value)
    assert [p.name for p in PARADIGMS] == [
        "Supervised learning",
        "Unsupervised learning",
        "Reinforcement learning",
    ]
    for paradigm in PARADIGMS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {paradigm.name} |"))
        for url in paradigm.page_urls:
            assert page_by_url(url).title in row, (paradigm.name, url)
    assert "labels" in table and "cumulative reward" in table and "without labels" in table
    assert "deep reinforcement learning replaces the table with a network" in text


def test_train_page_names_supervised_learning():
    app = open_page("pages/train.py")
    assert not app.exception, app.exception
    caption = app.caption[0].value
    assert caption.startswith("**Supervised learning**")
    assert (
        "labelled examples" in caption
        and "loss compares its predictions with the labels" in caption
    )
