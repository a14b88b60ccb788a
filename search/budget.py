"""Params / MACs budgets, checked before any training.

The feature network is costed analytically (:func:`graphspec.cost.estimate_cost`, microseconds); the
whole detector as :func:`effdet_graph.model.cost.detector_cost` counts it, faster: the backbone's
count is made once per backbone and resolution, the feature network's is the analytic one (equal to what
FlopCounterMode counts), and only the heads are built and counted on the ``meta`` device for each new
point (about 0.07 s; each distinct detector is counted once). Both use the candidate's resolution and
its backbone's real feature channels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from effdet_graph import EfficientDet, backbone_cost, create_backbone, feature_info, heads_cost
from graphspec import Spec
from graphspec.cost import Cost, estimate_cost, level_sizes
from graphspec.reader import Reader
from search.detector import DetectorSettings
from search.rejection import OverBudget
from search.schema import BUDGET_KEYS

SCOPES = ("feature_network", "detector")


@dataclass(frozen=True)
class Budget:
    """Upper bounds on params and MACs (``None``: no bound) of the ``scope`` part."""

    scope: str = "feature_network"
    max_params: int | None = None
    max_macs: int | None = None

    def check(self, cost: Cost) -> None:
        """Raise :class:`OverBudget` if ``cost`` exceeds a bound."""
        over = [
            f"{what} {value:,} > {limit:,}"
            for what, value, limit in (("params", cost.params, self.max_params), ("MACs", cost.macs, self.max_macs))
            if limit is not None and value > limit
        ]
        if over:
            raise OverBudget(
                f"{self.scope.replace('_', ' ')} over budget: {'; '.join(over)}", self.scope, cost.params, cost.macs
            )


def read_budget(reader: Reader) -> Budget:
    """The ``budget`` section: ``scope`` (default ``feature_network``), ``max_params``, ``max_macs``."""
    reader.mapping(("budget",), BUDGET_KEYS, "`budget`")
    scope = reader.choice(("budget", "scope"), SCOPES, default=SCOPES[0])
    return Budget(scope, _bound(reader, "max_params"), _bound(reader, "max_macs"))


def _bound(reader: Reader, key: str) -> int | None:
    bound = reader.number(("budget", key), low=1, default=None)
    return None if bound is None else int(bound)


@cache
def _meta_backbone(name: str, levels: tuple[int, ...]) -> nn.Module:
    with torch.device("meta"):
        return create_backbone(name, levels)


def backbone_channels(name: str, levels: tuple[int, ...]) -> tuple[int, ...]:
    """Feature channels of timm backbone ``name`` at ``levels`` (built once on the meta device, cached)."""
    return tuple(feature_info(_meta_backbone(name, levels)).channels())


def feature_network_cost(spec: Spec, detector: DetectorSettings) -> tuple[Cost, tuple[int, ...]]:
    """Analytic cost of ``spec`` at the detector's resolution, and the backbone channels it was costed for."""
    channels = backbone_channels(detector.backbone, spec.backbone_levels)
    return estimate_cost(spec, channels, detector.resolution).total, channels


@cache
def _backbone_cost(
    name: str, levels: tuple[int, ...], resolution: int
) -> tuple[dict[str, int], tuple[torch.Size, ...]]:
    """Params, MACs and feature shapes of timm backbone ``name`` at ``resolution`` (counted once, cached)."""
    counts, features = backbone_cost(_meta_backbone(name, levels), resolution)
    return counts, tuple(feature.shape for feature in features)


def whole_detector_cost(spec: Spec, detector: DetectorSettings) -> Cost:
    """Params and MACs of the whole EfficientDet (backbone, feature network, heads) at its resolution.

    Cached by the spec's content (not its name or file) and the detector settings: in a compound search
    many points round to the same widths, repeats and resolution (every point at phi 0 is D0's)."""
    content = repr(dataclasses.replace(spec, name="", description="", file="")).replace(repr(spec.file), "''")
    key = (content, detector)  # without the file name, which every node's source location repeats
    if key not in _detector_costs:
        _detector_costs[key] = _count_detector(spec, detector)
    return _detector_costs[key]


_detector_costs: dict[tuple[str, DetectorSettings], Cost] = {}


def _count_detector(spec: Spec, detector: DetectorSettings) -> Cost:
    """The backbone's count (cached), the feature network's analytic cost (exactly what FlopCounterMode
    counts; tested) and the heads counted on a pyramid of the sizes the feature network gives."""
    backbone, _ = _backbone_cost(detector.backbone, spec.backbone_levels, detector.resolution)
    feature_network, _ = feature_network_cost(spec, detector)
    sizes = level_sizes((detector.resolution, detector.resolution), spec.levels)
    with torch.device("meta"):
        model = EfficientDet(
            spec, detector.config(spec), backbone=_meta_backbone(detector.backbone, spec.backbone_levels)
        )
        pyramid = [torch.empty(1, spec.width, *sizes[level]) for level in spec.levels]
    heads = heads_cost(model, pyramid)
    return Cost(
        backbone["params"] + feature_network.params + heads["params"],
        backbone["macs"] + feature_network.macs + heads["macs"],
    )


def clear_caches() -> None:
    """Forget every cached count (for benchmarks that must start cold)."""
    _detector_costs.clear()
    _backbone_cost.cache_clear()
    _meta_backbone.cache_clear()


def enforce_budget(
    budget: Budget, spec: Spec, detector: DetectorSettings, feature_cost: Cost, detector_cost: Cost | None = None
) -> Cost | None:
    """Check ``budget`` on its scope; raise :class:`OverBudget`, or return the whole detector's cost where
    the scope is ``detector`` (``None`` otherwise: ``feature_cost`` was checked). ``detector_cost``: the
    whole detector's cost where it is already known, so it is not counted again."""
    if budget.scope == "feature_network":
        budget.check(feature_cost)
        return None
    cost = detector_cost or whole_detector_cost(spec, detector)
    budget.check(cost)
    return cost
