"""Training on several processes with ``torchrun``: one process per device, ``DistributedDataParallel``.

``torchrun --nproc-per-node N effdet-graph train ...`` starts N copies of the command; each reads its
rank from the environment torchrun sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins one process group: NCCL on GPUs (process ``LOCAL_RANK`` on ``cuda:LOCAL_RANK``),
gloo on CPUs. Without those variables training runs in one process, as before.

``--batch-size`` stays the global batch: every process takes its own ``batch_size / world_size`` slice
of each global batch of the seeded epoch order (:func:`effdet_graph.training.data.epoch_loader`), and
the loss is normalised by the positives of the whole global batch, so N processes compute the gradient
one process would, up to BatchNorm, whose statistics are per process unless ``--sync-bn``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from effdet_graph.device import resolve_device
from graphspec import InputError

__all__ = ["ProcessGroup", "all_reduce_sum", "barrier", "join_process_group", "leave_process_group"]


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not an integer (torchrun sets it)") from None


def join_process_group(device_name: str | None, batch_size: int) -> tuple[ProcessGroup, torch.device]:
    """The process group this process belongs to, and its device.

    Args:
        device_name: ``--device``; under torchrun ``cuda`` means ``cuda:LOCAL_RANK``, and ``cuda:N`` is refused.
        batch_size: the global batch, which must split evenly over the processes.

    Raises:
        InputError: the batch does not split evenly, or a single ``cuda:N`` is named for several processes.
    """
    world_size = _env_int("WORLD_SIZE") or 1
    if world_size == 1:
        return ProcessGroup(), resolve_device(device_name)
    rank, local_rank = _env_int("RANK") or 0, _env_int("LOCAL_RANK") or 0
    if batch_size % world_size:
        raise InputError(
            f"--batch-size {batch_size} does not split over {world_size} processes; "
            f"use a multiple of {world_size} (it is the global batch)"
        )
    if device_name is not None and device_name.startswith("cuda:"):
        raise InputError(
            f"--device {device_name}: under torchrun every process takes cuda:LOCAL_RANK; use --device cuda"
        )
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = resolve_device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ProcessGroup(rank, local_rank, world_size), device


def leave_process_group() -> None:
    """Tear the process group down (a no-op in one process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here (a no-op in one process)."""
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """``value`` summed over the processes (``value`` itself in one process)."""
    if dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
    return value
