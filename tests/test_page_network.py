"""AppTest of the Network builder page, driven through dashboard.py by widget keys."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from core.models.presets import preset_spec
from core.models.shapes import infer_shapes, parameter_count
from core.models.spec import LayerSpec, ModelSpec
from tests.apptest_helpers import open_page


@pytest.fixture
def app() -> AppTest:
    at = open_page("pages/network.py")
    assert not at.exception, at.exception
    return at


def _spec(at: AppTest) -> ModelSpec:
    return at.session_state["network_spec"]


def _param_key(at: AppTest, layer_index: int, name: str) -> str:
    return f"network_p{at.session_state['network_layer_ids'][layer_index]}_{name}"


def _table(at: AppTest):
    """The composition table (the page's dataframe with a formula column)."""
    return next(d.value for d in at.dataframe if "formula" in d.value.columns)


def _table_text(at: AppTest) -> str:
    return _table(at).to_string()


def test_opens_with_the_default_classifier_and_its_composition(app):
    assert [t.value for t in app.title] == ["Network builder"]
    spec = _spec(app)
    assert spec == preset_spec("cnn_logmel")
    table = _table(app)
    assert len(table) == len(spec.layers)
    assert table["output"].iloc[-1] == "10"
    assert table["parameters"].sum() == parameter_count(spec)
    assert any(
        m.label == "Parameters" and m.value == f"{parameter_count(spec):,}" for m in app.metric
    )
    assert not app.error


def test_the_graph_and_cost_chart_are_drawn_only_while_their_expander_is_open(app):
    # Closed until opened: the graph's layout runs in the browser on every visit otherwise.
    assert not app.get("graphviz_chart")
    app.session_state["network_graph_open"] = True
    app.run()
    assert not app.exception, app.exception
    (graph,) = app.get("graphviz_chart")
    spec = _spec(app)
    assert graph.proto.spec.startswith("digraph")
    for layer in spec.layers:
        assert layer.kind in graph.proto.spec
    assert any("network_costs" in getattr(e.proto, "id", "") for e in app.get("plotly_chart"))
    # Open, it follows the stack: the MLP preset's graph has no convolution.
    app.selectbox(key="network_preset").set_value("mlp_2d")
    app.button(key="network_load_preset").click().run()
    (graph,) = app.get("graphviz_chart")
    assert "Linear" in graph.proto.spec and "Conv2d" not in graph.proto.spec
    app.session_state["network_graph_open"] = False
    app.run()
    assert not app.get("graphviz_chart") and not app.get("plotly_chart")


def test_preset_edit_add_move_remove(app):
    app.selectbox(key="network_preset").set_value("mlp_2d")
    app.button(key="network_load_preset").click().run()
    assert _spec(app).name == "mlp_2d" and _spec(app).input_shape == (2,)
    assert app.session_state["network_input_kind"] == "point"

    # edit: the first Linear gets 16 outputs; the shapes below follow
    app.radio(key="network_selected").set_value(0).run()
    app.number_input(key=_param_key(app, 0, "out_features")).set_value(16).run()
    assert _spec(app).layers[0].param("out_features") == 16
    assert "W: 8×16" in _table_text(app)

    # add a ReLU after layer 2, then move it up and remove it again
    app.radio(key="network_selected").set_value(1).run()
    app.selectbox(key="network_add_kind").set_value("ReLU")
    app.button(key="network_add").click().run()
    kinds = [layer.kind for layer in _spec(app).layers]
    assert kinds == ["Linear", "Tanh", "ReLU", "Linear", "Tanh", "Linear"]
    app.button(key="network_up").click().run()
    assert [layer.kind for layer in _spec(app).layers][1:3] == ["ReLU", "Tanh"]
    app.button(key="network_remove").click().run()
    assert [layer.kind for layer in _spec(app).layers] == [
        "Linear",
        "Tanh",
        "Linear",
        "Tanh",
        "Linear",
    ]
    assert not app.exception


def test_an_impossible_stack_names_the_layer_and_the_input_choice_updates_shapes(app):
    app.segmented_control(key="network_input_kind").set_value("logmel").run()
    app.number_input(key="network_frames").set_value(50).run()
    assert _spec(app).input_shape == (1, 64, 50)
    assert "16×64×50" in _table_text(app)
    # a declared input size that does not match
    last = len(_spec(app).layers) - 1
    receives = infer_shapes(_spec(app))[last].input_shape[0]  # what the head really gets
    app.radio(key="network_selected").set_value(last).run()
    app.number_input(key=_param_key(app, last, "in_features")).set_value(512).run()
    message = f"layer {last + 1} Linear expects 512 inputs, receives {receives}"
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    assert not app.exception
    # the MFCC input makes the convolutions impossible, with the reason
    app.segmented_control(key="network_input_kind").set_value("mfcc").run()
    assert any(
        "layer 1 Conv2d needs input (channels, height, width), receives 40" in e.value
        for e in app.error
    )
    assert not app.exception
    # any other shape can be typed; a typed non-shape is a sentence and changes nothing
    app.segmented_control(key="network_input_kind").set_value("custom").run()
    app.text_input(key="network_custom_shape").set_value("2, 32, 40").run()
    assert _spec(app).input_shape == (2, 32, 40)
    assert "16×32×40" in _table_text(app)
    app.text_input(key="network_custom_shape").set_value("2 by 32").run()
    assert any("'2 by 32' is not a shape" in e.value for e in app.error)
    assert _spec(app).input_shape == (2, 32, 40)
    assert not app.exception


def test_code_json_and_loading_a_spec(app):
    assert not app.code  # the code is drawn only while its tab is shown
    _open_tab(app, "Code and spec")
    codes = [c.value for c in app.code]
    assert any("class CnnLogmel(nn.Module)" in c for c in codes)
    assert any(json.loads(c) == _spec(app).to_dict() for c in codes if c.startswith("{"))

    app.text_area(key="network_paste").set_value("{not json").run()
    app.button(key="network_load_json").click().run()
    assert any("not valid JSON" in e.value for e in app.error)

    bad = ModelSpec("bad", (2,), (LayerSpec.make("Conv1d"),)).to_json()
    app.text_area(key="network_paste").set_value(bad).run()
    app.button(key="network_load_json").click().run()
    assert any("layer 1 Conv1d needs input" in e.value for e in app.error)
    assert _spec(app).name == "cnn_logmel"

    good = preset_spec("crnn_logmel", num_outputs=4)
    app.text_area(key="network_paste").set_value(good.to_json()).run()
    app.button(key="network_load_json").click().run()
    assert _spec(app) == good
    assert any("Loaded 'crnn_logmel'" in s.value for s in app.success)
    assert not app.exception


def _playground_charts(at: AppTest) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart") if "network_pg_" in c.proto.id]


def _widget_keys(at: AppTest, prefix: str) -> list[str]:
    """The keys of the drawn widgets whose key starts with `prefix`."""
    kinds = ("slider", "select_slider", "selectbox", "multiselect", "checkbox", "radio")
    return [w.key for kind in kinds for w in at.get(kind) if (w.key or "").startswith(prefix)]


def test_playground_steps_plays_and_takes_the_editor_stack(app):
    # its controls and figures are drawn only while its tab is shown
    assert "network_pg_state" not in app.session_state
    assert not _widget_keys(app, "network_pg_") and not _playground_charts(app)
    _open_tab(app, "See the function")
    assert app.session_state["network_pg_state"].steps == 0
    assert len(_playground_charts(app)) == 3  # the output, the losses, the neurons
    app.button(key="network_pg_step").click().run()
    assert app.session_state["network_pg_state"].steps == 1
    app.button(key="network_pg_play").click().run()
    assert app.session_state["network_pg_playing"] is True
    assert app.session_state["network_pg_state"].steps > 1  # the live view advanced a frame
    app.button(key="network_pg_play").click().run()
    assert app.session_state["network_pg_playing"] is False

    # a new learning rate keeps the weights; a new dataset starts over
    steps = app.session_state["network_pg_state"].steps
    app.select_slider(key="network_pg_lr").set_value(0.03).run()
    assert app.session_state["network_pg_state"].steps == steps
    app.selectbox(key="network_pg_dataset").set_value("xor").run()
    assert app.session_state["network_pg_state"].steps == 0
    assert app.session_state["network_pg_state"].config.dataset == "xor"

    app.slider(key="network_pg_depth").set_value(3).run()
    assert app.session_state["network_pg_state"].config.hidden == (8, 8, 4)

    # another tab: the settings stay, and a playing playground waits while it is not shown
    app.button(key="network_pg_play").click().run()
    _open_tab(app, "Build")
    steps = app.session_state["network_pg_state"].steps
    app.run()
    assert app.session_state["network_pg_state"].steps == steps and not _playground_charts(app)
    assert not _widget_keys(app, "network_pg_")
    _open_tab(app, "See the function")
    assert app.session_state["network_pg_state"].config.hidden == (8, 8, 4)
    assert app.select_slider(key="network_pg_lr").value == 0.03
    assert app.session_state["network_pg_state"].steps > steps
    app.button(key="network_pg_play").click().run()

    # the editor's CNN cannot take 2 features: a sentence, not a crash; an MLP can
    app.radio(key="network_pg_source").set_value("the editor's stack").run()
    assert any("cannot run on 2 input features" in e.value for e in app.error)
    app.selectbox(key="network_preset").set_value("mlp_mfcc")
    app.button(key="network_load_preset").click().run()
    assert app.session_state["network_pg_state"].spec.input_shape == (2,)
    assert not app.exception


def test_real_audio_features_as_the_two_inputs(app):
    _open_tab(app, "See the function")
    players_before = len(app.get("audio"))
    app.selectbox(key="network_pg_dataset").set_value("audio_speech_music").run()
    assert not app.exception and not app.error
    playground = app.session_state["network_pg_state"]
    assert playground.points.class_names == ("speech", "music and sounds")
    assert playground.points.axis_names[0].startswith("spectral centroid")
    assert len(app.get("audio")) == players_before + 2  # an example of each class to hear
    app.button(key="network_pg_step").click().run()
    assert app.session_state["network_pg_state"].steps == 1
    app.selectbox(key="network_pg_fy").set_value("spectral_centroid").run()
    assert not app.exception


def _depth_table(at: AppTest):
    return next(d.value for d in at.dataframe if "family" in d.value.columns)


def test_deep_enough_xor_needs_a_hidden_layer(app):
    assert not _widget_keys(app, "network_depth_")  # drawn only while its tab is shown
    _open_tab(app, "Deep enough")
    assert any("Run the experiment" in i.value for i in app.info)  # nothing trained yet
    app.multiselect(key="network_depth_depths").set_value([0, 2])
    app.slider(key="network_depth_seeds").set_value(2)
    app.checkbox(key="network_depth_equal").uncheck()
    app.button(key="network_depth_run").click().run()
    assert not app.exception and not app.error
    table = _depth_table(app)
    assert list(table["hidden layers"]) == [0, 2]
    assert list(table["parameters"]) == [3, 105]
    linear, deep = (float(v.rstrip("%")) / 100 for v in table["test accuracy (mean)"])
    assert linear < 0.75 and deep > 0.95
    assert any("a straight line cannot separate" in m.value for m in app.markdown)
    result = app.session_state["network_depth_result"]
    assert len(result.runs) == 4 and result.config.depths == (0, 2)

    # the equal-parameter family is added; an empty depth list is a sentence, not a crash
    app.multiselect(key="network_depth_depths").set_value([1, 2])
    app.checkbox(key="network_depth_equal").check()
    app.select_slider(key="network_depth_epochs").set_value(50)
    app.button(key="network_depth_run").click().run()
    table = _depth_table(app)
    assert list(table["family"]) == ["fixed width"] * 2 + ["equal parameters"] * 2
    assert list(table["neurons per layer"]) == [8, 8, 26, 8]  # 4 · 26 + 1 = 105, as 2 × 8
    assert any(m.value.startswith("At about 105 parameters") for m in app.markdown)
    app.multiselect(key="network_depth_depths").set_value([]).run()
    assert any("Choose at least one depth" in e.value for e in app.error)
    assert app.button(key="network_depth_run").disabled

    # a visit to another tab unmounts the settings and keeps them
    _open_tab(app, "Build")
    assert not _widget_keys(app, "network_depth_")
    _open_tab(app, "Deep enough")
    assert app.select_slider(key="network_depth_epochs").value == 50
    assert app.multiselect(key="network_depth_depths").value == []
    assert not app.exception


def _layer_titles(at: AppTest) -> list[str]:
    """The headings of the layer-by-layer view: **x · …**, **f1(x) · …**, **f2(f1(x)) · …**"""
    title = re.compile(r"^\*\*(x|f\d+\((…)?(f\d+\()*x\)+) · ")
    return [m.value for m in at.markdown if title.match(m.value)]


def _open_tab(at: AppTest, name: str) -> None:
    at.session_state["network_tab"] = name
    at.run()
    assert not at.exception, at.exception


def test_layer_by_layer_shows_every_layer_of_the_shipped_model(app):
    from core.inference.classifier import shipped_store

    assert not _layer_titles(app)  # computed only while its tab is open
    _open_tab(app, "Layer by layer")
    store = shipped_store()
    run = store.load("digits-cnn")  # the tab's default model: the first shipped one
    titles = _layer_titles(app)
    assert len(titles) == len(run.spec.layers) + 1  # the input, then f1 .. fn
    assert titles[0].startswith("**x · the input · 1 × ")
    assert titles[1].startswith(f"**f1(x) · {run.spec.layers[0].describe()}")
    summary = next(d.value for d in app.dataframe if "zeros" in d.value.columns)
    assert list(summary["layer"]) == ["input", *(layer.kind for layer in run.spec.layers)]
    assert summary["shape"].iloc[0] == " × ".join(map(str, run.spec.input_shape))
    assert summary["numbers"].iloc[-1] == len(run.labels)  # the class scores
    answer = next(m for m in app.metric if m.label == "Answer")
    assert answer.value in run.labels
    app.selectbox(key="network_values_digit").set_value(3)
    app.selectbox(key="network_values_speaker").set_value("lucas").run()
    assert next(m for m in app.metric if m.label == "Answer").value in run.labels
    app.slider(key="network_values_channels").set_value(32).run()
    assert not app.exception and not app.error


def test_layer_by_layer_with_the_editor_network_and_hostile_choices(app):
    _open_tab(app, "Layer by layer")
    app.radio(key="network_values_network").set_value("The editor's network (untrained)").run()
    assert not app.exception and not app.error
    assert any(m.label == "Highest output (random weights)" for m in app.metric)
    assert len(_layer_titles(app)) == len(_spec(app).layers) + 1
    # an MLP on MFCC statistics cannot take a spectrogram: a sentence
    app.selectbox(key="network_preset").set_value("mlp_mfcc")
    app.button(key="network_load_preset").click().run()
    assert any("Choose the log-mel input" in e.value for e in app.error)
    # the last take, and the own-clip picker before a file is chosen
    app.radio(key="network_values_network").set_value("A trained model").run()
    app.number_input(key="network_values_take").set_value(39).run()
    assert not app.exception
    app.radio(key="network_values_clip_source").set_value("Your own clip").run()
    assert not app.exception
    assert not _layer_titles(app)


def test_layer_by_layer_traces_one_member_of_the_students_ensemble(app):
    from core.audio.features import FeatureConfig
    from core.models.build import build_model
    from core.training.runs import RunStore

    spec = ModelSpec(
        "tiny_cnn",
        (1, 64, 101),
        (
            LayerSpec.make("Conv2d", out_channels=4),
            LayerSpec.make("ReLU"),
            LayerSpec.make("AdaptiveAvgPool2d", output_size=1),
            LayerSpec.make("Flatten"),
            LayerSpec.make("Linear", out_features=3),
        ),
    ).with_members(2)
    store = RunStore()
    run_id = store.create_run({}, owner=app.session_state["session_id"], name="my ensemble")
    store.save_model(
        run_id,
        build_model(spec).eval(),
        spec=spec,
        labels=["yes", "no", "maybe"],
        feature_config=FeatureConfig(),
        feature_kind="logmel",
        clip_frames=101,
        normalization={"mode": "utterance"},
    )
    store.finish(run_id, "finished")
    _open_tab(app, "Layer by layer")
    app.selectbox(key="network_values_model").set_value(f"run:{run_id}").run()
    assert not app.exception and not app.error
    assert app.selectbox(key="network_values_member").options == ["0", "1"]
    app.selectbox(key="network_values_member").set_value(1).run()
    assert any("averages the probabilities of 2 networks" in c.value for c in app.caption)
    assert any("those of network 1" in c.value for c in app.caption)
    assert len(_layer_titles(app)) == len(spec.layers) + 1
    assert next(m for m in app.metric if m.label == "Answer").value in ("yes", "no", "maybe")
    # the student deletes the run on the Train page: the menu falls back to the shipped model
    store.delete(run_id, owner=app.session_state["session_id"])
    app.run()
    assert not app.exception and not app.error
    assert app.selectbox(key="network_values_model").value.startswith("shipped:")


def _click_callbacks_run_twice() -> None:
    """Run Pause's and Add after's callbacks twice for one click each, as Streamlit 1.67 does
    when a click's rerun preempts the playing playground's fragment run."""
    import streamlit as st

    from ui import network_editor, network_playground

    spec = network_editor.current_spec()
    drawn_ids = tuple(st.session_state[network_editor.IDS_KEY])
    st.session_state[network_editor.SELECTED_KEY] = 0
    st.session_state["network_add_kind"] = "ReLU"
    network_editor._insert(drawn_ids)
    network_editor._insert(drawn_ids)
    st.session_state["network_pg_playing"] = True
    network_playground._set_playing(False)  # Pause is drawn with args=(False,)
    network_playground._set_playing(False)
    st.write(f"layers {len(spec.layers)} -> {len(network_editor.current_spec().layers)}")


def test_a_click_whose_callback_runs_twice_acts_once():
    # seen in the browser: Pause's toggle ran twice (True -> False -> True) and the playground
    # kept playing; a set-to-False and an edit checked against the drawn stack act once
    app = AppTest.from_function(_click_callbacks_run_twice).run()
    assert not app.exception, app.exception
    before = len(preset_spec("cnn_logmel").layers)
    assert app.markdown[0].value == f"layers {before} -> {before + 1}"
    assert app.session_state["network_pg_playing"] is False
