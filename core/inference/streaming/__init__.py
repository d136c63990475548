"""Live listening: audio frames from a microphone stream in, answers out, continuously.

The browser sends small frames (10-20 ms, usually 48 kHz, int16 or float, mono or stereo).
Three layers turn them into something a page can draw:

    frames -> `as_mono_float` (any layout, NaN-safe) -> resampled (soxr streaming) to the
    analyser's rate -> `RingBuffer` (the last seconds) -> an analyser:
      `LiveClassifier`: a trained model's window slides over the stream by its hop; every
                        window goes through the model's InputRecipe and the window helpers of
                        core.audio.input_recipe (one code path with the offline timeline), then
                        smoothing, "unsure" and segments as there
      `LiveTuner`:      pitch (YIN) of the newest audio -> note name and cents off, chroma,
                        loudness
    `LiveStream` runs one analyser in its own worker thread: `push` (called from the WebRTC
    thread) only queues a copy of the frame, never waits; the worker analyses; the page
    reads `snapshot()`. `StreamSlots` caps concurrent streams per server process.

Parity with the offline timeline (`core.inference.classifier.classify_windows`): every STFT frame
depends only on its own n_fft samples, so the frames of a window computed from a chunk of
the stream that reaches `n_fft // 2` samples past the window's edges are the frames the
whole-file spectrogram has there. The one thing a stream cannot know is the future: the
offline timeline measures silence against the loudest moment of the whole file, the stream
against the loudest moment so far (`LiveClassifier.loudest_db`). Streamed and uploaded
probabilities of the same audio match within 1e-4 (tests/test_streaming.py).

The package, one module per layer (split along the old module's section banners):
`frames` (as_mono_float, StreamResampler, RingBuffer), `classifier_stream` (LiveClassifier),
`tuner` (LiveTuner), `stream` (LiveStream, stream_file), `slots` (StreamSlots, network
settings). Import from here: `from core.inference.streaming import LiveStream`.
"""

from __future__ import annotations

from core.inference.streaming.classifier_stream import (
    DEFAULT_HOP_SECONDS,
    MAX_HOP_SECONDS,
    MAX_SEGMENTS,
    MIN_HOP_SECONDS,
    ClassifierSnapshot,
    LiveAnswer,
    LiveClassifier,
    LiveClassifierConfig,
)
from core.inference.streaming.frames import (
    HISTORY_SECONDS,
    RingBuffer,
    StreamError,
    StreamResampler,
    as_mono_float,
)
from core.inference.streaming.slots import (
    DEFAULT_MAX_STREAMS,
    StreamSlots,
    max_streams,
    rtc_configuration,
    stream_slots,
)
from core.inference.streaming.stream import (
    ALIVE_CHECK_SECONDS,
    DEFAULT_GIL_SWITCH_MS,
    GIL_SWITCH,
    IDLE_TIMEOUT_SECONDS,
    MAX_GAP_SECONDS,
    AnswerClock,
    LiveStream,
    StreamStats,
    gil_switch_seconds,
    stream_file,
)
from core.inference.streaming.tuner import (
    NOTE_NAMES,
    LiveTuner,
    TunerConfig,
    TunerReading,
    TunerSnapshot,
    note_and_cents,
    periodicity,
)

__all__ = [
    "ALIVE_CHECK_SECONDS",
    "DEFAULT_GIL_SWITCH_MS",
    "DEFAULT_HOP_SECONDS",
    "GIL_SWITCH",
    "DEFAULT_MAX_STREAMS",
    "HISTORY_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "MAX_GAP_SECONDS",
    "MAX_HOP_SECONDS",
    "MAX_SEGMENTS",
    "MIN_HOP_SECONDS",
    "NOTE_NAMES",
    "AnswerClock",
    "ClassifierSnapshot",
    "TunerSnapshot",
    "LiveAnswer",
    "LiveClassifier",
    "LiveClassifierConfig",
    "LiveStream",
    "LiveTuner",
    "RingBuffer",
    "StreamError",
    "StreamResampler",
    "StreamSlots",
    "StreamStats",
    "TunerConfig",
    "TunerReading",
    "as_mono_float",
    "gil_switch_seconds",
    "max_streams",
    "note_and_cents",
    "periodicity",
    "rtc_configuration",
    "stream_file",
    "stream_slots",
]
