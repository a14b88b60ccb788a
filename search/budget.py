"""Params / MACs budgets, checked before any training.

The feature network is costed analytically (:func:`graphspec.cost.estimate_cost`, microseconds); the
whole detector by building it on the ``meta`` device and counting as
:func:`effdet_graph.detector_summary.detector_cost` does, with each backbone's count at each resolution
cached (the backbone is most of the counting time: a point whose backbone and resolution were seen costs
about 0.2 s instead of 0.5-0.9 s). Both use the candidate's resolution and its backbone's real feature channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from graphspec import Spec
from graphspec.cost import Cost, estimate_cost

from effdet_graph.backbone import create_backbone
from effdet_graph.detector import EfficientDet
from effdet_graph.detector_summary import backbone_cost, neck_and_head_cost, with_totals
from search.detector import DetectorSettings
from search.rejection import OverBudget
from search.schema import Reader

SCOPES = ("feature_network", "detector")


@dataclass(frozen=True)
class Budget:
    """Upper bounds on params and MACs (``None``: no bound) of the ``scope`` part."""

    scope: str = "feature_network"
    max_params: int | None = None
    max_macs: int | None = None

    def check(self, cost: Cost) -> None:
        """Raise :class:`OverBudget` if ``cost`` exceeds a bound."""
        over = [f"{what} {value:,} > {limit:,}" for what, value, limit in
                (("params", cost.params, self.max_params), ("MACs", cost.macs, self.max_macs))
                if limit is not None and value > limit]
        if over:
            raise OverBudget(f"{self.scope.replace('_', ' ')} over budget: {'; '.join(over)}", self.scope,
                             cost.params, cost.macs)


def read_budget(reader: Reader) -> Budget:
    """The ``budget`` section: ``scope`` (default ``feature_network``), ``max_params``, ``max_macs``."""
    reader.mapping(("budget",), {"scope": False, "max_params": False, "max_macs": False}, "`budget`")
    scope = reader.choice(("budget", "scope"), SCOPES) if reader.has(("budget", "scope")) else SCOPES[0]
    return Budget(scope, _bound(reader, "max_params"), _bound(reader, "max_macs"))


def _bound(reader: Reader, key: str) -> int | None:
    path = ("budget", key)
    return int(reader.number(path, low=1)) if reader.has(path) else None


@cache
def _meta_backbone(name: str, levels: tuple[int, ...]) -> nn.Module:
    with torch.device("meta"):
        return create_backbone(name, levels)


def backbone_channels(name: str, levels: tuple[int, ...]) -> tuple[int, ...]:
    """Feature channels of timm backbone ``name`` at ``levels`` (built once on the meta device, cached)."""
    return tuple(_meta_backbone(name, levels).feature_info.channels())


def feature_network_cost(spec: Spec, detector: DetectorSettings) -> tuple[Cost, tuple[int, ...]]:
    """Analytic cost of ``spec`` at the detector's resolution, and the backbone channels it was costed for."""
    channels = backbone_channels(detector.backbone, spec.backbone_levels)
    return estimate_cost(spec, channels, detector.resolution).total, channels


@cache
def _backbone_cost(name: str, levels: tuple[int, ...],
                   resolution: int) -> tuple[dict[str, int], tuple[torch.Size, ...]]:
    """Params, MACs and feature shapes of timm backbone ``name`` at ``resolution`` (counted once, cached)."""
    counts, features = backbone_cost(_meta_backbone(name, levels), resolution)
    return counts, tuple(feature.shape for feature in features)


def whole_detector_cost(spec: Spec, detector: DetectorSettings) -> Cost:
    """Params and MACs of the whole EfficientDet (backbone, feature network, heads) at its resolution."""
    counts, shapes = _backbone_cost(detector.backbone, spec.backbone_levels, detector.resolution)
    with torch.device("meta"):
        backbone = _meta_backbone(detector.backbone, spec.backbone_levels)
        model = EfficientDet(spec, detector.config(spec), backbone=backbone)
        features = [torch.empty(shape) for shape in shapes]
    report = with_totals({"backbone": dict(counts), **neck_and_head_cost(model, features)})
    return Cost(report["params"], report["macs"])


def enforce_budget(budget: Budget, spec: Spec, detector: DetectorSettings, feature_cost: Cost,
                   detector_cost: Cost | None = None) -> Cost | None:
    """Check ``budget`` on its scope; raise :class:`OverBudget`, or return the whole detector's cost where
    the scope is ``detector`` (``None`` otherwise: ``feature_cost`` was checked). ``detector_cost``: the
    whole detector's cost where it is already known, so it is not counted again."""
    if budget.scope == "feature_network":
        budget.check(feature_cost)
        return None
    cost = detector_cost or whole_detector_cost(spec, detector)
    budget.check(cost)
    return cost
