"""Detection with a checkpoint: COCO box AP on a data set split, and boxes drawn onto image files.

The detector is rebuilt from the checkpoint alone (:func:`effdet_graph.io.checkpoint.load_checkpoint`,
EMA weights where present) and fed images resized so the longer side is the trained image size,
padded to a square (:class:`~effdet_graph.data.transforms.ResizePad`); boxes are mapped back to
the original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset
from torchvision.transforms.functional import pil_to_tensor
from torchvision.utils import draw_bounding_boxes

from effdet_graph.atomic import atomic_output, check_output_folder
from effdet_graph.data.checks import open_split
from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.images import open_image
from effdet_graph.data.loading import reraise_worker_errors
from effdet_graph.data.transforms import ResizePad, collate_detection
from effdet_graph.device import resolve_device
from effdet_graph.errors import DatasetError
from effdet_graph.inference.evaluate import coco_evaluate
from effdet_graph.io.checkpoint import load_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.detector import DetectorPredictor
from effdet_graph.model.postprocess import PostProcessConfig
from graphspec import InputError

__all__ = ["Detections", "evaluate_checkpoint", "load_predictor", "predict_images"]


@dataclass(frozen=True)
class Detections:
    """Detections of one image file, drawn into ``output``: ``boxes`` ``FloatTensor[D, 4]`` xyxy original
    pixels, ``scores`` ``FloatTensor[D]``, ``names`` (class names)."""

    output: Path
    boxes: torch.Tensor
    scores: torch.Tensor
    names: list[str]


def load_predictor(
    checkpoint: str | Path, config: PostProcessConfig, device: torch.device | None = None
) -> tuple[DetectorPredictor, ModelRecipe]:
    """The checkpoint's detector wrapped for inference, on ``device`` (default: CUDA if available)."""
    model, recipe = load_checkpoint(checkpoint)
    device = device or resolve_device()
    return DetectorPredictor(model, recipe.image_size, config).to(device).eval(), recipe


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    split: str = "val",
    nms: str = "hard",
    batch_size: int = 8,
    workers: int = 0,
    device: torch.device | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    class_agnostic: bool = False,
) -> dict[str, float]:
    """COCO metrics (``AP AP50 AP75 APs APm APl``) of the checkpoint on ``data/split``.

    Args:
        checkpoint: the checkpoint file.
        data: the data set folder.
        split: the split (folder under ``data``) to evaluate on.
        nms: ``hard`` or ``soft`` non-maximum suppression.
        batch_size: images per forward pass.
        workers: data loading processes.
        device: where the detector runs (default: CUDA if available).
        bootstrap: resamples of the split's images for a 95% interval of AP
            (:func:`~effdet_graph.inference.bootstrap.bootstrap_ap`); 0: none.
        seed: seed of the resamples.
        class_agnostic: also report AP with the classes ignored (``AP_agnostic``, see
            :func:`~effdet_graph.inference.evaluate.coco_evaluate`).

    Returns:
        The metrics by name; with ``bootstrap``, also ``AP_low`` and ``AP_high``, the interval's ends; with
        ``class_agnostic``, also ``AP_agnostic``.

    Raises:
        DatasetError: the split is missing or broken (an image, when the loader reaches it), has no
            annotated object (AP is undefined), or has categories the checkpoint does not know.
        CheckpointError: the checkpoint is missing, unreadable or invalid.
        InputError: ``batch_size`` below 1, ``workers`` or ``bootstrap`` below 0.
    """
    if bootstrap < 0:
        raise InputError(f"bootstrap resamples must be >= 0, got {bootstrap}")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if workers < 0:
        raise InputError(f"loader workers must be >= 0, got {workers}")
    dataset = open_split(data, split)
    if not any(not ann.get("iscrowd", 0) for ann in dataset.coco.dataset["annotations"]):
        raise DatasetError(
            f"{dataset.annotation_file}: the {split} split has no annotated objects, so AP is undefined; "
            "evaluate on a split with annotations"
        )
    predictor, recipe = load_predictor(checkpoint, PostProcessConfig(nms=nms), device)
    unknown = sorted(set(dataset.label_to_category) - set(recipe.label_to_category))
    if unknown:
        raise DatasetError(
            f"{dataset.annotation_file}: category ids {unknown} are not among the checkpoint's "
            f"{recipe.label_to_category}; evaluate on data with the classes it was trained on"
        )
    return evaluate_predictor(
        predictor,
        dataset,
        recipe,
        batch_size=batch_size,
        workers=workers,
        bootstrap=bootstrap,
        seed=seed,
        class_agnostic=class_agnostic,
    )


