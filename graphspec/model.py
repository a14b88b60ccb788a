"""The typed graph a spec loads into: named nodes, named inputs, levels, never list positions."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from graphspec.errors import Location

MERGES = ("weighted_sum", "global_pool_attention")
FUSIONS = ("sum", "unbounded", "softmax", "fast_normalized", "channel_softmax", "channel_fast_normalized")
UPSAMPLES = ("nearest", "bilinear")
DOWNSAMPLES = ("max_pool", "avg_pool", "conv")
PROJECTIONS = ("conv_bn", "conv")
LATERALS = ("none",) + PROJECTIONS
PADDINGS = ("symmetric", "same")  # PyTorch-style, or TensorFlow "SAME" (the public EfficientDet checkpoints)
OP_STEPS = ("swish", "relu", "separable_conv", "conv", "bn")
ACTIVATIONS = ("none", "swish", "relu")
FAST_NORMALIZED_EPS = 1e-4  # EfficientDet, Section 3.3


@functools.cache
def reserved_ids() -> frozenset[str]:
    """The names a node id cannot take: the attributes of PyTorch's ``nn.ModuleDict`` (``forward``, ``to``,
    ``training``, ``state_dict``, ``__class__`` ...), because the compiler keys its submodules by node id
    (``nn.ModuleDict`` refuses a key that is an attribute). Computed from the installed PyTorch."""
    from torch import nn

    return frozenset(dir(nn.ModuleDict()))


def level_name(level: int) -> str:
    """``4 -> 'P4'``."""
    return f"P{level}"


@dataclass(frozen=True)
class EdgeStyle:
    """How a node resamples and projects each input to its own level and width."""

    upsample: str = "nearest"
    downsample: str = "max_pool"
    projection: str = "conv_bn"


@dataclass(frozen=True)
class BatchNormStyle:
    """BatchNorm settings of every BN in the network (PyTorch's ``momentum`` = 1 - TF's decay)."""

    eps: float = 1e-5
    momentum: float = 0.1


@dataclass(frozen=True)
class DerivedLevel:
    """A pyramid level made before the first cell from a coarser-by-one level (e.g. P6 from P5).

    ``act`` is applied to the source first (RetinaNet's ReLU before P7's conv); the source is then
    projected to the network width where widths differ (``projection``) and downsampled by 2.
    """

    level: int
    source: int
    downsample: str
    act: str
    projection: str
    location: Location


@dataclass(frozen=True)
class Node:
    """A fusion node: resample each input to ``level``, merge, add ``residual``s, apply ``op``."""

    id: str
    level: int
    inputs: tuple[str, ...]
    merge: str
    fusion: str
    residual: tuple[str, ...]
    op: tuple[str, ...]
    edges: EdgeStyle
    location: Location


@dataclass(frozen=True)
class Spec:
    """A whole feature network: the input pyramid, one cell and how often it repeats.

    Before the cells, backbone levels are optionally projected to ``width`` (``lateral``) and the
    ``derived`` levels are made. Cell inputs are named by level (``P3`` ... ``P7``); repeat ``r + 1``
    takes repeat ``r``'s ``outputs`` by level. Every level is both a cell input and a cell output.
    """

    name: str
    description: str
    file: str
    width: int
    repeats: int
    backbone_levels: tuple[int, ...]
    lateral: str
    derived: tuple[DerivedLevel, ...]
    nodes: tuple[Node, ...]
    outputs: dict[int, str]
    conv_bias: bool
    padding: str
    batch_norm: BatchNormStyle
    params: dict[str, object] = field(default_factory=dict)

    @property
    def levels(self) -> tuple[int, ...]:
        """All pyramid levels, finest first."""
        return tuple(sorted(self.backbone_levels + tuple(d.level for d in self.derived)))

    @property
    def node_by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}
