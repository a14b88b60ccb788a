"""Target assignment: the class and box targets of every anchor of a batch, for the loss.

A positive anchor (:func:`~effdet_graph.model.matching.match_anchors`) takes its box's class and the
box's code against it (:func:`~effdet_graph.model.box_coder.encode_boxes`); negative and ignored
anchors keep :data:`~effdet_graph.model.matching.BACKGROUND` and
:data:`~effdet_graph.model.matching.IGNORE`. Anchors that are not positive and lie mostly inside a
crowd box (intersection over anchor area ``>= crowd_ioa_threshold``) are ignored too.

As matching, assignment uses static-shape tensor operations only: it never waits for the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from effdet_graph.model.box_coder import EPS, encode_boxes
from effdet_graph.model.matching import IGNORE, MatchConfig, match_anchors
from effdet_graph.model.padded_targets import PaddedTargets

__all__ = ["AnchorTargets", "assign_targets"]


@dataclass
class AnchorTargets:
    """Training targets of a batch, one row per anchor.

    Attributes:
        classes (Int64Tensor[B, A]): class id (``>= 0``) of positive anchors,
            :data:`~effdet_graph.model.matching.BACKGROUND` (-1) for negatives,
            :data:`~effdet_graph.model.matching.IGNORE` (-2) for ignored anchors.
        boxes (Tensor[B, A, 4]): codes ``(ty, tx, th, tw)`` of the matched box for positive anchors,
            zeros elsewhere.
        num_positives (Int64Tensor[]): positive anchors of the whole batch, 0-dim, on the anchors'
            device. A tensor, so that reading it does not wait for the device.
    """

    classes: Tensor
    boxes: Tensor
    num_positives: Tensor


def _crowd_overlap(anchors: Tensor, crowd_boxes: Tensor, threshold: float) -> Tensor:
    """Whether each anchor lies mostly inside each crowd box.

    In place, as :func:`effdet_graph.model.matching._pairwise_iou`, for the same reason.

    Args:
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)``.
        crowd_boxes (Tensor[B, C, 4]): ``(x1, y1, x2, y2)``.
        threshold: the least intersection over anchor area.

    Returns:
        BoolTensor[B, A, C]: intersection over anchor area ``>= threshold``.
    """
    cx1, cy1, cx2, cy2 = (v.unsqueeze(1) for v in crowd_boxes.unbind(dim=-1))  # (B, 1, C)
    ax1, ay1, ax2, ay2 = (v.unsqueeze(-1) for v in anchors.unbind(dim=-1))  # (A, 1)
    inter = torch.minimum(ax2, cx2)
    tmp = torch.maximum(ax1, cx1)
    inter.sub_(tmp).clamp_(min=0)
    h = torch.minimum(ay2, cy2)
    torch.maximum(ay1, cy1, out=tmp)
    inter.mul_(h.sub_(tmp).clamp_(min=0))
    anchor_area = ((ax2 - ax1) * (ay2 - ay1)).clamp(min=EPS)
    return inter.div_(anchor_area) >= threshold


def assign_targets(anchors: Tensor, targets: PaddedTargets, config: MatchConfig = MatchConfig()) -> AnchorTargets:
    """Compute the class and box targets of a padded batch, without host synchronisation.

    Every operation has a static output shape (``(B, A)``, ``(B, A, 4)``, ...), none reads a value
    back to the host, so the whole computation can be captured in a CUDA graph or compiled with
    ``torch.compile(fullgraph=True)``.

    Args:
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)`` pixels.
        targets: ``B`` images of ``M`` (padded) boxes and ``C`` (padded) crowd/ignore boxes.
        config: matching thresholds.

    Returns:
        Per image the classes and box codes of every anchor, and the number of positives of the
        batch as a 0-dim tensor.
    """
    matches = match_anchors(anchors, targets, config)  # (B, A)
    positive = matches >= 0
    batch, num_anchors = matches.shape
    if targets.boxes.shape[1] == 0:
        classes = matches
        boxes = torch.zeros(batch, num_anchors, 4, dtype=anchors.dtype, device=anchors.device)
    else:
        row = matches.clamp(min=0)  # any row for non-positive anchors; their values are discarded
        classes = torch.where(positive, targets.labels.to(anchors.device).gather(1, row), matches)
        matched = targets.boxes.to(anchors).gather(1, row.unsqueeze(-1).expand(batch, num_anchors, 4))
        boxes = torch.where(positive.unsqueeze(-1), encode_boxes(matched, anchors), 0.0)
    if targets.ignore_boxes.shape[1] > 0:
        over = _crowd_overlap(anchors, targets.ignore_boxes.to(anchors), config.crowd_ioa_threshold)  # (B, A, C)
        in_crowd = (over & targets.ignore_valid.unsqueeze(1)).any(dim=2)  # (B, A)
        classes = torch.where(in_crowd & ~positive, IGNORE, classes)
    return AnchorTargets(classes=classes, boxes=boxes, num_positives=positive.sum())
