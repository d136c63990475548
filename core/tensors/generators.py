"""Generators: a function that yields frames of an audio clip one `next()` at a time.

The frame generator is the lesson: its body stops at `yield`, keeps its local variables, and
carries on from the same line at the next `next()`. A DataLoader yields batches the same way.
"""

from __future__ import annotations

import inspect
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def frames(samples: np.ndarray, window: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, frame) for each full window of `samples`, moving `hop` samples each time."""
    index = 0
    start = 0
    while start + window <= len(samples):
        frame = samples[start : start + window]
        yield index, frame
        index += 1
        start += hop


def frame_count(n_samples: int, window: int, hop: int) -> int:
    """How many full frames `frames` yields: floor((n - window) / hop) + 1, or 0."""
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    return 0 if n_samples < window else (n_samples - window) // hop + 1


FRAMES_SOURCE_LINES, FRAMES_FIRST_LINE = inspect.getsourcelines(frames)


@dataclass(frozen=True)
class GeneratorSnapshot:
    """Where a generator stands."""

    state: str  # GEN_CREATED, GEN_SUSPENDED, GEN_RUNNING or GEN_CLOSED
    paused_line: int | None  # 0-based line of FRAMES_SOURCE_LINES where it is paused
    local_summary: dict[str, str]  # its kept local variables, arrays summarised


def _summary(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array shape {value.shape}, {value.dtype}"
    return repr(value)


def snapshot(generator: Iterator) -> GeneratorSnapshot:
    """The generator's state, paused line (relative to its source) and local variables."""
    state = inspect.getgeneratorstate(generator)
    frame = generator.gi_frame  # None once the generator has finished
    if frame is None:
        return GeneratorSnapshot(state, None, {})
    line = frame.f_lineno - FRAMES_FIRST_LINE if state == inspect.GEN_SUSPENDED else None
    return GeneratorSnapshot(state, line, {k: _summary(v) for k, v in frame.f_locals.items()})


def lazy_vs_eager_bytes(samples: np.ndarray, window: int, hop: int) -> tuple[int, int]:
    """Peak bytes allocated when every frame is copied into a list (eager) versus handled one
    at a time from the generator (lazy), measured with tracemalloc. Returns (eager, lazy)."""

    def eager() -> float:
        copies = [frame.copy() for _, frame in frames(samples, window, hop)]
        return sum(float(c.sum()) for c in copies)

    def lazy() -> float:
        return sum(float(frame.copy().sum()) for _, frame in frames(samples, window, hop))

    peaks = []
    for run in (eager, lazy):
        tracemalloc.start()
        try:
            run()
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return peaks[0], peaks[1]


class FrameDataset(Dataset):
    """The frames of a clip as a Dataset: item i is frame i, a float32 tensor (window,)."""

    def __init__(self, samples: np.ndarray, window: int, hop: int) -> None:
        self.samples = torch.as_tensor(np.asarray(samples, dtype=np.float32))
        self.window, self.hop = window, hop
        self.length = frame_count(len(self.samples), window, hop)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        start = index * self.hop
        return self.samples[start : start + self.window]


def frame_batches(samples: np.ndarray, window: int, hop: int, batch_size: int) -> DataLoader:
    """A DataLoader over FrameDataset: iterating it yields (batch_size, window) tensors."""
    return DataLoader(FrameDataset(samples, window, hop), batch_size=batch_size, shuffle=False)
