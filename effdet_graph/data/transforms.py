"""Image + box transforms to a square model input, and the batch collate function.

A transform is called as ``transform(image, target, rng)`` with a PIL RGB image, a target as
produced by :class:`effdet_graph.data.coco.CocoDetection` (``boxes`` and ``ignore_boxes`` xyxy
pixels of ``image``) and a ``random.Random`` (unused by :class:`ResizePad`). It returns a
normalised ``FloatTensor[3, S, S]`` and the target with boxes in input pixels plus:

* ``scale``: input pixels per original pixel (``boxes_input = boxes_original * scale`` for
  :class:`ResizePad`; for :class:`TrainTransform` the crop offset comes on top);
* ``image_size``: ``(h, w)`` of the input covered by the image; the rest is padding (zeros,
  i.e. the ImageNet mean colour after normalisation).

Batches: :func:`collate_detection` keeps one target dict per image; :class:`PaddedCollate` pads the
boxes to a fixed number per image (:class:`~effdet_graph.model.padded_targets.PaddedTargets`), on the
loader's CPU workers, for a training step that never waits for the device.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import functional as TF

from effdet_graph.model.backbone_weights import IMAGENET_MEAN, IMAGENET_STD
from effdet_graph.model.padded_targets import (
    DEFAULT_MAX_BOXES,
    DEFAULT_MAX_IGNORE_BOXES,
    Overflow,
    PaddedTargets,
    pad_targets,
)

__all__ = [
    "ResizePad",
    "TrainTransform",
    "hflip",
    "to_normalized_tensor",
    "collate_detection",
    "PaddedCollate",
]


def hflip(image: Image.Image, target: dict[str, Any]) -> tuple[Image.Image, dict[str, Any]]:
    """Mirror ``image`` left-right and its ``boxes`` / ``ignore_boxes`` (xyxy pixels)."""
    width = image.size[0]
    out = dict(target)
    for key in ("boxes", "ignore_boxes"):
        if key in target:
            b = target[key]
            out[key] = torch.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], dim=1)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), out


def to_normalized_tensor(image: Image.Image, size: int) -> Tensor:
    """``FloatTensor[3, size, size]``: ImageNet-normalised pixels top-left, zeros elsewhere."""
    x = TF.normalize(TF.pil_to_tensor(image).float().div_(255.0), IMAGENET_MEAN, IMAGENET_STD)
    out = torch.zeros(3, size, size)
    h, w = min(size, x.shape[1]), min(size, x.shape[2])
    out[:, :h, :w] = x[:, :h, :w]
    return out


def _place_boxes(boxes: Tensor, scale: float, offset: tuple[int, int], region: tuple[int, int]) -> Tensor:
    """Scale, shift by ``-offset (x, y)`` and clip xyxy boxes to ``region (h, w)``."""
    if boxes.numel() == 0:
        return boxes.reshape(0, 4).float()
    b = boxes.float() * scale - torch.tensor([offset[0], offset[1], offset[0], offset[1]], dtype=torch.float32)
    b[:, 0::2] = b[:, 0::2].clamp(0, region[1])
    b[:, 1::2] = b[:, 1::2].clamp(0, region[0])
    return b


@dataclass(frozen=True)
class ResizePad:
    """Evaluation transform: resize so the longer side is ``size`` (aspect kept), pad to square."""

    size: int

    def __call__(
        self, image: Image.Image, target: dict[str, Any], rng: random.Random | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        w, h = image.size
        scale = self.size / max(w, h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
        out = dict(target)
        out["boxes"] = _place_boxes(target["boxes"], scale, (0, 0), (new_h, new_w))
        if "ignore_boxes" in target:
            out["ignore_boxes"] = _place_boxes(target["ignore_boxes"], scale, (0, 0), (new_h, new_w))
        out["scale"] = scale
        out["image_size"] = (new_h, new_w)
        return to_normalized_tensor(image, self.size), out


@dataclass(frozen=True)
class TrainTransform:
    """Training augmentation: random horizontal flip, scale jitter, random crop, pad.

    The image is flipped with probability ``flip_prob``, resized by
    ``size / max(h, w) * j`` with ``j`` uniform in ``scale_range``, and a random
    ``size x size`` window of it is kept (padded when smaller). Boxes follow; they are clipped
    to the window and dropped when narrower or lower than ``min_box_size`` pixels afterwards
    (with their labels). Crowd boxes follow the same way.
    """

    size: int
    scale_range: tuple[float, float] = (0.1, 2.0)
    flip_prob: float = 0.5
    min_box_size: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}")

    def __call__(self, image: Image.Image, target: dict[str, Any], rng: random.Random) -> tuple[Tensor, dict[str, Any]]:
        if rng.random() < self.flip_prob:
            image, target = hflip(image, target)
        w, h = image.size
        scale = self.size / max(w, h) * rng.uniform(*self.scale_range)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        off_x = rng.randint(0, max(0, new_w - self.size))
        off_y = rng.randint(0, max(0, new_h - self.size))
        region = (min(self.size, new_h - off_y), min(self.size, new_w - off_x))
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
        if (off_x, off_y) != (0, 0) or region != (new_h, new_w):
            image = image.crop((off_x, off_y, off_x + region[1], off_y + region[0]))
        out = dict(target)
        boxes = _place_boxes(target["boxes"], scale, (off_x, off_y), region)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= self.min_box_size) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_box_size)
        out["boxes"], out["labels"] = boxes[keep], target["labels"][keep]
        if "ignore_boxes" in target:
            crowd = _place_boxes(target["ignore_boxes"], scale, (off_x, off_y), region)
            out["ignore_boxes"] = crowd[(crowd[:, 2] > crowd[:, 0]) & (crowd[:, 3] > crowd[:, 1])]
        out["scale"] = scale
        out["image_size"] = region
        return to_normalized_tensor(image, self.size), out


def collate_detection(
    batch: Sequence[tuple[Tensor, dict[str, Any]]],
) -> tuple[Tensor, list[dict[str, Any]]]:
    """``[(image[3, S, S], target)] -> (images FloatTensor[N, 3, S, S], [target])``; items whose image is a
    tuple of backbone feature maps (a feature cache's) give the list of each level's ``[N, C_l, H_l, W_l]``.

    Raises:
        ValueError: the batch is empty.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    images, targets = zip(*batch)
    if isinstance(images[0], tuple):
        return [torch.stack(list(level)) for level in zip(*images)], list(targets)  # type: ignore[return-value]
    return torch.stack(list(images)), list(targets)


@dataclass(frozen=True)
class PaddedCollate:
    """Collate function for training: ``[(image[3, S, S], target)] -> (images FloatTensor[N, 3, S, S],
    PaddedTargets)`` with ``boxes [N, max_boxes, 4]``, ``labels [N, max_boxes]`` (``-1`` in padding),
    ``ignore_boxes [N, max_ignore_boxes, 4]`` and their masks (see
    :func:`~effdet_graph.model.padded_targets.pad_targets`, which does the work).

    A picklable object, so it runs in the loader's worker processes:
    ``DataLoader(dataset, collate_fn=PaddedCollate(max_boxes=100), pin_memory=True)``;
    ``PaddedTargets`` pins its tensors and moves with ``.to(device, non_blocking=True)``.
    The other target keys (``image_id``, ``scale``, ...) are dropped; training needs none.

    Attributes:
        max_boxes: boxes per image (effdet's default, 100; ``None``: the most of the batch).
        max_ignore_boxes: crowd/ignore boxes per image (``None``: the most of the batch).
        overflow: an image with more boxes: ``"error"`` (default, a ``ValueError`` that names
            the limit) or ``"largest"`` (keep the largest boxes).
        num_classes: when given, labels are checked to lie in ``[0, num_classes)`` here on the
            CPU, since the loss cannot check them without waiting for the device.
    """

    max_boxes: int | None = DEFAULT_MAX_BOXES
    max_ignore_boxes: int | None = DEFAULT_MAX_IGNORE_BOXES
    overflow: Overflow = "error"
    num_classes: int | None = None

    def __call__(self, batch: Sequence[tuple[Tensor, dict[str, Any]]]) -> tuple[Tensor, PaddedTargets]:
        """Collate ``batch``.

        Raises:
            ValueError: the batch is empty, or a target does not fit (see ``pad_targets``).
        """
        images, targets = collate_detection(batch)
        padded = pad_targets(
            targets, self.max_boxes, self.max_ignore_boxes, self.overflow, self.num_classes, device="cpu"
        )
        return images, padded
