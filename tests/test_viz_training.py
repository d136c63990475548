"""Plot builders of the Train page: the figures carry exactly the numbers they are given."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.viz.training import (
    class_counts_figure,
    compare_curves_figure,
    confusion_matrix_figure,
    embedding_figure,
    lr_loss_figure,
    per_class_figure,
    per_class_table,
    refill_training_curves,
    training_curve_series,
    training_curve_styles,
    training_curves_figure,
)

RECORDS = [
    {"kind": "step", "epoch": 1, "step": 2, "lr": 1e-3, "loss": 2.0, "accuracy": 0.1},
    {"kind": "step", "epoch": 1, "step": 4, "lr": 2e-3, "loss": 1.5, "accuracy": 0.3},
    {"kind": "epoch_end", "epoch": 1, "step": 4, "lr": 2e-3, "loss": 1.6, "accuracy": 0.25},
    {"kind": "evaluation", "epoch": 1, "step": 4, "lr": 2e-3, "val_loss": 1.2, "val_accuracy": 0.5},
    {"kind": "step", "epoch": 2, "step": 6, "lr": 1e-3, "loss": float("nan"), "accuracy": 0.4},
    {"kind": "epoch_end", "epoch": 2, "step": 8, "lr": 1e-4, "loss": 0.9, "accuracy": 0.7},
    {
        "kind": "evaluation",
        "epoch": 2,
        "step": 8,
        "lr": 1e-4,
        "val_loss": 0.8,
        "val_accuracy": 0.75,
    },
]


def _trace(fig, name, xaxis="x"):
    return next(t for t in fig.data if t.name == name and (t.xaxis or "x") == xaxis)


def test_training_curves_split_train_and_validation_and_drop_non_finite_points():
    fig = training_curves_figure(RECORDS)
    running = _trace(fig, "train (running)")
    assert list(running.x) == [2, 4] and list(running.y) == [2.0, 1.5]  # the NaN step is left out
    assert list(_trace(fig, "train (epoch)").y) == [1.6, 0.9]
    assert list(_trace(fig, "validation").y) == [1.2, 0.8]
    assert list(_trace(fig, "validation", "x2").y) == [0.5, 0.75]
    assert list(_trace(fig, "train (epoch)", "x2").y) == [0.25, 0.7]
    empty = training_curves_figure([])
    assert all(len(t.x or ()) == 0 for t in empty.data)


def test_refilling_the_live_curves_equals_building_them_anew():
    # The live view builds the figure once and refills it as events arrive.
    for so_far in (0, 1, 3, 5):
        live = training_curves_figure(RECORDS[:so_far], height=300, title="live")
        refilled = refill_training_curves(live, RECORDS)
        assert refilled is live
        fresh = training_curves_figure(RECORDS, height=300, title="live")
        assert refilled.to_plotly_json() == fresh.to_plotly_json()
    # and back to fewer records (a new job in the same figure) leaves no old points behind
    assert refill_training_curves(live, []).to_plotly_json() == (
        training_curves_figure([], height=300, title="live").to_plotly_json()
    )


def test_the_curve_series_of_a_records_tail_continue_those_of_its_head_as_the_figure_draws():
    """The pushed live view draws the curves itself from these series and styles, sent
    piece by piece: what it draws must be what the figure draws."""
    fig = training_curves_figure(RECORDS)
    styles = training_curve_styles()
    assert [s["name"] for s in styles] == [t.name for t in fig.data]
    assert [s["panel"] for s in styles] == ["loss"] * 3 + ["accuracy"] * 3
    assert [s["legend"] for s in styles] == [t.showlegend for t in fig.data]
    assert [s["markers"] for s in styles] == ["markers" in t.mode for t in fig.data]
    assert [s["colour"] for s in styles] == [t.line.color for t in fig.data]
    assert styles[0]["width"] == 1 and styles[0]["opacity"] == 0.5
    for cut in range(len(RECORDS) + 1):
        head, tail = training_curve_series(RECORDS[:cut]), training_curve_series(RECORDS[cut:])
        joined = [(hx + tx, hy + ty) for (hx, hy), (tx, ty) in zip(head, tail, strict=True)]
        assert joined == [(list(t.x), list(t.y)) for t in fig.data]


def test_lr_loss_figure_puts_the_rate_on_a_log_axis():
    fig = lr_loss_figure(RECORDS)
    rate = _trace(fig, "learning rate")
    assert list(rate.y) == [1e-3, 2e-3, 2e-3, 1e-3, 1e-4]
    assert fig.layout.yaxis2.type == "log"
    assert list(_trace(fig, "train loss").y) == [2.0, 1.5, 1.6, 0.9]


def test_confusion_matrix_colours_by_row_share_and_makes_every_cell_clickable():
    confusion = [[8, 2, 0], [1, 1, 0], [0, 0, 0]]
    fig = confusion_matrix_figure(confusion, ["a", "b", "c"])
    (cells,) = fig.data
    shares = np.asarray(cells.marker.color).reshape(3, 3)
    assert np.allclose(shares, [[0.8, 0.2, 0], [0.5, 0.5, 0], [0, 0, 0]])  # an empty row stays 0
    assert list(cells.text) == ["8", "2", "", "1", "1", "", "", "", ""]
    pairs = {(int(c[0]), int(c[1])) for c in cells.customdata}
    assert pairs == {(i, j) for i in range(3) for j in range(3)}
    # The marker at (true b, predicted a) carries [1, 0] and its count.
    k = next(
        n for n, (x, y) in enumerate(zip(cells.x, cells.y, strict=True)) if (x, y) == ("a", "b")
    )
    assert list(cells.customdata[k]) == [1, 0, 1]
    with pytest.raises(ValueError, match="3x3"):
        confusion_matrix_figure([[1, 2], [3, 4]], ["a", "b", "c"])


def test_embedding_figure_marks_errors_and_skips_points_without_coordinates():
    xy = np.array([[0, 0], [1, 1], [np.nan, np.nan], [3, 3]], dtype=float)
    fig = embedding_figure(xy, ["a", "a", "b", "b"], ["a", "b", "b", "b"], ["c0", "c1", "c2", "c3"])
    a, b = (_trace(fig, "a"), _trace(fig, "b"))
    assert list(a.customdata) == [0, 1] and list(a.marker.symbol) == ["circle", "x"]
    assert list(b.customdata) == [3]  # row 2 has no t-SNE position
    with pytest.raises(ValueError):
        embedding_figure(np.zeros((3, 3)), ["a"] * 3, ["a"] * 3, ["n"] * 3)


def test_per_class_table_and_bars_agree_with_sklearn():
    from sklearn.metrics import precision_recall_fscore_support

    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2])
    p, r, f, s = precision_recall_fscore_support(true, pred, zero_division=0)
    table = per_class_table(["x", "y", "z"], p, r, f, s)
    assert list(table.columns) == ["class", "precision", "recall", "F1", "clips"]
    assert table["clips"].tolist() == [3, 2, 4]
    fig = per_class_figure(table)
    assert np.allclose(_trace(fig, "F1").y, f) and math.isclose(_trace(fig, "recall").y[2], 0.75)


def test_class_counts_and_run_comparison():
    fig = class_counts_figure({"a": 5, "b": 2}, val_counts={"a": 1})
    assert list(_trace(fig, "training").y) == [5, 2] and list(_trace(fig, "validation").y) == [1, 0]
    assert fig.layout.barmode == "stack"
    other = [dict(r, val_accuracy=r["val_accuracy"] / 2) for r in RECORDS if "val_accuracy" in r]
    fig = compare_curves_figure({"run A": RECORDS, "run B": other}, metric="val_accuracy")
    assert list(_trace(fig, "run A").y) == [0.5, 0.75] and list(_trace(fig, "run B").y) == [
        0.25,
        0.375,
    ]
    assert list(_trace(fig, "run A").x) == [1, 2]  # epochs
    train = compare_curves_figure({"run A": RECORDS}, metric="loss", x="step")
    assert list(train.data[0].x) == [4, 8] and list(train.data[0].y) == [1.6, 0.9]
