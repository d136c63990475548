"""Spectrogram features as batched nn.Module transforms, from one frozen FeatureConfig.

The transforms follow torchaudio's style: the configuration goes into `__init__`, the window,
mel filterbank and DCT matrix are registered buffers (so `.to(device)` moves them), and
`forward` delegates to the small functional helpers below. Every transform maps a waveform
batch `(..., time)` to `(..., bins, frames)` and runs on any device. On the CPU a large batch is
worked through in passes of a few clips whose intermediates fit the processor's cache (see
CPU_PASS_BYTES): the same numbers in about half the CPU time for 200 one-second clips.

The numbers mirror librosa 0.11 for the same parameters (tests/test_features.py checks):
  StftMagnitude      == np.abs(librosa.stft(y, n_fft, hop_length, win_length, window,
                                            center, pad_mode="constant")) ** power
  MelSpectrogram     == librosa.feature.melspectrogram(y=y, sr=sr, ..., htk=False,
                                                       norm="slaney")
  LogMelSpectrogram  == librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=top_db)
  MFCC               == librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc, dct_type=2,
                                             norm="ortho")
Decibels are relative to a fixed reference of 1.0 (librosa's default `ref=1.0`), not to each
clip's maximum (`ref=np.max`): a quiet recording then *looks* quieter, which is what a student
should see and what a classifier may use. The `top_db` floor is applied per example (per item
of the batch), exactly as librosa applies it to the one array it is given.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchaudio.functional import create_dct

WINDOWS = ("hann", "hamming", "blackman", "rectangular")
FEATURE_KINDS = ("stft", "mel", "logmel", "mfcc")
AMIN = 1e-10  # floor under power before log10, librosa's default


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that defines a feature, saved with every run so it can be rebuilt exactly."""

    sample_rate: int = 16000  # Hz the waveform must have; resample clips to this first
    n_fft: int = 512  # FFT size in samples (32 ms at 16 kHz); n_fft // 2 + 1 frequency bins
    hop_length: int = 160  # samples between frames (10 ms at 16 kHz): 100 frames per second
    win_length: int | None = None  # window length in samples, <= n_fft (None: n_fft)
    window: str = "hann"  # one of WINDOWS; periodic, as librosa/scipy use for spectra
    n_mels: int = 64  # mel bands of the log-mel spectrogram
    n_mfcc: int = 20  # cepstral coefficients kept, <= n_mels
    f_min: float = 0.0  # lowest mel band edge in Hz
    f_max: float | None = None  # highest mel band edge in Hz (None: sample_rate / 2)
    top_db: float | None = 80.0  # dynamic range kept below each example's peak (None: all)
    power: float = 2.0  # exponent on |STFT| for mel features: 2 power, 1 magnitude
    center: bool = True  # pad n_fft // 2 zeros each side so frame t is centred on t * hop
    mel_scale: str = "slaney"  # "slaney" (librosa default, linear below 1 kHz) or "htk"
    mel_norm: str | None = "slaney"  # "slaney": each band has unit area (librosa); None: peak 1

    def __post_init__(self) -> None:
        # Sliders and JSON may hand numpy or float-typed numbers: store plain Python ones so
        # to_dict() stays JSON-serialisable and equality is by value.
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        problems = list(_config_problems(self))
        if problems:
            raise ValueError("Invalid feature settings: " + " ".join(problems))

    # --- derived values -----------------------------------------------------------------
    @property
    def n_freqs(self) -> int:
        """Linear-frequency bins of the STFT: n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    @property
    def window_length(self) -> int:
        """win_length resolved (n_fft when None)."""
        return self.n_fft if self.win_length is None else self.win_length

    @property
    def f_max_hz(self) -> float:
        """f_max resolved (Nyquist when None)."""
        return self.sample_rate / 2 if self.f_max is None else float(self.f_max)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, n_samples: int) -> int:
        """Frames a waveform of n_samples gives (same formula as librosa.stft)."""
        if self.center:
            return 1 + n_samples // self.hop_length
        if n_samples < self.n_fft:
            return 0
        return 1 + (n_samples - self.n_fft) // self.hop_length

    def num_bins(self, kind: str) -> int:
        """Rows of the feature `kind` ("stft", "mel", "logmel", "mfcc")."""
        return {
            "stft": self.n_freqs,
            "mel": self.n_mels,
            "logmel": self.n_mels,
            "mfcc": self.n_mfcc,
        }[_check_kind(kind)]

    # --- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Rebuild from to_dict() output; unknown keys are an error (a typo would be silent)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown feature settings: {', '.join(unknown)}.")
        return cls(**data)


_INT_FIELDS = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "n_mfcc")
_FLOAT_FIELDS = ("f_min", "f_max", "top_db", "power")


def _config_problems(c: FeatureConfig) -> list[str]:
    """One sentence per invalid field, so a student sees every problem at once."""
    p = []
    if not isinstance(c.sample_rate, int) or not 1000 <= c.sample_rate <= 384_000:
        p.append(
            "sample_rate must be a whole number of Hz between 1000 and 384000, "
            f"got {c.sample_rate}."
        )
    if not isinstance(c.n_fft, int) or c.n_fft < 16:
        p.append(f"n_fft must be a whole number of samples of at least 16, got {c.n_fft}.")
    if not isinstance(c.hop_length, int) or c.hop_length < 1:
        p.append(f"hop_length must be a whole number of samples >= 1, got {c.hop_length}.")
    elif isinstance(c.n_fft, int) and c.hop_length > c.n_fft:
        p.append(
            f"hop_length ({c.hop_length}) is larger than n_fft ({c.n_fft}): samples between "
            "frames would be skipped. Use a hop of at most n_fft (n_fft / 4 is common)."
        )
    if c.win_length is not None and (
        not isinstance(c.win_length, int) or not 1 <= c.win_length <= (c.n_fft or 0)
    ):
        p.append(f"win_length must be between 1 and n_fft ({c.n_fft}), got {c.win_length}.")
    if c.window not in WINDOWS:
        p.append(f"window must be one of {', '.join(WINDOWS)}, got {c.window!r}.")
    if not isinstance(c.n_mels, int) or c.n_mels < 1:
        p.append(f"n_mels must be a whole number >= 1, got {c.n_mels}.")
    if not isinstance(c.n_mfcc, int) or c.n_mfcc < 1:
        p.append(f"n_mfcc must be a whole number >= 1, got {c.n_mfcc}.")
    elif isinstance(c.n_mels, int) and c.n_mfcc > c.n_mels:
        p.append(f"n_mfcc ({c.n_mfcc}) cannot exceed n_mels ({c.n_mels}).")
    nyquist = c.sample_rate / 2 if isinstance(c.sample_rate, int) else math.inf
    f_max = nyquist if c.f_max is None else c.f_max
    if not 0 <= c.f_min < f_max:
        p.append(f"f_min ({c.f_min} Hz) must be >= 0 and below f_max ({f_max} Hz).")
    if f_max > nyquist:
        p.append(f"f_max ({f_max} Hz) cannot exceed half the sample rate ({nyquist} Hz).")
    if c.top_db is not None and not c.top_db > 0:
        p.append(f"top_db must be positive (or None for no floor), got {c.top_db}.")
    if not c.power > 0:
        p.append(f"power must be positive (1 magnitude, 2 power), got {c.power}.")
    if c.mel_scale not in ("slaney", "htk"):
        p.append(f"mel_scale must be 'slaney' or 'htk', got {c.mel_scale!r}.")
    if c.mel_norm not in ("slaney", None):
        p.append(f"mel_norm must be 'slaney' or None, got {c.mel_norm!r}.")
    return p


def _check_kind(kind: str) -> str:
    if kind not in FEATURE_KINDS:
        raise ValueError(
            f"Unknown feature kind {kind!r}; choose one of {', '.join(FEATURE_KINDS)}."
        )
    return kind


# ------------------------------------------------------------------------------ functional


def make_window(config: FeatureConfig) -> torch.Tensor:
    """The analysis window, float32 of shape (window_length,), periodic like scipy's."""
    n = config.window_length
    if config.window == "hann":
        return torch.hann_window(n, periodic=True)
    if config.window == "hamming":
        return torch.hamming_window(n, periodic=True)
    if config.window == "blackman":
        return torch.blackman_window(n, periodic=True)
    return torch.ones(n)


