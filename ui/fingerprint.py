"""Content fingerprints: short names for bytes and arrays, used as cache keys.

A page hands `st.cache_data` a fingerprint of the data and the data itself under a leading
underscore (`_data`), which Streamlit does not hash: the fingerprint is computed once per rerun,
and the key stays the same for the same content within a session (and across sessions: it
depends on the content only, never on object ids or time).

Size: 16 bytes of BLAKE2b, 32 hex characters. Two different clips on one server would share a
fingerprint with a probability of about n^2 / 2^129 for n clips: never, in practice.
"""

from __future__ import annotations

import hashlib

import numpy as np

DIGEST_BYTES = 16


def fingerprint(content: bytes | np.ndarray, *, max_values: int | None = None) -> str:
    """32 hex characters naming `content` (bytes, or an array with its dtype and shape).

    max_values: for an array, hash at most about this many evenly spaced values (plus the
    shape) instead of all of them. Cheap on long clips for a key computed on every rerun
    (the playback WAVs of the music page); two arrays equal at the sampled values share it,
    so use it only where that cannot mislead (a key for audio derived from an already
    fingerprinted clip).
    """
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    if isinstance(content, np.ndarray):
        values = content.reshape(-1)
        if max_values is not None and values.size > max_values:
            values = values[:: values.size // max_values]
        digest.update(f"{content.dtype.str}{content.shape}".encode())
        digest.update(np.ascontiguousarray(values).view(np.uint8).reshape(-1))
    else:
        digest.update(content)
    return digest.hexdigest()
