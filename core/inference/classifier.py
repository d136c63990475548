"""Classifying audio with a trained run: one clip, many clips, or parts of a long recording.

An `InferenceModel` is a trained network together with the `core.audio.input_recipe.InputRecipe`
that shaped its input during training (feature settings, kind, frames per example,
normalisation and trimming). The recipe travels with the model (model.json of the run), so a
clip is always prepared the way training prepared its validation examples:

    resample to the recipe's rate -> features of the whole clip -> normalise
    -> crop (centred) or pad (with the silence floor) to clip_frames

(`prepare_clip` here is `InputRecipe.clip`, the object training calls, plus the sentences
the page shows.)

Long recordings (`classify_windows`): the spectrogram of the whole file is computed once
(`InputRecipe.spectrum`); windows are slices of its frames, each given its own dB floor and
normalisation as if it were a training clip (`InputRecipe.window_inputs`), and the windows
run through the network in batches. Only the STFT frames at a window's edges differ from
computing the window alone (there they see the neighbouring audio instead of zero padding).
The live stream (core.inference.streaming) uses the same recipe methods and window helpers.

Models come from the run store (`core.training.runs.RunStore`); the shipped ready-made models are
run folders under `models/` read with the same code (`shipped_store()`).
"""

from __future__ import annotations

import copy
import io
import math
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core import paths
from core.audio.features import FeatureConfig
from core.audio.input_recipe import (
    InputRecipe,
    Normalization,
    cut_by_edge,
    silent_windows,
    sounding_span,
    window_starts,
)
from core.audio.levels import dbfs, peak, rms
from core.models.build import member_networks
from core.models.spec import ModelSpec

if TYPE_CHECKING:
    from core.training.runs import LoadedRun

DEFAULT_TOP_K = 5
UNSURE_PROBABILITY = 0.5  # below this top probability the answer is "unsure"
UNSURE_MARGIN = 0.15  # ... or when the runner-up is this close
DEFAULT_BATCH = 256  # windows per forward pass: large enough to amortise, small in memory
SILENCE_GATE_DB = 45.0  # windows this far below the recording's loudest part count as silence
LONG_CLIP_FACTOR = 3.0  # clips this many times the model's window get the "long clip" warning
CLIPPED_FRACTION = 0.001  # more than 0.1 % of samples at full scale: clipped
QUIET_RMS_DBFS = -45.0  # fallback level range when the model carries no profile of its data
LOUD_RMS_DBFS = -3.0


