"""A candidate measured with the weights it inherits from a trained supernet: no training of its own.

The candidate's own detector is built with its weights taken out of the supernet
(:meth:`~search.strategies.oneshot.checkpoint.TrainedSupernet.candidate_detector`). Its BatchNorm statistics are then
recomputed on ``bn_batches`` batches of training images (the same images for every candidate, prepared as for
evaluation; :func:`~effdet_graph.training.batchnorm.recompute_bn_statistics`): the supernet's running
statistics average over every path it trained, and a path's own features have other ones (SPOS). With
``bn_batches`` 0 the supernet's statistics are kept. COCO AP is measured on the first ``val_images`` images of
the validation split (all of them when ``None``); the same images for every candidate.

:class:`InheritedWeights` is a search :class:`~search.objective.Evaluate`: an engine's trials score candidates
with it in place of the proxy task's training, each process (a Ray worker, say) loading the supernet once.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from effdet_graph.comparison import measure_latency_ms
from effdet_graph.data import CocoDetection, open_split
from effdet_graph.device import resolve_device
from effdet_graph.errors import DatasetError
from effdet_graph.inference import evaluate_predictor
from effdet_graph.model import DetectorPredictor, PostProcessConfig
from effdet_graph.training import BATCH_SIZE, recompute_bn_statistics
from graphspec import Spec
from search.objective import Report
from search.sampling.candidate import Candidate
from search.space.loader import load_search_space
from search.space.types import OneShotConfig, SearchSpace
from search.strategies.oneshot.checkpoint import TrainedSupernet, load_supernet

#: The seed of the BatchNorm recomputation's random draws (stochastic depth in train mode).
BN_SEED = 0

__all__ = ["InheritedScore", "InheritedWeights", "evaluate_inherited"]


@dataclass(frozen=True)
class InheritedScore:
    """What :func:`evaluate_inherited` measured: the COCO metrics and the seconds they took (BatchNorm
    recalibration and evaluation)."""

    metrics: dict[str, float]
    seconds: float

    @property
    def ap(self) -> float:
        return self.metrics["AP"]


def evaluate_inherited(
    trained: TrainedSupernet,
    candidate: Candidate | Spec,
    train_split: CocoDetection,
    val_split: CocoDetection,
    bn_batches: int = OneShotConfig.bn_batches,
    val_images: int | None = None,
    device: torch.device | None = None,
    batch_size: int = 8,
) -> InheritedScore:
    """COCO AP of ``candidate`` with its supernet weights (see the module docstring).

    Args:
        trained: the trained supernet.
        candidate: a point of the supernet's space, or its spec (loaded with the supernet's ``overrides``).
        train_split: the images BatchNorm statistics are recomputed from (the first ``bn_batches`` batches).
        val_split: the split AP is measured on.
        bn_batches: batches of training images for the BatchNorm statistics; 0 keeps the supernet's.
        val_images: measure AP on the first this many validation images (``None``: all).
        device: where the candidate runs (default CPU).
        batch_size: images per evaluation forward pass.

    Raises:
        SpecError: the candidate is not a point of the supernet's space.
    """
    device = device or torch.device("cpu")
    started = time.perf_counter()
    model = trained.candidate_detector(candidate).to(device)
    if bn_batches:  # in train mode, where stochastic depth draws: from a fixed seed, so that a candidate's score
        image_size = trained.recipe.image_size  # does not depend on what the process did before (trained or loaded)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(BN_SEED)
            recompute_bn_statistics(model, train_split, image_size, bn_batches * BATCH_SIZE, 0, device)
    predictor = DetectorPredictor(model.eval(), trained.recipe.image_size, PostProcessConfig()).to(device).eval()
    metrics = evaluate_predictor(predictor, val_split, trained.recipe, images=val_images, batch_size=batch_size)
    return InheritedScore(metrics, time.perf_counter() - started)


@functools.lru_cache(maxsize=2)
def load_inherited(
    checkpoint: Path, stamp: int, space_file: str, data: Path
) -> tuple[TrainedSupernet, CocoDetection, CocoDetection]:
    """The supernet of ``checkpoint`` (modified at ``stamp``, trained on the space in ``space_file``) and the
    train and val splits of ``data``, loaded once per process: a Ray worker keeps them for its next trials.

    Raises:
        CheckpointError: as :func:`~search.strategies.oneshot.checkpoint.load_supernet`.
        DatasetError: a split is missing or broken, or val has no annotated object.
    """
    val = open_split(data, "val")
    if not val.coco.dataset["annotations"]:
        raise DatasetError(f"{val.annotation_file}: the val split has no annotated objects; AP is undefined")
    return load_supernet(checkpoint, space=load_search_space(space_file)), open_split(data, "train"), val


class InheritedWeights:
    """An :class:`~search.objective.Evaluate`: a candidate's AP with the weights of the supernet checkpoint
    ``checkpoint`` (:func:`evaluate_inherited`; ``bn_batches`` and ``val_images`` default to the space's
    ``oneshot`` settings), and with ``measure_latency`` its batch-1 latency; the supernet and the splits load on
    the first call in a process (:func:`load_inherited`)."""

    def __init__(
        self,
        space: SearchSpace,
        checkpoint: Path,
        data: Path,
        bn_batches: int | None = None,
        val_images: int | None = None,
        measure_latency: bool = False,
        device: str | None = None,
    ):
        self.space = space
        self.measure_latency = measure_latency
        self.checkpoint = checkpoint
        self.data = data
        self.bn_batches = space.oneshot.bn_batches if bn_batches is None else bn_batches
        self.val_images = space.oneshot.val_images if val_images is None else val_images
        self.device = device

    def _load(self) -> tuple[TrainedSupernet, CocoDetection, CocoDetection]:
        return load_inherited(self.checkpoint, self.checkpoint.stat().st_mtime_ns, self.space.file, self.data)

    def __call__(self, candidate: Candidate, trial_dir: Path, report: Report | None) -> dict[str, float]:
        trained, train_split, val_split = self._load()
        device = resolve_device(self.device)
        score = evaluate_inherited(trained, candidate, train_split, val_split, self.bn_batches, self.val_images, device)
        if not self.measure_latency:
            return score.metrics
        latency = measure_latency_ms(trained.candidate_detector(candidate), trained.recipe.image_size, device)
        return {**score.metrics, "latency_ms": latency}
