"""Colour scales never contain Streamlit's plotly-theme placeholder colours (#000001 ...)."""

from __future__ import annotations

import re

import numpy as np
import plotly.colors
import pytest

from core.viz.audio import spectrogram_figure
from core.viz.colors import colorscale

# Streamlit repaints #000001, #000002, ...; pure black is left alone.
PLACEHOLDER = re.compile(r"^#0000(?!00)[0-9a-f]{2}$", re.IGNORECASE)


def _heatmap_colors(figure) -> list[str]:
    return [c for trace in figure.data if trace.type == "heatmap" for _, c in trace.colorscale]


@pytest.mark.parametrize("name", ["Magma", "Inferno", "Viridis", "RdBu_r", "Greys", "Turbo"])
def test_scales_keep_plotly_stops_but_no_placeholder(name):
    original = plotly.colors.get_colorscale(name)
    safe = colorscale(name)
    assert [p for p, _ in safe] == [p for p, _ in original]
    for (_, before), (_, after) in zip(original, safe, strict=True):
        assert after == ("#000000" if PLACEHOLDER.match(before) else before)
    assert not any(PLACEHOLDER.match(c) for _, c in safe)


def test_magma_starts_at_black_instead_of_a_theme_placeholder():
    assert plotly.colors.get_colorscale("Magma")[0][1] == "#000004"  # why this module exists
    assert colorscale("Magma")[0][1] == "#000000"


def test_spectrogram_figure_uses_a_safe_scale():
    figure = spectrogram_figure(np.zeros((4, 5)), 16000, 160)
    colors = _heatmap_colors(figure)
    assert colors and not any(PLACEHOLDER.match(c) for c in colors)
