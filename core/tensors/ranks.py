"""Build small tensors of rank 0 to 3 from a spec, and describe what torch stores for them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from core.devices import memory_stats

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


def _shape_literal(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def torch_code(spec: TensorSpec) -> str:
    """The plain torch expression that builds the same tensor as `build_tensor(spec)`.

    Students can paste it into Python; a test evaluates it and compares with build_tensor.
    """
    dtype = f"torch.{spec.dtype}"
    shape = _shape_literal(tuple(spec.shape))
    numel = math.prod(spec.shape)
    if spec.fill in ("zeros", "ones"):
        return f"torch.{spec.fill}({shape}, dtype={dtype})"
    if spec.fill == "arange":
        # counted in float64 so that every count is exact, then stored in the chosen dtype
        return f"torch.arange({numel}, dtype=torch.float64).reshape({shape}).to({dtype})"
    generator = f"torch.Generator().manual_seed({int(spec.seed)})"
    if spec.fill == "random":
        if DTYPES[spec.dtype].is_floating_point:
            return f"torch.randn({shape}, generator={generator}).to({dtype})"
        return f"torch.randint(0, 10, {shape}, generator={generator}).to({dtype})"
    values = ", ".join(repr(v) for v in parse_values(spec.values))
    return f"torch.tensor([{values}], dtype=torch.float64).reshape({shape}).to({dtype})"


@dataclass(frozen=True)
class EmptyFact:
    code: str  # run on the empty tensor T
    result: str  # what torch returned, or its real error


def empty_tensor_facts(tensor: torch.Tensor) -> list[EmptyFact]:
    """What reductions do on an empty tensor, run for real (T must have numel() == 0).

    A sum of nothing is 0 and a product 1 (the identities of + and *); a mean of nothing is
    0 / 0 = nan; a max of nothing has no answer, so torch raises.
    """
    if tensor.numel():
        raise ValueError("empty_tensor_facts needs a tensor with no elements")
    facts = []
    operations = {
        "T.numel()": lambda t: t.numel(),
        "T.sum()": lambda t: t.sum(),
        "T.prod()": lambda t: t.prod(),
        "T.float().mean()": lambda t: t.float().mean(),
        "T.max()": lambda t: t.max(),
        "torch.cat([T, T])": lambda t: tuple(torch.cat([t, t]).shape),
    }
    for code, operation in operations.items():
        try:
            result = operation(tensor)
        except (RuntimeError, IndexError) as error:
            result = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        facts.append(EmptyFact(code, str(result)))
    return facts


@dataclass(frozen=True)
class DeviceMove:
    """What `T.to(device)` did, measured."""

    device: str
    same_object: bool  # True when T already lived there: .to() returns T itself, no copy
    nbytes: int
    allocated_before: int | None  # the device's memory counter (see core.devices.MemoryStats)
    allocated_after: int | None  # while the moved copy is alive
    allocated_after_del: int | None  # after the moved copy is deleted
    counter: str  # what the counter counts on this device
    mixed_error: str | None  # the real error of T + T.to(device), when they differ in device


def move_to_device(tensor: torch.Tensor, device: torch.device | str) -> DeviceMove:
    """Run `T_dev = T.to(device)`, reading the device's memory counter around it.

    On CUDA the counter is torch.cuda.memory_allocated: it grows by the tensor's bytes
    rounded up to the allocator's 512-byte blocks, and falls back when the copy is deleted.
    On the CPU it is the whole process's resident memory, which a tensor of a few kB does not
    visibly move (and a tensor already on the CPU is not copied at all).
    """
    device = torch.device(device)
    counter = (
        "torch.cuda.memory_allocated: bytes held by live tensors on the card"
        if device.type == "cuda"
        else "the memory the device reports as in use"
        if device.type == "mps"
        else "the app's resident memory (RSS): the whole process, not only tensors"
    )
    before = memory_stats(device).allocated_bytes
    moved = tensor.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    after = memory_stats(device).allocated_bytes
    same = moved is tensor
    mixed_error = None
    if moved.device != tensor.device:
        try:
            tensor + moved
        except RuntimeError as error:
            mixed_error = str(error).splitlines()[0]
    del moved
    after_del = memory_stats(device).allocated_bytes
    return DeviceMove(
        str(device),
        same,
        tensor.numel() * tensor.element_size(),
        before,
        after,
        after_del,
        counter,
        mixed_error,
    )
