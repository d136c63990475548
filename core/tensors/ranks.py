"""Build small tensors of rank 0 to 3 from a spec, and describe what torch stores for them."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
FILLS = ("zeros", "ones", "arange", "random", "values")
RANK_NAMES = {0: "a number (scalar)", 1: "a vector", 2: "a matrix", 3: "a stack of matrices"}
MAX_RANK = 4
MAX_ELEMENTS = 4096  # the playground draws every value; bigger tensors belong in the console


class TensorInputError(ValueError):
    """A shape or value list a student typed that cannot become a tensor; str() says why."""


@dataclass(frozen=True)
class TensorSpec:
    """How to build one playground tensor."""

    shape: tuple[int, ...] = (2, 3)  # () is a scalar
    fill: str = "arange"  # one of FILLS
    dtype: str = "float32"  # a key of DTYPES
    seed: int = 0  # for fill="random": the same seed gives the same tensor
    values: str = ""  # for fill="values": numbers separated by commas or spaces


@dataclass(frozen=True)
class TensorFacts:
    """What torch knows about a tensor, as shown beside it."""

    shape: tuple[int, ...]
    rank: int
    rank_name: str
    dtype: str
    device: str
    stride: tuple[int, ...]
    numel: int
    element_size: int  # bytes per element
    nbytes: int  # numel * element_size
    is_contiguous: bool


def parse_shape(
    text: str, *, max_rank: int = MAX_RANK, max_elements: int = MAX_ELEMENTS
) -> tuple[int, ...]:
    """Read a shape typed as "2, 3", "(2, 3)", "2x3" or "()" (a scalar).

    Raises:
        TensorInputError: for anything but whole numbers >= 0, too many dimensions or elements.
    """
    cleaned = re.sub(r"(?<=\d)\s*[x×]\s*(?=\d)", ",", str(text).strip().strip("()[]"))
    parts = [p for p in re.split(r"[,\s]+", cleaned) if p]
    if len(parts) > max_rank:
        raise TensorInputError(f"a shape here has at most {max_rank} dimensions, got {len(parts)}")
    dims = []
    for part in parts:
        if not part.isdigit():
            raise TensorInputError(f"'{part}' is not a size: sizes are whole numbers like 2 or 3")
        if len(part) > 12:  # also keeps int() far from Python's 4300-digit limit
            raise TensorInputError(f"{part[:12]}... is far too large for a size")
        dims.append(int(part))
    numel = 1
    for dim in dims:
        numel *= dim
    if numel > max_elements:
        raise TensorInputError(
            f"shape {tuple(dims)} has {numel:,} elements; the playground draws at most "
            f"{max_elements:,} (use the expression console for bigger tensors)"
        )
    return tuple(dims)


def parse_values(text: str) -> list[float]:
    """Numbers separated by commas or spaces, e.g. "1, 2.5, -3"."""
    parts = [p for p in re.split(r"[,\s]+", str(text).strip().strip("[]()")) if p]
    values = []
    for part in parts:
        try:
            values.append(float(part))
        except ValueError:
            raise TensorInputError(f"'{part}' is not a number") from None
    return values


def build_tensor(spec: TensorSpec) -> torch.Tensor:
    """A tensor of spec.shape and spec.dtype filled as spec.fill says, on the CPU.

    "arange" counts 0, 1, 2, ... in row-major order, so each value tells where it is stored;
    "random" draws integers 0..9 (for int dtypes) or normal values with a seeded generator;
    "values" takes exactly numel numbers from spec.values.
    """
    if spec.dtype not in DTYPES:
        raise TensorInputError(f"unknown dtype {spec.dtype!r}; choose one of {', '.join(DTYPES)}")
    dtype = DTYPES[spec.dtype]
    shape = tuple(spec.shape)
    numel = 1
    for dim in shape:
        numel *= dim
    if numel > MAX_ELEMENTS:
        raise TensorInputError(
            f"{numel:,} elements is more than the playground draws ({MAX_ELEMENTS:,})"
        )
    if spec.fill == "zeros":
        return torch.zeros(shape, dtype=dtype)
    if spec.fill == "ones":
        return torch.ones(shape, dtype=dtype)
    if spec.fill == "arange":
        return torch.arange(numel, dtype=torch.float64).reshape(shape).to(dtype)
    if spec.fill == "random":
        generator = torch.Generator().manual_seed(int(spec.seed))
        if dtype.is_floating_point:
            return torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)
        return torch.randint(0, 10, shape, generator=generator).to(dtype)
    if spec.fill == "values":
        values = parse_values(spec.values)
        if len(values) != numel:
            raise TensorInputError(
                f"shape {shape} needs exactly {numel} values, you typed {len(values)}"
            )
        return torch.tensor(values, dtype=torch.float64).reshape(shape).to(dtype)
    raise TensorInputError(f"unknown fill {spec.fill!r}; choose one of {', '.join(FILLS)}")


def describe_tensor(tensor: torch.Tensor) -> TensorFacts:
    """Shape, rank, dtype, device, stride, element count and bytes of `tensor`."""
    rank = tensor.dim()
    return TensorFacts(
        shape=tuple(tensor.shape),
        rank=rank,
        rank_name=RANK_NAMES.get(rank, f"a rank-{rank} tensor"),
        dtype=str(tensor.dtype).removeprefix("torch."),
        device=str(tensor.device),
        stride=tuple(tensor.stride()),
        numel=tensor.numel(),
        element_size=tensor.element_size(),
        nbytes=tensor.numel() * tensor.element_size(),
        is_contiguous=tensor.is_contiguous(),
    )
