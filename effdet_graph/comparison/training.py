"""``compare --train-steps``: train every topology with one shared recipe and report its COCO AP."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effdet_graph.training.loop import CHECKPOINT_NAME
from effdet_graph.training.options import TrainOptions
from effdet_graph.training.train_eval import dataset_classes, dataset_folder, train_and_evaluate

__all__ = ["DEFAULT_OUT", "CompareTrainer", "CompareTraining", "make_trainer"]

DEFAULT_OUT = Path("runs") / "compare"


@dataclass(frozen=True)
class CompareTraining:
    """The shared recipe of ``compare --train-steps``.

    Attributes:
        steps: training steps per topology.
        phi: compound coefficient of every detector.
        data: COCO-format data set; ``None``: the built-in synthetic one, made under ``out/data`` on first use.
        image_size: training and evaluation image size (``None``: the phi's resolution).
        backbone: timm backbone instead of the phi's EfficientNet.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (``None``: a GPU when there is one).
        pretrained_backbone: start every backbone from ImageNet weights (efficientnet_lite0's from the installed
            package, offline; any other's from timm, a download).
        backbone_weights: start every backbone from this local file (timm's or EfficientNet-PyTorch's layout).
        freeze_backbone: train the feature network and heads only, the backbone kept as it started.
        views: fixed augmentations per training image (``None``: a fresh one each epoch; 8 with ``feature_cache``).
        feature_cache: train on the frozen backbone's cached features of the views, computed once for every spec.
        out: folder of the built-in data set (``out/data``) and the training runs (``out/runs``).
    """

    steps: int
    phi: int = 0
    data: Path | None = None
    image_size: int | None = None
    backbone: str | None = None
    device: str | None = None
    pretrained_backbone: bool = False
    backbone_weights: Path | None = None
    freeze_backbone: bool = False
    views: int | None = None
    feature_cache: bool = False
    out: Path = DEFAULT_OUT


class CompareTrainer:
    """Trains one spec with the shared recipe and returns its COCO metrics on val.

    Attributes:
        recipe: the shared recipe.
        data: the data set folder every topology trains and is evaluated on.
        num_classes: the data set's categories: the class count of every trained detector.
    """

    def __init__(self, recipe: CompareTraining, data: Path, num_classes: int):
        self.recipe = recipe
        self.data = data
        self.num_classes = num_classes

    def run_folder(self, spec: str | Path, overrides: dict[str, Any], seed: int = 0) -> Path:
        """Where ``spec``'s run with training seed ``seed`` lives: named by the spec, phi, steps and seed, and a
        digest of everything else that changes the trained model, so that a killed compare continues and a
        different one starts afresh."""
        recipe = self.recipe
        key = json.dumps(
            [
                str(Path(spec).resolve()),
                str(self.data.resolve()),
                recipe.image_size,
                recipe.backbone,
                overrides,
                recipe.pretrained_backbone,
                str(recipe.backbone_weights),
                *(["frozen"] if recipe.freeze_backbone else []),  # earlier runs' folders keep their digest
                *([f"views={recipe.views}"] if recipe.views is not None else []),
                *(["cached"] if recipe.feature_cache else []),
            ],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        return recipe.out / "runs" / f"{Path(spec).stem}_d{recipe.phi}_{recipe.steps}steps_seed{seed}_{digest}"

    def __call__(self, spec: str | Path, overrides: dict[str, Any], seed: int = 0) -> dict[str, float]:
        """Train ``spec`` (with ``overrides``, e.g. matched ``repeats``) with training seed ``seed``
        (``TrainOptions.seed``: initialisation, data order and augmentation), resuming an earlier run of the
        same recipe and seed, and return its COCO metrics on val."""
        recipe = self.recipe
        out = self.run_folder(spec, overrides, seed)
        previous = out / CHECKPOINT_NAME
        options = TrainOptions(
            data=self.data,
            spec=Path(spec),
            phi=recipe.phi,
            out=out,
            steps=recipe.steps,
            image_size=recipe.image_size,
            backbone=recipe.backbone,
            overrides=overrides,
            resume=previous if previous.is_file() else None,
            device=recipe.device,
            pretrained_backbone=recipe.pretrained_backbone,
            backbone_weights=recipe.backbone_weights,
            freeze_backbone=recipe.freeze_backbone,
            views=recipe.views,
            feature_cache=recipe.feature_cache,
            seed=seed,
        )
        return train_and_evaluate(options, progress=None).metrics


def make_trainer(recipe: CompareTraining) -> CompareTrainer:
    """The trainer of ``recipe``: its data set (the built-in one is made on first use) and class count.

    Raises:
        DatasetError: the data set is missing or broken, or the built-in one cannot be made.
    """
    data = dataset_folder(recipe.data, recipe.out / "data", images=200, seed=0)
    return CompareTrainer(recipe, data, dataset_classes(data))
