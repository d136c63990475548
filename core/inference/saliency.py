"""Why did the model decide? Saliency maps over its input spectrogram, and their sound.

Two methods, both returning a (bins, frames) map over the network's input:

- `occlusion_saliency`: cover one patch of the spectrogram at a time with silence (the
  input's floor) and measure how much the probability of the class drops. Model-agnostic
  and easy to explain: "hiding this region cost 40 % confidence". Costs one forward pass per
  patch, batched.
- `grad_cam`: Grad-CAM (Selvaraju et al., 2017) on the last convolutional feature map:
  the channels are weighted by the mean gradient of the class score, summed, rectified and
  upsampled to the input. One forward and one backward pass; needs a conv layer.

`salient_audio` turns a map into sound: either gate time (keep the frames where saliency is
high, with short fades) or mask the STFT (keep the time-frequency cells the mel bands cover,
resynthesise with the original phase). Both are at the model's sample rate, and take the
window and mel filter bank from the model's `core.audio.input_recipe.InputRecipe` when given one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.audio.features import FeatureConfig, make_window, mel_filterbank
from core.audio.input_recipe import InputRecipe
from core.models.build import member_networks

METHODS = ("occlusion", "grad-cam")
PLAYBACK_MODES = ("time", "time-frequency")
FADE_SECONDS = 0.01  # fades at the edges of kept regions, so gating does not click


def occlusion_saliency(
    probability_of: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    patch: tuple[int, int] = (8, 10),
    stride: tuple[int, int] | None = None,
    fill: float | None = None,
    batch_size: int = 128,
) -> np.ndarray:
    """Drop in the class probability when each region of the input is hidden.

    probability_of: maps a batch (N, 1, bins, frames) to the class probabilities (N,).
    x: one input (1, 1, bins, frames). patch: (bins, frames) hidden at once. stride: the
    step (default: the patch, i.e. non-overlapping patches: 88 forward passes for 64 x 101
    with the default patch, about a second on a CPU; half a patch is smoother but 4x the
    work). fill: the value written into the patch (default: each band's mean over the
    input's frames, so the local detail disappears without drawing an artificial edge; a
    constant such as the input's minimum makes a hole that a convolution reacts to
    wherever it is, which spreads the map everywhere).
    Returns float32 (bins, frames): for each cell the mean drop over the patches covering it
    (positive: hiding it lowers the probability).
    """
    _, _, bins, frames = x.shape
    pb, pf = min(patch[0], bins), min(patch[1], frames)
    sb, sf = stride or (pb, pf)
    if fill is None:
        value = x.mean(dim=-1, keepdim=True).expand_as(x)  # (1, 1, bins, frames)
    else:
        value = torch.full_like(x, float(fill))
    rows = _positions(bins, pb, sb)
    cols = _positions(frames, pf, sf)
    boxes = [(r, c) for r in rows for c in cols]
    with torch.inference_mode():
        base = float(probability_of(x)[0])
        drops = []
        for i in range(0, len(boxes), batch_size):
            chunk = boxes[i : i + batch_size]
            batch = x.repeat(len(chunk), 1, 1, 1)
            for j, (r, c) in enumerate(chunk):
                batch[j, :, r : r + pb, c : c + pf] = value[0, :, r : r + pb, c : c + pf]
            drops.append(base - probability_of(batch))
        drop = torch.cat(drops).numpy()
    total = np.zeros((bins, frames), dtype=np.float64)
    count = np.zeros((bins, frames), dtype=np.float64)
    for (r, c), d in zip(boxes, drop, strict=True):
        total[r : r + pb, c : c + pf] += d
        count[r : r + pb, c : c + pf] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


def _positions(length: int, size: int, step: int) -> list[int]:
    """Starts of windows of `size` every `step` that together cover 0..length."""
    starts = list(range(0, max(1, length - size + 1), step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def last_conv_index(layers: nn.Sequential) -> int | None:
    """Index of the last module in `layers` that is a 2-D convolution (or a block of them)."""
    index = None
    for i, module in enumerate(layers):
        if isinstance(module, nn.Conv2d) or any(isinstance(m, nn.Conv2d) for m in module.modules()):
            index = i
    return index


def grad_cam(network: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM map of class `target` for one input (1, 1, bins, frames) -> (bins, frames).

    network: a model with `.layers` (nn.Sequential, as core.models.spec builds). The map is
    taken after the last conv stage including its normalisation and activation (the
    modules up to the next pooling or reshaping layer), rectified, upsampled bilinearly to
    the input and scaled to a maximum of 1 (all zeros when nothing supports the class).
    Gradients go to the feature map only (torch.autograd.grad), never into the parameters,
    so a shared network is not modified. Raises ValueError without a conv layer.
    An ensemble's map is the mean of its members' maps (each member's evidence counts the
    same), scaled to a maximum of 1 again.
    """
    members = member_networks(network)
    if len(members) > 1:
        cam = np.mean([grad_cam(member, x, target) for member in members], axis=0)
        top = float(cam.max())
        return (cam / top if top > 0 else cam).astype(np.float32)
    layers = getattr(network, "layers", None)
    conv = last_conv_index(layers) if isinstance(layers, nn.Sequential) else None
    if conv is None:
        raise ValueError("Grad-CAM needs a convolutional layer; this network has none.")
    cut = conv + 1
    while cut < len(layers) and isinstance(
        layers[cut],
        nn.BatchNorm2d | nn.Identity | nn.ReLU | nn.LeakyReLU | nn.GELU | nn.ELU | nn.SiLU,
    ):
        cut += 1  # the map after BN and the activation is what the next layers read
    # A clone outside inference mode: inputs made under torch.inference_mode cannot take
    # part in autograd.
    x = x.detach().clone()
    with torch.enable_grad():
        activation = layers[:cut](x)
        activation = activation.detach().requires_grad_(True)
        score = layers[cut:](activation)[0, target]
        (gradient,) = torch.autograd.grad(score, activation)
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (1, channels, 1, 1)
    cam = torch.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    top = float(cam.max())
    return (cam / top if top > 0 else cam).numpy().astype(np.float32)


