"""The settings of a training run, checked once, stored in its checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphspec import InputError

__all__ = [
    "DEFAULT_CACHED_VIEWS",
    "DEFAULT_EPOCHS",
    "LOG_KINDS",
    "RESUME_MUST_MATCH",
    "OptionError",
    "TrainOptions",
    "check_options",
]

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
    "data_seed",
    "ema_decay",
    "weight_decay",
    "momentum",
    "clip_norm",
    "scale_range",
    "bn_images",
    "freeze_backbone",
    "views",
)
#: Fixed views per training image with a feature cache, unless ``views`` says otherwise.
DEFAULT_CACHED_VIEWS = 8


class OptionError(InputError, ValueError):
    """A training option has a value it cannot take. The message names the fields: ``lr must be positive,
    got 0``; :meth:`named` phrases it with other names for them (the command line's ``--lr``, a search
    space's ``proxy.lr``).

    Args:
        template: The message with a ``{}`` for each field name: ``"{} must be positive, got 0"``.
        fields: The fields the message is about, the first being the one at fault.
    """

    def __init__(self, template: str, *fields: str):
        self.template = template
        self.fields = fields
        super().__init__(template.format(*fields))

    @property
    def field(self) -> str:
        """The option at fault (a :class:`TrainOptions` field name)."""
        return self.fields[0]

    def named(self, name: Callable[[str], str]) -> str:
        """The message with each field called ``name(field)``: ``named(lambda f: "--" + f)``."""
        return self.template.format(*(name(f) for f in self.fields))


def _at_least_one(value: Any) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value}"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value}"


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"must be positive, got {value}"


def _decay(value: Any) -> str | None:
    return None if 0.0 <= value < 1.0 else f"must be in [0, 1), got {value}"


def _log(value: Any) -> str | None:
    return None if value in LOG_KINDS else f"must be one of {', '.join(LOG_KINDS)}, got {value!r}"


def _scale_range(value: Any) -> str | None:
    low, high = value
    return None if 0 < low <= high else f"must be LOW,HIGH with 0 < LOW <= HIGH, got {low},{high}"


#: The rule of each checked field: ``None`` when the value is fine, else what is wrong (after the name).
#: ``None`` values (the option is not set) are not checked.
RULES: dict[str, Callable[[Any], str | None]] = {
    "steps": _at_least_one,
    "epochs": _at_least_one,
    "batch_size": _at_least_one,
    "image_size": _at_least_one,
    "head_depth": _at_least_one,
    "lr": _positive,
    "warmup_steps": _non_negative,
    "ema_decay": _decay,
    "workers": _non_negative,
    "bn_images": _non_negative,
    "log": _log,
    "scale_range": _scale_range,
    "log_every": _at_least_one,
    "seed": _non_negative,
    "data_seed": _non_negative,
    "views": _at_least_one,
}


def check_options(values: Mapping[str, Any]) -> None:
    """Check some :class:`TrainOptions` fields by the rules the class itself applies (each field alone).

    Args:
        values: Field name -> value; ``None`` values are not checked.

    Raises:
        OptionError: A value breaks its field's rule; ``.field`` names the field.
        KeyError: A name that is not a :class:`TrainOptions` field.
    """
    known = {f.name for f in dataclasses.fields(TrainOptions)}
    for name, value in values.items():
        if name not in known:
            raise KeyError(f"TrainOptions has no field {name!r}")
        rule = RULES.get(name)
        problem = rule(value) if rule is not None and value is not None else None
        if problem is not None:
            raise OptionError("{} " + problem.replace("{", "{{").replace("}", "}}"), name)


@dataclass(frozen=True)
class TrainOptions:
    """One training run. ``steps`` or ``epochs`` (not both; default :data:`DEFAULT_EPOCHS` epochs) set
    its length; ``image_size`` defaults to the phi's resolution; ``warmup_steps`` to 10% of the
    steps (at most 1000). ``scale_range`` is the scale jitter of
    :class:`~effdet_graph.data.transforms.TrainTransform`. ``bn_images`` training images recompute
    the BatchNorm statistics of the final EMA weights (:mod:`effdet_graph.training.batchnorm`; 0: keep
    the running averages).

    ``deterministic`` forces deterministic kernels (and turns cuDNN autotuning off): a run resumed from
    a checkpoint then ends with the same weights, bit for bit, as an uninterrupted one on the same
    hardware; without it (the default) cuDNN picks the fastest kernels, and a resumed run continues the
    same schedule, data order, augmentation and random streams but its weights may differ in the last bits
    on a GPU (the CPU's kernels are deterministic either way). ``compile`` captures the training step
    with ``torch.compile`` (CUDA graphs on a GPU, ``mode="reduce-overhead"``); ``log_every`` is how
    often the losses are read back from the device and logged (the mean of those steps). ``sync_bn``
    synchronises BatchNorm statistics over ``torchrun`` processes (GPUs only).
    ``pretrained_backbone`` starts the backbone from ImageNet weights (an installed package's file, offline, where
    one ships them (``efficientnet_lite0``), else timm's download), and
    ``backbone_weights`` from a local file in timm's or EfficientNet-PyTorch's layout; ``freeze_backbone`` trains
    the feature network and heads alone, the backbone kept as it started (no gradients, BatchNorm in eval mode)."""

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
    #: Seeds the data order and the augmentation apart from the weights' initialisation (``seed``); ``None``:
    #: ``seed`` seeds both. Varying one with the other fixed tells the two sources of run-to-run variance apart.
    data_seed: int | None = None
    ema_decay: float = 0.9998
    log: str = "csv"
    workers: int = 0
    weight_decay: float = 4e-5
    momentum: float = 0.9
    clip_norm: float = 10.0
    scale_range: tuple[float, float] = (0.1, 2.0)
    bn_images: int = 512
    device: str | None = None
    deterministic: bool = False
    compile: bool = False
    log_every: int = 10
    sync_bn: bool = False
    pretrained_backbone: bool = False
    backbone_weights: Path | None = None
    freeze_backbone: bool = False
    #: Fixed augmented views of each training image, one picked each epoch (``None``: a fresh augmentation each
    #: epoch; with ``feature_cache``, :data:`DEFAULT_CACHED_VIEWS`).
    views: int | None = None
    #: Train on a cache of the frozen backbone's features of the views (:mod:`effdet_graph.training.feature_cache`),
    #: computed once for every run that shares data, backbone, input size, augmentation and views.
    feature_cache: bool = False
    #: Open every training image (and compare its size with the annotations) before anything is written;
    #: ``False`` skips that check, for large sets (:func:`effdet_graph.data.checks.check_split`).
    check_data: bool = True

    def __post_init__(self) -> None:
        """Check every field (:data:`RULES`, :func:`check_options`) and that ``steps`` and ``epochs`` are not
        both given.

        Raises:
            OptionError: A field's value is out of range; ``.field`` names it.
        """
        if self.steps is not None and self.epochs is not None:
            raise OptionError("give {} or {}, not both", "steps", "epochs")
        if self.feature_cache and not self.freeze_backbone:
            raise OptionError("{} holds a frozen backbone's features; add {}", "feature_cache", "freeze_backbone")
        check_options({name: getattr(self, name) for name in RULES})

    @property
    def view_count(self) -> int | None:
        """Fixed views per training image: ``views``, else :data:`DEFAULT_CACHED_VIEWS` with a feature cache, else
        ``None`` (a fresh augmentation every epoch)."""
        return self.views if self.views is not None or not self.feature_cache else DEFAULT_CACHED_VIEWS

    @property
    def order_seed(self) -> int:
        """The seed of the data order and augmentation: ``data_seed``, or ``seed`` when it is not set."""
        return self.seed if self.data_seed is None else self.data_seed

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
