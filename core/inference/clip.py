"""Classifying one clip: prepare it as training did, name the class, say when to doubt it.

    resample to the recipe's rate -> features of the whole clip -> normalise
    -> crop (centred) or pad (with the silence floor) to clip_frames

(`prepare_clip` here is `InputRecipe.clip`, the object training calls, plus the sentences
the page shows.) `classify_clip` adds the forward pass, the top classes, the "unsure" verdict
and warnings for a clip far from the training data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.audio.levels import dbfs, peak, rms
from core.inference.model import InferenceModel

DEFAULT_TOP_K = 5
UNSURE_PROBABILITY = 0.5  # below this top probability the answer is "unsure"
UNSURE_MARGIN = 0.15  # ... or when the runner-up is this close
LONG_CLIP_FACTOR = 3.0  # clips this many times the model's window get the "long clip" warning
CLIPPED_FRACTION = 0.001  # more than 0.1 % of samples at full scale: clipped
QUIET_RMS_DBFS = -45.0  # fallback level range when the model carries no profile of its data
LOUD_RMS_DBFS = -3.0


@dataclass(frozen=True)
class PreparedClip:
    """A clip turned into the network's input, with what the page needs to show it.

    samples: float32 (n,) at the model's sample rate. features: (bins, frames) of the whole
    clip before normalisation (dB for log-mel). model_input: (1, 1, bins, clip_frames)
    normalised and cropped/padded: exactly what the network sees. frame_offset: the clip
    frame at column 0 of model_input (negative when the clip was padded on the left).
    """

    samples: np.ndarray
    features: torch.Tensor
    model_input: torch.Tensor
    frame_offset: int
    notices: tuple[str, ...]


def to_model_rate(samples: np.ndarray, sample_rate: int, model: InferenceModel) -> np.ndarray:
    """Mono float32 (n,) at the model's rate; (channels, n) input is averaged first."""
    return model.recipe.to_recipe_rate(samples, sample_rate)