def salient_mask(saliency: np.ndarray, keep_fraction: float = 0.2) -> np.ndarray:
    """Boolean (bins, frames) mask of the `keep_fraction` most salient cells (positive only)."""
    s = np.asarray(saliency, dtype=np.float64)
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError("keep_fraction must be in (0, 1].")
    if s.size == 0 or s.max() <= 0:
        return np.zeros(s.shape, dtype=bool)
    cutoff = np.quantile(s, 1.0 - keep_fraction)
    return (s >= cutoff) & (s > 0)


def salient_frames(saliency: np.ndarray, keep_fraction: float = 0.2) -> np.ndarray:
    """Boolean (frames,) of the `keep_fraction` moments with the most saliency.

    A frame's saliency is the positive saliency summed over its bins, so one stray cell
    does not keep a moment; the map of a (bins, frames) input gives a (frames,) mask.
    """
    profile = np.clip(np.asarray(saliency, dtype=np.float64), 0, None).sum(axis=0)
    return salient_mask(profile[None, :], keep_fraction)[0]


def salient_audio(
    samples: np.ndarray,
    config: FeatureConfig | InputRecipe,
    saliency: np.ndarray,
    *,
    keep_fraction: float = 0.2,
    frame_offset: int = 0,
    mode: str = "time",
    feature_kind: str = "logmel",
) -> np.ndarray:
    """Only the salient parts of a clip, as audio at config.sample_rate.

    config: the model's InputRecipe (its feature settings, kind, window and filter bank), or
    a FeatureConfig together with `feature_kind`.
    samples: float32 (n,) at config.sample_rate. saliency: (bins, frames) over the model
    input, whose column 0 is clip frame `frame_offset` (see inference.PreparedClip).
    mode "time": keep the `keep_fraction` most salient moments (`salient_frames`, with
    10 ms fades) and silence the rest. mode "time-frequency": keep the `keep_fraction` most
    salient cells (`salient_mask`): the clip's STFT is multiplied by that mask spread back
    onto the FFT bins (through the mel filterbank for mel features) and inverted with the
    original phase. MFCC rows are not frequencies, so MFCC models always gate time.
    Returns float32 (n,), the clip's length.
    """
    recipe = config if isinstance(config, InputRecipe) else None
    if recipe is not None:
        config, feature_kind = recipe.config.features, recipe.kind
    y = np.asarray(samples, dtype=np.float32)
    frames = config.num_frames(len(y))
    if mode == "time" or feature_kind == "mfcc":
        keep = salient_frames(saliency, keep_fraction)[None, :]
        return _gate_time(y, _clip_frames_mask(keep, frame_offset, frames)[0], config)
    if mode != "time-frequency":
        raise ValueError(f"mode must be one of {PLAYBACK_MODES}, got {mode!r}")
    mask = salient_mask(saliency, keep_fraction)
    clip_mask = _clip_frames_mask(mask, frame_offset, frames)
    return _mask_stft(y, clip_mask, config, feature_kind, recipe)


