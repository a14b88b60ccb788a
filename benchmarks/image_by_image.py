"""Target assignment and the detection loss image by image: how they were computed before the batched
matching (:mod:`effdet_graph.model.target_assignment`), and now its oracle.

Each image's boxes are matched as they come (any number of them), deciding with host-side branches
(``if positive.any()``, boolean-mask indexing): simple, and a reference the batched code must equal
(same class targets, bitwise same box codes, same number of positives, same loss). The tests check the
library against it (``tests/`` imports it as ``benchmarks.image_by_image``), and ``benchmarks.bench_train_step``
times it as the ``old`` baseline. It waits for the device several times per image: for checks, not for
training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou, sigmoid_focal_loss

from effdet_graph.model import BACKGROUND, EPS, IGNORE, DetectionLoss, MatchConfig, encode_boxes, flatten_level_outputs

__all__ = ["ImageTargets", "match_one_image", "assign_one_image", "one_hot_targets", "batch_targets", "reference_loss"]


def match_one_image(anchors: Tensor, gt_boxes: Tensor, config: MatchConfig = MatchConfig()) -> Tensor:
    """Match every anchor to at most one of one image's boxes (the rule of :mod:`effdet_graph.model.matching`).

    Args:
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)``.
        gt_boxes (Tensor[M, 4]): ``(x1, y1, x2, y2)`` (``M`` may be 0).

    Returns:
        Int64Tensor[A]: the index of the matched box (positive), ``BACKGROUND`` (-1) or ``IGNORE`` (-2).
    """
    num_anchors = anchors.shape[0]
    if gt_boxes.shape[0] == 0:
        return torch.full((num_anchors,), BACKGROUND, dtype=torch.long, device=anchors.device)
    iou = box_iou(gt_boxes, anchors)  # (M, A)
    best_iou, matches = iou.max(dim=0)
    matches = matches.clone()
    matches[best_iou < config.matched_threshold] = IGNORE
    matches[best_iou < config.unmatched_threshold] = BACKGROUND
    if config.allow_low_quality_matches:
        num_gt = gt_boxes.shape[0]
        best_anchor = iou.argmax(dim=1)  # (M,)
        forced = torch.full((num_anchors,), num_gt, dtype=torch.long, device=anchors.device)
        forced = forced.scatter_reduce(0, best_anchor, torch.arange(num_gt, device=anchors.device), reduce="amin")
        matches = torch.where(forced < num_gt, forced, matches)
    return matches


@dataclass
class ImageTargets:
    """Training targets of one image, one row per anchor.

    Attributes:
        classes (Int64Tensor[A]): class id (``>= 0``) of positive anchors, ``BACKGROUND`` (-1) for
            negatives, ``IGNORE`` (-2) for ignored anchors.
        boxes (Tensor[A, 4]): codes ``(ty, tx, th, tw)`` of the matched box for positive anchors, zeros
            elsewhere.
        num_positives: number of positive anchors.
    """

    classes: Tensor
    boxes: Tensor
    num_positives: int


def assign_one_image(
    anchors: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    ignore_boxes: Tensor | None = None,
    config: MatchConfig = MatchConfig(),
) -> ImageTargets:
    """Compute the class and box targets of one image.

    Args:
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)`` pixels.
        gt_boxes (Tensor[M, 4]): ``(x1, y1, x2, y2)`` pixels.
        gt_labels (Int64Tensor[M]): 0-based class ids.
        ignore_boxes (Tensor[C, 4] or None): ``(x1, y1, x2, y2)`` crowd/ignore regions.
        config: matching thresholds.

    Raises:
        ValueError: boxes and labels differ in number.
    """
    if gt_boxes.shape[0] != gt_labels.shape[0]:
        raise ValueError(f"got {gt_boxes.shape[0]} boxes but {gt_labels.shape[0]} labels for one image")
    gt_boxes = gt_boxes.to(anchors)
    matches = match_one_image(anchors, gt_boxes, config)
    positive = matches >= 0
    classes = matches.clone()
    if positive.any():
        classes[positive] = gt_labels.to(anchors.device)[matches[positive]]
    if ignore_boxes is not None and ignore_boxes.shape[0] > 0:
        ignore_boxes = ignore_boxes.to(anchors)
        lt = torch.max(anchors[:, None, :2], ignore_boxes[None, :, :2])
        rb = torch.min(anchors[:, None, 2:], ignore_boxes[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(dim=2)  # (A, C)
        anchor_area = (anchors[:, 2:] - anchors[:, :2]).prod(dim=1).clamp(min=EPS)
        in_crowd = (inter / anchor_area[:, None]).max(dim=1).values >= config.crowd_ioa_threshold
        classes = torch.where(in_crowd & ~positive, torch.full_like(classes, IGNORE), classes)
    boxes = torch.zeros_like(anchors)
    if positive.any():
        boxes[positive] = encode_boxes(gt_boxes[matches[positive]], anchors[positive])
    return ImageTargets(classes=classes, boxes=boxes, num_positives=int(positive.sum()))


def one_hot_targets(classes: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Turn per-anchor class targets into focal-loss targets.

    Args:
        classes (Int64Tensor[...]): values as in :attr:`ImageTargets.classes`.
        num_classes: ``K``.

    Returns:
        ``(targets, valid)``: ``Tensor[..., K]`` one-hot rows (all zero for background and ignored
        anchors) and ``BoolTensor[...]``, False for ignored anchors.

    Raises:
        ValueError: a class id is ``>= num_classes``.
    """
    if classes.numel() and int(classes.max()) >= num_classes:
        raise ValueError(f"class id {int(classes.max())} out of range for {num_classes} classes")
    positive = classes >= 0
    targets = torch.nn.functional.one_hot(classes.clamp(min=0), num_classes).to(torch.float32)
    targets = targets * positive.unsqueeze(-1)
    return targets, classes != IGNORE


