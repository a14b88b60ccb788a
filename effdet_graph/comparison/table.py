"""Topologies side by side: every spec inside the same EfficientDet backbone and heads.

For each spec: parameters and MACs (whole detector and feature network), measured forward latency,
and — when a training budget is given — the COCO AP after training with one shared recipe, once per seed:
the mean over seeds, its spread (:func:`ap_spread`) and which other rows it is within noise of
(:func:`within_noise`, the rule in :data:`NOISE_RULE`).
``match_params`` re-scales each topology's ``repeats`` to the reference spec's feature-network size
at the same width (so backbone and heads stay identical), as the EfficientDet paper does for its
feature-network comparison.
"""

from __future__ import annotations

import dataclasses
import math
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

#: Standard errors of the difference of two mean APs below which (or at which) they count as within noise.
NOISE_ERRORS = 2.0
NOISE_RULE = (
    "mean APs that differ by at most 2 standard errors of the difference, "
    "|mean_a - mean_b| <= 2 * sqrt(sd_a^2/n_a + sd_b^2/n_b) (sd: sample standard deviation over the n seeds)"
)
"""When two specs count as within noise of each other (:func:`within_noise`); needs 2 or more seeds each."""


class Trainer(Protocol):
    """Trains and evaluates one topology with a shared recipe
    (:class:`~effdet_graph.comparison.training.CompareTrainer` is one).

    Attributes:
        num_classes: the categories of the data set it trains on, so the class count of the detector it
            trains (and of the one :func:`compare_specs` measures).
    """

    num_classes: int

    def __call__(self, spec: str | Path, overrides: dict[str, Any], seed: int = 0) -> dict[str, float]:
        """Train ``spec`` with ``overrides`` and training seed ``seed``; return its COCO metrics (``AP``, ``AP50``,
        ...)."""
        ...


@dataclass
class CompareRow:
    """One topology in the comparison.

    ``metrics`` are the mean over the training seeds of ``seed_metrics`` (one dict per seed, seeds 0, 1, ...);
    both are empty without training.
    """

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
    seed_metrics: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Spread:
    """A row's AP over its training seeds.

    Attributes:
        mean: mean AP.
        std: sample standard deviation (NaN with one seed).
        low: lowest AP.
        high: highest AP.
        seeds: trainings (seeds 0 to ``seeds - 1``).
    """

    mean: float
    std: float
    low: float
    high: float
    seeds: int

    @property
    def standard_error(self) -> float:
        """Standard error of the mean (NaN with one seed)."""
        return self.std / math.sqrt(self.seeds)


def ap_spread(row: CompareRow) -> Spread | None:
    """The spread of ``row``'s AP over its seeds; ``None`` for a row without training."""
    values = [metrics["AP"] for metrics in row.seed_metrics if "AP" in metrics]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return Spread(statistics.fmean(values), std, min(values), max(values), len(values))


def within_noise(rows: Sequence[CompareRow]) -> list[list[int]]:
    """For each row, the other rows whose mean AP it is within noise of (:data:`NOISE_RULE`), by index.

    Rows without training or with a single seed are within noise of none (their noise is unknown).
    """
    spreads = [ap_spread(row) for row in rows]

    def close(a: Spread | None, b: Spread | None) -> bool:
        if a is None or b is None or a.seeds < 2 or b.seeds < 2:
            return False
        error = math.hypot(a.standard_error, b.standard_error)
        return abs(a.mean - b.mean) <= NOISE_ERRORS * error

    return [[j for j, b in enumerate(spreads) if j != i and close(a, b)] for i, a in enumerate(spreads)]


def mean_metrics(seed_metrics: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the seeds (the metrics every seed has)."""
    names = [name for name in seed_metrics[0] if all(name in m for m in seed_metrics)] if seed_metrics else []
    return {name: statistics.fmean(m[name] for m in seed_metrics) for name in names}


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
    seeds: int = 1,
    head_depth: int | None = None,
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
        seeds: with ``train``, trainings per spec, with seeds 0 to ``seeds - 1``; the row has each seed's
            metrics and their mean.
        head_depth: the class and box heads' depth instead of the phi's.

    Returns:
        One row per spec, in order.

    Raises:
        InputError: ``num_classes`` differs from the class count of ``train``'s data set, or ``seeds`` is below 1.
    """
    num_classes = _class_count(num_classes, train, seeds)
    config = detector_config(phi, backbone=backbone, num_classes=num_classes)
    if head_depth is not None:
        config = dataclasses.replace(config, head=dataclasses.replace(config.head, depth=head_depth))
    size = image_size or config.resolution
    device = device or resolve_device()
    first = load_spec(spec_paths[0])
    torch.manual_seed(0)
    shared_backbone = create_backbone(config.backbone, first.backbone_levels, **config.backbone_args)
    channels = feature_info(shared_backbone).channels()
    reference = None
    if match_params is not None:
        reference = estimate_cost(scale_spec(match_params, config), channels, size).total.params
    rows = []
    for path in spec_paths:
        overrides: dict[str, Any] = {}
        if reference is not None:
            overrides["repeats"] = matched_repeats(path, reference, config, channels)
        row = _measure(path, overrides, config, shared_backbone, size, device, latency_runs)
        if train is not None:
            row.seed_metrics = [train(path, overrides, seed=seed) for seed in range(seeds)]
            row.metrics = mean_metrics(row.seed_metrics)
        rows.append(row)
    return rows


def _class_count(num_classes: int | None, train: Trainer | None, seeds: int) -> int | None:
    """The detectors' class count: ``train``'s data set's with training, else ``num_classes`` (``None``: the
    default).

    Raises:
        InputError: ``num_classes`` differs from the class count of ``train``'s data set, or ``seeds`` is below 1.
    """
    if seeds < 1:
        raise InputError(f"seeds must be at least 1, got {seeds}")
    if train is None:
        return num_classes
    if num_classes is not None and num_classes != train.num_classes:
        raise InputError(
            f"--num-classes {num_classes} does not match the {train.num_classes} classes of the data set "
            "--train-steps trains on; leave --num-classes out"
        )
    return train.num_classes


def _measure(
    path: str | Path,
    overrides: dict[str, Any],
    config: DetectorConfig,
    backbone: torch.nn.Module,
    size: int,
    device: torch.device,
    latency_runs: int,
) -> CompareRow:
    """The row of spec ``path`` (with ``overrides``) inside ``backbone`` and ``config``'s heads: its cost at
    ``size`` and its latency on ``device``, without training."""
    spec = scale_spec(path, config, overrides)
    model = EfficientDet(spec, config, backbone=backbone)
    cost = detector_cost(model, size)
    return CompareRow(
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


def rows_to_json(rows: Sequence[CompareRow]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts; trained rows also have ``AP_spread`` (``mean std low high seeds``; ``std``
    null with one seed) and ``within_noise_of`` (the spec names, :data:`NOISE_RULE`)."""
    noise = within_noise(rows)
    result = []
    for row, close in zip(rows, noise):
        entry = asdict(row)
        spread = ap_spread(row)
        if spread is not None:
            entry["AP_spread"] = {
                k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(spread).items()
            }
            entry["within_noise_of"] = [rows[j].spec for j in close]
        result.append(entry)
    return result
