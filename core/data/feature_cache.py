"""Features computed once per clip and configuration, kept in memory and on disk.

`FeatureCache(config, kind)` turns an `AudioExample` into its feature matrix
(bins, frames): the first request decodes the audio and runs the core.audio.features transform,
later requests (the next epoch, the next run with the same settings, the next app start)
read it back. The key is a hash of the source's bytes, the example's time window, the
FeatureConfig and the feature kind, so an edited file or a changed setting never reads a
stale entry.

Also here: `fit_frames` (fixed-length crop or pad), `Normalization` (per-utterance CMVN or
statistics of the training split only) and `prepare_clip`, the single path from a waveform
to the model's input used by training, evaluation and the classify page.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core import paths
from core.audio.features import FeatureConfig, make_feature_transform
from core.data.datasets import AudioDataset, AudioExample, content_hash, load_example_audio
from core.files import atomic_open

MEMORY_BUDGET_BYTES = int(float(os.environ.get("AUDIO_DL_FEATURE_CACHE_MB", "512")) * 1024**2)
NORMALIZATION_MODES = ("utterance", "instance", "global", "none")


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
        from core.audio.clip import AudioError

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


# --------------------------------------------------------------------------- fixed length


def fit_frames(features: torch.Tensor, frames: int, *, offset: int | None = None) -> torch.Tensor:
    """Crop or pad the last axis to `frames`: (..., bins, T) -> (..., bins, frames).

    Longer inputs are cropped at `offset` (default: centred); shorter ones are padded on
    both sides (centred) with the input's minimum, i.e. the spectrogram's silence floor.
    """
    length = features.shape[-1]
    if length == frames:
        return features
    if length > frames:
        start = (length - frames) // 2 if offset is None else max(0, min(offset, length - frames))
        return features[..., start : start + frames]
    floor = features.amin() if features.numel() else torch.tensor(0.0)
    left = (frames - length) // 2
    out = torch.full((*features.shape[:-1], frames), float(floor), dtype=features.dtype)
    out[..., left : left + length] = features
    return out


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class Normalization:
    """How features are standardised before the network.

    mode "utterance": each clip's bands get zero mean and unit variance over its own frames
    (cepstral mean and variance normalisation: removes the microphone's and the voice's
    fixed colouring and the loudness; it also flattens steady sounds, so prefer "instance"
    for hums and tones). "instance": one mean and std per clip over all bands and frames
    (removes only the loudness, keeps the spectral shape). "global": per-band mean and std measured on the
    training split only (saved in `mean`/`std`, length = bins). "none": unchanged.

    trim_db (log-mel in dB only): `fit` first cuts the quiet frames at both ends (frame energy
    more than trim_db below the clip's loudest frame) and stretches what is left to the
    window, so a word fills the same frames whatever its speaker's pace (None: crop/pad only,
    as runs saved before this field).
    """

    mode: str = "utterance"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    trim_db: float | None = None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise (..., bins, frames) features; returns a new tensor."""
        if self.mode == "utterance":
            mean = x.mean(dim=-1, keepdim=True)
            std = x.std(dim=-1, keepdim=True, unbiased=False)
            return (x - mean) / (std + 1e-5)
        if self.mode == "instance":
            mean = x.mean(dim=(-2, -1), keepdim=True)
            std = x.std(dim=(-2, -1), keepdim=True, unbiased=False)
            return (x - mean) / (std + 1e-5)
        if self.mode == "global":
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).unsqueeze(-1)
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device).unsqueeze(-1)
            return (x - mean) / std
        return x

    def fit(self, features: torch.Tensor, frames: int) -> torch.Tensor:
        """Raw features (..., bins, T) -> normalised, fixed-length (..., bins, frames).

        Without trim_db: `apply`, then `fit_frames` (centred crop / pad). With it: each
        example is trimmed and stretched to `frames` (`trim_and_stretch`), then `apply`.
        """
        if self.trim_db is None:
            return fit_frames(self.apply(features), frames)
        flat = features.reshape(-1, *features.shape[-2:])
        fitted = torch.stack([trim_and_stretch(x, frames, self.trim_db) for x in flat])
        return self.apply(fitted.reshape(*features.shape[:-1], frames))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "mean": list(self.mean),
            "std": list(self.std),
            "trim_db": self.trim_db,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        mode = str(data.get("mode", "none"))
        if mode not in NORMALIZATION_MODES:
            raise ValueError(
                f"Unknown normalisation {mode!r}; choose one of {', '.join(NORMALIZATION_MODES)}."
            )
        return cls(
            mode,
            tuple(float(v) for v in data.get("mean", ())),
            tuple(float(v) for v in data.get("std", ())),
            None if data.get("trim_db") is None else float(data["trim_db"]),
        )