def _clip_frames_mask(mask: np.ndarray, offset: int, frames: int) -> np.ndarray:
    """Place a (bins, model_frames) mask onto the clip's (bins, frames) grid."""
    out = np.zeros((mask.shape[0], frames), dtype=bool)
    for j in range(mask.shape[1]):
        t = j + offset
        if 0 <= t < frames:
            out[:, t] = mask[:, j]
    return out


def _gate_time(y: np.ndarray, keep_frames: np.ndarray, config: FeatureConfig) -> np.ndarray:
    hop = config.hop_length
    times = np.arange(len(keep_frames)) * hop  # frame t is centred on sample t * hop
    gain = np.interp(np.arange(len(y)), times, keep_frames.astype(np.float32)) if len(times) else 0
    fade = max(1, int(FADE_SECONDS * config.sample_rate))
    gain = np.convolve(np.asarray(gain, dtype=np.float32), np.ones(fade) / fade, mode="same")
    return (y * np.clip(gain, 0.0, 1.0)).astype(np.float32)


def _mask_stft(
    y: np.ndarray,
    mask: np.ndarray,
    config: FeatureConfig,
    feature_kind: str,
    recipe: InputRecipe | None = None,
) -> np.ndarray:
    # The recipe's own buffers when there is one (the same numbers, built once).
    spectrum = recipe.spectrum_transform if recipe is not None else None
    window = spectrum.window.cpu() if spectrum is not None else make_window(config)
    x = torch.from_numpy(y)
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.window_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    m = torch.from_numpy(mask.astype(np.float32))
    if feature_kind in ("logmel", "mel"):
        fb = spectrum.mel_fb.cpu() if spectrum is not None else mel_filterbank(config)
        fb = fb / fb.amax(dim=1, keepdim=True).clamp_min(1e-12)  # each band peaks at 1
        # Each FFT bin keeps the strongest weight among the salient bands covering it.
        m = (fb.unsqueeze(-1) * m.unsqueeze(1)).amax(dim=0)  # (n_freqs, frames)
    frames = min(spec.shape[-1], m.shape[-1])
    spec = spec[..., :frames] * m[..., :frames]
    out = torch.istft(
        spec,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.window_length,
        window=window,
        center=True,
        length=len(y),
    )
    return out.numpy().astype(np.float32)


def explain(
    model,
    prepared,
    *,
    target: int,
    method: str = "occlusion",
    patch: tuple[int, int] = (8, 10),
) -> np.ndarray:
    """Saliency (bins, clip_frames) of class `target` for an inference.PreparedClip."""
    if method == "grad-cam":
        return grad_cam(model.network, prepared.model_input.to(model.device), target)
    if method != "occlusion":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    def probability_of(batch: torch.Tensor) -> torch.Tensor:
        return model.probabilities(batch)[:, target]

    return occlusion_saliency(probability_of, prepared.model_input, patch=patch)
