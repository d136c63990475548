"""Multi-process training with DistributedDataParallel, as started by torchrun or Ray Train.

`torchrun --nproc_per_node=N -m core.train ...` starts N copies of the command line with
RANK, WORLD_SIZE and LOCAL_RANK in their environment; Ray Train's TorchTrainer
(core.jobs.distributed, `--workers N`) sets the same variables in N Ray workers and joins
their process group itself. `distributed_from_env()` reads them;
`init_distributed()` joins the group (gloo on the CPU, NCCL on CUDA GPUs, one GPU per
process); every process then trains on its own shard of each epoch and DDP averages the
gradients, so all copies hold the same weights. Only rank 0 writes the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_from_env() -> DistInfo | None:
    """The torchrun environment (WORLD_SIZE > 1), or None for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or not dist.is_available():
        return None
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group (once) and return this process's device.

    CUDA: NCCL with GPU `local_rank`; anything else: gloo on the CPU. When a launcher has
    joined the group already (Ray Train, core.jobs.distributed), it also chose this process's
    device: a CUDA device with an index is kept as given.
    """
    if dist.is_initialized() and device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return device


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over every process (unchanged when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def shard_indices(order: list[int], info: DistInfo | None) -> list[int]:
    """This process's share of an epoch's shuffled indices, equal in length on every rank.

    The order must be the same on every rank (same seed); a remainder of fewer than
    world_size examples is dropped so that every rank takes the same number of steps.
    """
    if info is None:
        return order
    usable = len(order) - len(order) % info.world_size
    return order[info.rank : usable : info.world_size]


def shutdown_distributed() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
