"""Live listening, server-wide limits: how many streams one server process analyses at once
(`StreamSlots`, AUDIO_DL_MAX_STREAMS) and the WebRTC network settings (AUDIO_DL_ICE_SERVERS).
"""

from __future__ import annotations

import json
import os
import threading

from core.inference.streaming.classifier_stream import LiveClassifier
from core.inference.streaming.frames import StreamError
from core.inference.streaming.stream import LiveStream
from core.inference.streaming.tuner import LiveTuner

DEFAULT_MAX_STREAMS = 8  # streams one server process analyses at once (AUDIO_DL_MAX_STREAMS)


# --------------------------------------------------------------------------- server-wide limits


def max_streams() -> int:
    """Concurrent streams a server process accepts: AUDIO_DL_MAX_STREAMS (default 8)."""
    raw = os.environ.get("AUDIO_DL_MAX_STREAMS", "").strip()
    if not raw:
        return DEFAULT_MAX_STREAMS
    try:
        value = int(raw)
    except ValueError as exc:
        raise StreamError(f"AUDIO_DL_MAX_STREAMS must be a whole number (got {raw!r}).") from exc
    if value < 0:
        raise StreamError("AUDIO_DL_MAX_STREAMS must be 0 (live listening off) or more.")
    return value


def rtc_configuration() -> dict:
    """The WebRTC ICE configuration: no outside server unless AUDIO_DL_ICE_SERVERS says so.

    On one network (localhost, a class server on the school LAN) the browser and the server
    reach each other directly: {"iceServers": []}. Across networks set AUDIO_DL_ICE_SERVERS
    to a JSON list, e.g. '[{"urls": ["stun:stun.example.org:3478"]}]' or a TURN server with
    "username" and "credential".
    """
    raw = os.environ.get("AUDIO_DL_ICE_SERVERS", "").strip()
    if not raw:
        return {"iceServers": []}
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StreamError(f"AUDIO_DL_ICE_SERVERS is not valid JSON: {exc.msg}.") from exc
    if not isinstance(servers, list) or not all(
        isinstance(s, dict) and "urls" in s for s in servers
    ):
        raise StreamError(
            'AUDIO_DL_ICE_SERVERS must be a JSON list like [{"urls": ["stun:host:3478"]}].'
        )
    return {"iceServers": servers}


class StreamSlots:
    """At most `capacity` live streams at once, one per owner (a browser session)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._streams: dict[str, LiveStream] = {}

    def open(self, owner: str, analyser: LiveClassifier | LiveTuner, **kwargs) -> LiveStream | None:
        """A new stream for `owner` (its previous one is stopped); None when all are taken."""
        self.close(owner)
        with self._lock:
            self._streams = {k: s for k, s in self._streams.items() if s.running}
            if len(self._streams) >= self.capacity:
                return None
            stream = LiveStream(analyser, on_stop=lambda: self._forget(owner, stream), **kwargs)
            self._streams[owner] = stream
            return stream

    def _forget(self, owner: str, stream: LiveStream) -> None:
        with self._lock:
            if self._streams.get(owner) is stream:
                del self._streams[owner]

    def get(self, owner: str) -> LiveStream | None:
        with self._lock:
            stream = self._streams.get(owner)
        return stream if stream is not None and stream.running else None

    def close(self, owner: str) -> None:
        with self._lock:
            stream = self._streams.pop(owner, None)
        if stream is not None:
            stream.stop()

    @property
    def active(self) -> int:
        with self._lock:
            return sum(1 for s in self._streams.values() if s.running)


_SLOTS: StreamSlots | None = None
_SLOTS_LOCK = threading.Lock()


def stream_slots() -> StreamSlots:
    """The process-wide slots (capacity from AUDIO_DL_MAX_STREAMS, read once)."""
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is None:
            _SLOTS = StreamSlots(max_streams())
        return _SLOTS