def batch_targets(
    anchors: Tensor,
    targets: Sequence[Mapping[str, Tensor]],
    match: MatchConfig = MatchConfig(),
) -> tuple[Tensor, Tensor, int]:
    """Assign targets for a batch, image by image.

    Args:
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)`` pixels.
        targets: per image a dict with ``boxes`` (``Tensor[M, 4]``, ``(x1, y1, x2, y2)`` pixels),
            ``labels`` (``Int64Tensor[M]``, 0-based) and optionally ``ignore_boxes``
            (``Tensor[C, 4]``, ``(x1, y1, x2, y2)`` crowd regions).

    Returns:
        ``(classes Int64Tensor[N, A], box_codes Tensor[N, A, 4], num_positives)``.

    Raises:
        ValueError: a target lacks ``boxes`` or ``labels``.
    """
    per_image: list[ImageTargets] = []
    for i, target in enumerate(targets):
        if "boxes" not in target or "labels" not in target:
            raise ValueError(f"target {i} needs 'boxes' and 'labels', has {sorted(target)}")
        per_image.append(
            assign_one_image(anchors, target["boxes"], target["labels"], target.get("ignore_boxes"), match)
        )
    classes = torch.stack([t.classes for t in per_image])
    boxes = torch.stack([t.boxes for t in per_image])
    return classes, boxes, sum(t.num_positives for t in per_image)


def reference_loss(
    class_outputs: Sequence[Tensor],
    box_outputs: Sequence[Tensor],
    anchors: Tensor,
    targets: Sequence[Mapping[str, Tensor]],
    num_classes: int,
    match: MatchConfig = MatchConfig(),
) -> dict[str, Tensor]:
    """:class:`~effdet_graph.model.losses.DetectionLoss` with its default parameters, computed the plain way:
    targets matched image by image (:func:`batch_targets`), positives selected by boolean indexing.

    Args:
        class_outputs: per level ``Tensor[N, A * K, H_l, W_l]``.
        box_outputs: per level ``Tensor[N, A * 4, H_l, W_l]``.
        anchors (Tensor[sum_l H_l * W_l * A, 4]): ``(x1, y1, x2, y2)`` pixels.
        targets: per image ``boxes``, ``labels`` and optionally ``ignore_boxes`` (see :func:`batch_targets`).
        num_classes: ``K``.

    Returns:
        ``loss``, ``class_loss`` and ``box_loss``, 0-dim.
    """
    logits = flatten_level_outputs(class_outputs, num_classes).float()
    codes = flatten_level_outputs(box_outputs, 4).float()
    with torch.no_grad():
        classes, box_targets, num_positives = batch_targets(anchors, targets, match)
        onehot, valid = one_hot_targets(classes, num_classes)
    loss = DetectionLoss(num_classes, match=match)  # its parameters, not copies of them
    normalizer = float(num_positives) + 1.0
    focal = sigmoid_focal_loss(logits, onehot, alpha=loss.alpha, gamma=loss.gamma, reduction="none")
    class_loss = (focal * valid.unsqueeze(-1)).sum() / normalizer
    positive = classes >= 0
    huber = F.huber_loss(codes[positive], box_targets[positive], delta=loss.delta, reduction="sum")
    box_loss = huber / (4.0 * normalizer)
    return {"loss": class_loss + loss.box_loss_weight * box_loss, "class_loss": class_loss, "box_loss": box_loss}


def random_boxes(gen: torch.Generator, n: int, size: tuple[int, int] = (256, 256)) -> torch.Tensor:
    """``n`` random boxes (Tensor[n, 4], ``(x1, y1, x2, y2)``) inside an image of ``size`` (H, W), sides from
    4 px to most of the image (log-uniform): the inputs the oracle and the library are compared on."""
    h, w = size
    side = torch.exp(torch.empty(n, 2).uniform_(1.4, 5.3, generator=gen))
    side = torch.minimum(side, torch.tensor([w - 1.0, h - 1.0]))
    x1 = torch.rand(n, generator=gen) * (w - side[:, 0])
    y1 = torch.rand(n, generator=gen) * (h - side[:, 1])
    return torch.stack([x1, y1, x1 + side[:, 0], y1 + side[:, 1]], dim=1)
