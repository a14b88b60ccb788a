"""Optimizer and learning-rate schedule: SGD with momentum, weight decay on conv/linear weights only,
linear warmup then cosine decay, set per step."""

from __future__ import annotations

import torch
from timm.optim import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler
from torch import nn

__all__ = ["build_optimizer", "build_scheduler"]

#: The last step's learning rate, as a fraction of the peak.
FINAL_LR_FRACTION = 0.01
#: The first warmup step's learning rate, as a fraction of the peak.
WARMUP_START_FRACTION = 0.001


def build_optimizer(
    model: nn.Module, lr: float, momentum: float, weight_decay: float, device: torch.device | None = None
) -> torch.optim.SGD:
    """SGD; tensors of one dimension (BatchNorm scales and shifts, biases, fusion weights) get no decay.

    On a GPU the update is one fused kernel per parameter group (``fused=True``); elsewhere the
    multi-tensor (``foreach``) implementation."""
    fused = device is not None and device.type == "cuda"
    groups = param_groups_weight_decay(model, weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, fused=fused or None, foreach=None if fused else True)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> CosineLRScheduler:
    """Linear warmup over ``warmup_steps`` from ``lr * WARMUP_START_FRACTION``, then cosine decay to
    ``lr * FINAL_LR_FRACTION`` at ``total_steps``. Call ``step_update(step)`` before optimizer step
    ``step`` (0-based); the rate depends on ``step`` alone, so a resumed run picks up exactly."""
    peak = optimizer.param_groups[0]["lr"]
    return CosineLRScheduler(
        optimizer,
        t_initial=max(1, total_steps - warmup_steps),
        lr_min=peak * FINAL_LR_FRACTION,
        warmup_t=warmup_steps,
        warmup_lr_init=peak * WARMUP_START_FRACTION,
        warmup_prefix=True,
        t_in_epochs=False,
    )
