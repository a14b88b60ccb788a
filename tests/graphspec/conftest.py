"""Shared checks for the spec-language tests.

(No ``__init__.py`` in this folder on purpose: with pytest's default import mode it would make this
folder a package named ``graphspec`` that shadows the real one.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from effdet_graph.fpn.compiler import compile_spec
from graphspec import Spec
from graphspec.cost import estimate_cost


@dataclass
class Measurement:
    """What one eval forward pass of a compiled spec gave, next to what the cost model says."""

    outputs: list[torch.Tensor]
    built_params: int
    counted_macs: float  # FlopCounterMode total flops / 2, per image
    cost_params: int
    cost_macs: int


def level_size(image_hw: tuple[int, int], level: int) -> tuple[int, int]:
    """(ceil(H / 2**level), ceil(W / 2**level))."""
    return math.ceil(image_hw[0] / 2**level), math.ceil(image_hw[1] / 2**level)


def backbone_features(
    spec: Spec, in_channels: Sequence[int], image_hw: tuple[int, int], batch: int = 1, seed: int = 0
) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, *level_size(image_hw, level), generator=generator)
        for level, c in zip(spec.backbone_levels, in_channels)
    ]


def measure_spec(spec: Spec, in_channels: Sequence[int], image_hw: tuple[int, int], batch: int = 1) -> Measurement:
    network = compile_spec(spec, in_channels).eval()
    features = backbone_features(spec, in_channels, image_hw, batch)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        outputs = network(features)
    cost = estimate_cost(spec, in_channels, image_hw).total
    return Measurement(
        list(outputs),
        sum(p.numel() for p in network.parameters()),
        counter.get_total_flops() / 2 / batch,
        cost.params,
        cost.macs,
    )


def check_spec_network(
    spec: Spec, in_channels: Sequence[int], image_hw: tuple[int, int], batch: int = 1
) -> Measurement:
    """Compile, run one forward pass and assert: one (batch, width, ceil(H/2^l), ceil(W/2^l)) output per
    level, finest first; cost-model params == built params exactly; cost-model MACs (per image) within 1%
    of FlopCounterMode's flops / 2 / batch."""
    m = measure_spec(spec, in_channels, image_hw, batch)
    shapes = [tuple(x.shape) for x in m.outputs]
    assert shapes == [(batch, spec.width, *level_size(image_hw, level)) for level in spec.levels]
    assert all(torch.isfinite(x).all() for x in m.outputs)
    assert m.cost_params == m.built_params
    assert m.cost_macs == pytest.approx(m.counted_macs, rel=0.01)
    return m


@pytest.fixture(scope="session")
def check_network() -> Callable[..., Measurement]:
    """``check_network(spec, in_channels, (H, W), batch=1)``: see :func:`check_spec_network`."""
    torch.manual_seed(0)
    return check_spec_network
