"""Anchor matching: every anchor of an image takes at most one of the image's ground-truth boxes.

Each anchor takes the ground truth of highest IoU (the first one where several tie). IoU
``>= matched_threshold`` makes it positive, ``< unmatched_threshold`` negative, in between ignored.
Then every ground truth is forced onto its best anchor (the first ground truth wins when two pick
the same anchor), however low the IoU. torchvision's ``Matcher`` forces *every* anchor tied for a
ground truth's best IoU (to that anchor's own best ground truth), so it does not reproduce effdet;
the few lines here do.

The images of a batch are matched at once, their boxes padded to one count
(:class:`~effdet_graph.model.padded_targets.PaddedTargets`), with static-shape tensor operations
only (``torch.where``, ``gather``, ``scatter_reduce``, masks): no ``nonzero``, no ``.item()``, no
data-dependent Python control flow, so matching never waits for the device, and a training step
that matches can be captured in a CUDA graph or compiled with ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from effdet_graph.model.padded_targets import PaddedTargets

__all__ = ["BACKGROUND", "IGNORE", "MatchConfig", "match_anchors"]

# Per-anchor match (and class target) values: ``>= 0`` is a positive anchor's box (or class), or one of these two.
#: Negative anchor (background: every class target is 0).
BACKGROUND = -1
#: Ignored anchor (contributes to no loss).
IGNORE = -2


@dataclass(frozen=True)
class MatchConfig:
    """Thresholds of anchor matching (see the module docstring), and of the crowd boxes
    (:mod:`effdet_graph.model.target_assignment`)."""

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


def _pairwise_iou(gt_boxes: Tensor, anchors: Tensor) -> Tensor:
    """IoU of every box with every anchor.

    The same floating-point operations as :func:`torchvision.ops.box_iou` (so bitwise the same
    values), one coordinate at a time and in place, into three ``(B, M, A)`` buffers: on the CPU,
    allocating (and page-faulting) a fresh large tensor per operation costs more than the arithmetic.

    Args:
        gt_boxes (Tensor[B, M, 4]): ``(x1, y1, x2, y2)``.
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)``.

    Returns:
        Tensor[B, M, A]: IoU.
    """
    gx1, gy1, gx2, gy2 = (v.unsqueeze(-1) for v in gt_boxes.unbind(dim=-1))  # (B, M, 1)
    ax1, ay1, ax2, ay2 = anchors.unbind(dim=-1)  # (A,)
    inter = torch.minimum(gx2, ax2)
    tmp = torch.maximum(gx1, ax1)
    inter.sub_(tmp).clamp_(min=0)  # width of the intersection
    h = torch.minimum(gy2, ay2)
    torch.maximum(gy1, ay1, out=tmp)
    inter.mul_(h.sub_(tmp).clamp_(min=0))
    union = torch.add((gx2 - gx1) * (gy2 - gy1), (ax2 - ax1) * (ay2 - ay1), out=tmp)
    return inter.div_(union.sub_(inter))


def match_anchors(anchors: Tensor, targets: PaddedTargets, config: MatchConfig = MatchConfig()) -> Tensor:
    """Match every anchor of every image to at most one of the image's boxes, without host synchronisation.

    Args:
        anchors (Tensor[A, 4]): ``(x1, y1, x2, y2)``.
        targets: ``B`` images of ``M`` (padded) boxes; padded rows are never matched.
        config: matching thresholds.

    Returns:
        Int64Tensor[B, A]: per image the row of the matched box (positive), :data:`BACKGROUND` (-1)
        or :data:`IGNORE` (-2).
    """
    batch, num_gt = targets.boxes.shape[:2]
    num_anchors = anchors.shape[0]
    if num_gt == 0:  # a static shape, not a value: no image of the batch has a box
        return torch.full((batch, num_anchors), BACKGROUND, dtype=torch.long, device=anchors.device)
    # padded rows get IoU -1 (real IoUs are >= 0): never the best box of an anchor, and below
    # both thresholds, so an image without boxes is all background
    iou = _pairwise_iou(targets.boxes.to(anchors), anchors)  # (B, M, A)
    iou.masked_fill_(~targets.box_valid.unsqueeze(-1), -1.0)
    best_iou, matches = iou.max(dim=1)  # (B, A); ties: the first box
    matches = torch.where(best_iou < config.matched_threshold, IGNORE, matches)
    matches = torch.where(best_iou < config.unmatched_threshold, BACKGROUND, matches)
    if config.allow_low_quality_matches:
        best_anchor = iou.argmax(dim=2)  # (B, M)
        rows = torch.arange(num_gt, device=anchors.device).expand(batch, num_gt)
        # padded rows scatter the fill value, which amin leaves unchanged
        rows = torch.where(targets.box_valid, rows, num_gt)
        forced = torch.full((batch, num_anchors), num_gt, dtype=torch.long, device=anchors.device)
        forced = forced.scatter_reduce(1, best_anchor, rows, reduce="amin")
        matches = torch.where(forced < num_gt, forced, matches)
    return matches
