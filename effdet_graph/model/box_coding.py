"""Box regression coding and anchor-to-ground-truth matching (the training targets).

Coding. A box is encoded against an anchor as ``(ty, tx, th, tw)`` (effdet's order, no scaling
weights)::

    ty = (yc - yc_a) / h_a      tx = (xc - xc_a) / w_a
    th = log(h / h_a)           tw = log(w / w_a)

Boxes and anchors are ``xyxy`` pixels. torchvision's ``BoxCoder`` uses ``(tx, ty, tw, th)`` with
weights, and its ``Matcher`` forces *every* anchor tied for a ground truth's best IoU (to that
anchor's own best ground truth), so neither reproduces effdet; the few lines here do.

Matching. Each anchor takes the ground truth of highest IoU. IoU ``>= matched_threshold`` makes
it positive, ``< unmatched_threshold`` negative, in between ignored. Then every ground truth is
forced onto its best anchor (the first ground truth wins when two pick the same anchor), however
low the IoU. Anchors that are not positive and lie mostly inside a crowd box (intersection over
anchor area ``>= crowd_ioa_threshold``) are ignored too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = [
    "BACKGROUND",
    "IGNORE",
    "MatchConfig",
    "AnchorTargets",
    "encode_boxes",
    "decode_boxes",
    "match_anchors",
    "assign_targets",
    "one_hot_targets",
]

# Per-anchor class target values: ``>= 0`` is the class of a positive anchor, or one of these two.
#: Negative anchor (background: every class target is 0).
BACKGROUND = -1
#: Ignored anchor (contributes to no loss).
IGNORE = -2

# Added to widths and heights before dividing and taking logs (effdet adds the same 1e-7).
_EPS = 1e-7
# Decoded log-size offsets are clamped here so exp() cannot overflow (torchvision's bound).
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def _centers_sizes(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``xyxy (N, 4)`` -> ``(yc, xc, h, w)``, each ``(N,)``."""
    x1, y1, x2, y2 = boxes.unbind(dim=-1)
    w, h = x2 - x1, y2 - y1
    return y1 + h / 2, x1 + w / 2, h, w


def encode_boxes(boxes: Tensor, anchors: Tensor) -> Tensor:
    """Encode ``boxes`` against ``anchors`` row by row.

    Args:
        boxes: ``FloatTensor[N, 4]`` xyxy pixels.
        anchors: ``FloatTensor[N, 4]`` xyxy pixels.

    Returns:
        ``FloatTensor[N, 4]`` codes ``(ty, tx, th, tw)``.
    """
    yc_a, xc_a, h_a, w_a = _centers_sizes(anchors)
    yc, xc, h, w = _centers_sizes(boxes)
    h_a, w_a, h, w = h_a + _EPS, w_a + _EPS, h + _EPS, w + _EPS
    return torch.stack([(yc - yc_a) / h_a, (xc - xc_a) / w_a, torch.log(h / h_a), torch.log(w / w_a)], dim=-1)


def decode_boxes(codes: Tensor, anchors: Tensor) -> Tensor:
    """Invert :func:`encode_boxes`.

    Args:
        codes: ``FloatTensor[N, 4]`` ``(ty, tx, th, tw)``.
        anchors: ``FloatTensor[N, 4]`` xyxy pixels.

    Returns:
        ``FloatTensor[N, 4]`` xyxy pixels. ``th`` and ``tw`` are clamped at ``log(1000/16)``
        so that wild predictions cannot overflow to ``inf``.
    """
    yc_a, xc_a, h_a, w_a = _centers_sizes(anchors)
    ty, tx, th, tw = codes.unbind(dim=-1)
    h = torch.exp(th.clamp(max=_MAX_LOG_SCALE)) * h_a
    w = torch.exp(tw.clamp(max=_MAX_LOG_SCALE)) * w_a
    yc = ty * h_a + yc_a
    xc = tx * w_a + xc_a
    return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], dim=-1)


