"""The types of a loaded search space: :class:`SearchSpace` and its sections, as the loader
(:mod:`search.space.loader`) fills them from a ``specs/search/*.yaml`` file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from effdet_graph import TrainOptions
from effdet_graph.data import SCENES
from graphspec.errors import ConfigError, Location, quote
from search.space.budget import Budget
from search.space.kinds import cells, compound_scaling, edges
from search.space.template import Template

DATASETS = ("synthetic", "coco")
SAMPLERS = ("tpe", "random")
PATH_SAMPLINGS = ("uniform", "fair")
"""How the one-shot supernet draws its training paths (:mod:`search.strategies.oneshot.sampling`)."""
SPLITS = ("train", "val")  # the splits the proxy task trains and evaluates on

TOPOLOGY_KINDS = ("bifpn_edges", "nasfpn_cells")
"""The kinds whose candidates differ in their topology only (one detector for all)."""

Choices = compound_scaling.CompoundChoices | cells.CellChoices | edges.EdgeChoices


@dataclass(frozen=True)
class DatasetConfig:
    """``synthetic``: the built-in synthetic data set of ``scene`` (:mod:`effdet_graph.data.synthetic`), written
    to ``path`` or a run folder; ``coco``: a COCO-format folder at ``path`` (absolute, or relative to the space
    file)."""

    name: str = "synthetic"
    path: Path | None = None
    num_classes: int = len(SCENES["shapes"].classes)
    scene: str = "shapes"
    val_fraction: float = 0.2
    images: int = 160
    image_size: int = 256


@dataclass(frozen=True)
class ProxyConfig:
    """Proxy training of each candidate: ``steps`` optimizer steps of ``batch_size`` images at
    ``image_size`` (``None``: the candidate's resolution) with learning rate ``lr`` and weight EMA
    ``ema_decay``; intermediate AP is measured up to ``reports`` times (for early stopping). The backbone
    starts from ImageNet weights with ``pretrained_backbone`` (``efficientnet_lite0``'s from the installed weights
    extra, offline; any other's from timm, a download), from the local file ``backbone_weights`` (timm's or
    EfficientNet-PyTorch's layout; a relative path is read from the space file's folder) when given, else from
    random weights; ``freeze_backbone`` trains the feature network and heads only; ``views`` and ``feature_cache``
    as :class:`~effdet_graph.training.options.TrainOptions`' (every trial shares the cache). ``scale_range`` is the
    training's scale jitter (``{low: a, high: b}`` in the file;
    :class:`~effdet_graph.data.transforms.TrainTransform`)."""

    steps: int
    batch_size: int = 8
    image_size: int | None = None
    lr: float = 0.05
    ema_decay: float = 0.99
    reports: int = 3
    scale_range: tuple[float, float] = TrainOptions.scale_range
    pretrained_backbone: bool = False
    backbone_weights: Path | None = None
    freeze_backbone: bool = False
    views: int | None = None
    feature_cache: bool = False


@dataclass(frozen=True)
class SamplerSettings:
    """Which sampler the engine should create (``tpe`` or ``random``) and its seed."""

    name: str = "tpe"
    seed: int = 0


@dataclass(frozen=True)
class OneShotConfig:
    """The one-shot strategy (``--strategy oneshot``): the supernet trains ``steps`` steps with the ``proxy``
    block's batch, input size, learning rate and EMA, drawing a path per step by ``sampling`` (``uniform`` or
    ``fair``); each candidate is then measured with its inherited weights, BatchNorm statistics recomputed on
    ``bn_batches`` batches of 32 training images (0: the supernet's kept), AP on the first ``val_images``
    validation images (``None``: all)."""

    steps: int = 1000
    sampling: str = "fair"
    bn_batches: int = 4
    val_images: int | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A loaded search-space file. ``choices`` is the kind's part; ``choices.draw(template, trial)`` samples."""

    name: str
    description: str
    file: str
    kind: str
    template: Template
    choices: Choices
    dataset: DatasetConfig
    proxy: ProxyConfig
    budget: Budget
    sampler: SamplerSettings
    oneshot: OneShotConfig = OneShotConfig()


def topology_choices(space: SearchSpace) -> edges.EdgeChoices | cells.CellChoices:
    """The choices of a topology search space.

    Raises:
        ConfigError: ``space`` searches no topology (a ``compound`` space).
    """
    if isinstance(space.choices, (edges.EdgeChoices, cells.CellChoices)):
        return space.choices
    raise ConfigError(
        f"a supernet needs a topology search space ({', '.join(TOPOLOGY_KINDS)}); {space.name} is a "
        f"{quote(space.kind)} space, whose candidates share one topology",
        Location(space.file),
    )
