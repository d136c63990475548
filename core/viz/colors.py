"""Colour scales that survive Streamlit's plotly theme.

Streamlit's theme for plotly charts uses the colours #000001, #000002, ... as placeholders and
repaints them with theme colours in the browser. Some plotly scales start with such a colour
(Magma and Inferno start at #000004), which made silence in a spectrogram bright red. Every plot
builder asks this module for its colour scale instead of passing a plotly name through.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import plotly.colors

# Streamlit's placeholders are #000001 to #000030 or so; any "#0000xx" could collide.
_PLACEHOLDER = re.compile(r"^#0000[0-9a-f]{2}$", re.IGNORECASE)


def colorscale(name: str) -> list[list[float | str]]:
    """The plotly colour scale `name` ("Magma", "Viridis", "RdBu_r", ...) as explicit stops,
    with any placeholder-like near-black stop replaced by pure black (#000000).
    """
    stops = plotly.colors.get_colorscale(name)
    return [[float(position), _safe(color)] for position, color in stops]


@functools.lru_cache(maxsize=8)
def colour_table(name: str) -> np.ndarray:
    """(256, 3) uint8: the colour scale `name` sampled at 256 even steps, for pictures drawn
    as arrays (a spectrogram as an image) in the same colours as the plotly figures."""
    steps = plotly.colors.sample_colorscale(
        colorscale(name), np.linspace(0.0, 1.0, 256), colortype="tuple"
    )
    return np.round(np.asarray(steps) * 255).astype(np.uint8)


def _safe(color: str) -> str:
    return "#000000" if _PLACEHOLDER.match(color) else color
