"""Train page, section 5: understand a finished run.

Everything here reads the run store (summary.json's evaluation and metrics.jsonl), so a
run is explained the same way after a reload or days later. Clips are played from the
data set the session trained on when it is still known (the validation split is re-done
deterministically, core.training.support.validation_examples); otherwise the misclassified
clips are played from the file references the evaluation saved.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.data.datasets import AudioDataset, AudioExample, builtin_digits
from core.training.runs import RunError, RunStore
from core.training.support import validation_examples
from core.training.trainer import TrainConfig
from core.viz.training import (
    confusion_matrix_figure,
    embedding_figure,
    lr_loss_figure,
    per_class_figure,
    per_class_table,
)
from ui.train_dataset import example_view
from ui.train_live import RESULT_PENDING_KEY, RUN_DATA_KEY

NO_DATA = AudioDataset("", (), ())
MAX_CLIPS = 6
# Clips of a confusion cell drawn at once; the rest wait in a tracked expander. Each clip is a
# player and a picture: six of them were a third of what a run's end cost Chromium (0.3-0.4 s
# of 1.1-1.3 s on a 2-core machine), paid by every student of a class at the same moment.
FIRST_CLIPS = 2
RESULT_TABS = ["Confusion matrix", "Per class", "Learning rate and loss", "Embedding map"]


def results_section(store: RunStore, owner: str) -> None:
    """Run picker and accuracy, then one tab at a time: the confusion matrix with its clips,
    per-class scores, learning rate and loss, the embedding map."""
    runs = [r for r in store.list_runs(owner) if r.status in ("finished", "stopped", "failed")]
    if not runs:
        st.caption("Results appear here when a training ends.")
        return
    ids = [r.run_id for r in runs]
    pending = st.session_state.pop(RESULT_PENDING_KEY, None)
    if pending in ids or st.session_state.get("train_result_run") not in ids:
        st.session_state["train_result_run"] = pending if pending in ids else ids[0]
    names = {r.run_id: f"{r.name or r.run_id} · {r.status} · {r.created_utc}" for r in runs}
    run_id = st.selectbox("Run", ids, format_func=names.get, key="train_result_run")
    try:
        info, summary = store.get(run_id, owner), store.read_summary(run_id)
    except (RunError, ValueError, OSError) as error:
        st.error(f"This run cannot be read: {error}")
        return
    evaluation = summary.get("evaluation")
    if not evaluation:
        st.error(summary.get("message") or "This run ended without an evaluation.")
        return
    if summary.get("message"):
        st.caption(summary["message"])
    examples, dataset = _examples(run_id, info.train_config, len(evaluation.get("true", [])))
    st.metric(
        "Validation accuracy",
        f"{evaluation['accuracy']:.1%}",
        help=f"macro F1 {evaluation.get('macro_f1', 0):.2f}, loss {evaluation['loss']:.3f}",
    )
    # Tracked tabs (a rerun on switching): only the open one is drawn. All four at once were
    # up to a dozen plotly figures, about 3 s of Chromium's main thread the first time a run's
    # results appeared (2-core machine), taken from the workers of a class sharing it.
    tabs = st.tabs(RESULT_TABS, key="train_result_tab", on_change="rerun")
    confusion_tab, per_class_tab, curves_tab, map_tab = tabs
    if confusion_tab.open:
        with confusion_tab:
            _confusion(evaluation, examples, dataset)
    if per_class_tab.open:
        with per_class_tab:
            _per_class(evaluation)
    if curves_tab.open:
        with curves_tab:
            st.subheader("Learning rate and loss")
            st.plotly_chart(lr_loss_figure(store.read_metrics(run_id)), key="train_lr_loss")
    if map_tab.open:
        with map_tab:
            _embeddings(evaluation, examples, dataset)


def _per_class(evaluation: dict) -> None:
    """Precision, recall and F1 of each class: a table and a chart."""
    st.subheader("Per class")
    table = per_class_table(
        evaluation["labels"],
        evaluation["precision"],
        evaluation["recall"],
        evaluation["f1"],
        evaluation["support"],
    )
    left, right = st.columns(2)
    with left:
        st.dataframe(
            table,
            hide_index=True,
            key="train_per_class",
            column_config={
                c: st.column_config.ProgressColumn(c, format="percent", min_value=0, max_value=1)
                for c in ("precision", "recall", "F1")
            },
        )
    with right:
        st.plotly_chart(per_class_figure(table), key="train_per_class_chart")


def _examples(
    run_id: str, train_config: dict, count: int
) -> tuple[list[AudioExample] | None, AudioDataset]:
    """The run's validation examples in evaluation order (None if they cannot be found)."""
    known = st.session_state.get(RUN_DATA_KEY, {}).get(run_id)
    dataset = known["dataset"] if known else None
    if dataset is None and train_config.get("data") == "builtin:digits":
        dataset = builtin_digits()  # a reload: right when the run used every clip
    if dataset is None:
        return None, NO_DATA
    try:
        config = TrainConfig.from_dict(train_config)
    except (ValueError, TypeError):
        return None, NO_DATA
    return validation_examples(dataset, config, count), dataset


