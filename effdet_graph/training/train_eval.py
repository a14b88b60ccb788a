"""Train, then measure: the one "data set, training run, COCO AP on val" used by ``compare --train-steps``
(:mod:`effdet_graph.comparison.training`) and by a search's proxy task (``search/proxy.py``).

:func:`dataset_folder` gives the data set (the built-in synthetic one is made once, on first use);
:func:`train_and_evaluate` runs one :class:`~effdet_graph.training.options.TrainOptions` and evaluates
the checkpoint it ends with. Callers make the data set once, before their runs, since concurrent runs
(Ray trials) must not race to create it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from effdet_graph.data.checks import open_split
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.device import resolve_device
from effdet_graph.inference.predict import evaluate_checkpoint
from effdet_graph.training.loop import TrainResult, train
from effdet_graph.training.options import TrainOptions

__all__ = ["TrainedModel", "dataset_classes", "dataset_folder", "evaluate_run", "train_and_evaluate"]

ANNOTATIONS = Path("train") / "instances.json"


@dataclass(frozen=True)
class TrainedModel:
    """What :func:`train_and_evaluate` did: the training run and the COCO metrics of its checkpoint."""

    result: TrainResult
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def checkpoint(self) -> Path:
        """The final checkpoint."""
        return self.result.checkpoint


def dataset_folder(
    data: Path | None,
    synthetic: Path,
    images: int = 200,
    seed: int = 0,
    image_size: int = 256,
    scene: str = "shapes",
    val_fraction: float = 0.2,
) -> Path:
    """The data set folder of a run: ``data`` when given, else the built-in synthetic data set at
    ``synthetic``, made (atomically) when its ``train/instances.json`` is not there yet.

    Args:
        data: a COCO-format data set folder (``train/`` and ``val/``), or ``None`` for the built-in one.
        synthetic: where the built-in data set lives.
        images: images of the built-in data set (train and val together).
        seed: seed of the built-in data set.
        image_size: side of the built-in data set's images.
        scene: what the built-in data set's images show (:data:`~effdet_graph.data.synthetic.SCENES`).
        val_fraction: the built-in data set's share of validation images.

    Returns:
        The folder to train and evaluate on.

    Raises:
        DatasetError: the built-in data set cannot be made there (e.g. a non-empty folder without it).
    """
    if data is not None:
        return data
    if not (synthetic / ANNOTATIONS).is_file():
        make_dataset(synthetic, images=images, seed=seed, image_size=image_size, scene=scene, val_fraction=val_fraction)
    return synthetic


def dataset_classes(data: Path) -> int:
    """Number of categories of ``data``'s training split (what a detector trained on it predicts).

    Raises:
        DatasetError: the folder or its ``train`` split is missing or broken.
    """
    return open_split(data, "train").num_classes


def evaluate_run(checkpoint: Path, options: TrainOptions, split: str = "val") -> dict[str, float]:
    """COCO metrics of ``checkpoint`` on ``options.data/split``, on ``options.device``."""
    return evaluate_checkpoint(checkpoint, options.data, split, device=resolve_device(options.device))


def train_and_evaluate(
    options: TrainOptions,
    progress: bool | None = False,
    on_epoch_end: Callable[[int, int, Path], None] | None = None,
    split: str = "val",
) -> TrainedModel:
    """Train with ``options`` (resuming when ``options.resume`` is set), then evaluate the final
    checkpoint on ``options.data/split``.

    Args:
        options: the training run; its ``data`` must exist (see :func:`dataset_folder`).
        progress: show a progress bar (``None``: only when stderr is a terminal).
        on_epoch_end: ``(step, total_steps, checkpoint)`` after each epoch's checkpoint
            (see :func:`~effdet_graph.training.loop.train`).
        split: the split to evaluate on.

    Returns:
        The training result and the metrics (``AP AP50 AP75 APs APm APl``).

    Raises:
        DatasetError, CheckpointError, InputError: as :func:`~effdet_graph.training.loop.train` and
            :func:`~effdet_graph.inference.predict.evaluate_checkpoint`.
    """
    result = train(options, progress=progress, on_epoch_end=on_epoch_end)
    return TrainedModel(result, evaluate_run(result.checkpoint, options, split))
