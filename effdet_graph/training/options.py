"""The settings of a training run, checked once, stored in its checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphspec import InputError

__all__ = ["DEFAULT_EPOCHS", "LOG_KINDS", "RESUME_MUST_MATCH", "TrainOptions"]

DEFAULT_EPOCHS = 10
LOG_KINDS = ("csv", "tensorboard")
#: Options that fix the run's result; ``--resume`` refuses a checkpoint recorded with other values.
RESUME_MUST_MATCH = (
    "steps",
    "epochs",
    "batch_size",
    "lr",
    "warmup_steps",
    "seed",
    "ema_decay",
    "weight_decay",
    "momentum",
    "clip_norm",
    "scale_range",
    "bn_images",
)


@dataclass(frozen=True)
class TrainOptions:
    """One training run. ``steps`` or ``epochs`` (not both; default :data:`DEFAULT_EPOCHS` epochs) set
    its length; ``image_size`` defaults to the phi's resolution; ``warmup_steps`` to 10% of the
    steps (at most 1000). ``scale_range`` is the scale jitter of
    :class:`~effdet_graph.data.transforms.TrainTransform`. ``bn_images`` training images recompute
    the BatchNorm statistics of the final EMA weights (:mod:`effdet_graph.training.batchnorm`; 0: keep
    the running averages)."""

    data: Path
    spec: Path
    phi: int
    out: Path
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 8
    lr: float = 0.02
    warmup_steps: int | None = None
    image_size: int | None = None
    backbone: str | None = None
    head_depth: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: Path | None = None
    seed: int = 0
    ema_decay: float = 0.9998
    log: str = "csv"
    workers: int = 0
    weight_decay: float = 4e-5
    momentum: float = 0.9
    clip_norm: float = 10.0
    scale_range: tuple[float, float] = (0.1, 2.0)
    bn_images: int = 512
    device: str | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and self.epochs is not None:
            raise InputError("give --steps or --epochs, not both")
        positive = {
            "--steps": self.steps,
            "--epochs": self.epochs,
            "--batch-size": self.batch_size,
            "--image-size": self.image_size,
            "--head-depth": self.head_depth,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive, got {self.lr}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise InputError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InputError(f"--ema-decay must be in [0, 1), got {self.ema_decay}")
        for name, value in (("--workers", self.workers), ("--bn-images", self.bn_images)):
            if value < 0:
                raise InputError(f"{name} must be >= 0, got {value}")
        if self.log not in LOG_KINDS:
            raise InputError(f"--log must be one of {', '.join(LOG_KINDS)}, got {self.log!r}")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise InputError(f"--scale-range must be LOW,HIGH with 0 < LOW <= HIGH, got {low},{high}")

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole run."""
        return self.steps if self.steps is not None else (self.epochs or DEFAULT_EPOCHS) * steps_per_epoch

    def warmup(self, total_steps: int) -> int:
        """Steps of linear warmup (less than ``total_steps``)."""
        wanted = min(1000, total_steps // 10) if self.warmup_steps is None else self.warmup_steps
        return min(wanted, total_steps - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings), as stored in checkpoints under ``args``."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}