def hz_to_mel(hz: np.ndarray, mel_scale: str = "slaney") -> np.ndarray:
    """Hz -> mel. "slaney": linear below 1 kHz, logarithmic above (librosa's default)."""
    hz = np.asarray(hz, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def mel_to_hz(mel: np.ndarray, mel_scale: str = "slaney") -> np.ndarray:
    """Inverse of hz_to_mel."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return np.where(
        mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * 200.0 / 3
    )


def mel_band_edges(config: FeatureConfig) -> np.ndarray:
    """n_mels + 2 frequencies in Hz, equally spaced in mel: band i spans edges[i]..edges[i+2]."""
    low, high = (
        hz_to_mel(config.f_min, config.mel_scale),
        hz_to_mel(config.f_max_hz, config.mel_scale),
    )
    return mel_to_hz(np.linspace(low, high, config.n_mels + 2), config.mel_scale)


def mel_filterbank(config: FeatureConfig) -> torch.Tensor:
    """Triangular mel filterbank, float32 of shape (n_mels, n_freqs), as librosa.filters.mel.

    Built in float64 (then cast) so it equals librosa's to float32 precision.
    Raises ValueError when some band gets no FFT bin (too many mels for this n_fft).
    Why not torchaudio.functional.melscale_fbanks: it builds the band edges in float32 (weights
    up to 0.7% off librosa's near the triangles' feet) and puts the top FFT bin at
    sample_rate // 2, which is wrong for odd sample rates (11025 Hz: weights 134% off).
    """
    fft_freqs = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate)
    edges = mel_band_edges(config)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if config.mel_norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # unit area per band
    empty = int((weights.max(axis=1) <= 0).sum())
    if empty:
        raise ValueError(
            f"{empty} of the {config.n_mels} mel bands contain no FFT bin: use fewer mel bands "
            f"or a larger n_fft (now {config.n_fft})."
        )
    return torch.from_numpy(weights).float()


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II rows, float32 of shape (n_mfcc, n_mels) (scipy's dct(norm="ortho")).

    Row k is cos(pi / n_mels * (n + 0.5) * k) * sqrt(2 / n_mels), row 0 divided by sqrt(2):
    the cosines an MFCC projects the log-mel bands onto. torchaudio's create_dct builds exactly
    this matrix (within 1e-6 of scipy), so we take it from there.
    """
    return create_dct(n_mfcc, n_mels, norm="ortho").T.contiguous()


def _check_length(n_samples: int, config: FeatureConfig) -> None:
    if not config.center and n_samples < config.n_fft:
        raise ValueError(
            f"A clip of {n_samples} samples is shorter than one analysis window (n_fft = "
            f"{config.n_fft}); use center=True or a longer clip."
        )


def _may_overwrite(x: torch.Tensor) -> bool:
    """Whether intermediates computed from x may be overwritten in place.

    In-place steps save a pass over memory each, but autograd needs the values they would
    overwrite when a gradient with respect to the waveform is being recorded.
    """
    return not (torch.is_grad_enabled() and x.requires_grad)


def _stft_frames_last(clips: torch.Tensor, window: torch.Tensor, config: FeatureConfig):
    """Complex STFT of (batch, time) float32 clips -> (batch, frames, n_freqs), contiguous.

    torch.stft transforms frame after frame, so its result lies in memory frames-major and is
    returned as a transposed view (batch, n_freqs, frames). The later steps work in that
    frames-major layout: every pass then reads memory in order instead of jumping
    n_freqs * 8 bytes from one element to the next.
    """
    spec = torch.stft(
        clips,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.window_length,
        window=window,
        center=config.center,
        pad_mode="constant",  # librosa >= 0.10 pads with zeros
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return spec.mT.contiguous()  # no copy where torch.stft already laid it out frames-major


def _power_spectrum(spec: torch.Tensor, power: float, in_place: bool) -> torch.Tensor:
    """|spec| ** power of a complex (batch, frames, n_freqs) STFT, float32, same shape."""
    if power == 2.0:
        parts = torch.view_as_real(spec)  # (batch, frames, n_freqs, 2): real, imaginary
        parts = parts.square_() if in_place else parts.square()
        return parts[..., 0] + parts[..., 1]  # re^2 + im^2: no sqrt-then-square, exact
    magnitude = spec.abs()
    if power == 1.0:
        return magnitude
    return magnitude.pow_(power) if in_place else magnitude.pow(power)


def _to_db(power: torch.Tensor, top_db: float | None, in_place: bool) -> torch.Tensor:
    """power_to_db; in_place=True overwrites `power` (two fewer passes over memory)."""
    if in_place:
        db = power.clamp_min_(AMIN).log10_().mul_(10.0)
    else:
        db = 10.0 * torch.log10(torch.clamp(power, min=AMIN))
    if top_db is None:
        return db
    floor = db.amax(dim=(-2, -1), keepdim=True) - top_db  # (..., 1, 1): one per example
    return db.clamp_(min=floor) if in_place else torch.maximum(db, floor)


def power_to_db(spec: torch.Tensor, top_db: float | None = 80.0) -> torch.Tensor:
    """10 * log10(max(spec, 1e-10)) with ref 1.0, floored at top_db below each example's max.

    spec: (..., bins, frames) power; the floor uses the max over the last two axes, so each
    example of a batch is treated like librosa.power_to_db(S, ref=1.0, top_db=top_db) alone.
    Returns a new tensor; `spec` is left unchanged.
    """
    return _to_db(spec, top_db, in_place=False)


# ------------------------------------------------------------------------------ modules

# Bytes of windowed frames per pass on the CPU. A batch of 200 one-second clips at n_fft 512
# has 20,200 frames: its windowed frames (41 MB), complex spectrum (42 MB) and power (21 MB)
# would each travel to main memory and back between two steps. In passes of 2 MB of frames
# every step finds its input still in the processor's cache: about half the CPU time of one
# pass for that batch (tests/benchmarks/bench_features.py). A GPU gets the batch at once.
CPU_PASS_BYTES = 2 * 1024 * 1024


class _SpectrogramTransform(nn.Module):
    """The forward pass shared by the transforms below.

    Flattens the batch axes, checks the length, runs `clip_features` on the CPU in passes of
    whole clips that fit the cache, and restores the batch axes. Each pass sees whole clips, so
    the result equals one pass over everything (the top_db floor is per clip anyway).
    """

    config: FeatureConfig

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        """(batch, time) float32 clips -> (batch, bins, frames); defined by each transform."""
        raise NotImplementedError

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        n_samples = waveform.shape[-1]
        _check_length(n_samples, self.config)
        clips = waveform.reshape(-1, n_samples).float()
        frames_per_pass = CPU_PASS_BYTES // (4 * self.config.n_fft)
        clips_per_pass = max(1, frames_per_pass // max(1, self.config.num_frames(n_samples)))
        if clips.device.type != "cpu" or clips.shape[0] <= clips_per_pass:
            out = self.clip_features(clips)
        else:
            out = torch.cat([self.clip_features(part) for part in clips.split(clips_per_pass)])
        return out.reshape(*waveform.shape[:-1], *out.shape[-2:])


class StftMagnitude(_SpectrogramTransform):
    """|STFT| ** power (power=1 by default: the magnitude), librosa.stft's layout.

    Shapes: (..., time) -> (..., n_fft // 2 + 1, frames), float32.
    """

    def __init__(self, config: FeatureConfig, power: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.power = float(power)
        self.register_buffer("window", make_window(config), persistent=False)

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        spec = _stft_frames_last(clips, self.window, self.config)
        return _power_spectrum(spec, self.power, _may_overwrite(clips)).mT


class MelSpectrogram(_SpectrogramTransform):
    """Mel power spectrogram like librosa.feature.melspectrogram.

    Shapes: (..., time) -> (..., n_mels, frames), float32, linear power.
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("window", make_window(config), persistent=False)
        self.register_buffer("mel_fb", mel_filterbank(config), persistent=False)

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        spec = _stft_frames_last(clips, self.window, self.config)
        power = _power_spectrum(spec, self.config.power, _may_overwrite(clips))
        # (n_mels, n_freqs) @ (batch, n_freqs, frames): the transposed operand costs no copy.
        return torch.matmul(self.mel_fb, power.mT)


class LogMelSpectrogram(_SpectrogramTransform):
    """Log-mel spectrogram in dB (ref 1.0, top_db floor per example).

    Shapes: (..., time) -> (..., n_mels, frames), float32 dB.
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = MelSpectrogram(config)

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        return _to_db(self.mel.clip_features(clips), self.config.top_db, _may_overwrite(clips))


class MFCC(_SpectrogramTransform):
    """Mel-frequency cepstral coefficients: type-II orthonormal DCT of the log-mel (dB).

    Shapes: (..., time) -> (..., n_mfcc, frames), float32.
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.log_mel = LogMelSpectrogram(config)
        self.register_buffer("dct", dct_matrix(config.n_mfcc, config.n_mels), persistent=False)

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.dct, self.log_mel.clip_features(clips))


def make_feature_transform(config: FeatureConfig, kind: str = "logmel") -> nn.Module:
    """The transform for `kind`: "stft" (magnitude), "mel" (power), "logmel" (dB), "mfcc"."""
    kind = _check_kind(kind)
    if kind == "stft":
        return StftMagnitude(config)
    if kind == "mel":
        return MelSpectrogram(config)
    if kind == "logmel":
        return LogMelSpectrogram(config)
    return MFCC(config)
