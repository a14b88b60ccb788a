"""The ``proxy`` strategy: every trial trains its candidate detector briefly on a dataset and measures its COCO AP
(:class:`ProxyTask`).

Intermediate AP is measured at epoch ends (at most ``proxy.reports`` times, the first after at least
``steps / reports`` steps, never at the last step) and handed to the engine's ``report``, which may
stop a poor trial early; it is not measured when the engine passes no ``report`` (a multi-objective
search). The final AP is returned, not reported: an early stop there would throw away a finished trial.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from effdet_graph import DetectorConfig, TrainOptions, load_checkpoint
from effdet_graph.comparison import measure_latency_ms
from effdet_graph.device import resolve_device
from effdet_graph.training import (
    CHECKPOINT_NAME,
    dataset_folder,
    evaluate_run,
    prepare_feature_cache,
    train_and_evaluate,
)
from search.objective import MakeEvaluate, Report
from search.request import SearchRequest
from search.sampling.candidate import Candidate
from search.space.types import TOPOLOGY_KINDS, SearchSpace, topology_choices
from search.strategies.base import SearchStrategy


def prepare_dataset(space: SearchSpace, results_dir: Path) -> Path:
    """The dataset folder (train/ and val/): the space's COCO path (checked when the space loaded), or the
    built-in synthetic data set made once at the space's ``dataset.path``, else under ``results_dir/data``
    (seeded by the space's sampler seed)."""
    if space.dataset.name == "coco":
        return dataset_folder(space.dataset.path, results_dir / "data")
    return dataset_folder(
        None,
        space.dataset.path or results_dir / "data",
        images=space.dataset.images,
        seed=space.sampler.seed,
        image_size=space.dataset.image_size,
        scene=space.dataset.scene,
        val_fraction=space.dataset.val_fraction,
    )


def prepare_shared_cache(
    space: SearchSpace,
    detector: DetectorConfig,
    data: Path,
    results_dir: Path,
    seed: int,
    device: str | None,
    progress: bool | None,
) -> None:
    """Build the backbone-feature cache that every trial of ``space`` trains on with ``detector`` (the proxy's
    ``feature_cache``), before the trials start: here with all of this process's threads, where the first trial
    would build it with its one while the others wait on it."""
    options = proxy_options(space, detector, data, space.template.path, results_dir, space.proxy.steps, seed, device)
    prepare_feature_cache(options, progress)


def checkpoint_latency_ms(checkpoint: Path, image_size: int, device: str | None = None) -> float:
    """Median batch-1 eval forward time of the trained detector on ``device`` (default: CUDA when present)."""
    model, _ = load_checkpoint(checkpoint)
    return measure_latency_ms(model, image_size, resolve_device(device))


def proxy_options(
    space: SearchSpace,
    detector: DetectorConfig,
    data: Path,
    spec: Path,
    out: Path,
    steps: int,
    seed: int,
    device: str | None,
) -> TrainOptions:
    """The training run of the space's ``proxy`` block for ``detector``: ``steps`` steps of its batch, input
    size (the detector's resolution where it gives none), learning rate, EMA, scale jitter, backbone weights and
    freezing, warmup a tenth of the steps; ``spec`` trained into ``out``."""
    proxy = space.proxy
    return TrainOptions(
        data=data,
        spec=spec,
        phi=detector.phi,
        out=out,
        steps=steps,
        batch_size=proxy.batch_size,
        lr=proxy.lr,
        image_size=proxy.image_size or detector.resolution,
        backbone=detector.backbone,
        head_depth=detector.head.depth,
        seed=seed,
        ema_decay=proxy.ema_decay,
        scale_range=proxy.scale_range,
        warmup_steps=max(1, steps // 10),
        device=device,
        pretrained_backbone=proxy.pretrained_backbone,
        backbone_weights=proxy.backbone_weights,
        freeze_backbone=proxy.freeze_backbone,
        views=proxy.views,
        feature_cache=proxy.feature_cache,
    )


class ProxyTask:
    """An :class:`~search.objective.Evaluate`: ``space.proxy.steps`` training steps, then COCO AP on val. A trial
    whose folder holds its training's checkpoint (a trial a killed Ray search runs again when restored) resumes
    it, exactly, instead of refusing to train over it."""

    def __init__(
        self, space: SearchSpace, data: Path, seed: int = 0, measure_latency: bool = False, device: str | None = None
    ):
        self.space = space
        self.data = data
        self.seed = seed
        self.measure_latency = measure_latency
        self.device = device  # trains and measures latency here (None: CUDA when present)

    def __call__(self, candidate: Candidate, trial_dir: Path, report: Report | None) -> dict[str, float]:
        proxy = self.space.proxy
        options = proxy_options(
            self.space,
            candidate.detector,
            self.data,
            trial_dir / candidate.file_name,
            trial_dir / "train",
            proxy.steps,
            self.seed,
            self.device,
        )
        checkpoint = options.out / CHECKPOINT_NAME  # a trial run again (a restored Ray trial) resumes its training
        options = dataclasses.replace(options, resume=checkpoint if checkpoint.exists() else None)
        image_size = proxy.image_size or candidate.detector.resolution
        last_report = 0

        def on_epoch_end(step: int, total: int, checkpoint: Path) -> None:
            nonlocal last_report
            if report is not None and step < total and step - last_report >= total / proxy.reports:
                last_report = step
                report(step, evaluate_run(checkpoint, options)["AP"])

        trained = train_and_evaluate(options, progress=False, on_epoch_end=on_epoch_end)
        metrics = dict(trained.metrics)
        if self.measure_latency:
            metrics["latency_ms"] = checkpoint_latency_ms(trained.checkpoint, image_size, self.device)
        return metrics


class ProxyStrategy(SearchStrategy):
    """Each trial trains its candidate for the space's ``proxy.steps`` and measures it (:class:`ProxyTask`); a
    topology space's trials share one backbone-feature cache, built before the first trial."""

    name = "proxy"
    default_objective = "ap"
    default_trials = 8

    def with_steps(self, space: SearchSpace, steps: int) -> SearchSpace:
        return dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=steps))

    def prepare(self, space: SearchSpace, request: SearchRequest, data: Path, results_dir: Path) -> MakeEvaluate:
        if space.proxy.feature_cache and space.kind in TOPOLOGY_KINDS:  # one detector: every trial shares one cache
            detector = topology_choices(space).detector
            prepare_shared_cache(space, detector, data, results_dir, request.seed, request.device, request.progress)
        latency = request.objective == "ap_latency"
        return functools.partial(ProxyTask, space, data, request.seed, measure_latency=latency, device=request.device)