def evaluate_predictor(
    predictor: DetectorPredictor,
    dataset: CocoDetection,
    recipe: ModelRecipe,
    images: int | None = None,
    batch_size: int = 8,
    workers: int = 0,
    bootstrap: int = 0,
    seed: int = 0,
    class_agnostic: bool = False,
) -> dict[str, float]:
    """COCO metrics (``AP AP50 AP75 APs APm APl``) of ``predictor`` (eval mode, on its device) on ``dataset``,
    or on its first ``images`` images; ``recipe`` gives the input size and the label-to-category map. The
    arguments are as for :func:`evaluate_checkpoint`, checked there."""
    dataset.transform = ResizePad(recipe.image_size)
    subset = range(len(dataset) if images is None else min(images, len(dataset)))
    device = next(predictor.parameters()).device
    detections = []
    loader = DataLoader(
        Subset(dataset, subset), batch_size=batch_size, collate_fn=collate_detection, num_workers=workers
    )
    with torch.no_grad():
        for batch, targets in reraise_worker_errors(loader):
            outputs = predictor(batch.to(device), [t["image_size"] for t in targets])
            detections += [
                {**{k: v.cpu() for k, v in out.items()}, "image_id": t["image_id"], "scale": t["scale"]}
                for out, t in zip(outputs, targets)
            ]
    image_ids = [dataset.image_ids[i] for i in subset]
    return coco_evaluate(
        dataset.coco,
        detections,
        recipe.label_to_category,
        image_ids=image_ids,
        bootstrap=bootstrap,
        seed=seed,
        class_agnostic=class_agnostic,
    )


def _class_colours(count: int) -> list[str]:
    palette = matplotlib.colormaps["tab10"]
    return [matplotlib.colors.to_hex(palette(i % palette.N)) for i in range(count)]


def _image_format(path: Path) -> str:
    """The PIL format to write ``path`` in: its extension's, or PNG where PIL cannot write that."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    return fmt if fmt in Image.SAVE else "PNG"


def predict_images(
    checkpoint: str | Path,
    images: Sequence[Path],
    out: Path,
    score_threshold: float = 0.3,
    device: torch.device | None = None,
) -> list[Detections]:
    """Detect objects in ``images`` and write each, boxes drawn with class names and scores, to
    ``out/<file name>`` (atomically per file).

    Raises:
        DatasetError: an image is missing, a directory or unreadable (checked for all images before writing).
        CheckpointError: the checkpoint is missing, unreadable or invalid.
        InputError: two images share a file name, or ``out`` (or a parent) is an existing file.
    """
    check_output_folder(out)
    names = [path.name for path in images]
    clash = sorted({name for name in names if names.count(name) > 1})
    if clash:
        raise InputError(f"several images are named {', '.join(clash)}; they would overwrite each other in {out}")
    decoded = [open_image(path) for path in images]  # every image readable before anything is written
    predictor, recipe = load_predictor(checkpoint, PostProcessConfig(score_threshold=score_threshold), device)
    device = next(predictor.parameters()).device
    colours = _class_colours(recipe.num_classes)
    resize = ResizePad(recipe.image_size)
    results = []
    for path, image in zip(images, decoded):
        tensor, placed = resize(image, {"boxes": torch.zeros(0, 4)})
        found = predictor(tensor[None].to(device), [placed["image_size"]])[0]
        boxes = found["boxes"].cpu() / placed["scale"]
        labels = found["labels"].cpu().tolist()
        scores = found["scores"].cpu()
        classes = [recipe.class_names[label] for label in labels]
        drawn = pil_to_tensor(image)
        if labels:  # torchvision warns when it is given no box to draw
            drawn = draw_bounding_boxes(
                drawn,
                boxes,
                labels=[f"{c} {s:.2f}" for c, s in zip(classes, scores.tolist())],
                colors=[colours[label] for label in labels],
                width=2,
            )
        target = out / path.name
        with atomic_output(target) as tmp:
            Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(tmp, format=_image_format(path))
        results.append(Detections(target, boxes, scores, classes))
    return results
