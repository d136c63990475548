"""The Train page's helpers: quick subsets, allowed server folders, class warnings, run rows."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from core.data.datasets import DatasetError, builtin_digits
from core.models.presets import preset_spec
from core.training.runs import RunStore
from core.training.support import (
    allowed_data_roots,
    check_server_path,
    class_warnings,
    limit_per_class,
    run_rows,
    set_dropout,
)
from core.training.trainer import TrainConfig


def test_limit_per_class_is_a_seeded_spread_subset_in_original_order():
    digits = builtin_digits()
    subset = limit_per_class(digits, 5)
    assert Counter(e.label for e in subset.examples) == {k: 5 for k in range(10)}
    order = [digits.examples.index(e) for e in subset.examples]
    assert order == sorted(order)
    assert len({e.group for e in subset.examples}) > 1  # not just the first speaker
    assert limit_per_class(digits, 5).examples == subset.examples
    assert limit_per_class(digits, 5, seed=1).examples != subset.examples
    assert limit_per_class(digits, 0) is digits


def test_server_paths_only_inside_the_allowed_roots(tmp_path):
    inside = tmp_path / "data" / "mine"
    inside.mkdir(parents=True)
    (tmp_path / "data" / "escape").symlink_to("/etc")
    env = {"AUDIO_DL_DATA_ROOTS": f"{tmp_path / 'data'}{os.pathsep}"}
    roots = allowed_data_roots(env)
    assert roots == [(tmp_path / "data").resolve()]
    assert check_server_path(str(inside), roots) == inside.resolve()
    for bad, reason in (
        ("/etc", "outside"),
        (str(tmp_path / "data" / "escape"), "outside"),  # a link out of the root
        (str(tmp_path / "data" / ".." / ".."), "outside"),
        (str(tmp_path / "data" / "nothing"), "does not exist"),
        ("  ", "Type the path"),
    ):
        with pytest.raises(DatasetError, match=reason):
            check_server_path(bad, roots)
    assert allowed_data_roots({}) == []
    with pytest.raises(DatasetError, match="switched off"):
        check_server_path(str(inside), [])


def test_class_warnings_block_one_class_and_single_clips_and_warn_on_imbalance():
    errors, _ = class_warnings({"yes": 4})
    assert any("two classes" in e for e in errors)
    errors, _ = class_warnings({"yes": 4, "no": 1})
    assert any("no (1)" in e for e in errors)
    errors, warnings = class_warnings({"yes": 40, "no": 5})
    assert not errors and any("imbalanced" in w for w in warnings)
    errors, warnings = class_warnings({"yes": 3, "no": 3})
    assert not errors and any("Only a few clips" in w for w in warnings)
    assert class_warnings({"a": 10, "b": 12}) == ([], [])


def test_set_dropout_changes_every_dropout_layer_and_refuses_bad_rates():
    spec, changed = set_dropout(preset_spec("crnn_logmel"), 0.5)
    assert changed == 1
    assert [layer.param("p") for layer in spec.layers if layer.kind == "Dropout"] == [0.5]
    assert [layer.kind for layer in spec.layers] == [
        layer.kind for layer in preset_spec("crnn_logmel").layers
    ]
    with pytest.raises(ValueError):
        set_dropout(spec, 1.0)


def test_run_rows_flatten_settings_and_final_metrics(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(TrainConfig(learning_rate=0.01, epochs=3), owner="me", name="fast")
    store.finish(
        run_id, "finished", metrics={"val_accuracy": 0.9, "val_loss": 0.3, "epochs_done": 3}
    )
    (row,) = run_rows(store.list_runs("me"))
    assert row["run"] == run_id and row["name"] == "fast" and row["status"] == "finished"
    assert row["lr"] == 0.01 and row["epochs"] == 3 and row["val accuracy"] == 0.9
    assert row["mel bands"] == TrainConfig().features.n_mels
