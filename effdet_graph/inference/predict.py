"""Detection with a checkpoint: COCO box AP on a data set split, and boxes drawn onto image files.

The detector is rebuilt from the checkpoint alone (:func:`effdet_graph.io.checkpoint.model_from_checkpoint`,
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
from torch.utils.data import DataLoader
from torchvision.transforms.functional import pil_to_tensor
from torchvision.utils import draw_bounding_boxes

from effdet_graph.data.images import open_image
from effdet_graph.data.transforms import ResizePad, collate_detection
from effdet_graph.device import resolve_device
from effdet_graph.errors import DatasetError
from effdet_graph.inference.evaluate import coco_evaluate
from effdet_graph.io.atomic import atomic_output
from effdet_graph.io.checkpoint import model_from_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.detector import DetectorPredictor
from effdet_graph.model.postprocess import PostProcessConfig
from effdet_graph.training.data import open_split
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
    model, recipe = model_from_checkpoint(checkpoint)
    device = device or resolve_device()
    return DetectorPredictor(model, recipe.image_size, config).to(device).eval(), recipe


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: Path,
    split: str = "val",
    nms: str = "hard",
    batch_size: int = 8,
    workers: int = 0,
    device: torch.device | None = None,
) -> dict[str, float]:
    """COCO metrics (``AP AP50 AP75 APs APm APl``) of the checkpoint on ``data/split``.

    Raises:
        DatasetError: the split is missing or broken, or has categories the checkpoint does not know.
        CheckpointError: the checkpoint is missing or unreadable.
    """
    dataset = open_split(data, split)
    predictor, recipe = load_predictor(checkpoint, PostProcessConfig(nms=nms), device)
    unknown = sorted(set(dataset.label_to_category) - set(recipe.label_to_category))
    if unknown:
        raise DatasetError(
            f"{dataset.annotation_file}: category ids {unknown} are not among the checkpoint's "
            f"{recipe.label_to_category}; evaluate on data with the classes it was trained on"
        )
    dataset.transform = ResizePad(recipe.image_size)
    device = next(predictor.parameters()).device
    detections = []
    for images, targets in DataLoader(
        dataset, batch_size=batch_size, collate_fn=collate_detection, num_workers=workers
    ):
        outputs = predictor(images.to(device), [t["image_size"] for t in targets])
        detections += [
            {**{k: v.cpu() for k, v in out.items()}, "image_id": t["image_id"], "scale": t["scale"]}
            for out, t in zip(outputs, targets)
        ]
    return coco_evaluate(dataset.coco, detections, recipe.label_to_category)


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
        DatasetError: an image is missing or unreadable (checked for all images before writing).
        InputError: two images share a file name.
    """
    names = [path.name for path in images]
    clash = sorted({name for name in names if names.count(name) > 1})
    if clash:
        raise InputError(f"several images are named {', '.join(clash)}; they would overwrite each other in {out}")
    for path in images:  # every image readable before anything is written
        open_image(path)
    predictor, recipe = load_predictor(checkpoint, PostProcessConfig(score_threshold=score_threshold), device)
    device = next(predictor.parameters()).device
    colours = _class_colours(recipe.num_classes)
    resize = ResizePad(recipe.image_size)
    results = []
    for path in images:
        image = open_image(path)
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
