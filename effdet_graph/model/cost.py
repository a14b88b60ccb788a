"""Parameters and multiply-accumulates of a whole detector and of its parts.

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on the ``meta``
device: no memory is allocated and nothing is computed, so even D7x at 1536x1536 is counted in
seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effdet_graph.model.detector import EfficientDet, build_detector


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
