"""Plot builders for the Live tabs: a scrolling spectrogram (a picture), the tuner's needle,
the pitch line, the chroma / loudness meter. Pure functions: arrays in, a plotly Figure (or
an RGB array) out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from core.inference.streaming import NOTE_NAMES, TunerReading
from core.viz.colors import colour_table

IN_TUNE_CENTS = 5.0  # a needle within this reads "in tune" (green)
# The dial's colours (the gauge here and the pushed needle, ui/push_views/answer.js).
IN_TUNE_COLOUR, OFF_TUNE_COLOUR, IN_TUNE_BAND = "#2e7d32", "#ef6c00", "#c8e6c9"
# The chroma / loudness meter's (the plotly bars here and the pushed meter of the component).
CHROMA_COLOUR, LOUDNESS_COLOUR, LOUDNESS_FLOOR_DBFS = "#5c6bc0", "#ef6c00", -60.0


def live_log_mel(samples: np.ndarray, sample_rate: int, *, n_mels: int = 64) -> np.ndarray:
    """(n_mels, frames) log-mel dB (ref: full scale) of the newest audio, 10 ms frames."""
    # Lazy: librosa takes about a second to import; the Classify page needs it only live.
    import librosa

    y = np.asarray(samples, dtype=np.float32)
    hop = max(1, sample_rate // 100)
    if y.size < 2 * hop:
        return np.full((n_mels, 1), -100.0, dtype=np.float32)
    mel = librosa.feature.melspectrogram(
        y=y, sr=sample_rate, n_fft=4 * hop, hop_length=hop, n_mels=n_mels, fmax=sample_rate / 2
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


TIMELINE_BACKGROUND = (15, 20, 32)  # the app's dark background: silent or not-yet-heard windows
TIMELINE_TEXT = (230, 234, 242)  # the app's text colour
SEGMENT_OUTLINE = (255, 82, 82)  # as the offline timeline's segment outlines


def timeline_image(
    probabilities: np.ndarray,
    labels: Sequence[str],
    *,
    silent: np.ndarray | None = None,
    segments: Sequence[tuple[int, int, str]] = (),
    columns: int | None = None,
    window_pixels: int = 8,
    row_pixels: int = 18,
    label_pixels: int = 56,
    scale: str = "Viridis",
) -> np.ndarray:
    """The probability timeline as a picture: (windows, classes) -> (H, W, 3) uint8.

    One row per class (the first label at the bottom, as the offline timeline's heatmap),
    one column of `window_pixels` per window, oldest at the left, colour = probability 0..1
    on `scale`; silent windows in the background colour; each segment (first window,
    last window inclusive, label) outlined on its row; the class names in a left margin of
    `label_pixels`. columns: the strip's width in windows (windows right-aligned, the rest
    background), so the picture keeps its size while a stream fills it. The Live tab redraws
    this every second: a picture costs the browser nothing to swap, the plotly heatmap it
    replaces cost its main thread ~80 ms a second on this shared CPU, time in which the
    pushed label could not be drawn (tests/benchmarks/bench_live_browser.py).
    """
    from PIL import Image, ImageDraw, ImageFont

    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float32), nan=0.0)
    windows, classes = p.shape if p.ndim == 2 else (0, len(labels))
    width = max(int(columns or 0), windows)
    rgb = np.empty((classes, width, 3), np.uint8)
    rgb[:] = TIMELINE_BACKGROUND
    if windows:
        level = np.round(np.clip(p, 0.0, 1.0) * 255).astype(np.uint8)  # (windows, classes)
        colours = colour_table(scale)[level.T]  # (classes, windows, 3)
        if silent is not None:
            colours[:, np.asarray(silent, dtype=bool)] = TIMELINE_BACKGROUND
        rgb[:, width - windows :] = colours
    rows = max(1, int(row_pixels))
    step = max(1, int(window_pixels))
    picture = np.repeat(np.repeat(rgb[::-1], rows, axis=0), step, axis=1)  # first label at bottom
    try:
        font = ImageFont.load_default(size=max(8, rows - 5))
    except (OSError, TypeError, ValueError):  # Pillow without FreeType: its bitmap font
        font = ImageFont.load_default()
    # The margin grows to the longest class name ("strings", "brass"...).
    names = max((font.getlength(str(label)) for label in labels), default=0.0)
    label_pixels = max(int(label_pixels), int(math.ceil(names)) + 12)
    canvas = Image.new(
        "RGB", (label_pixels + picture.shape[1], picture.shape[0]), TIMELINE_BACKGROUND
    )
    canvas.paste(Image.fromarray(picture), (label_pixels, 0))
    draw = ImageDraw.Draw(canvas)
    freetype = isinstance(font, ImageFont.FreeTypeFont)  # the bitmap font cannot anchor
    for i, label in enumerate(labels):
        top = (classes - 1 - i) * rows
        if freetype:
            where, anchor = (label_pixels - 6, top + rows / 2), "rm"
        else:
            where, anchor = (4, top + 2), None
        draw.text(where, str(label), fill=TIMELINE_TEXT, font=font, anchor=anchor)
    row_of = {label: i for i, label in enumerate(labels)}
    offset = label_pixels + (width - windows) * step
    for first, last, label in segments:
        if label not in row_of or last < first:
            continue
        top = (classes - 1 - row_of[label]) * rows
        draw.rectangle(
            (offset + first * step, top, offset + (last + 1) * step - 1, top + rows - 1),
            outline=SEGMENT_OUTLINE,
            width=2,
        )
    return np.asarray(canvas)


@dataclass(frozen=True)
class TunerDial:
    """What the tuner's dial shows of one reading, whichever draws it (the plotly gauge here,
    the pushed needle of ui/push_views/answer.js): one source for both.

    note: "A4", or "" when nothing is pitched; cents: -50..+50 off it (None when no note);
    frequency_hz: None when no note; in_tune: within IN_TUNE_CENTS; title: the line above
    (or under) the needle.
    """

    note: str
    cents: float | None
    frequency_hz: float | None
    in_tune: bool
    title: str

    @property
    def pitched(self) -> bool:
        return self.cents is not None


def tuner_dial(reading: TunerReading | None) -> TunerDial:
    """The dial of a reading (None: before the first reading): note, cents, Hz, in tune."""
    pitched = (
        reading is not None
        and bool(reading.note)
        and math.isfinite(reading.cents)
        and math.isfinite(reading.frequency_hz)
    )
    if not pitched:
        return TunerDial("", None, None, False, "no pitch (play a note)")
    cents, hz = float(reading.cents), float(reading.frequency_hz)
    return TunerDial(
        reading.note, cents, hz, abs(cents) <= IN_TUNE_CENTS, f"{reading.note} · {hz:.1f} Hz"
    )


def tuner_figure(reading: TunerReading | None, *, height: int = 240) -> go.Figure:
    """A needle from -50 to +50 cents with the note name; an empty dial when nothing is pitched."""
    dial = tuner_dial(reading)
    cents = dial.cents if dial.pitched else 0.0
    colour = IN_TUNE_COLOUR if dial.in_tune else OFF_TUNE_COLOUR
    fig = go.Figure(
        go.Indicator(
            mode="gauge+number" if dial.pitched else "gauge",
            value=cents,
            number={"suffix": " cents", "valueformat": "+.0f"},
            title={"text": dial.title},
            gauge={
                "axis": {
                    "range": [-50, 50],
                    "tickvals": [-50, -25, -IN_TUNE_CENTS, 0, IN_TUNE_CENTS, 25, 50],
                },
                "bar": {"color": colour if dial.pitched else "rgba(0,0,0,0)", "thickness": 0.3},
                "steps": [{"range": [-IN_TUNE_CENTS, IN_TUNE_CENTS], "color": IN_TUNE_BAND}],
            },
        )
    )
    fig.update_layout(height=height, margin={"l": 30, "r": 30, "t": 60, "b": 10})
    return fig


def _pitch_axis(readings: Sequence[TunerReading]):
    """Times (s), MIDI pitch (NaN unvoiced), Hz, the note axis' range (2 semitones beyond the
    voiced readings; A3..A5 before any) and its ticks (every semitone within 30, else the C,
    E and G of each octave): what the plotly line and its picture share."""
    times = np.array([r.time_seconds for r in readings], dtype=np.float64)
    hz = np.array([r.frequency_hz for r in readings], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        midi = 69 + 12 * np.log2(hz / 440.0)
    voiced = midi[np.isfinite(midi)]
    low, high = (float(voiced.min()) - 2, float(voiced.max()) + 2) if voiced.size else (57, 81)
    ticks = [
        m
        for m in range(int(math.ceil(low)), int(math.floor(high)) + 1)
        if high - low < 30 or m % 12 in (0, 4, 7)
    ]
    return times, midi, hz, low, high, ticks


def _note_name(midi: int) -> str:
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def pitch_line_figure(readings: Sequence[TunerReading], *, height: int = 260) -> go.Figure:
    """Pitch over stream time on a note axis (MIDI numbers labelled C4, D4...); gaps unvoiced."""
    times, midi, hz, low, high, ticks = _pitch_axis(readings)
    fig = go.Figure(
        go.Scatter(
            x=times,
            y=midi,
            mode="lines+markers",
            marker={"size": 4},
            connectgaps=False,
            name="pitch",
            customdata=hz,
            hovertemplate="%{x:.2f} s: %{customdata:.1f} Hz<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 10, "b": 40},
        xaxis_title="stream time (s)",
        yaxis={
            "title": "note",
            "range": [low, high],
            "tickvals": ticks,
            "ticktext": [_note_name(m) for m in ticks],
        },
        showlegend=False,
    )
    return fig


PITCH_LINE_COLOUR = (129, 199, 245)  # as plotly's first trace colour in the app's dark theme
PITCH_GRID = (44, 52, 70)


def pitch_line_image(
    readings: Sequence[TunerReading],
    *,
    seconds: float = 10.0,
    width: int = 640,
    height: int = 240,
    label_pixels: int = 40,
) -> np.ndarray:
    """The pitch line as a picture: readings -> (height, label_pixels + width, 3) uint8.

    The last `seconds` of stream time, newest at the right edge; pitch on the note axis of
    pitch_line_figure (a grid line and a name per tick, in a left margin); voiced readings
    as dots, joined while consecutive (a gap of unvoiced readings breaks the line). The Live
    tab redraws this every second while streaming: a picture costs the browser nothing to
    swap, the plotly line it replaces kept the page's main thread busy ~15 % of the time on
    this shared CPU, time in which the pushed needle could not move
    (tests/benchmarks/bench_live_browser.py, BENCH_LIVE_BROWSER_PAGE=music).
    """
    from PIL import Image, ImageDraw, ImageFont

    times, midi, _, low, high, ticks = _pitch_axis(readings)
    canvas = Image.new("RGB", (label_pixels + width, height), TIMELINE_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=11)
    except (OSError, TypeError, ValueError):  # Pillow without FreeType: its bitmap font
        font = ImageFont.load_default()

    def row(m: float) -> float:
        return (high - m) / (high - low) * (height - 1)

    for m in ticks:
        y = row(m)
        draw.line((label_pixels, y, label_pixels + width, y), fill=PITCH_GRID)
        draw.text((2, y - 6), _note_name(m), fill=TIMELINE_TEXT, font=font)
    newest = float(times[-1]) if times.size else 0.0
    x = label_pixels + width - 1 - (newest - times) / max(seconds, 1e-6) * (width - 1)
    shown = np.isfinite(midi) & (x >= label_pixels)
    points = [(float(x[i]), row(float(midi[i]))) for i in range(len(midi))]
    for i in np.flatnonzero(shown):
        if i > 0 and shown[i - 1]:
            draw.line((points[i - 1], points[i]), fill=PITCH_LINE_COLOUR, width=2)
        px, py = points[i]
        draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=PITCH_LINE_COLOUR)
    return np.asarray(canvas)


def chroma_meter_figure(
    chroma: np.ndarray,
    rms_dbfs: float,
    *,
    floor_dbfs: float = LOUDNESS_FLOOR_DBFS,
    height: int = 240,
) -> go.Figure:
    """Twelve pitch-class bars (C..B, strongest = 1) beside a loudness bar in dBFS."""
    c = np.nan_to_num(np.asarray(chroma, dtype=np.float64).reshape(12))
    level = max(floor_dbfs, float(rms_dbfs)) if math.isfinite(rms_dbfs) else floor_dbfs
    fig = go.Figure()
    fig.add_bar(
        x=list(NOTE_NAMES),
        y=c,
        name="chroma",
        marker_color=CHROMA_COLOUR,
        hovertemplate="%{x}: %{y:.2f}<extra></extra>",
    )
    fig.add_bar(
        x=["loudness"],
        y=[level - floor_dbfs],
        base=[floor_dbfs],
        yaxis="y2",
        name="loudness",
        marker_color=LOUDNESS_COLOUR,
        hovertemplate=f"{level:.1f} dBFS<extra></extra>",
    )
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 60, "t": 10, "b": 40},
        yaxis={"title": "chroma", "range": [0, 1.05]},
        yaxis2={"title": "dBFS", "overlaying": "y", "side": "right", "range": [floor_dbfs, 0]},
        showlegend=False,
        bargap=0.2,
    )
    return fig