class InferenceError(ValueError):
    """A model or setting that cannot be used for classification; str() is for the student."""


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class InferenceModel:
    """A trained classifier and the recipe of its input.

    network: the nn.Module in eval mode on `device`, mapping (batch, 1, bins, clip_frames)
    normalised features to (batch, classes) logits. Treat it (and the recipe) as read-only:
    one instance may be shared by every session of a server.
    labels: class names in output order. recipe: the InputRecipe of its input (on the CPU;
    `logits` moves the input to `device`). origin: "shipped", "run" or "imported".
    profile: optional facts about the training clips ({"rms_dbfs": [p5, p95],
    "duration_seconds": [p5, p95]}) used for the "far from the training data" warnings.
    feature_config, feature_kind, clip_frames and normalization read the recipe's parts.
    """

    network: nn.Module
    labels: tuple[str, ...]
    recipe: InputRecipe
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "model"
    run_id: str = ""
    origin: str = "run"
    spec: ModelSpec | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    profile: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def feature_config(self) -> FeatureConfig:
        return self.recipe.config.features

    @property
    def feature_kind(self) -> str:
        """The feature kind: "logmel", "mel", "stft" or "mfcc"."""
        return self.recipe.kind

    @property
    def clip_frames(self) -> int:
        """Feature frames per example."""
        return self.recipe.clip_frames

    @property
    def normalization(self) -> Normalization:
        return self.recipe.normalization

    @property
    def sample_rate(self) -> int:
        """Hz the network's features are computed at."""
        return self.recipe.sample_rate

    @property
    def window_samples(self) -> int:
        """Samples of audio that give exactly clip_frames centred frames."""
        return self.recipe.window_samples

    @property
    def window_seconds(self) -> float:
        """The length of audio one example covers, in seconds."""
        return self.recipe.window_seconds

    @property
    def num_bins(self) -> int:
        return self.recipe.bins

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, classes) for normalised features (batch, 1, bins, clip_frames)."""
        from core.devices import autocast_context

        x = x.to(self.device)
        if x.dim() == 4:  # the layout optimise_for_inference gives the convolutions
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast_context(self.device):
            return self.network(x).float().cpu()

    def probabilities(self, x: torch.Tensor, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
        """Softmax probabilities (batch, classes), computed `batch_size` examples at a time."""
        parts = [
            torch.softmax(self.logits(x[i : i + batch_size]), dim=-1)
            for i in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, self.num_classes)


def model_from_loaded_run(
    run: LoadedRun, *, origin: str = "run", device: torch.device | str = "cpu"
) -> InferenceModel:
    """An InferenceModel from a `core.training.runs.LoadedRun` (the run store's loaded form).

    Raises InferenceError when the run's input recipe cannot be read or its network does
    not take a (1, bins, frames) spectrogram of its own feature kind (the only input the
    classify page can build).
    """
    device = torch.device(device)
    try:
        recipe = InputRecipe.from_run(run)
    except (ValueError, TypeError, KeyError) as error:
        raise InferenceError(f"The model's input recipe cannot be read ({error}).") from None
    model = InferenceModel(
        network=optimise_for_inference(run.model).to(device),
        labels=tuple(run.labels),
        recipe=recipe,
        device=device,
        name=run.info.name or run.info.run_id,
        run_id=run.info.run_id,
        origin=origin,
        spec=run.spec,
        metrics=dict(run.info.metrics),
        profile=dict(run.model_meta.get("data_profile") or {}),
    )
    _check_input_shape(model)
    return model


def optimise_for_inference(network: nn.Module) -> nn.Module:
    """An eval-mode copy that computes the same function faster (about 2x on a CPU).

    Each Conv2d directly followed by BatchNorm2d in `network.layers` (in each member's, for
    an ensemble) is folded into one convolution (the BatchNorm becomes an Identity, so layer
    indices stay those of the spec), and 4-D weights use the channels-last layout oneDNN's
    convolutions prefer. Outputs agree with the original to about 1e-5. The original network
    is left untouched.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(network).eval()
    for single in member_networks(fast):  # an ensemble: each member on its own
        layers = getattr(single, "layers", None)
        if not isinstance(layers, nn.Sequential):
            continue
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                layers[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                layers[i + 1] = nn.Identity()
    return fast.to(memory_format=torch.channels_last)


def _check_input_shape(model: InferenceModel) -> None:
    expected = (1, model.num_bins, model.clip_frames)
    actual = tuple(getattr(model.spec, "input_shape", expected))
    if actual != expected:
        raise InferenceError(
            f"This model takes inputs of shape {actual}, but its {model.feature_kind} features "
            f"are {expected}: the classify page needs a model trained on spectrogram "
            "features (1 × bins × frames)."
        )


# --------------------------------------------------------------------------- where models live


def shipped_store():
    """The run store of the ready-made models shipped in models/ (read-only use)."""
    from core.training.runs import RunStore

    return RunStore(paths.MODELS_DIR)


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model menu: which store and run, and how to describe it."""

    label: str
    store_root: str
    run_id: str
    origin: str  # "shipped" or "run"
    owner: str = ""


def available_models(owner: str | None) -> list[ModelChoice]:
    """The shipped models (oldest first: the digits model stays the default), then `owner`'s
    own runs that have a saved model (newest first).

    owner: the browser session id (None lists every run, for the command line). Runs of
    other students on the same server are never listed.
    """
    from core.training.runs import RunStore

    choices = []
    for info in sorted(shipped_store().list_runs(), key=lambda info: info.created_utc):
        if info.has_model:
            label = f"{info.name or info.run_id} (ready-made)"
            choices.append(ModelChoice(label, str(paths.MODELS_DIR), info.run_id, "shipped"))
    store = RunStore()
    for info in store.list_runs(owner):
        if info.has_model and info.status != "running":
            accuracy = info.metrics.get("val_accuracy")
            score = f", val. accuracy {accuracy:.0%}" if isinstance(accuracy, float) else ""
            label = f"{info.name or 'run'} · {info.run_id}{score}"
            choices.append(ModelChoice(label, str(store.root), info.run_id, "run", info.owner))
    return choices


def load_choice(choice: ModelChoice, *, device: torch.device | str = "cpu") -> InferenceModel:
    """Load the model of a menu entry; raises core.training.runs.RunError or InferenceError."""
    from core.training.runs import RunStore

    store = RunStore(choice.store_root)
    owner = None if choice.origin == "shipped" else choice.owner
    run = store.load(choice.run_id, owner=owner, device=device)
    return model_from_loaded_run(run, origin=choice.origin, device=device)


def card_for(choice: ModelChoice):
    """The `core.models.card.ModelCard` of a menu entry: its card.json, else derived from its
    run's split and summary. Raises core.models.card.ModelCardError (or core.training.runs.RunError
    for
    a run id that could escape the store) with a sentence."""
    from core.models.card import read_model_card
    from core.training.runs import RunStore

    return read_model_card(RunStore(choice.store_root).run_path(choice.run_id))


# --------------------------------------------------------------------------- importing archives

PICKLE_HINT = (
    "Pickles can run any program when they are opened, so this app never opens them. Save the "
    "weights with safetensors instead: safetensors.torch.save_file(model.state_dict(), "
    "'model.safetensors')."
)


def weights_problem(data: bytes, name: str = "model.safetensors") -> str | None:
    """A sentence when `data` is not safetensors (a pickle renamed, a zip...), else None.

    Looks only at the bytes (never unpickles): safetensors starts with an 8-byte little-endian
    header length followed by a JSON object; `torch.save` writes a zip ("PK") or a pickle
    (protocol byte 0x80).
    """
    if len(data) >= 2 and data[:1] == b"\x80" and data[1] in range(2, 6):
        return f"{name} is a Python pickle (torch.save format), not safetensors. {PICKLE_HINT}"
    if data[:4] == b"PK\x03\x04":
        return (
            f"{name} is a zip file, the format torch.save uses for pickled weights, not "
            f"safetensors. {PICKLE_HINT}"
        )
    if len(data) < 10:
        return f"{name} is too short to hold any weights ({len(data)} bytes)."
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or header_len > len(data) - 8 or data[8:9] != b"{":
        return f"{name} is not a safetensors file (its header is not readable)."
    return None


def import_run_archive(data: bytes, *, owner: str, store: Any = None) -> str:
    """Check and add a run archive (zip of config.json, model.json, model.safetensors, ...).

    Before the run store's own checks (only known members, weights matching the network's
    shapes), the weights are sniffed so a pickle renamed .safetensors gets its own sentence.
    A bare weights file gets a sentence saying what is missing. Returns the new run id;
    raises InferenceError or core.training.runs.RunError with the reason.
    """
    from core.training.runs import WEIGHTS_FILE, RunStore

    store = store or RunStore()
    if data[:4] != b"PK\x03\x04":
        problem = weights_problem(data, "This file")
        if problem is None:
            problem = (
                "This is a weights file on its own; a run archive is a zip that also holds "
                "model.json (the network, its classes and its feature settings) and "
                "config.json. Download the archive from the run's page and import that."
            )
        raise InferenceError(problem)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if WEIGHTS_FILE in names:
                with archive.open(WEIGHTS_FILE) as handle:
                    head = handle.read(4096)
                problem = weights_problem(head + b"\0" * 10, WEIGHTS_FILE)
                if problem is not None and "header is not readable" not in problem:
                    raise InferenceError(problem)
    except zipfile.BadZipFile:
        raise InferenceError("This file is not a readable zip archive.") from None
    return store.import_archive(data, owner=owner)


# --------------------------------------------------------------------------- one clip


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


# --------------------------------------------------------------------------- parts of a clip


@dataclass(frozen=True)
class WindowResult:
    """Class probabilities over time for a long clip.

    starts_seconds: (W,) window starts. probabilities: (W, classes). silent: (W,) bool,
    windows far below the recording's loudest part. window_seconds / hop_seconds: the grid
    actually used (rounded to whole feature frames). cut: (W,) bool or None, set when windows
    were trimmed to their sound: windows whose sound is cut by their edge (a word's tail or
    onset), which `find_segments` skips.
    """

    starts_seconds: np.ndarray
    probabilities: np.ndarray
    silent: np.ndarray
    window_seconds: float
    hop_seconds: float
    duration_seconds: float
    labels: tuple[str, ...]
    notices: tuple[str, ...] = ()
    cut: np.ndarray | None = None

    @property
    def centres_seconds(self) -> np.ndarray:
        return self.starts_seconds + self.window_seconds / 2


def classify_windows(
    model: InferenceModel,
    samples: np.ndarray,
    sample_rate: int,
    *,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    silence_gate_db: float = SILENCE_GATE_DB,
    trim_silence: bool = False,
) -> WindowResult:
    """Slide a window over a clip and classify every position.

    samples: float (n,) at `sample_rate` Hz. window_seconds: audio per window (default and
    maximum: the model's window; a shorter window is padded like a short training clip).
    hop_seconds: step between windows (default a quarter window); both are rounded to whole
    feature frames. The spectrogram is computed once for the whole clip; each window gets its
    own dB floor, normalisation and padding as a training clip would, and windows run through
    the network `batch_size` at a time. A clip shorter than one window gives one padded window.
    silence_gate_db: frames this far below the clip's loudest frame are silence; a window of
    silence only is flagged in `silent`. trim_silence: cut each window down to its sounding
    frames before treating it as a clip (so a sound is centred and padded exactly as training
    padded short clips). Models trained on trimmed clips (the spoken digits) have never seen
    silence around a sound and need this; for data sets whose clips contain silence, leave it off.
    With trimming, `cut` flags the windows whose sound runs on past their edge: trimmed and
    stretched, the last 80 ms of a word would fill the model's whole input, a picture no
    training clip ever made (each held a whole word), and be named confidently and wrongly.
    """
    recipe = model.recipe
    y = recipe.to_recipe_rate(samples, sample_rate)
    config = model.feature_config
    hop = config.hop_length
    try:
        window_frames = recipe.window_frames(window_seconds)
    except ValueError as error:
        raise InferenceError(str(error)) from None
    if hop_seconds is not None and not (math.isfinite(hop_seconds) and hop_seconds > 0):
        raise InferenceError("The hop between windows must be longer than 0 s.")
    hop_frames = max(
        1,
        round(
            (hop_seconds or window_frames * hop / config.sample_rate / 4) * config.sample_rate / hop
        ),
    )
    features = recipe.spectrum(y)  # (bins, frames), pre-dB for log-mel
    total = features.shape[-1]
    notices = []
    if total < window_frames:
        notices.append(
            f"The clip is shorter than one window ({len(y) / config.sample_rate:.2f} s < "
            f"{(window_frames - 1) * hop / config.sample_rate:.2f} s): it is classified as "
            "one window, padded with silence."
        )
    starts = window_starts(total, window_frames, hop_frames)
    level = recipe.frame_levels_db(y)
    active = level >= (level.max() if level.size else 0.0) - silence_gate_db
    probabilities, silent, cut = [], [], []
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        spans = [sounding_span(s, window_frames, active if trim_silence else None) for s in chunk]
        x = recipe.window_inputs(features, spans)
        probabilities.append(model.probabilities(x, batch_size).numpy())
        silent.append(silent_windows(level, chunk, window_frames, silence_gate_db))
        cut.append(
            [
                cut_by_edge(active, span, s, window_frames)
                for span, s in zip(spans, chunk, strict=True)
            ]
        )
    return WindowResult(
        starts_seconds=np.asarray(starts, dtype=np.float64) * hop / config.sample_rate,
        probabilities=np.concatenate(probabilities).astype(np.float32),
        silent=np.concatenate(silent),
        window_seconds=(min(window_frames, total) - 1) * hop / config.sample_rate,
        hop_seconds=hop_frames * hop / config.sample_rate,
        duration_seconds=len(y) / config.sample_rate,
        labels=model.labels,
        notices=tuple(notices),
        cut=np.concatenate(cut).astype(bool) if trim_silence else None,
    )


# --------------------------------------------------------------------------- timeline -> segments


def smooth_probabilities(probabilities: np.ndarray, windows: int) -> np.ndarray:
    """Centred moving average over `windows` neighbouring windows, (W, C) -> (W, C).

    The average at the ends uses only the windows that exist (no zero padding), so rows
    still sum to 1. windows <= 1 returns the input unchanged.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if windows <= 1 or p.shape[0] < 2:
        return p.astype(np.float32)
    kernel = np.ones(int(windows))
    # numpy's mode="same" is as long as the longer input: with fewer windows than the kernel
    # (the first windows of a live stream) it would add rows. Cut the centred part ourselves.
    first, n = (kernel.size - 1) // 2, p.shape[0]
    sums = np.apply_along_axis(lambda c: np.convolve(c, kernel)[first : first + n], 0, p)
    counts = np.convolve(np.ones(n), kernel)[first : first + n, None]
    return (sums / counts).astype(np.float32)


@dataclass(frozen=True)
class Segment:
    """A stretch of audio given one class: start and end in seconds, mean probability."""

    start_seconds: float
    end_seconds: float
    label: str
    confidence: float


def find_segments(
    result: WindowResult,
    *,
    threshold: float = UNSURE_PROBABILITY,
    smooth_windows: int = 1,
    min_windows: int = 1,
) -> list[Segment]:
    """Runs of windows with the same confident class, as time segments in order.

    A window counts when it is not silent, does not cut a sound at its edge (`result.cut`,
    with trimming) and its (smoothed) top probability reaches `threshold`. Each window
    stands for the hop-long stretch around its centre, so neighbouring windows tile the
    time axis; runs shorter than `min_windows` are dropped.
    """
    p = smooth_probabilities(result.probabilities, smooth_windows)
    best = p.argmax(axis=1)
    confident = (p.max(axis=1) >= threshold) & ~result.silent
    if result.cut is not None:
        confident &= ~result.cut
    segments, run_start = [], None
    for i in range(len(best) + 1):
        same = (
            i < len(best) and confident[i] and run_start is not None and best[i] == best[run_start]
        )
        if same:
            continue
        if run_start is not None and i - run_start >= min_windows:
            segments.append(_segment(result, p, run_start, i))
        run_start = i if i < len(best) and confident[i] else None
    return segments


def _segment(result: WindowResult, p: np.ndarray, first: int, stop: int) -> Segment:
    half_hop = result.hop_seconds / 2
    centres = result.centres_seconds
    label = int(p[first].argmax())
    return Segment(
        start_seconds=max(0.0, float(centres[first]) - half_hop),
        end_seconds=min(result.duration_seconds, float(centres[stop - 1]) + half_hop),
        label=result.labels[label],
        confidence=float(p[first:stop, label].mean()),
    )


# --------------------------------------------------------------------------- many clips


@dataclass(frozen=True)
class BatchRow:
    """One file of a batch: its answer or the reason it could not be classified."""

    file: str
    label: str
    confidence: float
    unsure: bool
    duration_seconds: float
    note: str


def classify_files(
    model: InferenceModel,
    sources: Sequence[tuple[str, Any]],
    *,
    max_seconds: float | None = None,
    threshold: float = UNSURE_PROBABILITY,
) -> list[BatchRow]:
    """Classify many files (name, path/bytes/file-like); a bad file gets a row with its error.

    Each file is decoded at the model's rate (at most `max_seconds`, default the app cap).
    """
    from core.audio.clip import DEFAULT_MAX_SECONDS, AudioError
    from core.audio.io import load_audio

    rows = []
    for name, source in sources:
        try:
            clip = load_audio(
                source,
                name=name,
                sample_rate=model.sample_rate,
                max_seconds=max_seconds or DEFAULT_MAX_SECONDS,
            )
        except AudioError as error:
            rows.append(BatchRow(name, "", math.nan, True, math.nan, str(error)))
            continue
        result = classify_clip(model, clip.samples, clip.sample_rate, threshold=threshold)
        pred = result.prediction
        note = " ".join((*clip.notices, *result.warnings, pred.reason)).strip()
        rows.append(
            BatchRow(name, pred.label, pred.confidence, pred.unsure, clip.duration_seconds, note)
        )
    return rows


def batch_csv(rows: Sequence[BatchRow]) -> bytes:
    """The batch table as UTF-8 CSV bytes (file, class, confidence, unsure, seconds, note)."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "class", "confidence", "unsure", "duration_seconds", "note"])
    for r in rows:
        confidence = "" if math.isnan(r.confidence) else f"{r.confidence:.4f}"
        seconds = "" if math.isnan(r.duration_seconds) else f"{r.duration_seconds:.3f}"
        writer.writerow([r.file, r.label, confidence, r.unsure, seconds, r.note])
    return buffer.getvalue().encode("utf-8")


def segment_audio(samples: np.ndarray, sample_rate: int, segment: Segment) -> np.ndarray:
    """The samples of one segment, float32 (m,)."""
    start = max(0, int(segment.start_seconds * sample_rate))
    stop = min(len(samples), int(math.ceil(segment.end_seconds * sample_rate)))
    return np.asarray(samples[start:stop], dtype=np.float32)


def describe_model(model: InferenceModel) -> dict[str, str]:
    """Facts about a model for the page: classes, features, window, normalisation, origin."""
    c = model.feature_config
    return {
        "classes": ", ".join(model.labels),
        "features": f"{model.feature_kind}, {model.num_bins} bins, {c.sample_rate} Hz, "
        f"n_fft {c.n_fft}, hop {c.hop_length}",
        "window": f"{model.window_seconds:.2f} s ({model.clip_frames} frames)",
        "normalisation": model.normalization.mode,
        "origin": model.origin,
    }


def file_stem(name: str) -> str:
    """A safe file stem for downloads derived from a model or clip name."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(name).stem)
    return stem.strip("_")[:60] or "model"
