"""Features computed once per clip and configuration, kept in memory and on disk.

`FeatureCache(config, kind)` turns an `AudioExample` into its feature matrix
(bins, frames): the first request decodes the audio and runs the core.audio.features transform,
later requests (the next epoch, the next run with the same settings, the next app start)
read it back. The key is a hash of the source's bytes, the example's time window, the
FeatureConfig and the feature kind, so an edited file or a changed setting never reads a
stale entry.

What happens to the cached features next (normalisation, crop/pad or trim-and-stretch to the
network's frames) is the input recipe's, `core.audio.input_recipe`; `Normalization`,
`fit_normalization`, `fit_frames` and `trim_and_stretch` are re-exported here for the code that
imports them from this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import paths
from core.audio.clip import AudioError
from core.audio.features import FeatureConfig, make_feature_transform
from core.audio.input_recipe import (  # noqa: F401  (re-exported: the recipe's parts)
    NORMALIZATION_MODES,
    Normalization,
    fit_frames,
    fit_normalization,
    trim_and_stretch,
)
from core.data.datasets import AudioDataset, AudioExample, content_hash, load_example_audio
from core.files import atomic_open

MEMORY_BUDGET_BYTES = int(float(os.environ.get("AUDIO_DL_FEATURE_CACHE_MB", "512")) * 1024**2)


class _MemoryLRU:
    """A byte-bounded least-recently-used map shared by every cache of the process."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.used = 0
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> torch.Tensor | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: torch.Tensor) -> None:
        size = value.numel() * value.element_size()
        with self._lock:
            if key in self._items or size > self.budget:
                return
            self._items[key] = value
            self.used += size
            while self.used > self.budget:
                _, old = self._items.popitem(last=False)
                self.used -= old.numel() * old.element_size()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used = 0


_MEMORY = _MemoryLRU(MEMORY_BUDGET_BYTES)


def clear_memory_cache() -> None:
    """Forget every feature held in memory (the disk cache stays)."""
    _MEMORY.clear()


@dataclass
class CacheStats:
    """How requests were served since the cache object was made."""

    memory_hits: int = 0
    disk_hits: int = 0
    computed: int = 0


class FeatureCache:
    """Features of examples for one FeatureConfig and kind ("logmel", "mfcc", "stft", "mel").

    root: folder of the disk cache (default core.paths.cache_dir() / "features");
    disk=False keeps features in memory only (e.g. for clips recorded in the browser).
    Thread-safe: several trainings may share the same cached entries.
    """

    def __init__(
        self,
        config: FeatureConfig,
        kind: str = "logmel",
        *,
        root: str | Path | None = None,
        disk: bool = True,
    ):
        self.config = config
        self.kind = kind
        self.transform = make_feature_transform(config, kind)
        self.disk = disk
        config_text = json.dumps(config.to_dict(), sort_keys=True) + kind
        self.config_hash = hashlib.sha1(config_text.encode()).hexdigest()[:16]
        base = Path(root) if root is not None else paths.cache_dir() / "features"
        self.folder = base / self.config_hash
        self.stats = CacheStats()

    def key(self, dataset: AudioDataset, example: AudioExample) -> str:
        """The cache key of one example: content hash + window + config + kind."""
        window = f"{example.start_seconds:.6f}:{example.duration_seconds}"
        raw = f"{content_hash(dataset, example)}|{window}|{self.config_hash}"
        return hashlib.sha1(raw.encode()).hexdigest()

    def features(self, dataset: AudioDataset, example: AudioExample) -> torch.Tensor:
        """The feature matrix of one example, float32 (bins, frames) on the CPU.

        Raises core.audio.clip.AudioError when its audio cannot be decoded.
        """
        key = self.key(dataset, example)
        cached = _MEMORY.get(key)
        if cached is not None:
            self.stats.memory_hits += 1
            return cached
        path = self.folder / key[:2] / f"{key}.npy"
        value = self._read_disk(path) if self.disk and not example.in_memory else None
        if value is not None:
            self.stats.disk_hits += 1
        else:
            value = self.compute(load_example_audio(dataset, example, self.config.sample_rate))
            self.stats.computed += 1
            if self.disk and not example.in_memory:
                _save_npy_atomic(path, value.numpy())
        _MEMORY.put(key, value)
        return value

    def compute(self, samples: np.ndarray) -> torch.Tensor:
        """Features of a waveform at config.sample_rate: (n,) -> float32 (bins, frames)."""
        with torch.no_grad():
            return self.transform(torch.as_tensor(samples, dtype=torch.float32)).contiguous()

    def features_for(
        self,
        dataset: AudioDataset,
        indices: Iterable[int],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> tuple[dict[int, torch.Tensor], list[str]]:
        """Features of many examples; undecodable ones are left out and reported.

        Returns ({index: (bins, frames) tensor}, ["name: reason", ...]). on_progress(done,
        total) is called every 64 examples and at the end.
        """
        indices = list(indices)
        found, failures = {}, []
        for done, index in enumerate(indices, start=1):
            example = dataset.examples[index]
            try:
                found[index] = self.features(dataset, example)
            except (AudioError, OSError) as error:
                failures.append(f"{example.ref}: {error}")
            if on_progress is not None and (done % 64 == 0 or done == len(indices)):
                on_progress(done, len(indices))
        return found, failures

    @staticmethod
    def _read_disk(path: Path) -> torch.Tensor | None:
        try:
            return torch.from_numpy(np.load(path, allow_pickle=False))
        except (OSError, ValueError, EOFError):
            return None  # missing, or torn by a crash: recompute


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    try:
        with atomic_open(path) as handle:
            np.save(handle, array, allow_pickle=False)
    except OSError:
        pass  # a full or read-only disk only costs speed: the features are computed again
