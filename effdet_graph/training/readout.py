"""Losses kept on the device and read back every few steps, so a GPU step never waits for the host.

Reading a loss (``.item()``) makes the host wait for the device to finish the step. The loop instead adds
each step's losses into a device tensor and reads their mean every ``log_every`` steps (and at epoch
ends); a non-finite loss is therefore noticed at the next read, at most ``log_every`` steps late.
Under ``torchrun`` the sums are added over the processes first, so every process reads the same values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import torch

from effdet_graph.training.distributed import all_reduce_sum
from graphspec import InputError

__all__ = ["LOSS_NAMES", "LossReadout"]

#: The losses a training step returns, in the order they are summed.
LOSS_NAMES = ("loss", "class_loss", "box_loss")


class LossReadout:
    """Running sums of the losses since the last read, and the throughput between reads.

    Args:
        batch_size: images per step (the global batch).
        world_size: training processes; each one's losses are averaged over them.
    """

    def __init__(self, batch_size: int, world_size: int = 1):
        self.batch_size = batch_size
        self.world_size = world_size
        self.sums: torch.Tensor | None = None
        self.steps = 0
        self.last_loss = math.nan
        self.busy_s = 0.0
        self._since = time.perf_counter()

    def start(self) -> None:
        """Restart the clock (after an epoch's loader is made, or a checkpoint is written)."""
        self._since = time.perf_counter()

    def add(self, losses: Mapping[str, torch.Tensor]) -> None:
        """Add one step's losses (0-dim tensors on the device), without waiting for them."""
        values = torch.stack([losses[name].detach().float() for name in LOSS_NAMES])
        self.sums = values if self.sums is None else self.sums + values
        self.steps += 1

    def read(self, step: int, epoch: int, lr: float, check_finite: bool = True) -> dict[str, float]:
        """The mean losses of the steps since the last read, as a log row (this waits for the device).

        Raises:
            InputError: ``check_finite`` and a mean loss is not finite (no loss scaler to skip such steps).
        """
        if self.sums is None:
            raise RuntimeError("read() before any add()")
        means = (all_reduce_sum(self.sums) / (self.steps * self.world_size)).tolist()
        now = time.perf_counter()
        elapsed, self.busy_s = now - self._since, self.busy_s + now - self._since
        row = {"step": step, "epoch": epoch, "lr": lr, **dict(zip(LOSS_NAMES, means))}
        row["images_per_s"] = self.steps * self.batch_size / elapsed if elapsed > 0 else math.nan
        if check_finite and not math.isfinite(row["loss"]):
            raise InputError(
                f"the loss became {row['loss']} by step {step} (lr {lr:.4g}); lower --lr or raise --warmup-steps"
            )
        self.sums, self.steps, self.last_loss, self._since = None, 0, row["loss"], now
        return row

    def images_per_s(self, steps: int) -> float:
        """Mean throughput of ``steps`` steps over the time measured between reads (checkpoints excluded)."""
        return steps * self.batch_size / self.busy_s if steps and self.busy_s > 0 else 0.0