def trim_and_stretch(features: torch.Tensor, frames: int, top_db: float) -> torch.Tensor:
    """Cut quiet frames at both ends of a dB log-mel and stretch the rest: (bins, T) -> (bins, frames).

    A frame's energy is the dB of its summed band powers; frames from the first to the last
    within top_db of the loudest one (plus 2 frames of margin for soft onsets) are kept and
    linearly interpolated along time to `frames`. Removes the speaker's pace and the
    recording's silences, which say nothing about the word.
    """
    if features.shape[-1] < 2:
        return fit_frames(features, frames)
    energy = torch.logsumexp(features * (math.log(10) / 10), dim=0) * (10 / math.log(10))
    loud = torch.nonzero(energy >= energy.max() - top_db).flatten()
    start = max(0, int(loud[0]) - 2)
    stop = min(features.shape[-1], int(loud[-1]) + 3)
    if stop - start < 2:
        start, stop = 0, features.shape[-1]
    segment = features[None, :, start:stop]
    return F.interpolate(segment, size=frames, mode="linear", align_corners=True)[0]


def fit_normalization(
    mode: str,
    train_features: Sequence[torch.Tensor] | torch.Tensor,
    *,
    trim_db: float | None = None,
) -> Normalization:
    """A Normalization of `mode` whose statistics come from the training features only.

    train_features: tensors (bins, frames) or one (N, ..., bins, frames) tensor. trim_db:
    see Normalization (kept as given).
    """
    if mode not in NORMALIZATION_MODES:
        raise ValueError(
            f"Unknown normalisation {mode!r}; choose one of {', '.join(NORMALIZATION_MODES)}."
        )
    if mode != "global":
        return Normalization(mode, trim_db=trim_db)
    if isinstance(train_features, torch.Tensor):
        stacked = (
            train_features.reshape(-1, *train_features.shape[-2:])
            .transpose(0, 1)
            .reshape(train_features.shape[-2], -1)
        )
    else:
        stacked = torch.cat([t.reshape(t.shape[-2], -1) for t in train_features], dim=1)
    mean = stacked.mean(dim=1)
    std = stacked.std(dim=1, unbiased=False)
    # A band that never changes (e.g. above the Nyquist of upsampled audio) must not turn
    # tiny deviations into huge inputs: floor its spread at 1 % of the widest band's.
    std = std.clamp_min(max(1e-5, 0.01 * float(std.max())))
    return Normalization("global", tuple(mean.tolist()), tuple(std.tolist()), trim_db)


def prepare_clip(
    samples: np.ndarray,
    sample_rate: int,
    *,
    feature_config: FeatureConfig,
    kind: str,
    clip_frames: int,
    normalization: Normalization,
) -> torch.Tensor:
    """The model input for one waveform: (n,) at `sample_rate` Hz -> (1, 1, bins, clip_frames).

    Resamples to the feature rate, computes the features, crops or pads to clip_frames
    (centred) and normalises (or trims and stretches first: Normalization.trim_db), exactly
    as training did for validation examples.
    """
    from core.audio.levels import resample

    if sample_rate != feature_config.sample_rate:
        samples = resample(
            np.asarray(samples, dtype=np.float32), sample_rate, feature_config.sample_rate
        )
    transform = make_feature_transform(feature_config, kind)
    with torch.no_grad():
        feats = transform(torch.as_tensor(np.asarray(samples, dtype=np.float32)))
    return normalization.fit(feats, clip_frames).reshape(1, 1, feats.shape[-2], clip_frames)