@dataclass(frozen=True)
class MatchConfig:
    """Thresholds of anchor matching (see the module docstring)."""

    matched_threshold: float = 0.5
    unmatched_threshold: float = 0.4
    allow_low_quality_matches: bool = True
    crowd_ioa_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.unmatched_threshold <= self.matched_threshold <= 1.0:
            raise ValueError(
                "need 0 <= unmatched_threshold <= matched_threshold <= 1, got "
                f"{self.unmatched_threshold} and {self.matched_threshold}"
            )


def match_anchors(anchors: Tensor, gt_boxes: Tensor, config: MatchConfig = MatchConfig()) -> Tensor:
    """Match every anchor to at most one ground-truth box.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy.
        gt_boxes: ``FloatTensor[M, 4]`` xyxy (``M`` may be 0).

    Returns:
        ``LongTensor[A]``: the index of the matched box (positive), :data:`BACKGROUND` (-1) or
        :data:`IGNORE` (-2).
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
class AnchorTargets:
    """Training targets of one image, one row per anchor.

    Attributes:
        classes: ``LongTensor[A]``: class id (``>= 0``) of positive anchors, :data:`BACKGROUND`
            (-1) for negatives, :data:`IGNORE` (-2) for ignored anchors.
        boxes: ``FloatTensor[A, 4]``: codes ``(ty, tx, th, tw)`` of the matched box for positive
            anchors, zeros elsewhere.
        num_positives: ``int``: number of positive anchors.
    """

    classes: Tensor
    boxes: Tensor
    num_positives: int


def assign_targets(
    anchors: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    ignore_boxes: Tensor | None = None,
    config: MatchConfig = MatchConfig(),
) -> AnchorTargets:
    """Compute the class and box targets of one image.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy pixels.
        gt_boxes: ``FloatTensor[M, 4]`` xyxy pixels.
        gt_labels: ``Int64Tensor[M]`` 0-based class ids.
        ignore_boxes: ``FloatTensor[C, 4]`` xyxy crowd/ignore regions, or ``None``.
        config: matching thresholds.

    Raises:
        ValueError: boxes and labels differ in number.
    """
    if gt_boxes.shape[0] != gt_labels.shape[0]:
        raise ValueError(f"got {gt_boxes.shape[0]} boxes but {gt_labels.shape[0]} labels for one image")
    gt_boxes = gt_boxes.to(anchors)
    matches = match_anchors(anchors, gt_boxes, config)
    positive = matches >= 0
    classes = matches.clone()
    if positive.any():
        classes[positive] = gt_labels.to(anchors.device)[matches[positive]]
    if ignore_boxes is not None and ignore_boxes.shape[0] > 0:
        ignore_boxes = ignore_boxes.to(anchors)
        lt = torch.max(anchors[:, None, :2], ignore_boxes[None, :, :2])
        rb = torch.min(anchors[:, None, 2:], ignore_boxes[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(dim=2)  # (A, C)
        anchor_area = (anchors[:, 2:] - anchors[:, :2]).prod(dim=1).clamp(min=_EPS)
        in_crowd = (inter / anchor_area[:, None]).max(dim=1).values >= config.crowd_ioa_threshold
        classes = torch.where(in_crowd & ~positive, torch.full_like(classes, IGNORE), classes)
    boxes = torch.zeros_like(anchors)
    if positive.any():
        boxes[positive] = encode_boxes(gt_boxes[matches[positive]], anchors[positive])
    return AnchorTargets(classes=classes, boxes=boxes, num_positives=int(positive.sum()))


def one_hot_targets(classes: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Turn per-anchor class targets into focal-loss targets.

    Args:
        classes: ``LongTensor[...]`` values as in :attr:`AnchorTargets.classes`.
        num_classes: ``K``.

    Returns:
        ``(targets, valid)``: ``FloatTensor[..., K]`` one-hot rows (all zero for background and
        ignored anchors) and ``BoolTensor[...]``, False for ignored anchors.

    Raises:
        ValueError: a class id is ``>= num_classes``.
    """
    if classes.numel() and int(classes.max()) >= num_classes:
        raise ValueError(f"class id {int(classes.max())} out of range for {num_classes} classes")
    positive = classes >= 0
    targets = torch.nn.functional.one_hot(classes.clamp(min=0), num_classes).to(torch.float32)
    targets = targets * positive.unsqueeze(-1)
    return targets, classes != IGNORE
