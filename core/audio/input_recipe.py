"""The input recipe: the one path from a waveform to what a trained network reads.

Everything that shapes a classifier's input lives in one frozen `InputRecipeConfig`:

    features       the core.audio.features.FeatureConfig (sample rate, FFT, hop, mel bands,
                   dB floor)
    kind           "logmel", "mfcc", "mel" or "stft"
    clip_frames    feature frames per example (the network's time axis)
    normalization  per-clip or training-split standardisation, and trimming (`trim_db`)

and one `InputRecipe` (an nn.Module in torchaudio's style: the window, mel filter bank and DCT
are buffers built once in `__init__`, so `.to(device)` moves them) applies it:

    waveform (batch, samples) at recipe.sample_rate
      -> features of each whole clip               (batch, bins, frames)   `features`
      -> trim + stretch, or normalise + crop/pad    (batch, bins, clip_frames)   `fit`
      -> channel axis                               (batch, 1, bins, clip_frames)   `forward`

Training (core.training.trainer), a clip on the Classify page (`clip`), the timeline and the live
stream (`spectrum` + `window_inputs`: one spectrogram for the whole recording, windows sliced
from it, each finished like a training clip), saliency, layer-by-layer values, evaluation and
the ONNX export all go through this object, so they cannot drift apart. The recipe is saved
with every run (model.json: the keys of `InputRecipeConfig.to_dict`, the same keys runs have
always had, so old runs load unchanged) and in the ONNX metadata (`to_json`).

Also here, as the pieces of the recipe: `Normalization`, `fit_normalization`, `fit_frames`,
`trim_and_stretch`, `clip_frames_for` (the one formula from seconds to frames) and the
windowing helpers the timeline and the live stream share (`window_starts`, `sounding_span`,
`silent_windows`, `cut_by_edge`).

Why one module of about 600 lines: it is the whole recipe, read top to bottom in the order a
clip goes through it; split up, the steps would again live in several places.

Why one module of about 600 lines: it is the contract between training and everything that
classifies. The fixed-length, normalisation and window helpers exist only for the recipe, and a
reader checking that training and inference see the same input should find the whole path in one
file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.audio.features import (
    AMIN,
    FEATURE_KINDS,
    FeatureConfig,
    make_feature_transform,
    power_to_db,
)
from core.audio.levels import resample

NORMALIZATION_MODES = ("utterance", "instance", "global", "none")
MIN_WINDOW_FRAMES = 3  # the shortest timeline window, in feature frames

# --------------------------------------------------------------------------- fixed length


def clip_frames_for(features: FeatureConfig, clip_seconds: float) -> int:
    """Feature frames of a clip `clip_seconds` long: features.num_frames(round(seconds * rate)).

    The one formula from a clip length in seconds to the network's time axis (training, the
    Train page's previews and shapes); e.g. 1.0 s at 8000 Hz, hop 80 -> 101 frames.
    """
    return features.num_frames(int(round(float(clip_seconds) * features.sample_rate)))


def fit_frames(features: torch.Tensor, frames: int, *, offset: int | None = None) -> torch.Tensor:
    """Crop or pad the last axis to `frames`: (..., bins, T) -> (..., bins, frames).

    Longer inputs are cropped at `offset` (default: centred); shorter ones are padded on
    both sides (centred) with the input's minimum, i.e. the spectrogram's silence floor.
    For a batch use `fit_frames_each` (here the minimum is the whole tensor's).
    """
    length = features.shape[-1]
    if length == frames:
        return features
    if length > frames:
        start = (length - frames) // 2 if offset is None else max(0, min(offset, length - frames))
        return features[..., start : start + frames]
    floor = features.amin() if features.numel() else torch.tensor(0.0)
    left = (frames - length) // 2
    out = torch.full(
        (*features.shape[:-1], frames), float(floor), dtype=features.dtype, device=features.device
    )
    out[..., left : left + length] = features
    return out


def fit_frames_each(features: torch.Tensor, frames: int) -> torch.Tensor:
    """`fit_frames` applied to each example (..., bins, T) on its own: each is padded with its
    own minimum. Same shapes as fit_frames."""
    if features.shape[-1] >= frames or features.dim() <= 2:
        return fit_frames(features, frames)
    flat = features.reshape(-1, *features.shape[-2:])
    fitted = torch.stack([fit_frames(example, frames) for example in flat])
    return fitted.reshape(*features.shape[:-1], frames)


def clip_frame_offset(frames: int, clip_frames: int) -> int:
    """The clip frame at column 0 of a centred crop/pad to clip_frames (negative: padding)."""
    if frames >= clip_frames:
        return (frames - clip_frames) // 2
    return -((clip_frames - frames) // 2)


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class Normalization:
    """How features are standardised before the network.

    mode "utterance": each clip's bands get zero mean and unit variance over its own frames
    (cepstral mean and variance normalisation: removes the microphone's and the voice's
    fixed colouring and the loudness; it also flattens steady sounds, so prefer "instance"
    for hums and tones). "instance": one mean and std per clip over all bands and frames
    (removes only the loudness, keeps the spectral shape). "global": per-band mean and std
    measured on the training split only (saved in `mean`/`std`, length = bins). "none":
    unchanged.

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
    def from_dict(cls, data: Mapping[str, Any]) -> Normalization:
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
    """Cut quiet frames at both ends of a dB log-mel and stretch the rest.

    (bins, T) -> (bins, frames).

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


# --------------------------------------------------------------------------- the recipe


@dataclass(frozen=True)
class InputRecipeConfig:
    """Everything that turns a waveform into a network's input, saved with every run.

    features: the spectrogram settings. kind: which feature ("logmel", "mfcc", "mel",
    "stft"). clip_frames: frames per example. normalization: standardisation and trimming.
    The model input has shape (1, features.num_bins(kind), clip_frames) per example.
    """

    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)
    kind: str = "logmel"
    clip_frames: int = 101
    normalization: Normalization = dataclasses.field(default_factory=Normalization)

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(
                f"Unknown feature kind {self.kind!r}; choose one of {', '.join(FEATURE_KINDS)}."
            )
        if isinstance(self.clip_frames, bool) or int(self.clip_frames) != self.clip_frames:
            raise ValueError(f"clip_frames must be a whole number, got {self.clip_frames!r}.")
        object.__setattr__(self, "clip_frames", int(self.clip_frames))
        if self.clip_frames < 1:
            raise ValueError(f"clip_frames must be at least 1, got {self.clip_frames}.")
        n = self.normalization
        if n.mode == "global" and not (len(n.mean) == len(n.std) == self.bins):
            raise ValueError(
                f"The normalisation has {len(n.mean)} band statistics but the {self.kind} "
                f"features have {self.bins} bands."
            )

    @property
    def bins(self) -> int:
        """Rows of the model input: features.num_bins(kind)."""
        return self.features.num_bins(self.kind)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One example's shape, (1, bins, clip_frames)."""
        return (1, self.bins, self.clip_frames)

    @property
    def trim_db(self) -> float | None:
        """Quiet ends cut (dB below the loudest frame) before stretching; None: crop/pad."""
        return self.normalization.trim_db

    def to_dict(self) -> dict[str, Any]:
        """The keys model.json and the ONNX metadata have always used for the recipe."""
        return {
            "feature_config": self.features.to_dict(),
            "feature_kind": self.kind,
            "clip_frames": self.clip_frames,
            "normalization": self.normalization.to_dict(),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, default_clip_frames: int | None = None
    ) -> InputRecipeConfig:
        """Read `to_dict` output or a model.json of any age.

        Runs saved before a key existed lack it: no "feature_kind" means "logmel", no
        "clip_frames" means `default_clip_frames` (the network's input width), no
        "normalization" means none, no "trim_db" means no trimming. Raises ValueError
        (or KeyError without "feature_config") with the reason.
        """
        clip_frames = data.get("clip_frames", default_clip_frames)
        if clip_frames is None:
            raise ValueError("The recipe does not say how many frames an example has.")
        return cls(
            features=FeatureConfig.from_dict(dict(data["feature_config"])),
            kind=str(data.get("feature_kind", "logmel")),
            clip_frames=clip_frames,
            normalization=Normalization.from_dict(dict(data.get("normalization") or {})),
        )


@dataclass(frozen=True)
class RecipeClip:
    """One clip through the recipe.

    samples: float32 (n,) mono at the recipe's rate. features: (bins, frames) of the whole
    clip before normalisation (dB for log-mel). model_input: (1, 1, bins, clip_frames), exactly
    what the network sees. frame_offset: the clip frame at column 0 of model_input
    (negative when the clip was padded on the left; with trimming, where the crop would be).
    """

    samples: np.ndarray
    features: torch.Tensor
    model_input: torch.Tensor
    frame_offset: int


class InputRecipe(nn.Module):
    """The waveform-to-model-input recipe of one network, built once from its config.

    Shapes: forward (batch, samples) float at `sample_rate` -> (batch, 1, bins, clip_frames)
    float32. `clip(samples, sample_rate)` does one clip of any rate and channel layout;
    `spectrum` + `window_inputs` the windows of a long recording. The feature transform's
    window, mel filter bank and DCT are registered buffers (non-persistent: rebuilt from the
    config, never read from a file); `.to(device)` moves them.

    Example:
        recipe = InputRecipe(InputRecipeConfig(FeatureConfig(), "logmel", 101))
        x = recipe(torch.zeros(4, 16000))   # (4, 1, 64, 101)
    """

    def __init__(self, config: InputRecipeConfig) -> None:
        super().__init__()
        self.config = config
        # The kind's own transform (its buffers built once); the timeline reuses its inner
        # mel stage, because the dB floor of each window is the window's own.
        self.transform = make_feature_transform(config.features, config.kind)
        if config.kind == "logmel":
            self.spectrum_transform = self.transform.mel
        elif config.kind == "mfcc":
            self.spectrum_transform = self.transform.log_mel.mel
        else:
            self.spectrum_transform = self.transform

    # ---- construction
    @classmethod
    def make(
        cls,
        features: FeatureConfig,
        kind: str = "logmel",
        clip_frames: int = 101,
        normalization: Normalization | None = None,
    ) -> InputRecipe:
        """InputRecipe(InputRecipeConfig(...)) from the four parts (default: per-clip CMVN)."""
        return cls(InputRecipeConfig(features, kind, clip_frames, normalization or Normalization()))

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, default_clip_frames: int | None = None
    ) -> InputRecipe:
        """From `to_dict()` output or the contents of a run's model.json (any age)."""
        return cls(InputRecipeConfig.from_dict(data, default_clip_frames=default_clip_frames))

    @classmethod
    def from_json(cls, text: str) -> InputRecipe:
        """From `to_json()` output (e.g. the "input_recipe" metadata of an exported ONNX)."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_run(cls, run: Any) -> InputRecipe:
        """The recipe a run was trained with.

        run: a core.training.runs.LoadedRun, or the folder of a run (only its model.json is read).
        Every model.json this app has written loads: keys added later get the defaults they
        stood for (see InputRecipeConfig.from_dict). Raises ValueError or KeyError when the
        recipe cannot be read.
        """
        if isinstance(run, (str, Path)):
            meta = json.loads((Path(run) / "model.json").read_text(encoding="utf-8"))
            shape = meta.get("input_shape") or (meta.get("spec") or {}).get("input_shape")
            default = int(shape[-1]) if shape else None
            return cls.from_dict(meta, default_clip_frames=default)
        meta = dict(getattr(run, "model_meta", None) or {})
        return cls(
            InputRecipeConfig(
                features=run.feature_config,
                kind=str(run.feature_kind),
                clip_frames=int(run.clip_frames),
                normalization=Normalization.from_dict(
                    dict(run.normalization or meta.get("normalization") or {})
                ),
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def to_json(self) -> str:
        """The recipe as one JSON object (the keys of InputRecipeConfig.to_dict)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_normalization(self, normalization: Normalization) -> InputRecipe:
        """The same recipe with another normalisation (a new module)."""
        return InputRecipe(dataclasses.replace(self.config, normalization=normalization))

    # ---- facts
    @property
    def feature_config(self) -> FeatureConfig:
        """The spectrogram settings (config.features)."""
        return self.config.features

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def clip_frames(self) -> int:
        return self.config.clip_frames

    @property
    def normalization(self) -> Normalization:
        return self.config.normalization

    @property
    def sample_rate(self) -> int:
        """Hz the features are computed at; `forward` expects waveforms at this rate."""
        return self.config.features.sample_rate

    @property
    def bins(self) -> int:
        return self.config.bins

    @property
    def device(self) -> torch.device:
        """Where the buffers are (`.to(device)` moves them); inputs are moved there."""
        return next(self.buffers()).device  # every transform has its window

    @property
    def window_samples(self) -> int:
        """Samples of audio that give exactly clip_frames centred frames."""
        return max(1, (self.clip_frames - 1) * self.config.features.hop_length)

    @property
    def window_seconds(self) -> float:
        """The length of audio one example covers, in seconds."""
        return self.window_samples / self.sample_rate

    def window_frames(self, window_seconds: float | None) -> int:
        """Frames of a timeline window `window_seconds` long (the inverse of window_seconds:
        1 + round(seconds * rate / hop)), at least MIN_WINDOW_FRAMES and at most clip_frames;
        None: clip_frames. Raises ValueError for a length that is not a positive number."""
        if window_seconds is None:
            return self.clip_frames
        if not math.isfinite(window_seconds) or window_seconds <= 0:
            raise ValueError("The window must be longer than 0 s.")
        hop = self.config.features.hop_length
        frames = 1 + round(window_seconds * self.sample_rate / hop)
        return int(min(max(frames, MIN_WINDOW_FRAMES), self.clip_frames))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"kind={c.kind}, sample_rate={c.features.sample_rate}, input=(1, {c.bins}, "
            f"{c.clip_frames}), normalization={c.normalization.mode}, trim_db={c.trim_db}"
        )

    # ---- one clip, a batch of clips
    def to_recipe_rate(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float32 (n,) at the recipe's rate; (channels, n) input is averaged first."""
        y = np.asarray(samples, dtype=np.float32)
        if y.ndim == 2:
            y = y.mean(axis=0)
        if sample_rate != self.sample_rate:
            y = resample(y, sample_rate, self.sample_rate)
        return np.ascontiguousarray(y, dtype=np.float32)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """Whole-clip features of the recipe's kind: (..., samples) -> (..., bins, frames).

        What training caches per example (core.data.feature_cache); dB with each clip's own floor
        for log-mel and MFCC. Gradients flow when the waveform requires them.
        """
        return self.transform(waveform)

    def fit(self, features: torch.Tensor) -> torch.Tensor:
        """Whole-clip features (..., bins, T) -> (..., bins, clip_frames), each example on its
        own: trimmed and stretched then normalised (with trim_db), else normalised then
        cropped (centred) or padded with its own silence floor. As training fits a clip."""
        normalization = self.config.normalization
        if normalization.trim_db is not None:
            return normalization.fit(features, self.clip_frames)
        return fit_frames_each(normalization.apply(features), self.clip_frames)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Model input of equal-length clips: (batch, samples) at sample_rate -> (batch, 1,
        bins, clip_frames) float32. A (samples,) waveform is one clip: (1, 1, bins, frames)."""
        batch = waveform.reshape(-1, waveform.shape[-1])
        return self.fit(self.features(batch)).unsqueeze(1)

    def clip(self, samples: np.ndarray, sample_rate: int) -> RecipeClip:
        """One clip of any rate and channel layout ((n,) or (channels, n) float) as the
        network's input, with its whole-clip features and where the input sits in them."""
        y = self.to_recipe_rate(samples, sample_rate)
        with torch.inference_mode():
            features = self.features(torch.from_numpy(y).to(self.device))
        # Outside inference mode, so callers may take gradients of (a copy of) the input.
        x = self.fit(features).reshape(1, 1, features.shape[-2], self.clip_frames)
        offset = clip_frame_offset(features.shape[-1], self.clip_frames)
        return RecipeClip(y, features, x, offset)

    # ---- the windows of a long recording
    def spectrum(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Features of a whole recording before any per-example step, (n,) at the recipe's
        rate -> (bins', frames): mel power for log-mel and MFCC (the dB floor is each
        window's own), the kind itself for "mel" and "stft". Slice frames out of it and hand
        them to `window_inputs`."""
        y = torch.as_tensor(samples, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            return self.spectrum_transform(y)

    def window_inputs(
        self, spectrum: torch.Tensor, spans: Sequence[tuple[int, int]]
    ) -> torch.Tensor:
        """Frames [a, b) of a `spectrum`, each treated as a training clip: (len(spans), 1,
        bins, clip_frames). Only the STFT frames at a window's edges differ from computing
        the window's audio alone (they see the neighbouring audio instead of zero padding)."""
        with torch.inference_mode():
            if len({b - a for a, b in spans}) == 1:  # equal lengths: one batched pass
                return self._finish(torch.stack([spectrum[:, a:b] for a, b in spans]))
            return torch.cat([self._finish(spectrum[None, :, a:b]) for a, b in spans])

    def _finish(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, bins', T) spectrum slices -> (N, 1, bins, clip_frames), as training made a clip."""
        if self.kind in ("logmel", "mfcc"):
            windows = power_to_db(windows, self.config.features.top_db)
        if self.kind == "mfcc":
            windows = self.transform.dct @ windows
        return self.fit(windows).unsqueeze(1)

    def frame_levels_db(self, samples: np.ndarray) -> np.ndarray:
        """Level in dB of each hop-long block of samples, one per feature frame (centred):
        (n,) at the recipe's rate -> (num_frames(n),) float32. Silence and trimming of the
        timeline and the live stream are judged on it."""
        y = np.asarray(samples, dtype=np.float32)
        hop = self.config.features.hop_length
        frames = self.config.features.num_frames(len(y))
        padded = np.zeros(frames * hop, dtype=np.float32)
        start = hop // 2  # frame t is centred on sample t * hop
        padded[start : start + len(y)] = y[: len(padded) - start]
        power = np.square(padded.reshape(frames, hop), dtype=np.float32).mean(axis=1)
        return 10 * np.log10(np.maximum(power, AMIN))


# --------------------------------------------------------------------------- window helpers


def window_starts(total: int, window: int, hop: int) -> list[int]:
    """Frame starts covering every frame of `total`: a regular grid plus one window flush
    with the end; [0] when the recording is no longer than one window."""
    if total <= window:
        return [0]
    starts = list(range(0, total - window + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window)
    return starts


def sounding_span(start: int, window: int, active: np.ndarray | None) -> tuple[int, int]:
    """Frames [a, b) of the window [start, start + window); with `active` (bool per frame),
    shrunk to its first..last sounding frame (the whole window when none sounds)."""
    if active is None:
        return start, start + window
    sounding = np.flatnonzero(active[start : start + window])
    if sounding.size == 0:
        return start, start + window
    return start + int(sounding[0]), start + int(sounding[-1]) + 1


def silent_windows(
    level_db: np.ndarray,
    starts: Sequence[int],
    window: int,
    gate_db: float,
    *,
    loudest_db: float | None = None,
) -> np.ndarray:
    """True for windows whose loudest frame is `gate_db` below the loudest level: the
    recording's (`level_db.max()`), or `loudest_db` when given (a stream's loudest so far)."""
    if loudest_db is None:
        loudest_db = float(level_db.max()) if level_db.size else 0.0
    peaks = np.array([level_db[s : s + window].max(initial=-200.0) for s in starts])
    return peaks < loudest_db - gate_db


def cut_by_edge(active: np.ndarray, span: tuple[int, int], start: int, window: int) -> bool:
    """Whether the sounding frames `span` = [a, b) of the window [start, start + window) reach
    an edge of the window while the sound goes on beyond it. A sound filling the whole window
    (longer than the window: music, a drone) is not counted: no window would hold it whole."""
    a, b = span
    if a == start and b == start + window:
        return False
    before = a == start and start > 0 and bool(active[start - 1])
    after = b == start + window and b < len(active) and bool(active[b])
    return before or after
