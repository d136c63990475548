"""Broadcasting explained: shapes lined up from the right, which dimensions stretch, and the
result or the exact dimension that does not fit; plus an audible per-band gain on an STFT."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class BroadcastReport:
    """How shapes combine under broadcasting.

    `aligned[i][j]` is operand i's size in column j, columns numbered from the left of the
    widest shape, `None` where operand i has no such dimension (it counts as 1).
    Dimensions are also named from the right: column j is dimension j - width (-1 is last).
    """

    shapes: tuple[tuple[int, ...], ...]
    aligned: tuple[tuple[int | None, ...], ...]
    result_shape: tuple[int, ...] | None  # None when incompatible
    stretched: tuple[tuple[int, int], ...]  # (operand, dimension from the right) that repeat
    incompatible_dim: int | None  # dimension from the right (e.g. -1) that does not fit
    message: str

    @property
    def ok(self) -> bool:
        return self.result_shape is not None


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def explain_broadcast(*shapes: tuple[int, ...]) -> BroadcastReport:
    """Explain how `shapes` broadcast, agreeing with `torch.broadcast_shapes`.

    Rule: line the shapes up from the right; in each column the sizes must be equal or 1
    (a missing dimension counts as 1); a size-1 or missing dimension is repeated (stretched)
    to the column's size.
    """
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    width = max((len(s) for s in shapes), default=0)
    aligned = tuple((None,) * (width - len(s)) + s for s in shapes)
    result: list[int] = []
    stretched: list[tuple[int, int]] = []
    for column in reversed(range(width)):  # from the right, as the rule is read
        dim = column - width
        sizes = [row[column] for row in aligned]
        real = {s for s in sizes if s is not None and s != 1}
        if len(real) > 1:
            pairs = " vs ".join(str(s) for s in sizes if s is not None)
            message = (
                f"shapes {' and '.join(_fmt(s) for s in shapes)} cannot be broadcast: lined up "
                f"from the right, dimension {dim} has sizes {pairs}. Sizes in a column must be "
                "equal, or one of them 1 (a 1 is repeated to match)."
            )
            return BroadcastReport(shapes, aligned, None, (), dim, message)
        size = real.pop() if real else 1
        result.insert(0, size)
        stretched += [(i, dim) for i, s in enumerate(sizes) if (s is None or s == 1) and size != 1]
    stretched.sort(key=lambda item: (item[0], item[1]))
    result_shape = tuple(result)
    if stretched:
        parts = [
            f"operand {i + 1} dimension {dim} "
            + ("(missing, counts as 1)" if aligned[i][dim + width] is None else "(size 1)")
            + f" repeats {result_shape[dim]} times"
            for i, dim in stretched
        ]
        detail = "; ".join(parts)
    else:
        detail = "no dimension needs to stretch"
    message = (
        f"{' and '.join(_fmt(s) for s in shapes)} broadcast to {_fmt(result_shape)}: {detail}."
    )
    return BroadcastReport(shapes, aligned, result_shape, tuple(stretched), None, message)


AUDIO_SHAPE_EXAMPLES = {
    "log-mel batch × per-band gain": ((8, 64, 431), (64, 1)),
    "log-mel batch × per-frame gain": ((8, 64, 431), (431,)),
    "log-mel batch × per-clip gain": ((8, 64, 431), (8, 1, 1)),
    "STFT × per-bin gain": ((1025, 431), (1025, 1)),
    "mistake: gain per band without the 1": ((8, 64, 431), (64,)),
    "stereo waveform × per-channel gain": ((2, 44100), (2, 1)),
    "tiny: column (3, 1) and row (4,)": ((3, 1), (4,)),
}


def band_gain_curve(
    n_freqs: int, sample_rate: int, band_gains_db: tuple[float, ...], *, f_min: float = 60.0
) -> torch.Tensor:
    """A gain per STFT bin, shape (n_freqs, 1), linear (not dB).

    The bands are equally wide on a log-frequency axis from f_min to Nyquist (like the mel
    scale, finer at low frequencies); the gain in dB is interpolated between band centres so
    no step edge rings. The trailing 1 is what makes it broadcast over every frame.
    """
    if n_freqs < 2 or not band_gains_db:
        raise ValueError("need at least two frequency bins and one band")
    nyquist = sample_rate / 2
    freqs = np.linspace(0.0, nyquist, n_freqs)
    edges = np.geomspace(f_min, nyquist, len(band_gains_db) + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    log_f = np.log(np.maximum(freqs, 1.0))
    gain_db = np.interp(log_f, np.log(centres), np.asarray(band_gains_db, dtype=float))
    return torch.from_numpy(10 ** (gain_db / 20)).float().unsqueeze(1)


@dataclass(frozen=True)
class GainResult:
    samples: np.ndarray  # float32, shape (n,), the gained clip
    magnitude_before: torch.Tensor  # (n_freqs, frames)
    magnitude_after: torch.Tensor  # (n_freqs, frames)
    stft_shape: tuple[int, ...]
    gain_shape: tuple[int, ...]


def apply_spectral_gain(
    samples: np.ndarray, gain: torch.Tensor, *, n_fft: int = 2048, hop_length: int = 512
) -> GainResult:
    """Multiply the complex STFT of `samples` (n,) by `gain` (n_freqs, 1) and invert it.

    The gain multiplies the complex STFT, not its magnitude, so every bin keeps its phase and
    the inverse STFT (overlap-add with the same Hann window) gives back a waveform that sounds
    like the original with the bands raised or lowered; a gain of all ones returns the input.
    The result is scaled down only if it would clip.
    """
    waveform = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    window = torch.hann_window(n_fft)
    spec = torch.stft(waveform, n_fft, hop_length, window=window, return_complex=True)
    gained = spec * gain  # (n_freqs, frames) * (n_freqs, 1) -> (n_freqs, frames)
    out = torch.istft(gained, n_fft, hop_length, window=window, length=waveform.shape[-1])
    peak = float(out.abs().max()) if out.numel() else 0.0
    if peak > 1.0 and math.isfinite(peak):
        out = out / peak
    return GainResult(
        out.numpy().astype(np.float32),
        spec.abs(),
        gained.abs(),
        tuple(spec.shape),
        tuple(gain.shape),
    )


@dataclass(frozen=True)
class StretchedOperand:
    """One operand of a broadcast, and the stretched copy torch pretends to make of it."""

    shape: tuple[int, ...]
    values: torch.Tensor  # the operand itself: 0, 1, 2, ... (operand 2 counts in tens)
    expanded: torch.Tensor  # values.expand(result shape): a view, nothing copied
    stride: tuple[int, ...]  # the operand's own stride
    expanded_stride: tuple[int, ...]  # 0 along every stretched dimension
    same_data_ptr: bool  # the expanded view starts at the operand's first element
    storage_bytes: int  # memory that really exists
    logical_bytes: int  # what a real copy of the stretched tensor would need


MAX_STRETCH_OPERAND = 1_000_000  # elements of an operand we build to show its stretched view
MAX_STRETCH_RESULT = 1_000_000  # elements of the sum we actually compute (expand is free, + is not)


def stretched_operands(
    *shapes: tuple[int, ...],
) -> tuple[BroadcastReport, list[StretchedOperand] | None, torch.Tensor | None]:
    """Build each operand (operand i filled with i*10 + 0, 1, 2, ...; float32), expand it to
    the broadcast shape and measure what `expand` made: strides (0 where a dimension is
    stretched), the same data_ptr, and the bytes that exist against the bytes a copy would need.

    Returns (report, operands, their sum computed by torch); operands and sum are None when
    the shapes do not broadcast or an operand would exceed MAX_STRETCH_OPERAND elements.
    `expand` allocates nothing, so even a huge stretched shape costs only its operand; the sum
    is real memory, so it is None above MAX_STRETCH_RESULT elements.
    """
    report = explain_broadcast(*shapes)
    if not report.ok or any(math.prod(s) > MAX_STRETCH_OPERAND for s in report.shapes):
        return report, None, None
    operands = []
    tensors = []
    for i, shape in enumerate(report.shapes):
        values = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape) + 10 * i
        tensors.append(values)
        expanded = values.expand(report.result_shape)
        operands.append(
            StretchedOperand(
                shape,
                values,
                expanded,
                tuple(values.stride()),
                tuple(expanded.stride()),
                expanded.data_ptr() == values.data_ptr(),
                values.untyped_storage().nbytes(),
                expanded.numel() * expanded.element_size(),
            )
        )
    if math.prod(report.result_shape) > MAX_STRETCH_RESULT:
        return report, operands, None
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return report, operands, total