def _clip(index: int, evaluation: dict, examples, dataset) -> AudioExample | None:
    if examples is not None:
        return examples[index]
    wrong = next((m for m in evaluation.get("misclassified", []) if m.get("index") == index), None)
    if wrong is None or str(wrong.get("source", "")).startswith("memory:"):
        return None
    return AudioExample(
        wrong["source"],
        0,
        wrong.get("group", ""),
        wrong.get("start_seconds", 0.0),
        wrong.get("duration_seconds"),
    )


def _confusion(evaluation: dict, examples, dataset) -> None:
    st.subheader("Confusion matrix: listen to your errors")
    labels = [str(label) for label in evaluation["labels"]]
    confusion = np.asarray(evaluation["confusion"])
    true, predicted = np.asarray(evaluation["true"]), np.asarray(evaluation["predicted"])
    cells = sorted(
        ((i, j) for i in range(len(labels)) for j in range(len(labels)) if confusion[i, j]),
        key=lambda c: (c[0] == c[1], -confusion[c]),
    )  # errors first
    names = {
        f"true {labels[i]} → predicted {labels[j]} · {confusion[i, j]} clip(s)": (i, j)
        for i, j in cells
    }
    left, right = st.columns([3, 2])
    with left:
        event = st.plotly_chart(
            confusion_matrix_figure(confusion, labels),
            on_select="rerun",
            selection_mode="points",
            key="train_confusion",
        )
    clicked = next((name for name, c in names.items() if c == _selected_cell(event)), None)
    if clicked is not None and clicked != st.session_state.get("train_cell_clicked"):
        st.session_state["train_cell_clicked"] = clicked
        st.session_state["train_cell"] = clicked  # the menu follows a click on the matrix
    with right:
        if not cells:
            return
        if st.session_state.get("train_cell") not in names:
            st.session_state.pop("train_cell", None)  # a cell of another run
        choice = st.selectbox(
            "Cell", list(names), key="train_cell", help="Or click a cell of the matrix."
        )
        cell = names[choice]
        members = np.flatnonzero((true == cell[0]) & (predicted == cell[1])).tolist()
        _cell_clips(members[:FIRST_CLIPS], evaluation, examples, dataset)
        later = members[FIRST_CLIPS:MAX_CLIPS]
        if later:
            # One label for every cell: a new label would be a new expander, closed again
            # when the student picks another cell.
            more = st.expander("More clips of this cell", key="train_cell_more", on_change="rerun")
            if more.open:
                with more:
                    _cell_clips(later, evaluation, examples, dataset)
        if len(members) > MAX_CLIPS:
            st.caption(f"... and {len(members) - MAX_CLIPS} more.")


def _cell_clips(indices: list[int], evaluation: dict, examples, dataset) -> None:
    """A caption, a player and a spectrogram picture for each validation clip in `indices`."""
    for index in indices:
        example = _clip(index, evaluation, examples, dataset)
        if example is None:
            st.caption(f"clip {index}: its audio is not available in this session.")
            continue
        st.caption(example.ref)
        example_view(dataset, example, height=100, picture=True)


def _custom(point: dict) -> list:
    """A selected point's customdata as a list (numpy rows arrive as {"0": .., "1": ..})."""
    data = point.get("customdata")
    if isinstance(data, dict):
        return [data[k] for k in sorted(data, key=int)]
    return data if isinstance(data, list) else [data]


def _selected_cell(event) -> tuple[int, int] | None:
    points = event.selection.points if event and event.selection else []
    for point in points:
        data = _custom(point)
        if len(data) >= 2 and all(isinstance(v, int | float) for v in data[:2]):
            return int(data[0]), int(data[1])
    return None


def _embeddings(evaluation: dict, examples, dataset) -> None:
    options = [k for k in ("projection_tsne", "projection_pca") if evaluation.get(k)]
    if not options:
        st.caption(
            "This run saved no embedding map: it had fewer than two validation clips, or its "
            "network has no hidden layer to read."
        )
        return
    st.subheader("What the network learned: its embedding of the validation clips")
    kind = st.radio(
        "Map",
        options,
        horizontal=True,
        key="train_projection",
        format_func={"projection_tsne": "t-SNE", "projection_pca": "PCA"}.get,
    )
    labels = [str(label) for label in evaluation["labels"]]
    true = [labels[t] for t in evaluation["true"]]
    predicted = [labels[p] for p in evaluation["predicted"]]
    names = (
        [e.ref for e in examples]
        if examples is not None
        else [f"clip {i}" for i in range(len(true))]
    )
    figure = embedding_figure(np.asarray(evaluation[kind], dtype=float), true, predicted, names)
    left, right = st.columns([3, 2])
    with left:
        event = st.plotly_chart(
            figure, on_select="rerun", selection_mode="points", key="train_embedding"
        )
    points = event.selection.points if event and event.selection else []
    with right:
        if not points:
            st.caption("Click a point to hear that clip. Crosses are clips the network got wrong.")
            return
        first = _custom(points[0])[0]
        index = int(first) if isinstance(first, int | float) else -1
        example = _clip(index, evaluation, examples, dataset) if 0 <= index < len(true) else None
        if example is None:
            st.caption("This clip's audio is not available in this session.")
            return
        st.caption(f"{example.ref}: true {true[index]}, predicted {predicted[index]}")
        example_view(dataset, example, height=160, key="train_embedding_spec")
