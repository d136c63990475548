"""The exported training script reproduces a run's settings exactly and really trains."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import pytest

from core.data.augment import AugmentConfig
from core.data.datasets import builtin_digits
from core.models.presets import preset_spec
from core.training.export_script import script_file_name, training_script
from core.training.runs import RunStore
from core.training.support import limit_per_class, set_dropout, validation_examples
from core.training.trainer import TrainConfig


def _config() -> TrainConfig:
    # Settings the command line cannot express: they must survive through the JSON.
    return TrainConfig(
        epochs=1,
        batch_size=32,
        learning_rate=2e-3,
        label_smoothing=0.05,
        tsne=False,
        augment=AugmentConfig(time_masks=1, freq_warp=0.05, gain_db=3.0),
        name="quick 'digits'",
    )


def _load(text: str) -> dict:
    namespace: dict = {"__name__": "exported"}
    exec(compile(text, "train_x.py", "exec"), namespace)  # the script, without a subprocess
    return namespace


def test_dry_run_prints_the_exact_training_config():
    config = _config()
    text = training_script(
        config.to_dict(), None, run_id="20260101-000000-abc123", name=config.name
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert _load(text)["main"](["--dry-run"]) == 0
    printed = TrainConfig.from_dict(json.loads(out.getvalue()))
    assert printed == config
    assert script_file_name("../../etc/x") == "train_______etc_x.py"


def test_recorded_clips_need_a_data_folder():
    text = training_script(_config().to_dict(), None, data="")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert _load(text)["main"]([]) == 2
    assert "--data" in err.getvalue()


def test_script_trains_the_same_network_on_the_same_subset(tmp_path):
    config = _config()
    spec, changed = set_dropout(preset_spec("cnn_logmel"), 0.1)
    assert changed == 1
    text = training_script(
        config.to_dict(), spec.to_dict(), run_id="r", data="builtin:digits", limit_per_class=3
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = _load(text)["main"](["--runs-dir", str(tmp_path), "--device", "cpu"])
    assert code == 0, out.getvalue()
    store = RunStore(tmp_path)
    (run,) = store.list_runs()
    assert run.status == "finished"
    rebuilt = TrainConfig.from_dict(run.train_config)
    assert rebuilt == dataclasses.replace(config, device="cpu")
    saved = json.loads((run.path / "model.json").read_text())["spec"]
    assert [
        layer["params"].get("p") for layer in saved["layers"] if layer["kind"] == "Dropout"
    ] == [0.1]
    # The page finds the validation clips again, in the evaluation's order.
    evaluation = store.read_summary(run.run_id)["evaluation"]
    subset = limit_per_class(builtin_digits(), 3)
    assert len(subset) == 30
    examples = validation_examples(subset, rebuilt, len(evaluation["true"]))
    assert examples is not None
    assert [e.label for e in examples] == evaluation["true"]
    assert validation_examples(subset, rebuilt, len(evaluation["true"]) + 1) is None


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"optimizer": "magic"}])
def test_a_damaged_config_fails_in_the_script_with_the_engines_sentence(bad):
    data = dict(_config().to_dict(), **bad)
    with pytest.raises(ValueError, match="Invalid training settings"):
        _load(training_script(data, None))["main"](["--dry-run"])
