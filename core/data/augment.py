"""Data augmentation: new training examples from old ones, each kind optional with a strength.

Two domains:

- waveform (you can listen to them): `gain_db` (random loudness change), `noise_snr_db`
  (white noise at a signal-to-noise ratio) and `speed` (play faster or slower: pitch and
  tempo together, like a tape). `augment_waveform` applies them to one clip.
- log-mel decibels (per clip, before trimming and normalising): `eq_db`, a random smooth
  equaliser curve across the bands (another microphone, room or voice colouring).
  `random_equalizer` applies it to one clip's log-mel.
- spectrogram (you can look at them): `freq_warp` (stretch the mel axis: a longer or shorter
  vocal tract, VTLP), `time_stretch`, `time_shift`, SpecAugment `time_masks` and
  `freq_masks`, and `mixup_alpha` (blend two examples and their labels). `augment_batch`
  applies them to a batch of normalised features on any device.

`preview_augmentation` returns one augmented example to listen to and look at: the audio
carries only the waveform-domain changes; the spectrogram-domain ones are shown on the
spectrogram image (no Griffin-Lim resynthesis: it would add its own artefacts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.audio.features import make_feature_transform, mel_band_edges
from core.audio.input_recipe import Normalization, fit_frames
from core.audio.levels import resample


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run during training and how strongly (0 or None = off)."""

    freq_warp: float = 0.1  # mel axis scaled by a random factor in [1 - w, 1 + w]
    time_stretch: float = 0.1  # time axis scaled by a random factor in [1 - s, 1 + s]
    time_shift: float = 0.1  # shift by up to this fraction of the frames, left or right
    time_masks: int = 2  # SpecAugment: masked stretches of frames per example
    time_mask_fraction: float = 0.1  # longest time mask, as a fraction of the frames
    freq_masks: int = 2  # SpecAugment: masked bands of mel bins per example
    freq_mask_fraction: float = 0.15  # widest frequency mask, as a fraction of the bins
    mixup_alpha: float = 0.0  # Beta(α, α) blend of example pairs and their labels (0 = off)
    gain_db: float = 0.0  # waveform: random gain in [-g, +g] dB (0 = off)
    noise_snr_db: float | None = None  # waveform: white noise at this SNR in dB (None = off)
    speed: float = 0.0  # waveform: play speed in [1 - s, 1 + s] (pitch and tempo; 0 = off)
    # log-mel only: a random equaliser, EQ_COMPONENTS smooth curves across the bands of up to
    # ±eq_db dB each, added to a clip's dB log-mel (another microphone or room; 0 = off)
    eq_db: float = 6.0

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.freq_warp < 0.5, "freq_warp must be between 0 and 0.5"),
            (0 <= self.time_stretch < 0.5, "time_stretch must be between 0 and 0.5"),
            (0 <= self.time_shift <= 0.5, "time_shift must be between 0 and 0.5"),
            (0 <= self.time_masks <= 10, "time_masks must be between 0 and 10"),
            (0 <= self.freq_masks <= 10, "freq_masks must be between 0 and 10"),
            (0 <= self.time_mask_fraction <= 0.5, "time_mask_fraction must be between 0 and 0.5"),
            (0 <= self.freq_mask_fraction <= 0.5, "freq_mask_fraction must be between 0 and 0.5"),
            (0 <= self.mixup_alpha <= 10, "mixup_alpha must be between 0 and 10"),
            (0 <= self.gain_db <= 40, "gain_db must be between 0 and 40 dB"),
            (
                self.noise_snr_db is None or -10 <= self.noise_snr_db <= 80,
                "noise_snr_db must be between -10 and 80 dB",
            ),
            (0 <= self.speed < 0.5, "speed must be between 0 and 0.5"),
            (0 <= self.eq_db <= 24, "eq_db must be between 0 and 24 dB"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("Invalid augmentation settings: " + "; ".join(problems) + ".")

    @property
    def needs_waveform(self) -> bool:
        """True when some augmentation acts on the audio (features then change every epoch)."""
        return self.gain_db > 0 or self.noise_snr_db is not None or self.speed > 0

    @property
    def needs_decibels(self) -> bool:
        """True when some augmentation acts on each clip's log-mel in dB (before normalising)."""
        return self.eq_db > 0

    @classmethod
    def off(cls) -> AugmentConfig:
        """Every augmentation switched off."""
        return cls(0.0, 0.0, 0.0, 0, 0.0, 0, 0.0, 0.0, 0.0, None, 0.0, 0.0)


# --------------------------------------------------------------------------- waveform


def augment_waveform(
    samples: np.ndarray, sample_rate: int, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """The waveform-domain augmentations of `config` on one clip: (n,) -> (m,) float32.

    speed changes the length (m ≈ n / factor); gain and noise keep it. The noise level is
    set from the clip's own power so that 10·log10(P_signal / P_noise) = noise_snr_db.
    """
    y = np.asarray(samples, dtype=np.float32)
    if config.speed > 0 and len(y) > 1:
        factor = rng.uniform(1 - config.speed, 1 + config.speed)
        # Reading the samples `factor` times faster: linear interpolation is enough for speech.
        positions = np.arange(0, len(y) - 1, factor)
        y = np.interp(positions, np.arange(len(y)), y).astype(np.float32)
    if config.gain_db > 0:
        y = y * np.float32(10 ** (rng.uniform(-config.gain_db, config.gain_db) / 20))
    if config.noise_snr_db is not None:
        power = float(np.mean(y.astype(np.float64) ** 2)) if len(y) else 0.0
        if power > 0:
            noise_power = power / 10 ** (config.noise_snr_db / 10)
            y = y + rng.standard_normal(len(y)).astype(np.float32) * np.float32(
                np.sqrt(noise_power)
            )
    return y.astype(np.float32)


# --------------------------------------------------------------------------- log-mel decibels

EQ_COMPONENTS = 3  # cosines across the bands: a tilt, a bump or dip, a wiggle


def equalizer_curve(
    bins: int, eq_db: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random smooth gain curve across `bins` bands, in dB: shape (bins,).

    The sum of EQ_COMPONENTS half-cosines cos(pi·k·(b + 0.5) / bins), k = 1, 2, 3, each with
    an amplitude drawn uniformly from [-eq_db, +eq_db]: a spectral tilt, a broad bump or dip,
    and a gentler wiggle, like the colouring of a microphone, a room or a voice. No constant
    term: an overall gain is what normalisation removes anyway.
    """
    k = torch.arange(1, EQ_COMPONENTS + 1, dtype=torch.float32).unsqueeze(1)
    position = (torch.arange(bins, dtype=torch.float32) + 0.5).unsqueeze(0)
    amplitude = (2 * torch.rand(EQ_COMPONENTS, 1, generator=generator) - 1) * eq_db
    return (amplitude * torch.cos(math.pi * k * position / bins)).sum(dim=0)


def random_equalizer(
    features_db: torch.Tensor, eq_db: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One clip's log-mel (dB) through a random equaliser: (bins, frames) -> same.

    Adding a curve in dB multiplies every band's power by a fixed factor, which is what a
    different microphone or room does to a recording. Speakers in a small data set share
    little such variety, so a network learns their channel along with their words; this
    teaches it to ignore the channel. eq_db <= 0 returns the input.
    """
    if eq_db <= 0:
        return features_db
    curve = equalizer_curve(features_db.shape[-2], eq_db, generator)
    return features_db + curve.to(features_db.device, features_db.dtype).unsqueeze(-1)


def equalize_waveform(samples: np.ndarray, curve_db: torch.Tensor, feature_config) -> np.ndarray:
    """Filter a clip by a curve over the mel bands, to hear what `random_equalizer` does.

    samples: (n,) float32 at feature_config.sample_rate; curve_db: (n_mels,) dB, one gain per
    mel band (equalizer_curve). The gain of each STFT bin is interpolated between the bands'
    centre frequencies (flat beyond the outer ones); returns (n,) float32.
    """
    # Lazy: scipy.signal is ~600 modules; Classify and Explore import this module, never call this.
    from scipy.signal import istft, stft

    y = np.asarray(samples, dtype=np.float32)
    if len(y) < feature_config.n_fft:
        return y
    rate, n_fft = feature_config.sample_rate, feature_config.n_fft
    frequencies, _, spectrum = stft(y, fs=rate, nperseg=n_fft, noverlap=n_fft * 3 // 4)
    centres = mel_band_edges(feature_config)[1:-1]
    gain_db = np.interp(frequencies, centres, curve_db.detach().cpu().numpy())
    _, filtered = istft(
        spectrum * 10 ** (gain_db[:, None] / 20), fs=rate, nperseg=n_fft, noverlap=n_fft * 3 // 4
    )
    return filtered[: len(y)].astype(np.float32)


# --------------------------------------------------------------------------- spectrogram


def augment_batch(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Spectrogram-domain augmentations (not mixup) on a batch: (B, C, bins, frames) -> same.

    x holds normalised features (mean ≈ 0): masks are filled with 0. Warp, stretch and shift
    are one affine resampling per example (bilinear, edges extended), so they cost one pass.
    The random numbers come from `generator` (on the CPU) for reproducible runs.
    """
    batch, _, bins, frames = x.shape
    if batch == 0:
        return x
    x = _affine(x, config, generator)
    x = _masks(x, config.time_masks, config.time_mask_fraction, axis=3, generator=generator)
    return _masks(x, config.freq_masks, config.freq_mask_fraction, axis=2, generator=generator)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _affine(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None
) -> torch.Tensor:
    if not (config.freq_warp or config.time_stretch or config.time_shift):
        return x
    b = x.shape[0]
    # grid_sample reads output position p from input position theta·p (coordinates in [-1, 1]).
    freq_scale = 1.0 / _uniform(b, 1 - config.freq_warp, 1 + config.freq_warp, generator)
    time_scale = 1.0 / _uniform(b, 1 - config.time_stretch, 1 + config.time_stretch, generator)
    shift = _uniform(b, -2 * config.time_shift, 2 * config.time_shift, generator)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = time_scale  # x axis of the grid = frames (last axis)
    theta[:, 0, 2] = shift
    theta[:, 1, 1] = freq_scale  # y axis = bins; scaled around the centre ...
    theta[:, 1, 2] = freq_scale - 1.0  # ... then moved so the lowest bin stays fixed
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _masks(
    x: torch.Tensor, count: int, fraction: float, *, axis: int, generator: torch.Generator | None
) -> torch.Tensor:
    size = x.shape[axis]
    longest = int(fraction * size)
    if count <= 0 or longest < 1:
        return x
    b = x.shape[0]
    widths = torch.randint(0, longest + 1, (b, count), generator=generator)
    starts = (torch.rand(b, count, generator=generator) * (size - widths + 1)).long()
    positions = torch.arange(size).view(1, 1, size)
    hit = ((positions >= starts.unsqueeze(-1)) & (positions < (starts + widths).unsqueeze(-1))).any(
        dim=1
    )
    shape = [b, 1, 1, 1]
    shape[axis] = size
    return x.masked_fill(hit.view(shape).to(x.device), 0.0)


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Blend each example with a random partner: returns (x_mixed, y, y_partner, lam).

    The loss is lam·loss(y) + (1 - lam)·loss(y_partner); lam ~ Beta(α, α), α > 0.
    """
    lam = (
        float(torch.distributions.Beta(alpha, alpha).sample())
        if generator is None
        else _beta(alpha, generator)
    )
    order = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[order], y, y[order], lam


def _beta(alpha: float, generator: torch.Generator) -> float:
    # Beta from two Gammas via the generator, so seeded runs repeat exactly.
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class AugmentPreview:
    """One example before and after augmentation.

    original_audio / augmented_audio: float32 (n,) at sample_rate, playable; the augmented
    audio carries the waveform-domain changes only. original_features / augmented_features:
    normalised (bins, frames) arrays with every enabled change (what the network sees).
    """

    sample_rate: int
    original_audio: np.ndarray
    augmented_audio: np.ndarray
    original_features: np.ndarray
    augmented_features: np.ndarray
    applied: tuple[str, ...]
    note: str


def preview_augmentation(
    samples: np.ndarray,
    sample_rate: int,
    *,
    augment: AugmentConfig,
    feature_config,
    kind: str = "logmel",
    normalization: str = "utterance",
    clip_frames: int | None = None,
    seed: int = 0,
) -> AugmentPreview:
    """Apply `augment` to one clip, to listen to and look at.

    samples: (n,) float32 at `sample_rate` Hz (resampled to feature_config.sample_rate).
    feature_config: a core.audio.features.FeatureConfig; kind: feature kind; clip_frames: crop or
    pad to this many frames (None: the clip's own length). Mixup needs a partner and is
    listed but not shown.
    """
    rate = feature_config.sample_rate
    y = np.asarray(samples, dtype=np.float32)
    if sample_rate != rate:
        y = resample(y, sample_rate, rate)
    rng = np.random.default_rng(seed)
    y_aug = augment_waveform(y, rate, augment, rng) if augment.needs_waveform else y
    transform = make_feature_transform(feature_config, kind)
    norm = Normalization(normalization if normalization != "global" else "utterance")

    generator = torch.Generator().manual_seed(seed)
    curve = None
    audible = y_aug
    if augment.needs_decibels and kind == "logmel":
        # Training adds the curve to the log-mel; the audio is filtered by the same curve.
        curve = equalizer_curve(feature_config.n_mels, augment.eq_db, generator)
        audible = equalize_waveform(y_aug, curve, feature_config)

    def feats(wave: np.ndarray, curve_db: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            f = transform(torch.as_tensor(wave))
            f = norm.apply(f if curve_db is None else f + curve_db.unsqueeze(-1))
        return fit_frames(f, clip_frames or f.shape[-1])

    original = feats(y)
    augmented_input = feats(y_aug, curve)
    augmented = augment_batch(augmented_input[None, None], augment, generator)[0, 0]
    return AugmentPreview(
        rate, y, audible, original.numpy(), augmented.numpy(), _applied(augment), _note(augment)
    )


def _applied(c: AugmentConfig) -> tuple[str, ...]:
    names = {
        "speed": c.speed > 0,
        "gain": c.gain_db > 0,
        "noise": c.noise_snr_db is not None,
        "equaliser": c.eq_db > 0,
        "frequency warp": c.freq_warp > 0,
        "time stretch": c.time_stretch > 0,
        "time shift": c.time_shift > 0,
        "time masks": c.time_masks > 0 and c.time_mask_fraction > 0,
        "frequency masks": c.freq_masks > 0 and c.freq_mask_fraction > 0,
        "mixup": c.mixup_alpha > 0,
    }
    return tuple(name for name, on in names.items() if on)


def _note(c: AugmentConfig) -> str:
    return (
        "The augmented audio carries the waveform changes (speed, gain, noise) and the "
        "equaliser (log-mel only: training adds its curve to the log-mel, the audio is "
        "filtered by the same curve so you can hear it); warps, stretch, shift and "
        "SpecAugment masks act on the spectrogram and are shown on the image."
        + (
            " Mixup blends two training examples, so one clip cannot show it."
            if c.mixup_alpha > 0
            else ""
        )
    )
