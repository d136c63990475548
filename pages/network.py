"""Network builder: a network as a composition of functions, and the function it computes,
how deep it needs to be, and what each of its layers makes of one clip.

Build a stack of layers (or load a preset), see f = f_n ∘ … ∘ f_1 with every formula and
shape, get it as PyTorch code or a JSON spec, and watch a small network learn a function of
the plane. The spec built here is what the Train page trains (st.session_state["network_spec"]).
"""

import streamlit as st

from ui.network_composition import render_code_and_spec, render_composition
from ui.network_depth import render_depth_experiment
from ui.network_editor import current_spec, render_input_choice, render_presets, render_stack_editor
from ui.network_playground import current_playground, render_buttons, render_live
from ui.network_values import render_layer_values

st.title("Network builder")
st.caption(
    "A neural network is a function from inputs to outputs with parameters; beyond one layer "
    "it is a composition of functions, f = f_n ∘ … ∘ f_1. Build one here: the Train page "
    "trains the network you leave on this page."
)

# Tracked tabs (a rerun on switching): every tab but Build draws its content only while it is
# shown. Drawn hidden, the playground's and the depth experiment's controls (and the depth
# result's figures) were a quarter of the page's elements, paid on every visit to it; the
# code and spec were a third; "Layer by layer" is a dozen figures of feature maps. Their
# widgets keep their values while unmounted (`persist_state="session"`), so a visit to
# another tab or page leaves them as the student set them.
build_tab, code_tab, playground_tab, depth_tab, values_tab = st.tabs(
    ["Build", "Code and spec", "See the function", "Deep enough", "Layer by layer"],
    key="network_tab",
    on_change="rerun",
)

with build_tab:
    render_presets()
    spec = render_input_choice(current_spec())
    st.subheader("Layer stack")
    spec = render_stack_editor(spec)
    st.subheader("Composition")
    render_composition(spec)

with code_tab:
    render_code_and_spec(spec, shown=code_tab.open)

with playground_tab:
    st.markdown(
        "Points of the plane carry a colour; the network sees the chosen features of each point "
        "and learns a colouring of the whole plane. Every hidden neuron is a function of the "
        "plane too: watch them while it trains."
    )
    if playground_tab.open:
        playground = current_playground(spec)
        if playground is not None:
            render_live(render_buttons(playground))

with depth_tab:
    if depth_tab.open:
        render_depth_experiment()

with values_tab:
    if values_tab.open:
        render_layer_values(spec)
