"""Out-of-memory recovery: halve the batch, then move to the CPU, saying why."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

T = TypeVar("T")

# torch.cuda.OutOfMemoryError is an alias of torch.OutOfMemoryError (also raised by MPS).
OOM_ERROR_TYPES: tuple[type[BaseException], ...] = (torch.OutOfMemoryError,)


class OutOfMemoryEverywhere(RuntimeError):
    """The step ran out of memory at the smallest batch on every device tried."""

    def __init__(self, messages: Sequence[str]):
        self.messages = tuple(messages)
        super().__init__(
            "Out of memory even at the smallest batch on every device; "
            "try a smaller model, shorter clips or fewer frames per batch."
        )


@dataclass(frozen=True)
class OomOutcome(Generic[T]):
    """What `run_with_oom_fallback` ran in the end."""

    value: T  # the step's return value
    batch_size: int  # the batch size that succeeded
    device: torch.device  # the device it succeeded on
    messages: tuple[str, ...] = field(default=())  # one sentence per retry, for the user

    @property
    def recovered(self) -> bool:
        return bool(self.messages)


def is_out_of_memory(
    error: BaseException, oom_types: tuple[type[BaseException], ...] = OOM_ERROR_TYPES
) -> bool:
    """True for torch's out-of-memory errors and RuntimeErrors saying "out of memory"."""
    if isinstance(error, oom_types):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def free_device_memory(device: torch.device | str) -> None:
    """Drop unreachable tensors and return the caching allocator's blocks to the driver."""
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        with torch.cuda.device(device):
            torch.cuda.empty_cache()
    elif device.type == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def run_with_oom_fallback(
    step: Callable[[int, torch.device], T],
    *,
    batch_size: int,
    device: torch.device | str,
    min_batch_size: int = 1,
    fallback_device: torch.device | str | None = "cpu",
    oom_types: tuple[type[BaseException], ...] = OOM_ERROR_TYPES,
    on_message: Callable[[str], None] | None = None,
) -> OomOutcome[T]:
    """Run `step(batch_size, device)`, halving the batch on out-of-memory, then using the CPU.

    Args:
        step: does the work for one batch size on one device and returns its result. It is
            called again from scratch after an out-of-memory error, so it must not depend on
            a previous attempt (move the model to the `device` it is given).
        batch_size: the batch size to try first (>= 1).
        device: the device to try first.
        min_batch_size: the floor; a batch never goes below it (default 1).
        fallback_device: where to go after the floor (default the CPU, starting again from
            `batch_size`); None to give up instead.
        oom_types: exception types treated as out-of-memory (besides RuntimeErrors whose
            message says "out of memory"); tests pass their own.
        on_message: called with each retry's sentence as it happens (e.g. to show progress).

    Returns an `OomOutcome` with the value, the batch size and device that worked, and one
    sentence per retry. Raises `OutOfMemoryEverywhere` when every device fails at the floor;
    any other exception from `step` propagates unchanged.
    """
    if batch_size < 1 or min_batch_size < 1:
        raise ValueError("batch_size and min_batch_size must be at least 1.")
    device = torch.device(device)
    plan = [device]
    if fallback_device is not None and torch.device(fallback_device) != device:
        plan.append(torch.device(fallback_device))
    messages: list[str] = []

    def note(message: str) -> None:
        messages.append(message)
        if on_message is not None:
            on_message(message)

    for position, current in enumerate(plan):
        batch = max(batch_size, min_batch_size)
        while True:
            failed = False
            try:
                value = step(batch, current)
            except BaseException as error:
                if not is_out_of_memory(error, oom_types):
                    raise
                failed = True
            # Outside the except block: the traceback (and the tensors its frames hold) is
            # gone, so emptying the cache can actually return that memory.
            if not failed:
                return OomOutcome(value, batch, current, tuple(messages))
            free_device_memory(current)
            if batch // 2 >= min_batch_size:
                note(f"Out of memory on {current} with batch {batch}; retrying with {batch // 2}.")
                batch //= 2
                continue
            if position + 1 < len(plan):
                following = plan[position + 1]
                note(
                    f"Out of memory on {current} even with batch {batch}; "
                    f"continuing on {following} with batch {max(batch_size, min_batch_size)} "
                    "(slower, but it will finish)."
                )
            else:
                note(f"Out of memory on {current} even with batch {batch}.")
            break
    raise OutOfMemoryEverywhere(messages)
