"""The one min/max envelope and the one time pooling that every waveform and spectrogram plot
uses (core.viz.audio), checked on signals with known extremes."""

import numpy as np

from core.viz.audio import pool_frames, waveform_envelope
from core.viz.music import envelope, pool_columns


def test_pooling_keeps_every_frame_including_the_tail():
    S = np.zeros((2, 10), dtype=np.float32)
    S[0, 9] = 5.0  # a peak in the last, partial bucket
    pooled, factor = pool_frames(S, max_frames=3)
    assert factor == 4 and pooled.shape == (2, 3)
    assert pooled[0].tolist() == [0.0, 0.0, 5.0]
    times = np.arange(10) * 0.1
    matrix, kept = pool_columns(S, times, max_columns=3)
    np.testing.assert_array_equal(matrix, pooled)
    np.testing.assert_allclose(kept, [0.0, 0.4, 0.8])


def test_zoomed_envelope_is_the_envelope_of_the_zoomed_samples():
    rate = 1000
    y = np.sin(2 * np.pi * 5 * np.arange(3 * rate) / rate).astype(np.float32)
    y[1500] = 0.99 + 0.5  # a click inside the zoom
    times, values = envelope(y, rate, x_range=(1.0, 2.0), max_points=50)
    positions, expected = waveform_envelope(y[1000:2000], max_points=50)
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_allclose(times, (1000 + positions) / rate)
    assert values.max() == np.float32(1.49) and times.min() >= 1.0 and times.max() <= 2.0
    assert values.size <= 100