def prepare_clip(samples: np.ndarray, sample_rate: int, model: InferenceModel) -> PreparedClip:
    """Resample, compute features, normalise and crop/pad as training did.

    samples: float (n,) or (channels, n) at `sample_rate` Hz. The model input is
    `model.recipe.clip` (the recipe training used); also returns the whole-clip features,
    where the network's window sits in them and a sentence on what was cut or padded.
    """
    prepared = model.recipe.clip(samples, sample_rate)
    y, features, x = prepared.samples, prepared.features, prepared.model_input
    frames, offset = features.shape[-1], prepared.frame_offset
    notices = []
    seconds = len(y) / model.sample_rate
    if model.normalization.trim_db is not None:
        notices.append(
            f"Quiet parts more than {model.normalization.trim_db:g} dB below the loudest moment "
            f"were cut at both ends of the {seconds:.2f} s clip and the rest stretched to the "
            "model's window, as training did."
        )
    elif frames < model.clip_frames:
        notices.append(
            f"The clip ({seconds:.2f} s) is shorter than the model's window "
            f"({model.window_seconds:.2f} s): it was padded with silence on both sides, as "
            "training padded short clips."
        )
    elif frames > model.clip_frames:
        notices.append(
            f"The model looks at {model.window_seconds:.2f} s at a time: this answer is for "
            f"the middle {model.window_seconds:.2f} s of the {seconds:.2f} s clip (as training "
            "cropped long clips). The timeline classifies every part."
        )
    return PreparedClip(y, features, x, offset, tuple(notices))


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of one clip and the verdict drawn from them."""

    probabilities: np.ndarray  # (classes,) summing to 1
    labels: tuple[str, ...]
    unsure: bool
    reason: str  # why it is unsure ("" when sure)

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.labels[self.best_index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.best_index])

    def top_k(self, k: int = DEFAULT_TOP_K) -> list[tuple[str, float]]:
        """The k most probable (label, probability) pairs, most probable first."""
        return top_k(self.probabilities, self.labels, k)


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The k largest probabilities with their labels, descending (ties: lower index first)."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-p, kind="stable")[: max(1, min(k, p.size))]
    return [(labels[i], float(p[i])) for i in order]


def unsure_reason(
    probabilities: np.ndarray,
    *,
    threshold: float = UNSURE_PROBABILITY,
    margin: float = UNSURE_MARGIN,
) -> str:
    """Why no class is confident ('' when the top class is): low top probability or a tie."""
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    if p.size == 0:
        return "the model gave no answer"
    if p[0] < threshold:
        return f"the most likely class has only {p[0]:.0%} (below {threshold:.0%})"
    if p.size > 1 and p[0] - p[1] < margin:
        return f"the two most likely classes are within {p[0] - p[1]:.0%} of each other"
    return ""


@dataclass(frozen=True)
class ClipResult:
    """Everything the page shows about one clip: input, prediction, warnings, timings (ms)."""

    prepared: PreparedClip
    prediction: Prediction
    warnings: tuple[str, ...]
    timings_ms: Mapping[str, float]


def classify_clip(
    model: InferenceModel,
    samples: np.ndarray,
    sample_rate: int,
    *,
    threshold: float = UNSURE_PROBABILITY,
    margin: float = UNSURE_MARGIN,
) -> ClipResult:
    """Prepare, classify and check one clip (float (n,) at `sample_rate` Hz).

    timings_ms splits the work: "features" (resampling, features, normalisation), "model"
    (forward pass and softmax) and "top_k" (ranking and the unsure check).
    """
    t0 = time.perf_counter()
    prepared = prepare_clip(samples, sample_rate, model)
    t1 = time.perf_counter()
    probabilities = model.probabilities(prepared.model_input)[0].numpy()
    t2 = time.perf_counter()
    reason = unsure_reason(probabilities, threshold=threshold, margin=margin)
    prediction = Prediction(probabilities, model.labels, bool(reason), reason)
    prediction.top_k()
    t3 = time.perf_counter()
    warnings = clip_warnings(prepared.samples, model)
    timings = {"features": 1e3 * (t1 - t0), "model": 1e3 * (t2 - t1), "top_k": 1e3 * (t3 - t2)}
    return ClipResult(prepared, prediction, tuple(warnings), timings)


def clip_warnings(samples: np.ndarray, model: InferenceModel) -> list[str]:
    """Sentences for a clip far from the training data: long, silent, clipped, odd level.

    samples: float32 (n,) at the model's rate. The level range comes from the model's data
    profile when it has one (percentiles of the training clips), else a generic range.
    """
    warnings = []
    seconds = len(samples) / model.sample_rate
    durations = model.profile.get("duration_seconds") or [0.0, model.window_seconds]
    longest = max(float(durations[-1]), model.window_seconds)
    if seconds > LONG_CLIP_FACTOR * longest:
        warnings.append(
            f"Much longer than the training clips ({seconds:.1f} s against at most "
            f"{longest:.1f} s): one answer for the whole clip means little; read the timeline."
        )
    level_peak = peak(samples)
    if level_peak < 10 ** (-60 / 20):
        warnings.append(
            f"Nearly silent (peak {dbfs(level_peak):.0f} dBFS): the model will answer anyway, "
            "but there is almost nothing to hear."
        )
        return warnings
    clipped = float(np.mean(np.abs(samples) >= 0.999))
    if clipped > CLIPPED_FRACTION:
        warnings.append(
            f"Clipped: {clipped:.1%} of the samples sit at full scale, so the recording was "
            "too loud and is distorted; the model never heard distortion like this."
        )
    level = dbfs(rms(samples))
    low, high = model.profile.get("rms_dbfs") or [QUIET_RMS_DBFS, LOUD_RMS_DBFS]
    if level < float(low) - 10:
        warnings.append(
            f"Much quieter than the training clips (RMS {level:.0f} dBFS against "
            f"{low:.0f} to {high:.0f} dBFS): background noise weighs more than it did in training."
        )
    elif level > float(high) + 6:
        warnings.append(
            f"Much louder than the training clips (RMS {level:.0f} dBFS against "
            f"{low:.0f} to {high:.0f} dBFS)."
        )
    return warnings
