"""Topologies side by side: every spec inside the same EfficientDet backbone and heads.

For each spec: parameters and MACs (whole detector and feature network), measured forward latency,
and — when a training budget is given — the COCO AP after training with one shared recipe.
``match_params`` re-scales each topology's ``repeats`` to the reference spec's feature-network size
at the same width (so backbone and heads stay identical), as the EfficientDet paper does for its
feature-network comparison.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from effdet_graph.device import resolve_device
from effdet_graph.errors import InputError
from effdet_graph.model.backbone import create_backbone, feature_info
from effdet_graph.model.cost import detector_cost
from effdet_graph.model.detector import EfficientDet
from effdet_graph.model.scaling import DetectorConfig, detector_config, scale_spec
from graphspec import load_spec
from graphspec.cost import estimate_cost

MAX_REPEATS = 16


class Trainer(Protocol):
    """Trains and evaluates one topology with a shared recipe
    (:class:`~effdet_graph.comparison.training.CompareTrainer` is one).

    Attributes:
        num_classes: the categories of the data set it trains on, so the class count of the detector it
            trains (and of the one :func:`compare_specs` measures).
    """

    num_classes: int

    def __call__(self, spec: str | Path, overrides: dict[str, Any]) -> dict[str, float]:
        """Train ``spec`` with ``overrides`` and return its COCO metrics (``AP``, ``AP50``, ...)."""
        ...


@dataclass
class CompareRow:
    """One topology in the comparison."""

    spec: str
    file: str
    width: int
    repeats: int
    params: int
    macs: int
    fpn_params: int
    fpn_macs: int
    latency_ms: float
    device: str
    num_classes: int
    metrics: dict[str, float] = field(default_factory=dict)


def matched_repeats(
    spec_path: str | Path, reference_params: int, config: DetectorConfig, in_channels: Sequence[int]
) -> int:
    """The ``repeats`` that bring ``spec_path``'s feature network closest to ``reference_params``
    at the configuration's width (analytic cost model; ties go to fewer repeats)."""

    def params_at(repeats: int) -> int:
        spec = scale_spec(spec_path, config, {"repeats": repeats})
        return estimate_cost(spec, in_channels, config.resolution).total.params

    return min(range(1, MAX_REPEATS + 1), key=lambda r: (abs(params_at(r) - reference_params), r))


def measure_latency_ms(model: torch.nn.Module, image_size: int, device: torch.device, runs: int = 5) -> float:
    """Median eval forward time of one (1, 3, S, S) image, after a warm-up run."""
    model = model.to(device).eval()
    images = torch.randn(1, 3, image_size, image_size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(runs + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(images)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:
                times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def compare_specs(
    spec_paths: Sequence[str | Path],
    phi: int = 0,
    backbone: str | None = None,
    num_classes: int | None = None,
    match_params: str | Path | None = None,
    image_size: int | None = None,
    latency_runs: int = 5,
    train: Trainer | None = None,
    device: torch.device | None = None,
) -> list[CompareRow]:
    """Build every spec at EfficientDet-D``phi`` with one backbone and one head design and measure it.

    Args:
        spec_paths: the feature-network specs, one row each.
        phi: compound coefficient (backbone, widths, resolution, heads).
        backbone: timm backbone instead of the phi's EfficientNet.
        num_classes: classes of every detector; default 90 (COCO), or ``train.num_classes`` with ``train``.
        match_params: re-scale each spec's ``repeats`` to this spec's feature-network size.
        image_size: input size of the cost and latency (default: the phi's resolution).
        latency_runs: timed forward runs per spec (median reported).
        train: trains and evaluates one topology with a shared recipe; its metrics (``AP``, ``AP50``,
            ...) are added to the row, and its data set's class count is the detectors'.
        device: where latency is measured (default: a GPU when there is one).

    Returns:
        One row per spec, in order.

    Raises:
        InputError: ``num_classes`` differs from the class count of ``train``'s data set.
    """
    if train is not None:
        if num_classes is not None and num_classes != train.num_classes:
            raise InputError(
                f"--num-classes {num_classes} does not match the {train.num_classes} classes of the data set "
                "--train-steps trains on; leave --num-classes out"
            )
        num_classes = train.num_classes
    config = detector_config(phi, backbone=backbone, num_classes=num_classes)
    size = image_size or config.resolution
    device = device or resolve_device()
    first = load_spec(spec_paths[0])
    torch.manual_seed(0)
    shared_backbone = create_backbone(config.backbone, first.backbone_levels, **config.backbone_args)
    info = feature_info(shared_backbone)
    reference = None
    if match_params is not None:
        reference = estimate_cost(scale_spec(match_params, config), info.channels(), size).total.params
    rows = []
    for path in spec_paths:
        overrides: dict[str, Any] = {}
        if reference is not None:
            overrides["repeats"] = matched_repeats(path, reference, config, info.channels())
        spec = scale_spec(path, config, overrides)
        model = EfficientDet(spec, config, backbone=shared_backbone)
        cost = detector_cost(model, size)
        row = CompareRow(
            spec=spec.name,
            file=str(path),
            width=spec.width,
            repeats=spec.repeats,
            params=cost["params"],
            macs=cost["macs"],
            fpn_params=cost["parts"]["feature_network"]["params"],
            fpn_macs=cost["parts"]["feature_network"]["macs"],
            latency_ms=measure_latency_ms(model, size, device, latency_runs),
            device=device.type,
            num_classes=config.num_classes,
        )
        if train is not None:
            row.metrics = train(path, overrides)
        rows.append(row)
    return rows


def rows_to_json(rows: Sequence[CompareRow]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts."""
    return [asdict(row) for row in rows]
