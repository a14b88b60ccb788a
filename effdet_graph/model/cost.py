"""Parameters and multiply-accumulates of a whole detector and of its parts.

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on the ``meta``
device: no memory is allocated and nothing is computed, so even D7x at 1536x1536 is counted in
seconds on a CPU.

Costing many candidates (a search's budget, its feasibility check, retraining, the benchmarks) goes through
:func:`feature_network_cost` and :func:`whole_detector_cost`, which count each thing once: the feature network
analytically (:func:`graphspec.cost.estimate_cost`, microseconds; equal to what FlopCounterMode counts), the
backbone once per backbone and resolution, and only the heads per new detector (about 0.07 s).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effdet_graph.model.backbone import create_backbone, feature_info
from effdet_graph.model.detector import EfficientDet, build_detector
from effdet_graph.model.scaling import DetectorConfig
from graphspec import Spec
from graphspec.cost import Cost, estimate_cost, level_sizes


def count_macs(fn: Callable[[], Any]) -> int:
    """Multiply-accumulates of running ``fn`` (FlopCounterMode's FLOPs / 2)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def count_params(*modules: nn.Module) -> int:
    """Parameters of ``modules``, together."""
    return sum(p.numel() for module in modules for p in module.parameters())


def backbone_cost(backbone: nn.Module, image_size: int) -> tuple[dict[str, int], list[torch.Tensor]]:
    """``({"params", "macs"}, features)`` of ``backbone`` at one (1, 3, image_size, image_size) image;
    ``features`` are its outputs (on the backbone's device, ``meta`` included)."""
    device = next(backbone.parameters()).device
    images = torch.empty(1, 3, image_size, image_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        features = backbone.eval()(images)
    return {"params": count_params(backbone), "macs": counter.get_total_flops() // 2}, features


def heads_cost(model: EfficientDet, pyramid: list[torch.Tensor]) -> dict[str, int]:
    """``{"params", "macs"}`` of the class and box heads of ``model`` on feature-network outputs ``pyramid``."""
    model = model.eval()
    with torch.no_grad():
        macs = count_macs(lambda: (model.class_head(pyramid), model.box_head(pyramid)))
    return {"params": count_params(model.class_head, model.box_head), "macs": macs}


def detector_cost(model: EfficientDet, image_size: int) -> dict[str, Any]:
    """``{"params", "macs", "parts": {backbone|feature_network|heads: {"params", "macs"}}}`` at one
    (1, 3, image_size, image_size) image. ``model`` may live on the ``meta`` device."""
    backbone, features = backbone_cost(model.backbone, image_size)
    model = model.eval()
    with torch.no_grad():
        pyramid = model.fpn(features)
        fpn = {"params": count_params(model.fpn), "macs": count_macs(lambda: model.fpn(features))}
    parts = {"backbone": backbone, "feature_network": fpn, "heads": heads_cost(model, pyramid)}
    return {
        "params": sum(p["params"] for p in parts.values()),
        "macs": sum(p["macs"] for p in parts.values()),
        "parts": parts,
    }


def detector_report(
    spec_path: str | Path,
    phi: int,
    backbone: str | None = None,
    num_classes: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """Build EfficientDet-D``phi`` around ``spec_path`` on the meta device and report its cost."""
    with torch.device("meta"):
        model = build_detector(spec_path, phi, backbone=backbone, num_classes=num_classes, overrides=overrides)
    size = image_size or model.config.resolution
    report = {
        "detector": model.config.name,
        "phi": phi,
        "spec": model.spec.name,
        "backbone": model.config.backbone,
        "image_size": size,
        "width": model.spec.width,
        "repeats": model.spec.repeats,
        "head_depth": model.config.head.depth,
        "num_classes": model.config.num_classes,
        "levels": [f"P{level}" for level in model.spec.levels],
    }
    report.update(detector_cost(model, size))
    return report


@cache
def _meta_backbone(name: str, levels: tuple[int, ...]) -> nn.Module:
    with torch.device("meta"):
        return create_backbone(name, levels)


def backbone_channels(name: str, levels: tuple[int, ...]) -> tuple[int, ...]:
    """Feature channels of timm backbone ``name`` at ``levels`` (built once on the meta device, cached)."""
    return tuple(feature_info(_meta_backbone(name, levels)).channels())


def feature_network_cost(spec: Spec, config: DetectorConfig) -> tuple[Cost, tuple[int, ...]]:
    """Analytic cost of ``spec`` at ``config``'s resolution on its backbone's feature channels, and those
    channels."""
    channels = backbone_channels(config.backbone, spec.backbone_levels)
    return estimate_cost(spec, channels, config.resolution).total, channels


@cache
def _backbone_cost(name: str, levels: tuple[int, ...], resolution: int) -> dict[str, int]:
    """Params and MACs of timm backbone ``name`` at ``resolution`` (counted once, cached)."""
    counts, _ = backbone_cost(_meta_backbone(name, levels), resolution)
    return counts


def whole_detector_cost(spec: Spec, config: DetectorConfig) -> Cost:
    """Params and MACs of the whole EfficientDet (backbone, feature network, heads) around ``spec`` at
    ``config``'s resolution.

    Cached by the spec's content (not its name or file) and the detector: in a compound search many points
    round to the same widths, repeats and resolution (every point at phi 0 is D0's)."""
    content = repr(dataclasses.replace(spec, name="", description="", file="")).replace(repr(spec.file), "''")
    key = (content, config)  # without the file name, which every node's source location repeats
    if key not in _detector_costs:
        _detector_costs[key] = _count_detector(spec, config)
    return _detector_costs[key]


_detector_costs: dict[tuple[str, DetectorConfig], Cost] = {}


def _count_detector(spec: Spec, config: DetectorConfig) -> Cost:
    """The backbone's count (cached), the feature network's analytic cost (exactly what FlopCounterMode
    counts; tested) and the heads counted on a pyramid of the sizes the feature network gives."""
    backbone = _backbone_cost(config.backbone, spec.backbone_levels, config.resolution)
    feature_network, _ = feature_network_cost(spec, config)
    sizes = level_sizes((config.resolution, config.resolution), spec.levels)
    with torch.device("meta"):
        model = EfficientDet(spec, config.around(spec), backbone=_meta_backbone(config.backbone, spec.backbone_levels))
        pyramid = [torch.empty(1, spec.width, *sizes[level]) for level in spec.levels]
    heads = heads_cost(model, pyramid)
    return Cost(
        backbone["params"] + feature_network.params + heads["params"],
        backbone["macs"] + feature_network.macs + heads["macs"],
    )


def clear_cost_caches() -> None:
    """Forget every cached count (for benchmarks that must start cold)."""
    _detector_costs.clear()
    _backbone_cost.cache_clear()
    _meta_backbone.cache_clear()
