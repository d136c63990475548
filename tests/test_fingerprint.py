"""ui.fingerprint: the content fingerprint every cache key of the pages is built from."""

from __future__ import annotations

import hashlib

import numpy as np

from ui.fingerprint import DIGEST_BYTES, fingerprint


def test_bytes_fingerprint_is_blake2b_of_the_bytes():
    data = b"RIFF....WAVEfmt "
    expected = hashlib.blake2b(data, digest_size=16).hexdigest()
    assert fingerprint(data) == expected
    assert len(fingerprint(data)) == 2 * DIGEST_BYTES == 32


def test_same_content_same_key_and_any_change_a_new_key():
    rng = np.random.default_rng(0)
    clip = rng.standard_normal(16000).astype(np.float32)
    assert fingerprint(clip) == fingerprint(clip.copy())  # content, not object identity
    changed = clip.copy()
    changed[8000] += 1e-3
    assert fingerprint(changed) != fingerprint(clip)


def test_dtype_and_shape_are_part_of_an_arrays_key():
    values = np.arange(12, dtype=np.float32)
    assert fingerprint(values) != fingerprint(values.astype(np.float64))
    assert fingerprint(values) != fingerprint(values.reshape(3, 4))
    # the same bytes seen as another dtype are another array
    assert fingerprint(values) != fingerprint(values.view(np.int32))


def test_non_contiguous_views_hash_their_values():
    stereo = np.arange(20, dtype=np.float32).reshape(10, 2)
    left = stereo[:, 0]
    assert not left.flags.c_contiguous
    assert fingerprint(left) == fingerprint(np.ascontiguousarray(left))


def test_sampled_fingerprint_reads_only_the_sampled_values():
    clip = np.zeros(100_000, dtype=np.float32)
    step = clip.size // 1000
    off_grid = clip.copy()
    off_grid[1] = 1.0  # between two sampled values: not seen
    on_grid = clip.copy()
    on_grid[5 * step] = 1.0
    assert fingerprint(off_grid, max_values=1000) == fingerprint(clip, max_values=1000)
    assert fingerprint(on_grid, max_values=1000) != fingerprint(clip, max_values=1000)
    assert fingerprint(off_grid) != fingerprint(clip)  # the full fingerprint sees everything
    shorter = clip[:-step]
    assert fingerprint(shorter, max_values=1000) != fingerprint(clip, max_values=1000)
    small = np.arange(10, dtype=np.float32)
    assert fingerprint(small, max_values=1000) == fingerprint(small)
